//! The runtime state of every gateway, keyed by [`GatewayId`]: its specification, its
//! health machine and its channel counter.
//!
//! The registry is rebuilt from the dial plan on every reload with
//! [`TrunkRegistry::update`]. A gateway whose id and target did not change keeps its health
//! and its channel count, so after a reload a down gateway stays down and calls in
//! progress still count against its limit. A gateway whose target changed starts again as Unknown with
//! no channel in use; calls still up on the old target keep their guards on the old
//! counter.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dashmap::DashMap;
use rand::Rng;
use tracing::info;

use super::health::{Health, HealthState, Signal, Thresholds, Transition};
use super::limits::{ChannelCounter, ChannelGuard, Channels};
use super::select::{self, Candidate, Selection, SkipReason, Skipped};
use super::{GatewayId, GatewaySpec, SpecError, TrunkId};

/// One gateway's specification and runtime state. Held as `Arc<Gateway>`; a reload that
/// changes the specification installs a new value sharing the same state.
#[derive(Debug)]
pub struct Gateway {
    spec: GatewaySpec,
    health: Arc<Mutex<HealthState>>,
    channels: Arc<ChannelCounter>,
}

impl Gateway {
    fn new(spec: GatewaySpec) -> Self {
        let health = HealthState::new(thresholds(&spec));
        let channels = ChannelCounter::new(spec.channel_limit);
        Gateway {
            spec,
            health: Arc::new(Mutex::new(health)),
            channels,
        }
    }

    /// Creates a gateway with a new specification and the state of `self`.
    fn respecified(&self, spec: GatewaySpec) -> Self {
        self.lock_health().set_thresholds(thresholds(&spec));
        self.channels.set_limit(spec.channel_limit);
        Gateway {
            spec,
            health: Arc::clone(&self.health),
            channels: Arc::clone(&self.channels),
        }
    }

    pub fn id(&self) -> &GatewayId {
        &self.spec.id
    }

    pub fn spec(&self) -> &GatewaySpec {
        &self.spec
    }

    pub fn health(&self) -> Health {
        self.lock_health().health()
    }

    /// Returns a copy of the health machine, with its current runs.
    pub fn health_state(&self) -> HealthState {
        self.lock_health().clone()
    }

    pub fn channels(&self) -> Channels {
        self.channels.snapshot()
    }

    /// Takes one channel, or returns `None` when every channel is in use.
    pub fn try_acquire(&self) -> Option<ChannelGuard> {
        self.channels.try_acquire()
    }

    /// Feeds a signal to the health machine and logs the transition it causes at `info`.
    pub fn record(&self, signal: Signal) -> Option<Transition> {
        let transition = self.lock_health().on_signal(signal)?;
        info!(
            gateway = %self.spec.id,
            trunk = %self.spec.trunk,
            from = %transition.from,
            to = %transition.to,
            cause = %transition.cause,
            "gateway health changed"
        );
        Some(transition)
    }

    fn candidate(&self) -> Candidate {
        Candidate {
            id: self.spec.id.clone(),
            priority: self.spec.priority,
            weight: self.spec.weight,
            health: self.health(),
            channels: self.channels(),
        }
    }

    fn lock_health(&self) -> MutexGuard<'_, HealthState> {
        // The machine holds plain counters that a panicking holder cannot leave half
        // written, so a poisoned lock is still consistent.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn thresholds(spec: &GatewaySpec) -> Thresholds {
    Thresholds {
        down_after: spec.probe.down_after,
        up_after: spec.probe.up_after,
    }
}

/// The reason no channel could be taken on a gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error("gateway {id} not found")]
    UnknownGateway { id: GatewayId },
    #[error("gateway {id} has all {limit} channels in use")]
    Full { id: GatewayId, limit: u32 },
}

/// The changes an update made, each list sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateSummary {
    /// Gateways that did not exist before.
    pub added: Vec<GatewayId>,
    /// Gateways with the same id and target, which kept their state.
    pub kept: Vec<GatewayId>,
    /// Gateways whose target changed, which start again as Unknown.
    pub replaced: Vec<GatewayId>,
    /// Gateways no longer configured.
    pub removed: Vec<GatewayId>,
}

/// Every gateway's state. Reads and updates take `&self` and may run concurrently.
#[derive(Debug, Default)]
pub struct TrunkRegistry {
    gateways: DashMap<GatewayId, Arc<Gateway>>,
    /// Serialises updates, so two reloads cannot interleave their inserts and removals.
    updating: Mutex<()>,
}

impl TrunkRegistry {
    /// Creates an empty registry.
    pub fn new() -> Self {
        TrunkRegistry::default()
    }

    /// Creates a registry containing `specs`.
    ///
    /// # Errors
    ///
    /// As [`TrunkRegistry::update`].
    pub fn from_specs(specs: Vec<GatewaySpec>) -> Result<Self, SpecError> {
        let registry = TrunkRegistry::new();
        registry.update(specs)?;
        Ok(registry)
    }

    /// Replaces the set of gateways with `specs`, keeping the state of every gateway whose
    /// id and target did not change. Nothing changes when a spec is invalid.
    ///
    /// The update is not atomic for readers: a selection running meanwhile may see some
    /// gateways of the new set and some of the old one.
    ///
    /// # Errors
    ///
    /// [`SpecError`] when a spec fails [`GatewaySpec::validate`] or two specs share an id.
    pub fn update(&self, specs: Vec<GatewaySpec>) -> Result<UpdateSummary, SpecError> {
        let mut seen = HashSet::with_capacity(specs.len());
        for spec in &specs {
            spec.validate()?;
            if !seen.insert(spec.id.clone()) {
                return Err(SpecError::DuplicateGateway {
                    id: spec.id.clone(),
                });
            }
        }

        let _updating = self.updating.lock().unwrap_or_else(PoisonError::into_inner);
        let mut summary = UpdateSummary::default();
        for spec in specs {
            let id = spec.id.clone();
            let previous = self.gateway(&id);
            let gateway = match previous {
                Some(old) if old.spec.target == spec.target => {
                    summary.kept.push(id.clone());
                    old.respecified(spec)
                }
                Some(_) => {
                    summary.replaced.push(id.clone());
                    Gateway::new(spec)
                }
                None => {
                    summary.added.push(id.clone());
                    Gateway::new(spec)
                }
            };
            self.gateways.insert(id, Arc::new(gateway));
        }
        summary.removed = self
            .ids()
            .into_iter()
            .filter(|id| !seen.contains(id))
            .collect();
        for id in &summary.removed {
            self.gateways.remove(id);
        }

        summary.added.sort();
        summary.kept.sort();
        summary.replaced.sort();
        info!(
            added = summary.added.len(),
            kept = summary.kept.len(),
            replaced = summary.replaced.len(),
            removed = summary.removed.len(),
            "gateways updated"
        );
        Ok(summary)
    }

    /// Returns the gateway `id`, or `None` when it is not configured.
    pub fn gateway(&self, id: &GatewayId) -> Option<Arc<Gateway>> {
        self.gateways.get(id).map(|entry| Arc::clone(entry.value()))
    }

    pub fn health(&self, id: &GatewayId) -> Option<Health> {
        self.gateway(id).map(|gateway| gateway.health())
    }

    pub fn channels(&self, id: &GatewayId) -> Option<Channels> {
        self.gateway(id).map(|gateway| gateway.channels())
    }

    /// Returns the channels left on gateway `id`: `u32::MAX` when it has no limit, `None`
    /// when it is not configured.
    pub fn free_channels(&self, id: &GatewayId) -> Option<u32> {
        self.channels(id)
            .map(|channels| channels.free().unwrap_or(u32::MAX))
    }

    /// Takes one channel on gateway `id` for the life of a call.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] when the gateway is not configured or every channel is in use.
    pub fn try_acquire(&self, id: &GatewayId) -> Result<ChannelGuard, AcquireError> {
        let gateway = self
            .gateway(id)
            .ok_or_else(|| AcquireError::UnknownGateway { id: id.clone() })?;
        gateway.try_acquire().ok_or_else(|| AcquireError::Full {
            id: id.clone(),
            limit: gateway.channels().limit.unwrap_or(u32::MAX),
        })
    }

    /// Feeds a signal to gateway `id`'s health machine; see [`Gateway::record`]. Returns
    /// `None` when the gateway is not configured or its health did not change.
    pub fn record(&self, id: &GatewayId, signal: Signal) -> Option<Transition> {
        self.gateway(id)?.record(signal)
    }

    /// Records the passive signal of a response to an INVITE sent to gateway `id`, as
    /// [`Signal::from_invite_response`] classifies it.
    pub fn record_invite_response(&self, id: &GatewayId, status: u16) -> Option<Transition> {
        self.record(id, Signal::from_invite_response(status)?)
    }

    /// Returns every configured gateway id, sorted.
    pub fn ids(&self) -> Vec<GatewayId> {
        let mut ids: Vec<GatewayId> = self.gateways.iter().map(|e| e.key().clone()).collect();
        ids.sort();
        ids
    }

    /// Returns the ids of the gateways of `trunk`, sorted.
    pub fn gateways_of(&self, trunk: &TrunkId) -> Vec<GatewayId> {
        let mut ids: Vec<GatewayId> = self
            .gateways
            .iter()
            .filter(|entry| entry.value().spec.trunk == *trunk)
            .map(|entry| entry.key().clone())
            .collect();
        ids.sort();
        ids
    }

    /// Orders `candidates` (the gateways the caller may use now, for example after time
    /// rules) for one call; see [`select::order`]. Ids that are not configured are
    /// reported as skipped with [`SkipReason::UnknownGateway`].
    pub fn select<R: Rng + ?Sized>(&self, candidates: &[GatewayId], rng: &mut R) -> Selection {
        let mut unknown = Vec::new();
        let mut states = Vec::with_capacity(candidates.len());
        for id in candidates {
            match self.gateway(id) {
                Some(gateway) => states.push(gateway.candidate()),
                None => unknown.push(Skipped {
                    id: id.clone(),
                    reason: SkipReason::UnknownGateway,
                }),
            }
        }
        let mut selection = select::order(&states, rng);
        selection.skipped.extend(unknown);
        selection
    }

    pub fn len(&self) -> usize {
        self.gateways.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty()
    }
}
