//! The dialplan in force: loading it at startup, and replacing it on SIGHUP or through
//! the control API. A plan that fails validation never replaces a good one, and calls
//! keep the plan they started with.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use crate::config::Problem;
use crate::dialplan::Plan;
use crate::routing::{Origin, PlanRouter, gateway_specs};
use crate::session::Context;
use crate::trunk::Prober;

/// A summary of the plan a successful load put in force.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub fingerprint: String,
    pub catalogue: Option<String>,
    pub destinations: usize,
    pub matters: usize,
}

/// Loads and swaps dialplans for one engine.
pub struct Plans {
    paths: Vec<PathBuf>,
    origin: Origin,
    ctx: Arc<Context>,
    prober: Arc<Prober>,
    /// The plan in force, for counters and the control API.
    current: Mutex<Option<Arc<Plan>>>,
    /// Serialises reloads so two requests never interleave their swaps.
    reloading: tokio::sync::Mutex<()>,
}

impl Plans {
    pub fn new(
        paths: Vec<PathBuf>,
        origin: Origin,
        ctx: Arc<Context>,
        prober: Arc<Prober>,
    ) -> Plans {
        Plans {
            paths,
            origin,
            ctx,
            prober,
            current: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The plan in force, if any.
    pub fn current(&self) -> Option<Arc<Plan>> {
        match self.current.lock() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads and validates the dialplans, then puts them in force: new calls route with
    /// them and the trunk registry probes their gateways.
    ///
    /// # Errors
    ///
    /// Every problem found; the plan in force stays.
    pub async fn reload(&self) -> Result<Loaded, Vec<Problem>> {
        let _guard = self.reloading.lock().await;
        if self.paths.is_empty() {
            return Err(vec![Problem {
                file: "(config)".to_owned(),
                line: 1,
                column: 1,
                message: "no dialplan paths are configured".to_owned(),
            }]);
        }
        let paths = self.paths.clone();
        let loaded = tokio::task::spawn_blocking(move || Plan::load(&paths)).await;
        let plan = match loaded {
            Ok(Ok(plan)) => Arc::new(plan),
            Ok(Err(problems)) => {
                warn!(
                    problems = problems.len(),
                    "dialplan rejected; the previous plan stays in force"
                );
                for problem in &problems {
                    warn!(%problem, "dialplan problem");
                }
                return Err(problems);
            }
            Err(error) => {
                return Err(vec![Problem {
                    file: "(engine)".to_owned(),
                    line: 1,
                    column: 1,
                    message: format!("loading the dialplan failed: {error}"),
                }]);
            }
        };

        if let Err(error) = self.prober.update(gateway_specs(&plan)) {
            warn!(%error, "dialplan gateways rejected by the trunk registry");
            return Err(vec![Problem {
                file: plan.files().first().cloned().unwrap_or_default(),
                line: 1,
                column: 1,
                message: format!("invalid gateway: {error}"),
            }]);
        }
        let router = PlanRouter::new(
            Arc::clone(&plan),
            Arc::clone(self.prober.registry()),
            self.origin.clone(),
        );
        self.ctx.set_router(Arc::new(router));

        let loaded = Loaded {
            fingerprint: plan.fingerprint().to_owned(),
            catalogue: plan.catalogue_version().map(str::to_owned),
            destinations: plan.destinations().len(),
            matters: plan.categories().len(),
        };
        info!(
            fingerprint = %loaded.fingerprint,
            destinations = loaded.destinations,
            files = plan.files().len(),
            "dialplan in force"
        );
        match self.current.lock() {
            Ok(mut current) => *current = Some(plan),
            Err(poisoned) => *poisoned.into_inner() = Some(plan),
        }
        Ok(loaded)
    }
}
