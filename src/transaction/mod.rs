//! The four SIP transaction machines of RFC 3261 §17, with the INVITE corrections of
//! RFC 6026, and the keys that match messages to them.
//!
//! The machines own no socket and read no clock. The caller feeds each one events (a
//! response, a retransmitted request, an ACK, a transport error) together with the current
//! [`tokio::time::Instant`], and carries out the [`Action`]s it returns. It then sleeps until
//! [`Transaction::next_deadline`] and calls [`Transaction::on_timeout`]. The machines never
//! build SIP messages either: the caller hands them the encoded bytes to send and retransmit,
//! and status codes as `u16`. When a machine needs a message it cannot build (the ACK for a
//! 3xx-6xx response, a 100 Trying), it returns an action asking for it.
//!
//! - [`InviteClient`]: §17.1.1 with the Accepted state of RFC 6026 (timers A, B, D, M).
//! - [`NonInviteClient`]: §17.1.2 (timers E, F, K).
//! - [`InviteServer`]: §17.2.1 with the Accepted state of RFC 6026 (timers G, H, I, L,
//!   and the 200 ms Trying timer).
//! - [`NonInviteServer`]: §17.2.2 (timer J).
//! - [`Timers`]: T1, T2, T4 and the values derived from them (§17, table 4).
//! - [`TransactionKey`]: the matching rules of §17.1.3 and §17.2.3.

use bytes::Bytes;
use thiserror::Error;
use tokio::time::Instant;

mod invite_client;
mod invite_server;
mod key;
mod non_invite_client;
mod non_invite_server;
mod timers;

pub use invite_client::{InviteClient, InviteClientState};
pub use invite_server::{InviteServer, InviteServerState};
pub use key::{KeyError, MAGIC_COOKIE, Role, TransactionKey};
pub use non_invite_client::{NonInviteClient, NonInviteClientState};
pub use non_invite_server::{NonInviteServer, NonInviteServerState};
pub use timers::{
    DEFAULT_T1, DEFAULT_T2, DEFAULT_T4, MAX_BASE_INTERVAL, MIN_TIMER_D, TRYING_DELAY, Timer,
    Timers, TimersError,
};

/// Work a machine requests from its caller, in the order returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Sends these bytes to the peer: the request, a response, the ACK for a 3xx-6xx
    /// response, or a retransmission of one of them.
    Transmit(Bytes),
    /// Passes the message just handed in up to the TU: a response on a client transaction,
    /// or an ACK that reached an INVITE server transaction in the Accepted state.
    PassToTu,
    /// Requests that the caller build the ACK for the 3xx-6xx response just handed in (§17.1.1.3)
    /// and give it to [`InviteClient::set_ack`], which sends it.
    BuildAck,
    /// Requests that the caller build a 100 (Trying) and send it through
    /// [`InviteServer::send_response`], because the TU sent no response within 200 ms
    /// (§17.2.1).
    BuildTrying,
    /// Tells the TU that the timer fired before the expected message arrived: B or F (no
    /// final response) or H (no ACK for a 3xx-6xx response).
    TimedOut(Timer),
    /// Tells the TU that the transport failed to deliver a message of this transaction.
    TransportError,
    /// The machine reached the Terminated state: the caller removes it from its table.
    Terminated,
}

/// Failures of an event handed to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TransactionError {
    /// The status code is not a SIP response code (RFC 3261 §21: 100-699).
    #[error("invalid status code {status}: expected 100-699")]
    InvalidStatus { status: u16 },
    /// The TU passed a response that the machine discarded because of its state, e.g. a
    /// second final response (§17.2.2 requires the machine to discard those).
    #[error("response {status} discarded: the transaction is in the {state} state")]
    ResponseDiscarded { status: u16, state: &'static str },
}

/// The clock-facing side shared by the four machines, so one driver loop can serve them all.
pub trait Transaction {
    /// Returns the earliest instant at which [`Transaction::on_timeout`] has work, or `None`
    /// when no timer is running.
    fn next_deadline(&self) -> Option<Instant>;

    /// Fires every timer whose deadline is at or before `now`, in deadline order.
    fn on_timeout(&mut self, now: Instant) -> Vec<Action>;

    /// Handles a failure of the transport to send a message of this transaction.
    fn on_transport_error(&mut self) -> Vec<Action>;

    /// Returns whether the machine reached the Terminated state.
    fn is_terminated(&self) -> bool;
}

/// The three classes of SIP response that the machines distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusClass {
    /// 100-199.
    Provisional,
    /// 200-299.
    Success,
    /// 300-699.
    Failure,
}

impl StatusClass {
    fn of(status: u16) -> Result<Self, TransactionError> {
        match status {
            100..=199 => Ok(Self::Provisional),
            200..=299 => Ok(Self::Success),
            300..=699 => Ok(Self::Failure),
            _ => Err(TransactionError::InvalidStatus { status }),
        }
    }
}

#[cfg(test)]
mod tests;
