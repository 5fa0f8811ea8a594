//! The B2BUA core: the dispatcher that checks and routes every message, the session table,
//! and one task per call that owns both legs.
//!
//! The dispatcher runs on the transport's receive tasks. It parses, answers what needs no
//! call (400, 403, 481, 483, OPTIONS), stamps the top Via with `received`/`rport`, and
//! hands the rest to the call task found through the [`SessionTable`]. Call tasks own
//! their dialogs, transactions and media; nothing about a call is shared but its route.

mod anchor;
mod call;
mod dispatch;
mod failure;
mod outbound;
pub mod routing;
mod status;
mod table;
mod transactions;
mod trust;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use dashmap::DashMap;
use tracing::debug;

pub use call::StartError;
pub use dispatch::Dispatcher;
pub use failure::Failure;
pub use routing::{NoRoutes, Router};
pub use status::{
    CallPhase, CallSummary, LegSummary, TransferOrder, TransferState, TransferStatus, TriggerKind,
};
pub use table::{LegId, Route, SessionId, SessionTable};
pub use trust::{TrustList, TrustListError};

use crate::config::Config;
use crate::mailbox::MailboxSender;
use crate::media::PortPool;
use crate::metrics::Metrics;
use crate::sip::uri::{NameAddr, Uri};
use crate::sip::{Headers, Request, Response};
use crate::transaction::Timers;
use crate::transport::{Protocol, Target, Transport};
use crate::trunk::Prober;

/// The sending end of a call task's event queue.
pub type CallSender = MailboxSender<CallEvent>;

/// An event for a call task.
#[derive(Debug)]
pub enum CallEvent {
    // The messages are boxed with their addresses so that an event is three words: the
    // queue's room grows in whole events while a burst waits.
    Request(Box<ReceivedRequest>),
    Response(Box<Response>),
    /// The grace period is over: end the call now.
    Terminate,
    /// Hand the leg toward the remote over to another call, for an attended transfer
    /// whose Replaces names this call's dialog with the agent.
    Surrender {
        replaces: Box<crate::sip::headers::Replaces>,
        reply: tokio::sync::oneshot::Sender<Result<call::SurrenderedLeg, u16>>,
    },
    /// Start a transfer; the outcome of the start goes back on `reply`.
    Transfer {
        order: Box<TransferOrder>,
        reply: tokio::sync::oneshot::Sender<Result<TransferStatus, StartError>>,
    },
}

/// A request for a call, with the address and transport it arrived on.
#[derive(Debug)]
pub struct ReceivedRequest {
    pub request: Request,
    pub source: SocketAddr,
    pub protocol: Protocol,
    /// The destination of responses, from the top Via as received (RFC 3261 §18.2.2, RFC
    /// 3581).
    pub response_target: Target,
    /// From and To as the dispatcher parsed them, handed on with a new call's INVITE so
    /// that the call does not parse them again.
    pub parties: Option<Box<Parties>>,
}

/// The parsed From and To of a request.
#[derive(Debug)]
pub struct Parties {
    pub from: NameAddr,
    pub to: NameAddr,
}

/// State shared by the dispatcher and every call task.
pub struct Context {
    pub config: Config,
    pub timers: Timers,
    pub table: SessionTable,
    pub metrics: Metrics,
    pub media: Arc<PortPool>,
    pub trusted: TrustList,
    /// The agent target calls from the switch are sent to.
    pub agent: Uri,
    transport: OnceLock<Arc<Transport>>,
    /// The gateway prober, offered every response whose Call-ID belongs to no call.
    probes: OnceLock<Arc<Prober>>,
    draining: AtomicBool,
    /// Calls started and not yet ended; ended calls may linger in the table.
    active_calls: AtomicUsize,
    router: RwLock<Arc<dyn Router>>,
    next_transfer: AtomicU64,
    /// The latest status of every transfer, for the control API.
    pub transfers: DashMap<u64, TransferStatus>,
    /// A summary of every active call, for the control API.
    pub calls: DashMap<SessionId, CallSummary>,
    records: OnceLock<Arc<dyn TransferRecorder>>,
}

/// Receives one record per finished transfer.
pub trait TransferRecorder: Send + Sync {
    fn record(&self, status: &TransferStatus, order: &TransferOrder, caller: &str);
}

impl Context {
    pub fn new(
        config: Config,
        media: Arc<PortPool>,
        trusted: TrustList,
        agent: Uri,
    ) -> Arc<Context> {
        let timers = Timers::new(config.timers.t1(), config.timers.t2(), config.timers.t4())
            .unwrap_or_default();
        Arc::new(Context {
            config,
            timers,
            table: SessionTable::new(),
            metrics: Metrics::default(),
            media,
            trusted,
            agent,
            transport: OnceLock::new(),
            probes: OnceLock::new(),
            draining: AtomicBool::new(false),
            active_calls: AtomicUsize::new(0),
            router: RwLock::new(Arc::new(NoRoutes)),
            next_transfer: AtomicU64::new(1),
            transfers: DashMap::new(),
            calls: DashMap::new(),
            records: OnceLock::new(),
        })
    }

    /// Attaches the bound transport. Called once, before any message can arrive that needs
    /// an answer.
    pub fn attach_transport(&self, transport: Arc<Transport>) {
        let _ = self.transport.set(transport);
    }

    /// Attaches the gateway prober. Called once at startup; a second call is ignored.
    pub fn attach_probes(&self, prober: Arc<Prober>) {
        let _ = self.probes.set(prober);
    }

    /// Returns the gateway prober, once attached.
    pub fn probes(&self) -> Option<&Arc<Prober>> {
        self.probes.get()
    }

    pub fn local_addr(&self) -> SocketAddr {
        match self.transport.get() {
            Some(transport) => transport.local_addr(),
            None => self.config.sip.listen,
        }
    }

    /// Starts draining: new calls get 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The router new calls start with.
    pub fn router(&self) -> Arc<dyn Router> {
        match self.router.read() {
            Ok(router) => Arc::clone(&router),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the router for calls that start from now on; calls in progress keep theirs.
    pub fn set_router(&self, router: Arc<dyn Router>) {
        match self.router.write() {
            Ok(mut slot) => *slot = router,
            Err(poisoned) => *poisoned.into_inner() = router,
        }
    }

    /// Attaches the writer of transfer records.
    pub fn attach_recorder(&self, recorder: Arc<dyn TransferRecorder>) {
        let _ = self.records.set(recorder);
    }

    pub(crate) fn next_transfer_id(&self) -> u64 {
        self.next_transfer.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn publish_transfer(&self, status: TransferStatus) {
        self.transfers.insert(status.id, status);
    }

    pub(crate) fn record_transfer(
        &self,
        status: &TransferStatus,
        order: &TransferOrder,
        invite: &Request,
    ) {
        let Some(recorder) = self.records.get() else {
            return;
        };
        let caller = invite
            .from_header()
            .ok()
            .and_then(|from| from.uri.user)
            .unwrap_or_default();
        recorder.record(status, order, &caller);
    }

    /// Calls that have started and not ended. Ended calls may still sit in the table while
    /// their transactions absorb retransmissions.
    pub fn active_calls(&self) -> usize {
        self.active_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn call_started(&self) {
        self.active_calls.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn call_ended(&self) {
        self.active_calls.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Sends bytes, counting and logging a failure. Returns whether the send succeeded.
    pub async fn send(&self, target: Target, data: Bytes) -> bool {
        let Some(transport) = self.transport.get() else {
            return false;
        };
        match transport.send(target, data).await {
            Ok(()) => true,
            Err(error) => {
                self.metrics.send_errors.inc();
                debug!(%error, "send failed");
                false
            }
        }
    }

    /// The protocol a message of `len` bytes to `target` will really use.
    pub fn protocol_for(&self, target: Target, len: usize) -> Protocol {
        match self.transport.get() {
            Some(transport) => transport.protocol_for(target, len),
            None => target.protocol,
        }
    }
}
