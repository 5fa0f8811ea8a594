//! The outside view of calls and transfers: the orders the control API and the
//! triggers give, and the status snapshots the call tasks publish.

use std::time::SystemTime;

pub use crate::cdr::TriggerKind;
use crate::cdr::{Milestones, Moment};

use super::SessionId;

/// A request to transfer a call.
#[derive(Debug, Clone)]
pub struct TransferOrder {
    pub kind: TriggerKind,
    /// Destination id from the dialplan.
    pub destination: String,
    pub matter: Option<String>,
    pub ticket: Option<String>,
    pub note: Option<String>,
    pub agent: Option<String>,
    /// Transfer even when the destination does not accept the matter.
    pub force: bool,
    /// When the trigger reached the engine.
    pub received: Moment,
}

impl TransferOrder {
    /// An order with only a trigger and a destination, received now.
    pub fn to(kind: TriggerKind, destination: &str) -> TransferOrder {
        TransferOrder {
            kind,
            destination: destination.to_owned(),
            matter: None,
            ticket: None,
            note: None,
            agent: None,
            force: false,
            received: Moment::now(),
        }
    }
}

/// The state of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    /// The INVITE went to the remote hotline; no ringing yet.
    Trying,
    Ringing,
    /// The remote answered; media is being re-pointed.
    Answered,
    /// The caller talks to the remote hotline.
    Bridged,
    /// The remote did not take the call; the caller is back with the agent who was still
    /// on the line, or the agent who had left is being called back.
    Failed,
    /// The remote did not take the call after the agent had left, and the agent took the
    /// call back.
    Recalled,
    /// The caller hung up or the engine shut down during the transfer.
    Cancelled,
}

impl TransferState {
    /// Whether the transfer has ended, one way or another.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransferState::Bridged
                | TransferState::Failed
                | TransferState::Recalled
                | TransferState::Cancelled
        )
    }
}

/// A snapshot of one transfer.
#[derive(Debug, Clone)]
pub struct TransferStatus {
    pub id: u64,
    pub session: SessionId,
    /// The A-leg Call-ID of the call being transferred.
    pub call_id: String,
    pub kind: TriggerKind,
    pub destination: String,
    pub matter: Option<String>,
    pub ticket: Option<String>,
    pub agent: Option<String>,
    pub state: TransferState,
    pub gateway: Option<String>,
    pub sip_status: Option<u16>,
    pub cause: Option<String>,
    /// Wall-clock and monotonic times of each step, for records and latency.
    pub milestones: Milestones,
    pub ringing_at: Option<SystemTime>,
}

impl TransferStatus {
    pub fn new(id: u64, session: SessionId, call_id: &str, order: &TransferOrder) -> Self {
        TransferStatus {
            id,
            session,
            call_id: call_id.to_owned(),
            kind: order.kind,
            destination: order.destination.clone(),
            matter: order.matter.clone(),
            ticket: order.ticket.clone(),
            agent: order.agent.clone(),
            state: TransferState::Trying,
            gateway: None,
            sip_status: None,
            cause: None,
            milestones: Milestones::new(order.received),
            ringing_at: None,
        }
    }
}

/// The state of a call, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    Ringing,
    Talking,
    Transferring,
    Transferred,
    Ending,
}

/// A snapshot of one call for listings.
#[derive(Debug, Clone)]
pub struct CallSummary {
    pub session: SessionId,
    pub call_id: String,
    pub caller: String,
    pub phase: CallPhase,
    pub started_at: SystemTime,
    pub legs: Vec<LegSummary>,
    pub transfer: Option<u64>,
}

/// One leg of a call, for listings.
#[derive(Debug, Clone)]
pub struct LegSummary {
    /// `a`, `b` or `c`.
    pub leg: &'static str,
    pub call_id: String,
    pub peer: std::net::SocketAddr,
    pub up: bool,
}
