//! The OPTIONS pinger: one task per gateway with probing enabled sends an out-of-dialog
//! OPTIONS (RFC 3261 §11) every interval and feeds the outcome to the gateway's health
//! machine.
//!
//! Each probe is a new request with its own Call-ID, driven by a
//! [`NonInviteClient`] that retransmits it over UDP. Responses reach the engine's
//! dispatcher, which offers those whose Call-ID belongs to no call to
//! [`Prober::on_response`]; the prober finds the probe by Call-ID and checks the branch
//! and CSeq method (§17.1.3) before passing the status on.
//!
//! A probe fails on a 408 or 5xx, on timer F or the probe timeout, on a transport error
//! and on a name that does not resolve. Any other final response is a success, as
//! [`Signal::from_options_response`] classifies it.
//!
//! Tasks hold only a weak reference to the [`Prober`] between probes, and stop when their
//! gateway leaves the registry or stops being probed, on [`Prober::shutdown`], or when
//! the prober is dropped.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, trace};

use super::health::{FailureCause, Signal};
use super::registry::{Gateway, TrunkRegistry, UpdateSummary};
use super::{GatewayId, GatewaySpec, SpecError};
use crate::sip::{Branch, CallId, Headers, Method, Response};
use crate::transaction::{Action, NonInviteClient, Timers};
use crate::transport::{Target, Transport};
use request::Options;

mod request;

/// Responses queued per probe before further retransmissions are dropped.
const RESPONSE_QUEUE: usize = 8;

/// A probe waiting for responses.
#[derive(Debug)]
struct Pending {
    gateway: GatewayId,
    branch: Branch,
    responses: mpsc::Sender<u16>,
}

/// A running probe task. Dropping it drops `stop`, which ends the task.
#[derive(Debug)]
struct ProbeTask {
    _stop: watch::Sender<()>,
    handle: JoinHandle<()>,
}

/// The OPTIONS pinger of every gateway in a [`TrunkRegistry`].
pub struct Prober {
    registry: Arc<TrunkRegistry>,
    timers: Timers,
    user_agent: String,
    transport: OnceLock<Arc<Transport>>,
    pending: DashMap<CallId, Pending>,
    tasks: Mutex<HashMap<GatewayId, ProbeTask>>,
    stopped: AtomicBool,
}

impl Prober {
    /// Creates a prober for the gateways of `registry`, using `timers` for retransmissions
    /// and `user_agent` for the User-Agent header. Nothing is sent before [`Prober::start`].
    pub fn new(registry: Arc<TrunkRegistry>, timers: Timers, user_agent: &str) -> Arc<Prober> {
        Arc::new(Prober {
            registry,
            timers,
            user_agent: user_agent.to_owned(),
            transport: OnceLock::new(),
            pending: DashMap::new(),
            tasks: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        })
    }

    pub fn registry(&self) -> &Arc<TrunkRegistry> {
        &self.registry
    }

    /// Attaches the transport that sends the probes and starts a task for every gateway
    /// with probing enabled. A second call keeps the first transport.
    pub fn start(self: &Arc<Self>, transport: Arc<Transport>) {
        let _ = self.transport.set(transport);
        self.sync();
    }

    /// Updates the registry with `specs` (see [`TrunkRegistry::update`]) and starts and
    /// stops probe tasks to match.
    ///
    /// # Errors
    ///
    /// [`SpecError`] from the registry; nothing changes then.
    pub fn update(self: &Arc<Self>, specs: Vec<GatewaySpec>) -> Result<UpdateSummary, SpecError> {
        let summary = self.registry.update(specs)?;
        self.sync();
        Ok(summary)
    }

    /// Starts a task for every gateway with probing enabled that has none, and stops the
    /// tasks of gateways that left the registry or are no longer probed. Does nothing
    /// before [`Prober::start`] or after [`Prober::shutdown`].
    pub fn sync(self: &Arc<Self>) {
        if self.transport.get().is_none() || self.is_stopped() {
            return;
        }
        let enabled: HashSet<GatewayId> = self
            .registry
            .ids()
            .into_iter()
            .filter(|id| {
                let gateway = self.registry.gateway(id);
                gateway.is_some_and(|gateway| gateway.spec().probe.enabled)
            })
            .collect();

        let mut tasks = self.lock_tasks();
        tasks.retain(|id, task| enabled.contains(id) && !task.handle.is_finished());
        for id in enabled {
            if tasks.contains_key(&id) {
                continue;
            }
            let (stop, stopped) = watch::channel(());
            let handle = tokio::spawn(run_probes(Arc::downgrade(self), id.clone(), stopped));
            tasks.insert(
                id,
                ProbeTask {
                    _stop: stop,
                    handle,
                },
            );
        }
    }

    /// Returns the gateways that have a probe task, sorted.
    pub fn probed_gateways(&self) -> Vec<GatewayId> {
        let mut ids: Vec<GatewayId> = self.lock_tasks().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Takes a response whose Call-ID belongs to no call. Returns true when the Call-ID is
    /// a probe's, so the caller need not handle it further. A response with the probe's
    /// Call-ID but another branch or method is dropped here. It takes only a map read
    /// lock and a non-waiting channel send, so it is safe to call from a receive task.
    pub fn on_response(&self, response: &Response) -> bool {
        let Ok(call_id) = response.call_id() else {
            return false;
        };
        let Some(pending) = self.pending.get(&call_id) else {
            return false;
        };

        // RFC 3261 §17.1.3: the top Via branch and the CSeq method identify the transaction.
        let branch_matches = response
            .branch()
            .is_ok_and(|branch| branch == pending.branch);
        let method_matches = response
            .cseq()
            .is_ok_and(|cseq| cseq.method == Method::Options.as_str());
        if !branch_matches || !method_matches {
            debug!(gateway = %pending.gateway, %call_id, "probe response matches no transaction");
            return true;
        }
        if pending.responses.try_send(response.status).is_err() {
            trace!(gateway = %pending.gateway, %call_id, "probe response queue full");
        }
        true
    }

    /// Stops every probe task and waits for them to end. Later calls to [`Prober::sync`]
    /// start nothing.
    pub async fn shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let tasks: Vec<ProbeTask> = self.lock_tasks().drain().map(|(_, task)| task).collect();
        for task in tasks {
            let ProbeTask { _stop, handle } = task;
            drop(_stop);
            let _ = handle.await;
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn lock_tasks(&self) -> MutexGuard<'_, HashMap<GatewayId, ProbeTask>> {
        // The map is only inserted into and removed from, so a poisoned lock is consistent.
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one probe to `gateway` and drives its transaction. Reports the outcome to the
    /// gateway as soon as it is known, then absorbs response retransmissions until the
    /// transaction ends or `next_probe` comes.
    async fn probe(
        &self,
        gateway: &Gateway,
        cseq: u32,
        next_probe: Instant,
        stop: &mut watch::Receiver<()>,
    ) -> ControlFlow<()> {
        let Some(transport) = self.transport.get() else {
            return ControlFlow::Continue(());
        };
        let spec = gateway.spec();
        let give_up = Instant::now() + spec.probe.timeout;
        let resolved = tokio::select! {
            _ = stop.changed() => return ControlFlow::Break(()),
            resolved = timeout(spec.probe.timeout, spec.target.resolve()) => resolved,
        };
        let target = match resolved {
            Ok(Ok(target)) => target,
            Ok(Err(error)) => {
                debug!(gateway = %spec.id, %error, "probe target did not resolve");
                gateway.record(Signal::Failure(FailureCause::Unresolvable));
                return ControlFlow::Continue(());
            }
            Err(_) => {
                debug!(gateway = %spec.id, target = %spec.target, "probe target lookup timed out");
                gateway.record(Signal::Failure(FailureCause::Unresolvable));
                return ControlFlow::Continue(());
            }
        };

        let local = transport.local_addr();
        let call_id = CallId::generate(&local.ip().to_string());
        let branch = Branch::generate();
        let mut options = Options {
            uri: spec.target.request_uri(),
            local,
            protocol: target.protocol,
            call_id: &call_id,
            branch: &branch,
            cseq,
            user_agent: &self.user_agent,
        };
        let mut request = options.build().encode();
        let protocol = transport.protocol_for(target, request.len());
        if protocol != target.protocol {
            options.protocol = protocol;
            request = options.build().encode();
        }

        let (responses, mut received) = mpsc::channel(RESPONSE_QUEUE);
        self.pending.insert(
            call_id.clone(),
            Pending {
                gateway: spec.id.clone(),
                branch,
                responses,
            },
        );
        let _pending = PendingEntry {
            pending: &self.pending,
            call_id,
        };
        let mut run = ProbeRun {
            transport,
            target: Target {
                addr: target.addr,
                protocol,
            },
            gateway,
            outcome: None,
        };
        trace!(gateway = %spec.id, target = %run.target.addr, "sending probe");

        let (mut client, actions) = NonInviteClient::new(
            request,
            protocol.is_reliable(),
            &self.timers,
            Instant::now(),
        );
        run.carry_out(&mut client, actions, None).await;
        while !client.is_terminated() {
            let limit = if run.outcome.is_none() {
                give_up
            } else {
                next_probe
            };
            let wake = client
                .next_deadline()
                .map_or(limit, |deadline| deadline.min(limit));
            tokio::select! {
                _ = stop.changed() => return ControlFlow::Break(()),
                Some(status) = received.recv() => {
                    let actions = client.on_response(status, Instant::now()).unwrap_or_default();
                    run.carry_out(&mut client, actions, Some(status)).await;
                }
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= limit {
                        break;
                    }
                    let actions = client.on_timeout(now);
                    run.carry_out(&mut client, actions, None).await;
                }
            }
        }
        if run.outcome.is_none() {
            run.settle(Signal::Failure(FailureCause::Timeout));
        }
        ControlFlow::Continue(())
    }
}

/// Runs one gateway's probe task: probe, wait for the interval, repeat.
async fn run_probes(prober: Weak<Prober>, id: GatewayId, mut stop: watch::Receiver<()>) {
    let mut cseq: u32 = 0;
    loop {
        let Some(this) = prober.upgrade() else {
            return;
        };
        let Some(gateway) = this.registry.gateway(&id) else {
            return;
        };
        let probe = gateway.spec().probe;
        if !probe.enabled {
            return;
        }
        let next_probe = Instant::now() + probe.interval;

        // RFC 3261 §8.1.1.5: CSeq stays below 2^31.
        cseq = if cseq >= i32::MAX as u32 { 1 } else { cseq + 1 };
        if this
            .probe(&gateway, cseq, next_probe, &mut stop)
            .await
            .is_break()
        {
            return;
        }
        drop(gateway);
        drop(this);

        tokio::select! {
            _ = stop.changed() => return,
            _ = sleep_until(next_probe) => {}
        }
    }
}

/// The state of one probe's transaction while its actions are carried out.
struct ProbeRun<'a> {
    transport: &'a Transport,
    target: Target,
    gateway: &'a Gateway,
    outcome: Option<Signal>,
}

impl ProbeRun<'_> {
    /// Carries out the transaction's actions. `status` is that of the response that caused
    /// them.
    async fn carry_out(
        &mut self,
        client: &mut NonInviteClient,
        actions: Vec<Action>,
        status: Option<u16>,
    ) {
        let mut queue = std::collections::VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Transmit(bytes) => {
                    if let Err(error) = self.send(bytes).await {
                        debug!(gateway = %self.gateway.id(), %error, "probe send failed");
                        queue.extend(client.on_transport_error());
                    }
                }
                Action::PassToTu => {
                    if let Some(signal) = status.and_then(Signal::from_options_response) {
                        self.settle(signal);
                    }
                }
                Action::TimedOut(_) => self.settle(Signal::Failure(FailureCause::Timeout)),
                Action::TransportError => {
                    self.settle(Signal::Failure(FailureCause::TransportError));
                }
                Action::BuildAck | Action::BuildTrying | Action::Terminated => {}
            }
        }
    }

    async fn send(&self, bytes: Bytes) -> Result<(), crate::transport::TransportError> {
        self.transport.send(self.target, bytes).await
    }

    /// Records the first outcome of the probe; later ones (retransmitted responses) are
    /// ignored.
    fn settle(&mut self, signal: Signal) {
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some(signal);
        match signal {
            Signal::Success { status } => {
                trace!(gateway = %self.gateway.id(), status, "probe response received");
            }
            Signal::Failure(cause) => {
                debug!(gateway = %self.gateway.id(), %cause, "probe failed");
            }
        }
        self.gateway.record(signal);
    }
}

/// Removes a probe from the pending map when the probe ends on any path.
struct PendingEntry<'a> {
    pending: &'a DashMap<CallId, Pending>,
    call_id: CallId,
}

impl Drop for PendingEntry<'_> {
    fn drop(&mut self) {
        self.pending.remove(&self.call_id);
    }
}
