//! Tests of the non-INVITE server transaction on a paused clock.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{drive, ms};
use crate::transaction::{Action, NonInviteServer, NonInviteServerState, Timers, TransactionError};

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

#[tokio::test(start_paused = true)]
async fn final_released_at_timer_j() {
    let (mut server, start) = begin(false);
    send(&mut server, 200, start);
    assert_eq!(server.kept_messages(), 1);
    server.on_timeout(start + Duration::from_secs(33));
    assert!(server.is_terminated());
    assert_eq!(server.kept_messages(), 0);
}
