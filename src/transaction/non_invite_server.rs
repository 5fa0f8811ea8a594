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
    /// The request is with the TU; nothing is sent yet.
    Trying,
    /// A provisional response is sent.
    Proceeding,
    /// A final response is sent and resent for request retransmissions.
    Completed,
    /// The transaction is over.
    Terminated,
}

impl NonInviteServerState {
    /// The state name as RFC 3261 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trying => "Trying",
            Self::Proceeding => "Proceeding",
            Self::Completed => "Completed",
            Self::Terminated => "Terminated",
        }
    }
}

/// A non-INVITE server transaction: sends the TU's responses and answers request
/// retransmissions with the last response (RFC 3261 §17.2.2).
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

    /// The current state.
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

    /// Handles a retransmission of the request: absorbed in Trying, answered with the last
    /// response in Proceeding and Completed.
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

    /// Handles a failure to send a response: the TU is told and the transaction
    /// terminates.
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state != NonInviteServerState::Terminated {
            actions.push(Action::TransportError);
            self.terminate(&mut actions);
        }
        actions
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::transaction::testing::{drive, ms};

    fn response(status: u16) -> Bytes {
        Bytes::from(format!("SIP/2.0 {status} Reason\r\n\r\n"))
    }

    fn begin(reliable: bool) -> (NonInviteServer, Instant) {
        let server = NonInviteServer::new(reliable, &Timers::default());
        assert_eq!(server.state(), NonInviteServerState::Trying);
        assert_eq!(server.next_deadline(), None);
        (server, Instant::now())
    }

    fn send(server: &mut NonInviteServer, status: u16, now: Instant) -> Vec<Action> {
        server.send_response(status, response(status), now).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn trying_absorbs_retransmission() {
        let (mut server, _) = begin(false);
        assert_eq!(server.on_request(), vec![]);
        assert_eq!(server.state(), NonInviteServerState::Trying);
    }

    #[tokio::test(start_paused = true)]
    async fn proceeding_resends_last_provisional() {
        let (mut server, start) = begin(false);
        assert_eq!(
            send(&mut server, 100, start),
            vec![Action::Transmit(response(100))]
        );
        assert_eq!(server.state(), NonInviteServerState::Proceeding);
        send(&mut server, 183, start + ms(100));

        assert_eq!(server.on_request(), vec![Action::Transmit(response(183))]);
    }

    #[tokio::test(start_paused = true)]
    async fn completed_resends_final() {
        let (mut server, start) = begin(false);
        send(&mut server, 100, start);
        assert_eq!(
            send(&mut server, 200, start + ms(100)),
            vec![Action::Transmit(response(200))]
        );
        assert_eq!(server.state(), NonInviteServerState::Completed);

        for _ in 0..3 {
            assert_eq!(server.on_request(), vec![Action::Transmit(response(200))]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn final_from_trying_completes() {
        let (mut server, start) = begin(false);
        send(&mut server, 481, start);

        assert_eq!(server.state(), NonInviteServerState::Completed);
        assert_eq!(server.on_request(), vec![Action::Transmit(response(481))]);
    }

    #[tokio::test(start_paused = true)]
    async fn timer_j_terminates() {
        let (mut server, start) = begin(false);
        send(&mut server, 200, start + ms(500));
        assert_eq!(server.next_deadline(), Some(start + ms(32_500)));

        let log = drive(&mut server, start, Duration::from_secs(40)).await;
        assert_eq!(log, vec![(ms(32_500), Action::Terminated)]);
        assert!(server.is_terminated());
        assert_eq!(server.on_request(), vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn custom_t1_scales_timer_j() {
        let timers = Timers::new(ms(1000), ms(4000), ms(5000)).unwrap();
        let start = Instant::now();
        let mut server = NonInviteServer::new(false, &timers);
        send(&mut server, 200, start);

        let log = drive(&mut server, start, Duration::from_secs(70)).await;
        assert_eq!(log, vec![(ms(64_000), Action::Terminated)]);
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_timer_j_is_zero() {
        let (mut server, start) = begin(true);
        let actions = send(&mut server, 200, start);

        assert_eq!(
            actions,
            vec![Action::Transmit(response(200)), Action::Terminated]
        );
        assert!(server.is_terminated());
        assert_eq!(server.next_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn later_responses_are_discarded() {
        let (mut server, start) = begin(false);
        send(&mut server, 200, start);

        for status in [100, 200, 500] {
            assert_eq!(
                server.send_response(status, response(status), start),
                Err(TransactionError::ResponseDiscarded {
                    status,
                    state: "Completed"
                })
            );
        }
        assert_eq!(server.on_request(), vec![Action::Transmit(response(200))]);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_status_is_rejected() {
        let (mut server, start) = begin(false);
        assert_eq!(
            server.send_response(99, response(99), start),
            Err(TransactionError::InvalidStatus { status: 99 })
        );
        assert_eq!(server.state(), NonInviteServerState::Trying);
    }

    #[tokio::test(start_paused = true)]
    async fn transport_error_terminates() {
        for status in [100, 200] {
            let (mut server, start) = begin(false);
            send(&mut server, status, start);

            assert_eq!(
                server.on_transport_error(),
                vec![Action::TransportError, Action::Terminated],
                "after {status}"
            );
            assert!(server.is_terminated());
            assert_eq!(server.next_deadline(), None);
            assert_eq!(server.on_transport_error(), vec![]);
        }
    }
}
