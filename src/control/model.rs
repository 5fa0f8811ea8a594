//! The values exchanged with the engine and, as JSON, with the API's clients: calls, legs,
//! transfers, reload reports and counters.

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::cdr::{Moment, TriggerKind, rfc3339};

/// A call as the API names it: the Call-ID of the caller's leg (the A leg, RFC 3261
/// §8.1.1.4), compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallRef(pub String);

/// The engine's id of one transfer attempt, unique while the process runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransferId(pub String);

impl CallRef {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TransferId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The phase of a call, as shown to the agents' work platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// The agent's phone is ringing; the caller hears ringback.
    Ringing,
    /// Caller and agent are connected.
    Talking,
    /// A transfer to another hotline is under way.
    Transferring,
    /// The caller is bridged to another hotline and the agent has left.
    Transferred,
    /// BYE or CANCEL is in progress on some leg.
    Ending,
}

impl CallState {
    /// The state's name as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Talking => "talking",
            CallState::Transferring => "transferring",
            CallState::Transferred => "transferred",
            CallState::Ending => "ending",
        }
    }
}

/// The role of a leg in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegRole {
    /// Faces the caller, through the call-centre switch.
    A,
    /// Faces the agent.
    B,
    /// Faces the destination hotline during and after a transfer.
    C,
}

/// Dialog state of one leg, in RFC 3261 §12 terms, with `trying` before any response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegState {
    /// INVITE sent or received, no provisional response with a tag yet.
    Trying,
    /// An early dialog exists (1xx with a To tag).
    Early,
    /// A 2xx was sent or received.
    Confirmed,
    /// BYE, CANCEL or a failure response ended the leg.
    Terminated,
}

/// One leg of an active call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegSummary {
    pub leg: LegRole,
    /// The leg's own Call-ID; B and C legs get ones the engine generated.
    pub call_id: String,
    /// Address of the SIP peer the leg talks to.
    pub peer: SocketAddr,
    pub state: LegState,
}

/// One active call, as `GET /v1/calls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call: CallRef,
    /// The caller's number as received from the switch, such as `+8613800138000`.
    pub caller: String,
    pub state: CallState,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    pub legs: Vec<LegSummary>,
    /// The call's current or last transfer, if it had one.
    pub transfer: Option<TransferSummary>,
}

/// A transfer as the engine receives it from the API, after the request was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub call: CallRef,
    /// Dialplan id of the destination hotline, such as `beijing` or `xiongan`.
    pub destination: String,
    /// Catalogue code of the matter, such as `SB01`.
    pub matter: Option<String>,
    /// The transferring side's work-order number.
    pub ticket: Option<String>,
    /// Short summary for the receiving operator.
    pub note: Option<String>,
    /// Work id of the agent who asked for the transfer.
    pub agent: Option<String>,
    /// Transfer even when the destination's catalogue does not accept the matter.
    pub force: bool,
    /// When the HTTP request arrived: the trigger milestone of the transfer record.
    pub received: Moment,
}

/// The progress of a transfer.
///
/// ```text
/// trying --> ringing --> answered --> bridged
///    |          |            |
///    +----------+------------+--> failed | recalled | cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// INVITE sent to the destination, no ringing yet.
    Trying,
    /// The destination sent 180 or 183.
    Ringing,
    /// The destination sent a 2xx; the bridge is being set up.
    Answered,
    /// The caller talks to the destination hotline.
    Bridged,
    /// The destination rejected or did not answer; the caller stayed with the agent.
    Failed,
    /// The attempt failed after the agent had left, and the caller went back to the agent.
    Recalled,
    /// The agent or the caller ended the attempt.
    Cancelled,
}

impl TransferStatus {
    /// Whether the transfer can still change.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransferStatus::Bridged
                | TransferStatus::Failed
                | TransferStatus::Recalled
                | TransferStatus::Cancelled
        )
    }
}

/// A transfer and its progress, as `GET /v1/transfers/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSummary {
    pub transfer: TransferId,
    pub call: CallRef,
    pub destination: String,
    pub matter: Option<String>,
    pub ticket: Option<String>,
    pub agent: Option<String>,
    pub trigger: TriggerKind,
    pub status: TransferStatus,
    /// The reason the transfer failed or was cancelled, in words.
    pub cause: Option<String>,
    /// Final SIP status from the destination, when one arrived.
    pub sip_status: Option<u16>,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    #[serde(with = "rfc3339::option")]
    pub ringing_at: Option<SystemTime>,
    #[serde(with = "rfc3339::option")]
    pub answered_at: Option<SystemTime>,
    #[serde(with = "rfc3339::option")]
    pub bridged_at: Option<SystemTime>,
    #[serde(with = "rfc3339::option")]
    pub ended_at: Option<SystemTime>,
}

/// The dialplan now in force after a successful reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The version the plan's authors gave it.
    pub version: String,
    /// A digest of the plan's content, so two reloads of the same text compare equal.
    pub fingerprint: String,
    /// Destination hotlines in the plan.
    pub destinations: usize,
    /// Matter categories in the catalogue.
    pub matters: usize,
}

/// The engine's counters for `GET /v1/stats`. Counts are since the process started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub active_calls: u64,
    /// Whether the engine is shutting down and refusing new calls and transfers.
    pub draining: bool,
    /// Transfers not yet in a final status.
    pub transfers_active: u64,
    pub transfers_started: u64,
    pub transfers_bridged: u64,
    pub transfers_failed: u64,
    pub transfers_recalled: u64,
    pub transfers_cancelled: u64,
    /// Version of the dialplan in force, if one is loaded.
    pub plan_version: Option<String>,
    /// Transfer records dropped because the writer's queue was full.
    pub records_dropped: u64,
}
