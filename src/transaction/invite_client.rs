//! The INVITE client transaction (RFC 3261 §17.1.1), with the Accepted state that RFC 6026
//! adds so that 2xx retransmissions still reach the TU after the first 2xx.

use bytes::Bytes;
use tokio::time::Instant;

use super::timers::{self, OneShot, Retransmit};
use super::{Action, StatusClass, Timer, Timers, Transaction, TransactionError};

/// States of the INVITE client transaction.
///
/// ```text
///                      new(): send INVITE, start B,
///                      and A on unreliable transports
///                                  |
///   Timer A: resend INVITE,        v         Timer B: TimedOut(B)
///   double A                +-------------+  transport error: TransportError
///           +---------------|   Calling   |------------------------------+
///           +-------------->|             |                              |
///                           +-------------+                              |
///                     1xx: to TU |     |  2xx: to TU, start M            |
///                                v     +------------------+              |
///               1xx: to TU +------------+   2xx: to TU,   |              |
///             +------------| Proceeding |-- start M --+   |              |
///             +----------->|            |             |   |              |
///                          +------------+             v   v              |
///   300-699, also in Calling:   |    |           +----------+  2xx: to TU|
///   to TU, BuildAck, and start  |    |           | Accepted |---+        |
///   D on unreliable transports  |    |           |          |<--+        |
///                               v    |           +----------+            |
///   300-699: resend   +-----------+  | transport       | Timer M         |
///   ACK     +---------| Completed |  | error           |                 |
///           +-------->|           |  |                 |                 |
///                     +-----------+  |                 |                 |
///    Timer D, or transport |         |                 |                 |
///    error, or ACK sent on v         v                 v                 |
///    a reliable transport +-------------------------------+              |
///                         |          Terminated           |<-------------+
///                         +-------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    /// The INVITE is sent and retransmitted, and no response has arrived.
    Calling,
    /// A provisional response arrived, and the TU waits for the final one.
    Proceeding,
    /// A 3xx-6xx response arrived, and each retransmission of it is acknowledged again.
    Completed,
    /// A 2xx arrived, and further 2xx responses go to the TU, which sends their ACK.
    Accepted,
    /// The transaction is over.
    Terminated,
}

impl InviteClientState {
    /// Returns the state name as RFC 3261 and RFC 6026 write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calling => "Calling",
            Self::Proceeding => "Proceeding",
            Self::Completed => "Completed",
            Self::Accepted => "Accepted",
            Self::Terminated => "Terminated",
        }
    }
}

/// An INVITE client transaction: sends the INVITE, retransmits it on unreliable transports,
/// and acknowledges 3xx-6xx responses (RFC 3261 §17.1.1, RFC 6026).
///
/// The ACK for a 2xx is not part of this transaction: the TU builds and sends it for every
/// 2xx it is passed (RFC 3261 §13.2.2.4).
#[derive(Debug)]
pub struct InviteClient {
    state: InviteClientState,
    reliable: bool,
    timers: Timers,
    /// The encoded INVITE, kept while timer A may retransmit it.
    request: Option<Bytes>,
    ack: Option<Bytes>,
    /// Timer A.
    retransmit: Option<Retransmit>,
    /// Timer B, D or M.
    one_shot: Option<OneShot>,
}

impl InviteClient {
    /// Starts the transaction in the Calling state and returns the action sending
    /// `request`, the encoded INVITE. `reliable` is true for TCP, TLS and SCTP, which turns
    /// off timer A and sets timer D to zero.
    pub fn new(
        request: Bytes,
        reliable: bool,
        timers: &Timers,
        now: Instant,
    ) -> (Self, Vec<Action>) {
        let retransmit = (!reliable).then(|| Retransmit::start(Timer::A, now, timers.t1()));
        let timer_b = OneShot::after(Timer::B, now, timers.transaction_timeout());
        let client = Self {
            state: InviteClientState::Calling,
            reliable,
            timers: *timers,
            request: (!reliable).then(|| request.clone()),
            ack: None,
            retransmit,
            one_shot: Some(timer_b),
        };
        (client, vec![Action::Transmit(request)])
    }

    /// Returns the current state.
    pub fn state(&self) -> InviteClientState {
        self.state
    }

    /// Handles a response matched to this transaction and returns what to do with it.
    /// A response that produces no [`Action::PassToTu`] is a retransmission the
    /// transaction absorbed.
    ///
    /// # Errors
    ///
    /// [`TransactionError::InvalidStatus`] when `status` is outside 100-699.
    pub fn on_response(
        &mut self,
        status: u16,
        now: Instant,
    ) -> Result<Vec<Action>, TransactionError> {
        use InviteClientState::{Accepted, Calling, Completed, Proceeding};

        let class = StatusClass::of(status)?;
        let actions = match (self.state, class) {
            (Calling, StatusClass::Provisional) => self.proceed(),
            (Proceeding, StatusClass::Provisional) => vec![Action::PassToTu],
            (Calling | Proceeding, StatusClass::Success) => self.accept(now),
            (Calling | Proceeding, StatusClass::Failure) => self.complete(now),
            (Completed, StatusClass::Failure) => self.resend_ack(),
            (Accepted, StatusClass::Success) => vec![Action::PassToTu],
            _ => Vec::new(),
        };
        Ok(actions)
    }

    /// Stores and sends the ACK that the caller built after [`Action::BuildAck`]. Every
    /// retransmission of the 3xx-6xx response gets the same bytes. On a
    /// reliable transport the transaction terminates once the ACK is sent, because timer
    /// D is zero. Outside the Completed state the ACK is dropped and nothing is returned.
    pub fn set_ack(&mut self, ack: Bytes) -> Vec<Action> {
        if self.state != InviteClientState::Completed {
            return Vec::new();
        }

        self.ack = Some(ack.clone());
        let mut actions = vec![Action::Transmit(ack)];
        if self.reliable {
            self.terminate(&mut actions);
        }
        actions
    }

    /// Returns the earliest timer deadline, or `None` when no timer runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        timers::next_deadline(self.retransmit, self.one_shot)
    }

    /// Fires timers A, B, D and M when due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(timer) = timers::due(self.retransmit, self.one_shot, now) {
            match timer {
                Timer::A => self.retransmit_request(now, &mut actions),
                Timer::B => {
                    actions.push(Action::TimedOut(Timer::B));
                    self.terminate(&mut actions);
                }
                _ => self.terminate(&mut actions),
            }
        }
        actions
    }

    /// Handles a failure to send the INVITE or the ACK: the TU is informed and the
    /// transaction terminates. In the Accepted state the transaction sends nothing, so the failure
    /// belongs to the TU and is ignored here.
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        use InviteClientState::{Calling, Completed, Proceeding};

        let mut actions = Vec::new();
        if matches!(self.state, Calling | Proceeding | Completed) {
            actions.push(Action::TransportError);
            self.terminate(&mut actions);
        }
        actions
    }

    /// Returns how many encoded messages the transaction keeps to send again.
    #[cfg(test)]
    pub(crate) fn kept_messages(&self) -> usize {
        usize::from(self.request.is_some()) + usize::from(self.ack.is_some())
    }

    /// Returns whether the transaction reached the Terminated state.
    pub fn is_terminated(&self) -> bool {
        self.state == InviteClientState::Terminated
    }

    fn proceed(&mut self) -> Vec<Action> {
        // Figure 5 of §17.1.1 runs no timer in Proceeding: the TU bounds the wait for the
        // final response.
        self.state = InviteClientState::Proceeding;
        self.retransmit = None;
        self.request = None;
        self.one_shot = None;
        vec![Action::PassToTu]
    }

    fn accept(&mut self, now: Instant) -> Vec<Action> {
        self.state = InviteClientState::Accepted;
        self.retransmit = None;
        self.request = None;
        self.one_shot = Some(OneShot::after(
            Timer::M,
            now,
            self.timers.transaction_timeout(),
        ));
        vec![Action::PassToTu]
    }

    fn complete(&mut self, now: Instant) -> Vec<Action> {
        self.state = InviteClientState::Completed;
        self.retransmit = None;
        self.request = None;

        // On a reliable transport timer D is zero, so set_ack terminates instead.
        self.one_shot =
            (!self.reliable).then(|| OneShot::after(Timer::D, now, self.timers.timer_d(false)));
        vec![Action::PassToTu, Action::BuildAck]
    }

    fn resend_ack(&self) -> Vec<Action> {
        match &self.ack {
            Some(ack) => vec![Action::Transmit(ack.clone())],
            None => vec![Action::BuildAck],
        }
    }

    fn retransmit_request(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if let Some(timer_a) = &mut self.retransmit {
            // §17.1.1.2: timer A doubles without a cap, and timer B ends the doubling.
            let interval = timer_a.interval.saturating_mul(2);
            timer_a.restart(now, interval);
            actions.extend(self.request.clone().map(Action::Transmit));
        }
    }

    fn terminate(&mut self, actions: &mut Vec<Action>) {
        self.state = InviteClientState::Terminated;
        self.retransmit = None;
        self.request = None;
        self.one_shot = None;
        actions.push(Action::Terminated);
    }
}

impl Transaction for InviteClient {
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
