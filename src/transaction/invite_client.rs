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
///                     1xx: to TU |  |  |  2xx: to TU, start M            |
///                                v  |  +------------------+              |
///               1xx: to TU +------------+   2xx: to TU,   |              |
///             +------------| Proceeding |-- start M --+   |              |
///             +----------->|            |             |   |              |
///                          +------------+             v   v              |
///              300-699: to TU,  |    |           +----------+  2xx: to TU|
///              BuildAck, start D|    |           | Accepted |---+        |
///              (from Calling    |    |           |          |<--+        |
///              too)             v    |           +----------+            |
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
    /// The INVITE is sent and retransmitted; no response yet.
    Calling,
    /// A provisional response arrived; the TU waits for the final one.
    Proceeding,
    /// A 3xx-6xx response arrived; its retransmissions are answered with the ACK.
    Completed,
    /// A 2xx arrived; further 2xx responses go to the TU, which sends their ACK.
    Accepted,
    /// The transaction is over.
    Terminated,
}

impl InviteClientState {
    /// The state name as RFC 3261 and RFC 6026 write it.
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
    request: Bytes,
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
            request: request.clone(),
            ack: None,
            retransmit,
            one_shot: Some(timer_b),
        };
        (client, vec![Action::Transmit(request)])
    }

    /// The current state.
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
    /// retransmission of the 3xx-6xx response is answered with the same bytes. On a
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

    /// Handles a failure to send the INVITE or the ACK: the TU is told and the transaction
    /// terminates. In the Accepted state the transaction sends nothing, so the failure
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

    /// Returns whether the transaction reached the Terminated state.
    pub fn is_terminated(&self) -> bool {
        self.state == InviteClientState::Terminated
    }

    fn proceed(&mut self) -> Vec<Action> {
        // Figure 5 of §17.1.1 runs no timer in Proceeding: the TU bounds the wait for the
        // final response.
        self.state = InviteClientState::Proceeding;
        self.retransmit = None;
        self.one_shot = None;
        vec![Action::PassToTu]
    }

    fn accept(&mut self, now: Instant) -> Vec<Action> {
        self.state = InviteClientState::Accepted;
        self.retransmit = None;
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
            // §17.1.1.2: timer A doubles without a cap; timer B ends the doubling.
            let interval = timer_a.interval.saturating_mul(2);
            timer_a.restart(now, interval);
            actions.push(Action::Transmit(self.request.clone()));
        }
    }

    fn terminate(&mut self, actions: &mut Vec<Action>) {
        self.state = InviteClientState::Terminated;
        self.retransmit = None;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::transaction::testing::{drive, ms, transmit_times};

    fn invite() -> Bytes {
        Bytes::from_static(b"INVITE sip:agent@10.0.0.2 SIP/2.0\r\n\r\n")
    }

    fn ack() -> Bytes {
        Bytes::from_static(b"ACK sip:agent@10.0.0.2 SIP/2.0\r\n\r\n")
    }

    fn begin(reliable: bool) -> (InviteClient, Instant) {
        let now = Instant::now();
        let (client, actions) = InviteClient::new(invite(), reliable, &Timers::default(), now);
        assert_eq!(actions, vec![Action::Transmit(invite())]);
        assert_eq!(client.state(), InviteClientState::Calling);
        (client, now)
    }

    #[tokio::test(start_paused = true)]
    async fn timer_a_doubles_until_timer_b() {
        let (mut client, start) = begin(false);
        let log = drive(&mut client, start, Duration::from_secs(40)).await;

        let expected: Vec<_> = [500, 1500, 3500, 7500, 15500, 31500]
            .into_iter()
            .map(ms)
            .collect();
        assert_eq!(transmit_times(&log), expected);
        assert_eq!(
            log[log.len() - 2..],
            [
                (ms(32_000), Action::TimedOut(Timer::B)),
                (ms(32_000), Action::Terminated)
            ]
        );
        assert!(client.is_terminated());
        assert_eq!(client.next_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_has_no_timer_a() {
        let (mut client, start) = begin(true);
        assert_eq!(client.next_deadline(), Some(start + ms(32_000)));

        let log = drive(&mut client, start, Duration::from_secs(40)).await;
        assert!(transmit_times(&log).is_empty());
        assert_eq!(
            log,
            vec![
                (ms(32_000), Action::TimedOut(Timer::B)),
                (ms(32_000), Action::Terminated)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn custom_t1_scales_timers_a_and_b() {
        let timers = Timers::new(ms(100), ms(4000), ms(5000)).unwrap();
        let start = Instant::now();
        let (mut client, _) = InviteClient::new(invite(), false, &timers, start);
        let log = drive(&mut client, start, Duration::from_secs(10)).await;

        let expected: Vec<_> = [100, 300, 700, 1500, 3100, 6300]
            .into_iter()
            .map(ms)
            .collect();
        assert_eq!(transmit_times(&log), expected);
        assert_eq!(log.last(), Some(&(ms(6400), Action::Terminated)));
    }

    #[tokio::test(start_paused = true)]
    async fn provisional_stops_timers() {
        let (mut client, start) = begin(false);
        let actions = client.on_response(180, start + ms(100)).unwrap();

        assert_eq!(actions, vec![Action::PassToTu]);
        assert_eq!(client.state(), InviteClientState::Proceeding);
        assert_eq!(client.next_deadline(), None);
        assert_eq!(
            client.on_response(183, start + ms(200)).unwrap(),
            vec![Action::PassToTu]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failure_builds_ack_and_resends_it() {
        let (mut client, start) = begin(false);
        client.on_response(180, start).unwrap();

        let actions = client.on_response(486, start + ms(1000)).unwrap();
        assert_eq!(actions, vec![Action::PassToTu, Action::BuildAck]);
        assert_eq!(client.state(), InviteClientState::Completed);
        assert_eq!(client.set_ack(ack()), vec![Action::Transmit(ack())]);

        let retransmission = client.on_response(486, start + ms(1500)).unwrap();
        assert_eq!(retransmission, vec![Action::Transmit(ack())]);
        assert_eq!(client.on_response(180, start + ms(1600)).unwrap(), vec![]);
        assert_eq!(client.on_response(200, start + ms(1700)).unwrap(), vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn failure_in_calling_stops_timer_a() {
        let (mut client, start) = begin(false);
        let actions = client.on_response(503, start + ms(200)).unwrap();

        assert_eq!(actions, vec![Action::PassToTu, Action::BuildAck]);
        assert_eq!(client.next_deadline(), Some(start + ms(200) + ms(32_000)));
    }

    #[tokio::test(start_paused = true)]
    async fn retransmission_before_ack_asks_again() {
        let (mut client, start) = begin(false);
        client.on_response(404, start).unwrap();

        let actions = client.on_response(404, start + ms(500)).unwrap();
        assert_eq!(actions, vec![Action::BuildAck]);
    }

    #[tokio::test(start_paused = true)]
    async fn timer_d_terminates_completed() {
        let (mut client, start) = begin(false);
        client.on_response(486, start).unwrap();
        client.set_ack(ack());

        let log = drive(&mut client, start, Duration::from_secs(40)).await;
        assert_eq!(log, vec![(ms(32_000), Action::Terminated)]);
        assert!(client.is_terminated());
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_terminates_after_ack() {
        let (mut client, start) = begin(true);
        let actions = client.on_response(486, start + ms(10)).unwrap();

        assert_eq!(actions, vec![Action::PassToTu, Action::BuildAck]);
        assert_eq!(client.next_deadline(), None);
        assert_eq!(
            client.set_ack(ack()),
            vec![Action::Transmit(ack()), Action::Terminated]
        );
        assert!(client.is_terminated());
    }

    #[tokio::test(start_paused = true)]
    async fn accepted_passes_2xx_retransmissions() {
        let (mut client, start) = begin(false);
        client.on_response(180, start).unwrap();

        let actions = client.on_response(200, start + ms(2000)).unwrap();
        assert_eq!(actions, vec![Action::PassToTu]);
        assert_eq!(client.state(), InviteClientState::Accepted);

        for offset in [2500, 3500, 5500] {
            let retransmission = client.on_response(200, start + ms(offset)).unwrap();
            assert_eq!(retransmission, vec![Action::PassToTu], "2xx at {offset} ms");
        }
        assert_eq!(client.on_response(180, start + ms(6000)).unwrap(), vec![]);
        assert_eq!(client.on_response(486, start + ms(6000)).unwrap(), vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn timer_m_ends_accepted() {
        let (mut client, start) = begin(true);
        client.on_response(200, start + ms(1000)).unwrap();
        assert_eq!(client.next_deadline(), Some(start + ms(33_000)));

        let log = drive(&mut client, start, Duration::from_secs(40)).await;
        assert_eq!(log, vec![(ms(33_000), Action::Terminated)]);
        assert_eq!(client.on_response(200, start).unwrap(), vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn transport_error_terminates() {
        for state in ["Calling", "Proceeding", "Completed"] {
            let (mut client, start) = begin(false);
            match state {
                "Proceeding" => drop(client.on_response(100, start)),
                "Completed" => drop(client.on_response(500, start)),
                _ => {}
            }
            assert_eq!(client.state().as_str(), state);
            assert_eq!(
                client.on_transport_error(),
                vec![Action::TransportError, Action::Terminated],
                "transport error in {state}"
            );
            assert!(client.is_terminated());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transport_error_ignored_when_accepted() {
        let (mut client, start) = begin(false);
        client.on_response(200, start).unwrap();

        assert_eq!(client.on_transport_error(), vec![]);
        assert_eq!(client.state(), InviteClientState::Accepted);
    }

    #[tokio::test(start_paused = true)]
    async fn set_ack_outside_completed_is_dropped() {
        let (mut client, _) = begin(false);
        assert_eq!(client.set_ack(ack()), vec![]);
        assert_eq!(client.state(), InviteClientState::Calling);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_status_is_rejected() {
        let (mut client, start) = begin(false);
        for status in [0, 99, 700, u16::MAX] {
            assert_eq!(
                client.on_response(status, start),
                Err(TransactionError::InvalidStatus { status })
            );
        }
        assert_eq!(client.state(), InviteClientState::Calling);
    }

    #[tokio::test(start_paused = true)]
    async fn late_caller_gets_no_burst() {
        let (mut client, start) = begin(false);
        tokio::time::advance(ms(10_000)).await;

        let actions = client.on_timeout(Instant::now());
        assert_eq!(actions, vec![Action::Transmit(invite())]);
        assert_eq!(client.next_deadline(), Some(start + ms(11_000)));
    }
}
