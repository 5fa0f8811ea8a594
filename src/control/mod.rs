//! The HTTP control API that the agents' work platform and network engineers use: list
//! active calls, start a transfer to another hotline and follow it, reload the dialplan,
//! read counters.
//!
//! This module owns the HTTP side and the [`Engine`] trait it drives; the session layer
//! implements the trait. Routes, all JSON, with their statuses:
//!
//! | route | success | failures |
//! |---|---|---|
//! | `GET /v1/health` (no token) | 200 `{"status":"ok"}` | |
//! | `GET /v1/calls` | 200 list of [`CallSummary`] | |
//! | `POST /v1/calls/{call}/transfer` | 202 [`TransferSummary`] | 400, 404, 409, 413, 415, 422, 500, 503 |
//! | `GET /v1/transfers/{id}` | 200 [`TransferSummary`] | 404 |
//! | `POST /v1/reload` | 200 [`ReloadReport`] | 422 with `problems` |
//! | `GET /v1/stats` | 200 `{"engine": EngineStats, "control": {...}}` | |
//!
//! Every route but the health check needs `Authorization: Bearer <token>` (401 without
//! it, 503 when the engine has no token configured).

mod auth;
mod engine;
mod error;
mod model;
mod routes;

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::config::ControlConfig;

pub use auth::BearerToken;
pub use engine::{Engine, EngineFuture, GatewayState, RouteQuery, TransferRejection};
pub use model::{
    CallRef, CallState, CallSummary, EngineStats, LegRole, LegState, LegSummary, ReloadReport,
    TransferId, TransferRequest, TransferStatus, TransferSummary,
};

use routes::{ApiState, router};

/// How long open requests may go on after shutdown is signalled before the server stops
/// waiting for them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long the server waits for connections to close after aborting open requests.
const ABORT_WAIT: Duration = Duration::from_secs(1);

/// Failure to start or run the control API.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "control.listen {address} is not a loopback address; set control.allow_remote = true \
         to serve other hosts"
    )]
    NotLoopback { address: SocketAddr },
    #[error("failed to bind the control API to {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("control API on {address} failed: {source}")]
    Serve {
        address: SocketAddr,
        source: io::Error,
    },
}

/// Serves the control API from `config` until `shutdown` completes, then lets open
/// requests finish for up to 5 seconds. The bearer token is read once, from the
/// environment variable named by `config.token_env`. When `config.enabled` is false, only
/// waits for `shutdown`.
///
/// # Errors
///
/// [`ControlError::NotLoopback`], [`ControlError::Bind`] or [`ControlError::Serve`].
pub async fn serve(
    config: &ControlConfig,
    engine: Arc<dyn Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ControlError> {
    if !config.enabled {
        info!("control API disabled");
        shutdown.await;
        return Ok(());
    }
    let token = BearerToken::from_env(&config.token_env);
    let server = ControlServer::bind(config, token).await?;
    server.run(engine, shutdown).await
}

/// A bound control API listener that is not yet serving. Separate from [`serve`] so that a
/// caller can bind port 0 and learn the port before serving.
#[derive(Debug)]
pub struct ControlServer {
    listener: TcpListener,
    address: SocketAddr,
    token: Option<BearerToken>,
    token_env: String,
}

impl ControlServer {
    /// Binds `config.listen` with `token` as the only accepted bearer token, or with no
    /// token, in which case every authenticated route responds with 503.
    ///
    /// # Errors
    ///
    /// [`ControlError::NotLoopback`] when the address is not loopback and
    /// `config.allow_remote` is false; [`ControlError::Bind`] with the OS error.
    pub async fn bind(
        config: &ControlConfig,
        token: Option<BearerToken>,
    ) -> Result<ControlServer, ControlError> {
        let requested = config.listen;
        if !requested.ip().is_loopback() && !config.allow_remote {
            return Err(ControlError::NotLoopback { address: requested });
        }
        let listener = TcpListener::bind(requested)
            .await
            .map_err(|source| ControlError::Bind {
                address: requested,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| ControlError::Bind {
            address: requested,
            source,
        })?;
        Ok(ControlServer {
            listener,
            address,
            token,
            token_env: config.token_env.clone(),
        })
    }

    /// Returns the bound address, with the real port when port 0 was requested.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Serves requests until `shutdown` completes, then lets open requests finish for up
    /// to 5 seconds. Requests still open after that get 503 and their engine calls are
    /// dropped.
    ///
    /// # Errors
    ///
    /// [`ControlError::Serve`] when accepting connections fails for good.
    pub async fn run(
        self,
        engine: Arc<dyn Engine>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ControlError> {
        let address = self.address;
        self.warn_about_token();

        let (abort, aborted) = watch::channel(false);
        let state = Arc::new(ApiState {
            engine,
            token: self.token,
            token_env: self.token_env,
            stats: Default::default(),
            aborted,
        });
        let stopping = Arc::new(Notify::new());
        let notify = Arc::clone(&stopping);
        let graceful = async move {
            shutdown.await;
            notify.notify_one();
        };

        info!(%address, "control API listening");
        let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, service).with_graceful_shutdown(graceful);
        let mut server = server.into_future();
        let result = tokio::select! {
            result = &mut server => result,
            () = grace_expired(&stopping) => {
                warn!(%address, "control API requests still open after the grace period");
                let _ = abort.send(true);
                // A client that is still sending its request has no handler to abort.
                tokio::time::timeout(ABORT_WAIT, server).await.unwrap_or(Ok(()))
            }
        };
        info!(%address, "control API stopped");
        result.map_err(|source| ControlError::Serve { address, source })
    }

    fn warn_about_token(&self) {
        match &self.token {
            None => warn!(
                variable = %self.token_env,
                "control token not configured; the control API responds with 503 until the \
                 variable is set and the engine restarted"
            ),
            Some(token) if token.len() < auth::MIN_TOKEN_BYTES => warn!(
                variable = %self.token_env,
                bytes = token.len(),
                "control token is short; use at least {} random bytes",
                auth::MIN_TOKEN_BYTES
            ),
            Some(_) => {}
        }
    }
}

async fn grace_expired(stopping: &Notify) {
    stopping.notified().await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}
