//! The non-INVITE client transaction (RFC 3261 §17.1.2): BYE, CANCEL, OPTIONS, INFO and
//! every other request except INVITE and ACK.

use bytes::Bytes;
use tokio::time::Instant;

use super::timers::{self, OneShot, Retransmit};
use super::{Action, StatusClass, Timer, Timers, Transaction, TransactionError};

/// States of the non-INVITE client transaction.
///
/// ```text
///                      new(): send request, start F,
///                      and E on unreliable transports
///                                  |
///   Timer E: resend request,       v          Timer F: TimedOut(F)
///   E = min(2E, T2)         +------------+    transport error: TransportError
///           +---------------|   Trying   |-------------------------------+
///           +-------------->|            |                               |
///                           +------------+                               |
///                   1xx: to TU |      | 200-699: to TU, start K          |
///                              v      |                                  |
///   Timer E: resend   +------------+  |    Timer F: TimedOut(F)          |
///   request, E = T2   | Proceeding |--|--- transport error: ------------>|
///           +---------|            |  |    TransportError                |
///           +-------->|            |  |                                  |
///        1xx: to TU   +------------+  |                                  |
///                 200-699: to TU, |   |                                  |
///                 start K         v   v                                  |
///                          +------------+                                |
///                          | Completed  | responses: absorbed            |
///                          +------------+                                |
///                                 | Timer K (immediately on a reliable   |
///                                 v transport)                           |
///                          +------------+                                |
///                          | Terminated |<-------------------------------+
///                          +------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    /// The request is sent and retransmitted, and no response has arrived.
    Trying,
    /// A provisional response arrived, and retransmissions continue every T2.
    Proceeding,
    /// A final response arrived, and retransmissions of it are absorbed.
    Completed,
    /// The transaction is over.
    Terminated,
}

impl NonInviteClientState {
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

/// A non-INVITE client transaction: sends the request, retransmits it on unreliable
/// transports until a final response, and absorbs response retransmissions
/// (RFC 3261 §17.1.2).
#[derive(Debug)]
pub struct NonInviteClient {
    state: NonInviteClientState,
    reliable: bool,
    timers: Timers,
    /// The encoded request, kept while timer E may retransmit it.
    request: Option<Bytes>,
    /// Timer E.
    retransmit: Option<Retransmit>,
    /// Timer F or K.
    one_shot: Option<OneShot>,
}

impl NonInviteClient {
    /// Starts the transaction in the Trying state and returns the action sending `request`,
    /// the encoded request. `reliable` is true for TCP, TLS and SCTP, which turns off timer
    /// E and sets timer K to zero.
    pub fn new(
        request: Bytes,
        reliable: bool,
        timers: &Timers,
        now: Instant,
    ) -> (Self, Vec<Action>) {
        let retransmit = (!reliable).then(|| Retransmit::start(Timer::E, now, timers.t1()));
        let timer_f = OneShot::after(Timer::F, now, timers.transaction_timeout());
        let client = Self {
            state: NonInviteClientState::Trying,
            reliable,
            timers: *timers,
            request: (!reliable).then(|| request.clone()),
            retransmit,
            one_shot: Some(timer_f),
        };
        (client, vec![Action::Transmit(request)])
    }

    /// Returns the current state.
    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    /// Handles a response matched to this transaction. A response that produces no
    /// [`Action::PassToTu`] is a retransmission the transaction absorbed.
    ///
    /// # Errors
    ///
    /// [`TransactionError::InvalidStatus`] when `status` is outside 100-699.
    pub fn on_response(
        &mut self,
        status: u16,
        now: Instant,
    ) -> Result<Vec<Action>, TransactionError> {
        use NonInviteClientState::{Proceeding, Trying};

        let class = StatusClass::of(status)?;
        let actions = match (self.state, class) {
            (Trying | Proceeding, StatusClass::Provisional) => {
                // Timer E keeps its pending deadline and restarts at T2 when it next fires.
                self.state = Proceeding;
                vec![Action::PassToTu]
            }
            (Trying | Proceeding, _) => self.complete(now),
            _ => Vec::new(),
        };
        Ok(actions)
    }

    /// Returns the earliest timer deadline, or `None` when no timer runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        timers::next_deadline(self.retransmit, self.one_shot)
    }

    /// Fires timers E, F and K when due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(timer) = timers::due(self.retransmit, self.one_shot, now) {
            match timer {
                Timer::E => self.retransmit_request(now, &mut actions),
                Timer::F => {
                    actions.push(Action::TimedOut(Timer::F));
                    self.terminate(&mut actions);
                }
                _ => self.terminate(&mut actions),
            }
        }
        actions
    }

    /// Handles a failure to send the request: the TU is informed and the
    /// transaction terminates. In the Completed state nothing is sent, so the error is ignored.
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        use NonInviteClientState::{Proceeding, Trying};

        let mut actions = Vec::new();
        if matches!(self.state, Trying | Proceeding) {
            actions.push(Action::TransportError);
            self.terminate(&mut actions);
        }
        actions
    }

    /// Returns how many encoded messages the transaction keeps to send again.
    #[cfg(test)]
    pub(crate) fn kept_messages(&self) -> usize {
        usize::from(self.request.is_some())
    }

    /// Returns whether the transaction reached the Terminated state.
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteClientState::Terminated
    }

    fn complete(&mut self, now: Instant) -> Vec<Action> {
        self.state = NonInviteClientState::Completed;
        self.retransmit = None;
        self.request = None;
        self.one_shot = None;

        let mut actions = vec![Action::PassToTu];
        let timer_k = self.timers.timer_k(self.reliable);
        if timer_k.is_zero() {
            self.terminate(&mut actions);
        } else {
            self.one_shot = Some(OneShot::after(Timer::K, now, timer_k));
        }
        actions
    }

    fn retransmit_request(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let t2 = self.timers.t2();
        let proceeding = self.state == NonInviteClientState::Proceeding;
        if let Some(timer_e) = &mut self.retransmit {
            // §17.1.2.2: E doubles up to T2 in Trying, and is T2 once a 1xx arrived.
            let interval = if proceeding {
                t2
            } else {
                timer_e.interval.saturating_mul(2).min(t2)
            };
            timer_e.restart(now, interval);
            actions.extend(self.request.clone().map(Action::Transmit));
        }
    }

    fn terminate(&mut self, actions: &mut Vec<Action>) {
        self.state = NonInviteClientState::Terminated;
        self.retransmit = None;
        self.request = None;
        self.one_shot = None;
        actions.push(Action::Terminated);
    }
}

impl Transaction for NonInviteClient {
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
