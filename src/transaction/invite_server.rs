//! The INVITE server transaction (RFC 3261 §17.2.1), with the Accepted state that RFC 6026
//! adds so that INVITE retransmissions after a 2xx are absorbed instead of being taken for
//! new requests.

use bytes::Bytes;
use tokio::time::Instant;

use super::timers::{self, OneShot, Retransmit, TRYING_DELAY};
use super::{Action, StatusClass, Timer, Timers, Transaction, TransactionError};

/// States of the INVITE server transaction.
///
/// ```text
///                     new(): start the Trying timer
///                                  |
///   INVITE: resend last 1xx        v        Trying timer: BuildTrying
///           +---------------+------------+-------------+
///           |               | Proceeding |             | 1xx from TU: send,
///           +-------------->|            |<------------+ stop Trying timer
///                           +------------+
///        300-699 from TU:    |    |     |  2xx from TU: send, start L
///        send, start H,      |    |     +---------------------+
///        and G on unreliable |    | transport error:          |
///        transports          v    | TransportError            v
///   INVITE or Timer G: +-----------+   |             +------------+ INVITE: absorbed
///   resend final,      | Completed |   |             |  Accepted  | ACK: to TU
///   G = min(2G, T2)    |           |   |             |            | 2xx from TU: send
///                      +-----------+   |             +------------+ transport error:
///                 ACK: start I |  |    |                    |       TransportError
///                              v  |    |                    |
///                     +-----------+    |                    |
///   ACK: absorbed     | Confirmed |    |                    |
///                     +-----------+    |                    |
///      Timer I (immediately on |  | Timer H: TimedOut(H),   | Timer L
///      a reliable transport)   |  | transport error:        |
///                              |  | TransportError          |
///                              v  v    v                    v
///                     +----------------------------------------+
///                     |               Terminated               |
///                     +----------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    /// The INVITE is with the TU, which may send provisional responses.
    Proceeding,
    /// A 3xx-6xx response is sent and retransmitted until the ACK arrives.
    Completed,
    /// The ACK for the 3xx-6xx arrived, and its retransmissions are absorbed.
    Confirmed,
    /// A 2xx is sent, and the TU retransmits it until its own ACK arrives.
    Accepted,
    /// The transaction is over.
    Terminated,
}

impl InviteServerState {
    /// Returns the state name as RFC 3261 and RFC 6026 write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proceeding => "Proceeding",
            Self::Completed => "Completed",
            Self::Confirmed => "Confirmed",
            Self::Accepted => "Accepted",
            Self::Terminated => "Terminated",
        }
    }
}

/// An INVITE server transaction: sends the TU's responses, resends the last response for
/// INVITE retransmissions, retransmits 3xx-6xx responses until the ACK, and asks for a
/// 100 (Trying) when the TU is slow (RFC 3261 §17.2.1, RFC 6026).
///
/// The caller passes the INVITE that created the transaction to the TU itself. The 2xx is
/// retransmitted by the TU, not here (RFC 3261 §13.3.1.4): each retransmission goes
/// through [`InviteServer::send_response`] while the transaction is Accepted.
#[derive(Debug)]
pub struct InviteServer {
    state: InviteServerState,
    reliable: bool,
    timers: Timers,
    last_provisional: Option<Bytes>,
    final_response: Option<Bytes>,
    /// Timer G.
    retransmit: Option<Retransmit>,
    /// The Trying timer, or timer H, I or L.
    one_shot: Option<OneShot>,
}

impl InviteServer {
    /// Starts the transaction in the Proceeding state for an INVITE received at `now`.
    /// `reliable` is true for TCP, TLS and SCTP, which turns off timer G and sets timer I
    /// to zero.
    pub fn new(reliable: bool, timers: &Timers, now: Instant) -> Self {
        Self {
            state: InviteServerState::Proceeding,
            reliable,
            timers: *timers,
            last_provisional: None,
            final_response: None,
            retransmit: None,
            one_shot: Some(OneShot::after(Timer::Trying, now, TRYING_DELAY)),
        }
    }

    /// Returns the current state.
    pub fn state(&self) -> InviteServerState {
        self.state
    }

    /// Sends a response from the TU: `response` is its encoding and `status` its code.
    ///
    /// A 1xx is sent and kept for INVITE retransmissions. A 2xx moves the transaction to
    /// Accepted, where further 2xx responses (the TU's retransmissions) are sent too. A
    /// 3xx-6xx moves it to Completed.
    ///
    /// # Errors
    ///
    /// [`TransactionError::InvalidStatus`] when `status` is outside 100-699, and
    /// [`TransactionError::ResponseDiscarded`] when the state allows no such response,
    /// e.g. a 1xx after a final response. Nothing is sent then.
    pub fn send_response(
        &mut self,
        status: u16,
        response: Bytes,
        now: Instant,
    ) -> Result<Vec<Action>, TransactionError> {
        use InviteServerState::{Accepted, Proceeding};

        let class = StatusClass::of(status)?;
        match (self.state, class) {
            (Proceeding, StatusClass::Provisional) => {
                self.one_shot = None;
                self.last_provisional = Some(response.clone());
            }
            (Proceeding, StatusClass::Success) => self.accept(now),
            (Proceeding, StatusClass::Failure) => self.complete(response.clone(), now),
            (Accepted, StatusClass::Success) => {}
            (state, _) => {
                return Err(TransactionError::ResponseDiscarded {
                    status,
                    state: state.as_str(),
                });
            }
        }
        Ok(vec![Action::Transmit(response)])
    }

    /// Handles a retransmission of the INVITE: resends the last provisional response in
    /// Proceeding and the final response in Completed, and absorbs it otherwise.
    pub fn on_request(&mut self) -> Vec<Action> {
        let response = match self.state {
            InviteServerState::Proceeding => self.last_provisional.clone(),
            InviteServerState::Completed => self.final_response.clone(),
            _ => None,
        };
        response.map(Action::Transmit).into_iter().collect()
    }

    /// Handles an ACK matched to this transaction. In Completed it acknowledges the
    /// 3xx-6xx response and moves the transaction to Confirmed. In Accepted it can only be
    /// the ACK for the 2xx from a peer that reused the INVITE branch, and RFC 6026 passes
    /// it to the TU. It is absorbed in every other state.
    pub fn on_ack(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            InviteServerState::Completed => self.confirm(now),
            InviteServerState::Accepted => vec![Action::PassToTu],
            _ => Vec::new(),
        }
    }

    /// Returns the earliest timer deadline, or `None` when no timer runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        timers::next_deadline(self.retransmit, self.one_shot)
    }

    /// Fires the Trying timer and timers G, H, I and L when due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(timer) = timers::due(self.retransmit, self.one_shot, now) {
            match timer {
                Timer::Trying => {
                    self.one_shot = None;
                    actions.push(Action::BuildTrying);
                }
                Timer::G => self.retransmit_final(now, &mut actions),
                Timer::H => {
                    actions.push(Action::TimedOut(Timer::H));
                    self.terminate(&mut actions);
                }
                _ => self.terminate(&mut actions),
            }
        }
        actions
    }

    /// Handles a failure to send a response. The TU is informed, and the transaction
    /// terminates unless it is Accepted, because there the TU owns the 2xx and decides.
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.state {
            InviteServerState::Proceeding | InviteServerState::Completed => {
                actions.push(Action::TransportError);
                self.terminate(&mut actions);
            }
            InviteServerState::Accepted => actions.push(Action::TransportError),
            InviteServerState::Confirmed | InviteServerState::Terminated => {}
        }
        actions
    }

    /// Returns how many encoded messages the transaction keeps to send again.
    #[cfg(test)]
    pub(crate) fn kept_messages(&self) -> usize {
        usize::from(self.last_provisional.is_some()) + usize::from(self.final_response.is_some())
    }

    /// Returns whether the transaction reached the Terminated state.
    pub fn is_terminated(&self) -> bool {
        self.state == InviteServerState::Terminated
    }

    fn accept(&mut self, now: Instant) {
        self.state = InviteServerState::Accepted;
        self.last_provisional = None;
        self.one_shot = Some(OneShot::after(
            Timer::L,
            now,
            self.timers.transaction_timeout(),
        ));
    }

    fn complete(&mut self, response: Bytes, now: Instant) {
        self.state = InviteServerState::Completed;
        self.last_provisional = None;
        self.final_response = Some(response);
        self.retransmit =
            (!self.reliable).then(|| Retransmit::start(Timer::G, now, self.timers.t1()));
        self.one_shot = Some(OneShot::after(
            Timer::H,
            now,
            self.timers.transaction_timeout(),
        ));
    }

    fn confirm(&mut self, now: Instant) -> Vec<Action> {
        self.state = InviteServerState::Confirmed;
        self.retransmit = None;
        self.one_shot = None;
        // Confirmed absorbs ACK retransmissions and never sends the final response again.
        self.final_response = None;

        let mut actions = Vec::new();
        let timer_i = self.timers.timer_i(self.reliable);
        if timer_i.is_zero() {
            self.terminate(&mut actions);
        } else {
            self.one_shot = Some(OneShot::after(Timer::I, now, timer_i));
        }
        actions
    }

    fn retransmit_final(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let t2 = self.timers.t2();
        if let Some(timer_g) = &mut self.retransmit {
            let interval = timer_g.interval.saturating_mul(2).min(t2);
            timer_g.restart(now, interval);
        }
        if let Some(response) = &self.final_response {
            actions.push(Action::Transmit(response.clone()));
        }
    }

    fn terminate(&mut self, actions: &mut Vec<Action>) {
        self.state = InviteServerState::Terminated;
        self.retransmit = None;
        self.one_shot = None;
        self.last_provisional = None;
        self.final_response = None;
        actions.push(Action::Terminated);
    }
}

impl Transaction for InviteServer {
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
