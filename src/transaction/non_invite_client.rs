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
    /// The request is sent and retransmitted; no response yet.
    Trying,
    /// A provisional response arrived; retransmissions continue every T2.
    Proceeding,
    /// A final response arrived; retransmissions of it are absorbed.
    Completed,
    /// The transaction is over.
    Terminated,
}

impl NonInviteClientState {
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

/// A non-INVITE client transaction: sends the request, retransmits it on unreliable
/// transports until a final response, and absorbs response retransmissions
/// (RFC 3261 §17.1.2).
#[derive(Debug)]
pub struct NonInviteClient {
    state: NonInviteClientState,
    reliable: bool,
    timers: Timers,
    request: Bytes,
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
            request: request.clone(),
            retransmit,
            one_shot: Some(timer_f),
        };
        (client, vec![Action::Transmit(request)])
    }

    /// The current state.
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
                // Timer E keeps its pending deadline; it restarts at T2 when it next fires.
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

    /// Handles a failure to send the request: the TU is told and the transaction
    /// terminates. In the Completed state nothing is sent, so the error is ignored.
    pub fn on_transport_error(&mut self) -> Vec<Action> {
        use NonInviteClientState::{Proceeding, Trying};

        let mut actions = Vec::new();
        if matches!(self.state, Trying | Proceeding) {
            actions.push(Action::TransportError);
            self.terminate(&mut actions);
        }
        actions
    }

    /// Returns whether the transaction reached the Terminated state.
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteClientState::Terminated
    }

    fn complete(&mut self, now: Instant) -> Vec<Action> {
        self.state = NonInviteClientState::Completed;
        self.retransmit = None;
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
            actions.push(Action::Transmit(self.request.clone()));
        }
    }

    fn terminate(&mut self, actions: &mut Vec<Action>) {
        self.state = NonInviteClientState::Terminated;
        self.retransmit = None;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::transaction::testing::{drive, ms, transmit_times};

    fn bye() -> Bytes {
        Bytes::from_static(b"BYE sip:agent@10.0.0.2 SIP/2.0\r\n\r\n")
    }

    fn begin(reliable: bool) -> (NonInviteClient, Instant) {
        let now = Instant::now();
        let (client, actions) = NonInviteClient::new(bye(), reliable, &Timers::default(), now);
        assert_eq!(actions, vec![Action::Transmit(bye())]);
        assert_eq!(client.state(), NonInviteClientState::Trying);
        (client, now)
    }

    #[tokio::test(start_paused = true)]
    async fn timer_e_capped_at_t2_until_f() {
        let (mut client, start) = begin(false);
        let log = drive(&mut client, start, Duration::from_secs(40)).await;

        let expected: Vec<_> = [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
        ]
        .into_iter()
        .map(ms)
        .collect();
        assert_eq!(transmit_times(&log), expected);
        assert_eq!(
            log[log.len() - 2..],
            [
                (ms(32_000), Action::TimedOut(Timer::F)),
                (ms(32_000), Action::Terminated)
            ]
        );
        assert!(client.is_terminated());
    }

    #[tokio::test(start_paused = true)]
    async fn timer_e_is_t2_after_provisional() {
        let (mut client, start) = begin(false);
        drive(&mut client, start, ms(1500)).await;

        // The 1xx leaves the pending firing at 3.5 s in place; from then on E is T2.
        assert_eq!(
            client.on_response(100, start + ms(2000)).unwrap(),
            vec![Action::PassToTu]
        );
        assert_eq!(client.state(), NonInviteClientState::Proceeding);

        let log = drive(&mut client, start, ms(16_000)).await;
        let expected: Vec<_> = [3500, 7500, 11500, 15500].into_iter().map(ms).collect();
        assert_eq!(transmit_times(&log), expected);
    }

    #[tokio::test(start_paused = true)]
    async fn custom_t2_caps_timer_e() {
        let timers = Timers::new(ms(500), ms(1000), ms(5000)).unwrap();
        let start = Instant::now();
        let (mut client, _) = NonInviteClient::new(bye(), false, &timers, start);
        let log = drive(&mut client, start, ms(5000)).await;

        let expected: Vec<_> = [500, 1500, 2500, 3500, 4500].into_iter().map(ms).collect();
        assert_eq!(transmit_times(&log), expected);
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_has_no_timer_e() {
        let (mut client, start) = begin(true);
        let log = drive(&mut client, start, Duration::from_secs(40)).await;

        assert_eq!(
            log,
            vec![
                (ms(32_000), Action::TimedOut(Timer::F)),
                (ms(32_000), Action::Terminated)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn final_response_starts_timer_k() {
        let (mut client, start) = begin(false);
        client.on_response(180, start).unwrap();

        let actions = client.on_response(200, start + ms(1000)).unwrap();
        assert_eq!(actions, vec![Action::PassToTu]);
        assert_eq!(client.state(), NonInviteClientState::Completed);
        assert_eq!(client.next_deadline(), Some(start + ms(6000)));

        assert_eq!(client.on_response(200, start + ms(2000)).unwrap(), vec![]);
        assert_eq!(client.on_response(180, start + ms(2000)).unwrap(), vec![]);

        let log = drive(&mut client, start, Duration::from_secs(10)).await;
        assert_eq!(log, vec![(ms(6000), Action::Terminated)]);
    }

    #[tokio::test(start_paused = true)]
    async fn failure_from_trying_completes() {
        let (mut client, start) = begin(false);
        let actions = client.on_response(481, start + ms(100)).unwrap();

        assert_eq!(actions, vec![Action::PassToTu]);
        assert_eq!(client.state(), NonInviteClientState::Completed);
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_timer_k_is_zero() {
        let (mut client, start) = begin(true);
        let actions = client.on_response(200, start + ms(50)).unwrap();

        assert_eq!(actions, vec![Action::PassToTu, Action::Terminated]);
        assert!(client.is_terminated());
        assert_eq!(client.next_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn transport_error_terminates() {
        let (mut client, start) = begin(false);
        client.on_response(100, start).unwrap();

        assert_eq!(
            client.on_transport_error(),
            vec![Action::TransportError, Action::Terminated]
        );
        assert!(client.is_terminated());
        assert_eq!(client.on_transport_error(), vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn transport_error_ignored_when_completed() {
        let (mut client, start) = begin(false);
        client.on_response(200, start).unwrap();

        assert_eq!(client.on_transport_error(), vec![]);
        assert_eq!(client.state(), NonInviteClientState::Completed);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_status_is_rejected() {
        let (mut client, start) = begin(false);
        assert_eq!(
            client.on_response(42, start),
            Err(TransactionError::InvalidStatus { status: 42 })
        );
        assert_eq!(client.state(), NonInviteClientState::Trying);
    }
}
