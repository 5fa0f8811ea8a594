//! The interface the control API drives: the engine lists calls, starts and reports
//! transfers, reloads the dialplan and returns its counters.

use std::future::Future;
use std::pin::Pin;

use super::model::{
    CallRef, CallState, CallSummary, EngineStats, ReloadReport, TransferId, TransferRequest,
    TransferSummary,
};

/// A boxed future borrowing the engine, so that [`Engine`] stays object-safe.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the control API needs from the engine. The API keeps it as `Arc<dyn Engine>`.
///
/// Every method may be called from many HTTP requests at once, and a request's future may
/// be dropped before it completes when the client disconnects, so no method should leave
/// the engine half-changed when dropped at an `.await`.
pub trait Engine: Send + Sync + 'static {
    /// Lists the active calls with their legs and any transfer.
    fn calls(&self) -> EngineFuture<'_, Vec<CallSummary>>;

    /// Starts a transfer and returns it in its first status (`trying`) once the INVITE to
    /// the destination is on its way. The outcome is read later with
    /// [`Engine::transfer`].
    ///
    /// # Errors
    ///
    /// A [`TransferRejection`] when the transfer cannot start; the call is left as it was.
    fn start_transfer(
        &self,
        request: TransferRequest,
    ) -> EngineFuture<'_, Result<TransferSummary, TransferRejection>>;

    /// Returns a transfer by id, in progress or finished, or `None` when the id is unknown
    /// or no longer kept.
    fn transfer(&self, id: TransferId) -> EngineFuture<'_, Option<TransferSummary>>;

    /// Reads the dialplan again and puts it in force if it is valid.
    ///
    /// # Errors
    ///
    /// Every problem found, each as `file:line:column: message`; the previous plan stays
    /// in force.
    fn reload(&self) -> EngineFuture<'_, Result<ReloadReport, Vec<String>>>;

    /// Returns the engine's counters.
    fn stats(&self) -> EngineFuture<'_, EngineStats>;

    /// Returns every gateway with its live health and channels. An engine without trunks
    /// returns none.
    fn gateways(&self) -> EngineFuture<'_, Vec<GatewayState>> {
        Box::pin(async { Vec::new() })
    }

    /// Explains what a transfer would do now, with the gateways' live health and free
    /// channels, as `hotline-b2bua route --json` prints it offline.
    ///
    /// # Errors
    ///
    /// A message when the query names no trigger or the engine has no dialplan.
    fn explain(&self, query: RouteQuery) -> EngineFuture<'_, Result<serde_json::Value, String>> {
        let _ = query;
        Box::pin(async { Err("route explanations are not available".to_owned()) })
    }
}

/// One gateway as `GET /v1/gateways` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GatewayState {
    /// `trunk/name`, as in the dialplan.
    pub gateway: String,
    pub trunk: String,
    /// `unknown`, `up` or `down`.
    pub health: String,
    pub channels_in_use: u32,
    /// `None` for no limit.
    pub channel_limit: Option<u32>,
}

/// The query of `GET /v1/route`: exactly one trigger, and the optional context.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteQuery {
    pub keys: Option<String>,
    pub refer_to: Option<String>,
    pub destination: Option<String>,
    pub name: Option<String>,
    pub matter: Option<String>,
    pub caller: Option<String>,
}

/// Why the engine did not start a transfer. Each variant maps to one HTTP status in the
/// API, listed on the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferRejection {
    /// 404: no active call has this A-leg Call-ID.
    #[error("no active call {call}")]
    UnknownCall { call: CallRef },
    /// 422: the dialplan has no destination with this id.
    #[error("unknown destination {destination:?}; known destinations: {}", known.join(", "))]
    UnknownDestination {
        destination: String,
        known: Vec<String>,
    },
    /// 422: the catalogue has no matter with this code.
    #[error("unknown matter code {matter:?}")]
    UnknownMatter { matter: String },
    /// 409: the destination's catalogue entry does not accept this matter. A request with
    /// `force: true` skips this check.
    #[error("{destination} does not accept matter {matter}; it accepts: {scope}")]
    MatterNotAccepted {
        destination: String,
        matter: String,
        /// The matters the destination accepts, in the catalogue's words.
        scope: String,
    },
    /// 409: the call already has a transfer that is not final.
    #[error("call {call} already has transfer {transfer} in progress")]
    InProgress { call: CallRef, transfer: TransferId },
    /// 409: the call is not in a state from which it can be transferred, such as ringing.
    #[error("call {call} cannot be transferred while {}", state.as_str())]
    NotTransferable { call: CallRef, state: CallState },
    /// 503: no gateway of the destination's trunk can take the call now (all down or full,
    /// or none in service at this hour).
    #[error("no gateway can take a transfer to {destination} now: {reason}")]
    NoGateway { destination: String, reason: String },
    /// 503: the engine is shutting down.
    #[error("the engine is shutting down and starts no new transfers")]
    Draining,
    /// 500: the engine failed on its side, for example the call's task has ended.
    #[error("the engine failed to start the transfer: {reason}")]
    Internal { reason: String },
}
