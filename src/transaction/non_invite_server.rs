//! The non-INVITE server transaction (RFC 3261 §17.2.2): BYE, CANCEL, OPTIONS, INFO and
//! every other received request except INVITE and ACK.

use bytes::Bytes;
use tokio::time::Instant;

use super::timers::{self, OneShot};
use super::{Action, StatusClass, Timer, Timers, Transaction, TransactionError};

/// States of the non-INVITE server transaction.
///
/// ```text
///                         new(): request is with the TU
///                                  |
///                                  v
///   request: absorbed       +------------+
///                           |   Trying   |------------------------+
///                           +------------+                        |
///               1xx from TU: send |    | 200-699 from TU: send,   |
///                                 v    | start J                  |
///   request: resend last 1xx +------------+                       |
///   1xx from TU: send        | Proceeding |-----------------+     |
///                            +------------+                 |     |
///             200-699 from TU: send, |    | transport error:|     |
///             start J                v    v TransportError  |     |
///   request: resend final   +------------+                  |     |
///   200-699 from TU:        | Completed  |---------------+  |     |
///   discarded               +------------+               |  |     |
///          Timer J (immediately on |     transport error: |  |     |
///          a reliable transport)   v     TransportError   v  v     v
///                           +-------------------------------------------+
///                           |                Terminated                 |
///                           +-------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    /// The request is with the TU, and nothing is sent yet.
    Trying,
    /// A provisional response is sent.
    Proceeding,
    /// A final response is sent and resent for request retransmissions.
    Completed,
    /// The transaction is over.
    Terminated,
}

impl NonInviteServerState {
    /// Returns the state name as RFC 3261 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trying => "Trying",
            Self::Proceeding => "Proceeding",
            Self::Completed => "Completed",
            Self::Terminated => "Terminated",
        }
    }
}

/// A non-INVITE server transaction: sends the TU's responses and resends the last
/// response for request retransmissions (RFC 3261 §17.2.2).
///
/// The caller passes the request that created the transaction to the TU itself.
#[derive(Debug)]
pub struct NonInviteServer {
    state: NonInviteServerState,
    reliable: bool,
    timers: Timers,
    last_response: Option<Bytes>,
    /// Timer J.
    timer_j: Option<OneShot>,
}

impl NonInviteServer {
    /// Starts the transaction in the Trying state. `reliable` is true for TCP, TLS and
    /// SCTP, which sets timer J to zero.
    pub fn new(reliable: bool, timers: &Timers) -> Self {
        Self {
            state: NonInviteServerState::Trying,
            reliable,
            timers: *timers,
            last_response: None,
            timer_j: None,
        }
    }

    /// Returns the current state.
    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    /// Sends a response from the TU: `response` is its encoding and `status` its code. A
    /// 1xx moves the transaction to Proceeding, a 200-699 to Completed.
    ///
    /// # Errors
    ///
    /// [`TransactionError::InvalidStatus`] when `status` is outside 100-699, and
    /// [`TransactionError::ResponseDiscarded`] after the final response: §17.2.2 discards
    /// any later response. Nothing is sent then.
    pub fn send_response(
        &mut self,
        status: u16,
        response: Bytes,
        now: Instant,
    ) -> Result<Vec<Action>, TransactionError> {
        use NonInviteServerState::{Proceeding, Trying};

        let class = StatusClass::of(status)?;
        if !matches!(self.state, Trying | Proceeding) {
            return Err(TransactionError::ResponseDiscarded {
                status,
                state: self.state.as_str(),
            });
        }

        self.last_response = Some(response.clone());
        let mut actions = vec![Action::Transmit(response)];
        if class == StatusClass::Provisional {
            self.state = Proceeding;
        } else {
            self.complete(now, &mut actions);
        }
        Ok(actions)
    }

    /// Handles a retransmission of the request: absorbed in Trying, and the last response is
    /// resent in Proceeding and Completed.
    pub fn on_request(&mut self) -> Vec<Action> {
        match (self.state, &self.last_response) {
            (NonInviteServerState::Proceeding | NonInviteServerState::Completed, Some(last)) => {
                vec![Action::Transmit(last.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// Returns the deadline of timer J, or `None` when it is not running.
    pub fn next_deadline(&self) -> Option<Instant> {
        timers::next_deadline(None, self.timer_j)
    }

    /// Fires timer J when due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if timers::due(None, self.timer_j, now).is_some() {
            self.terminate(&mut actions);
        }
        actions
    }

    /// Handles a failure to send a response: the TU is informed and the
    /// transaction terminates.
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state != NonInviteServerState::Terminated {
            actions.push(Action::TransportError);
            self.terminate(&mut actions);
        }
        actions
    }

    /// Returns how many encoded messages the transaction keeps to send again.
    #[cfg(test)]
    pub(crate) fn kept_messages(&self) -> usize {
        usize::from(self.last_response.is_some())
    }

    /// Returns whether the transaction reached the Terminated state.
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteServerState::Terminated
    }

    fn complete(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.state = NonInviteServerState::Completed;

        let timer_j = self.timers.timer_j(self.reliable);
        if timer_j.is_zero() {
            self.terminate(actions);
        } else {
            self.timer_j = Some(OneShot::after(Timer::J, now, timer_j));
        }
    }

    fn terminate(&mut self, actions: &mut Vec<Action>) {
        self.state = NonInviteServerState::Terminated;
        self.timer_j = None;
        self.last_response = None;
        actions.push(Action::Terminated);
    }
}

impl Transaction for NonInviteServer {
    fn next_deadline(&self) -> Option<Instant> {
        self.next_deadline()
    }

    fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        self.on_timeout(now)
    }

    fn on_transport_error(&mut self) -> Vec<Action> {
        self.on_transport_error()
    }

    fn is_terminated(&self) -> bool {
        self.is_terminated()
    }
}
