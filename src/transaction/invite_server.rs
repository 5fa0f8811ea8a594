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
    /// The ACK for the 3xx-6xx arrived; its retransmissions are absorbed.
    Confirmed,
    /// A 2xx is sent; the TU retransmits it until its own ACK arrives.
    Accepted,
    /// The transaction is over.
    Terminated,
}

impl InviteServerState {
    /// The state name as RFC 3261 and RFC 6026 write it.
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

/// An INVITE server transaction: sends the TU's responses, answers INVITE retransmissions
/// with the last response, retransmits 3xx-6xx responses until the ACK, and asks for a
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

    /// The current state.
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

    /// Handles a failure to send a response. The TU is told, and the transaction
    /// terminates unless it is Accepted: there the TU owns the 2xx and decides.
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

    /// Returns whether the transaction reached the Terminated state.
    pub fn is_terminated(&self) -> bool {
        self.state == InviteServerState::Terminated
    }

    fn accept(&mut self, now: Instant) {
        self.state = InviteServerState::Accepted;
        self.one_shot = Some(OneShot::after(
            Timer::L,
            now,
            self.timers.transaction_timeout(),
        ));
    }

    fn complete(&mut self, response: Bytes, now: Instant) {
        self.state = InviteServerState::Completed;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::transaction::testing::{drive, ms, transmit_times};

    fn response(status: u16) -> Bytes {
        Bytes::from(format!("SIP/2.0 {status} Reason\r\n\r\n"))
    }

    fn begin(reliable: bool) -> (InviteServer, Instant) {
        let now = Instant::now();
        let server = InviteServer::new(reliable, &Timers::default(), now);
        assert_eq!(server.state(), InviteServerState::Proceeding);
        (server, now)
    }

    fn send(server: &mut InviteServer, status: u16, now: Instant) -> Vec<Action> {
        server.send_response(status, response(status), now).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn trying_requested_after_200ms() {
        let (mut server, start) = begin(false);
        assert_eq!(server.next_deadline(), Some(start + ms(200)));

        let log = drive(&mut server, start, Duration::from_secs(1)).await;
        assert_eq!(log, vec![(ms(200), Action::BuildTrying)]);
        assert_eq!(server.next_deadline(), None);

        let actions = send(&mut server, 100, Instant::now());
        assert_eq!(actions, vec![Action::Transmit(response(100))]);
        assert_eq!(server.on_request(), vec![Action::Transmit(response(100))]);
    }

    #[tokio::test(start_paused = true)]
    async fn provisional_cancels_trying() {
        let (mut server, start) = begin(false);
        send(&mut server, 180, start + ms(150));

        assert_eq!(server.next_deadline(), None);
        let log = drive(&mut server, start, Duration::from_secs(1)).await;
        assert!(log.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn final_response_cancels_trying() {
        for status in [200, 486] {
            let (mut server, start) = begin(true);
            send(&mut server, status, start + ms(50));

            let log = drive(&mut server, start, ms(300)).await;
            assert!(
                !log.contains(&(ms(200), Action::BuildTrying)),
                "status {status}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retransmitted_invite_gets_last_provisional() {
        let (mut server, start) = begin(false);
        assert_eq!(server.on_request(), vec![]);

        send(&mut server, 100, start);
        send(&mut server, 180, start + ms(300));
        assert_eq!(server.on_request(), vec![Action::Transmit(response(180))]);
        assert_eq!(
            send(&mut server, 183, start + ms(400)),
            vec![Action::Transmit(response(183))]
        );
        assert_eq!(server.on_request(), vec![Action::Transmit(response(183))]);
    }

    #[tokio::test(start_paused = true)]
    async fn timer_g_capped_at_t2_until_h() {
        let (mut server, start) = begin(false);
        let actions = send(&mut server, 486, start);
        assert_eq!(actions, vec![Action::Transmit(response(486))]);
        assert_eq!(server.state(), InviteServerState::Completed);

        let log = drive(&mut server, start, Duration::from_secs(40)).await;
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
                (ms(32_000), Action::TimedOut(Timer::H)),
                (ms(32_000), Action::Terminated)
            ]
        );
        assert!(server.is_terminated());
    }

    #[tokio::test(start_paused = true)]
    async fn custom_timers_scale_g_and_h() {
        let timers = Timers::new(ms(250), ms(1000), ms(5000)).unwrap();
        let start = Instant::now();
        let mut server = InviteServer::new(false, &timers, start);
        send(&mut server, 603, start);

        let log = drive(&mut server, start, ms(20_000)).await;
        let expected: Vec<_> = [250, 750, 1750, 2750].into_iter().map(ms).collect();
        assert_eq!(transmit_times(&log)[..4], expected);
        assert_eq!(transmit_times(&log).len(), 17);
        assert_eq!(transmit_times(&log).last(), Some(&ms(15_750)));
        assert_eq!(log.last(), Some(&(ms(16_000), Action::Terminated)));
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_has_no_timer_g() {
        let (mut server, start) = begin(true);
        send(&mut server, 480, start);

        let log = drive(&mut server, start, Duration::from_secs(40)).await;
        assert_eq!(
            log,
            vec![
                (ms(32_000), Action::TimedOut(Timer::H)),
                (ms(32_000), Action::Terminated)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retransmitted_invite_gets_final() {
        let (mut server, start) = begin(false);
        send(&mut server, 180, start);
        send(&mut server, 486, start + ms(100));

        assert_eq!(server.on_request(), vec![Action::Transmit(response(486))]);
    }

    #[tokio::test(start_paused = true)]
    async fn ack_confirms_and_timer_i_terminates() {
        let (mut server, start) = begin(false);
        send(&mut server, 486, start);
        drive(&mut server, start, ms(1500)).await;

        assert_eq!(server.on_ack(start + ms(2000)), vec![]);
        assert_eq!(server.state(), InviteServerState::Confirmed);
        assert_eq!(server.next_deadline(), Some(start + ms(7000)));
        assert_eq!(server.on_ack(start + ms(2500)), vec![]);
        assert_eq!(server.on_request(), vec![]);

        let log = drive(&mut server, start, Duration::from_secs(40)).await;
        assert_eq!(log, vec![(ms(7000), Action::Terminated)]);
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_timer_i_is_zero() {
        let (mut server, start) = begin(true);
        send(&mut server, 486, start);

        assert_eq!(server.on_ack(start + ms(100)), vec![Action::Terminated]);
        assert!(server.is_terminated());
    }

    #[tokio::test(start_paused = true)]
    async fn accepted_absorbs_invite_and_passes_ack() {
        let (mut server, start) = begin(false);
        send(&mut server, 180, start);
        assert_eq!(
            send(&mut server, 200, start + ms(1000)),
            vec![Action::Transmit(response(200))]
        );
        assert_eq!(server.state(), InviteServerState::Accepted);

        assert_eq!(server.on_request(), vec![]);
        assert_eq!(
            send(&mut server, 200, start + ms(1500)),
            vec![Action::Transmit(response(200))]
        );
        assert_eq!(server.on_ack(start + ms(1600)), vec![Action::PassToTu]);
        assert_eq!(server.state(), InviteServerState::Accepted);
    }

    #[tokio::test(start_paused = true)]
    async fn timer_l_ends_accepted() {
        let (mut server, start) = begin(false);
        send(&mut server, 200, start + ms(1000));

        let log = drive(&mut server, start, Duration::from_secs(40)).await;
        assert_eq!(log, vec![(ms(33_000), Action::Terminated)]);
    }

    #[tokio::test(start_paused = true)]
    async fn responses_after_final_are_discarded() {
        let (mut server, start) = begin(false);
        send(&mut server, 200, start);
        for status in [180, 486] {
            assert_eq!(
                server.send_response(status, response(status), start),
                Err(TransactionError::ResponseDiscarded {
                    status,
                    state: "Accepted"
                })
            );
        }

        let (mut server, start) = begin(false);
        send(&mut server, 486, start);
        assert_eq!(
            server.send_response(200, response(200), start),
            Err(TransactionError::ResponseDiscarded {
                status: 200,
                state: "Completed"
            })
        );
        assert_eq!(
            server.send_response(1000, response(200), start),
            Err(TransactionError::InvalidStatus { status: 1000 })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn transport_error_terminates() {
        for final_status in [None, Some(500)] {
            let (mut server, start) = begin(false);
            if let Some(status) = final_status {
                send(&mut server, status, start);
            }
            assert_eq!(
                server.on_transport_error(),
                vec![Action::TransportError, Action::Terminated],
                "after {final_status:?}"
            );
            assert!(server.is_terminated());
            assert_eq!(server.next_deadline(), None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transport_error_keeps_accepted() {
        let (mut server, start) = begin(false);
        send(&mut server, 200, start);

        assert_eq!(server.on_transport_error(), vec![Action::TransportError]);
        assert_eq!(server.state(), InviteServerState::Accepted);
    }
}
