//! Tests of the INVITE server transaction on a paused clock.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{drive, ms, transmit_times};
use crate::transaction::{
    Action, InviteServer, InviteServerState, Timer, Timers, TransactionError,
};

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

#[tokio::test(start_paused = true)]
async fn ack_in_proceeding_is_absorbed() {
    let (mut server, start) = begin(false);
    send(&mut server, 180, start);

    assert_eq!(server.on_ack(start + ms(100)), vec![]);
    assert_eq!(server.state(), InviteServerState::Proceeding);
}

#[tokio::test(start_paused = true)]
async fn responses_released_when_unneeded() {
    let (mut answered, start) = begin(false);
    send(&mut answered, 180, start);
    assert_eq!(answered.kept_messages(), 1);
    send(&mut answered, 200, start + ms(100));
    assert_eq!(answered.kept_messages(), 0, "the TU retransmits the 2xx");

    let (mut rejected, start) = begin(false);
    send(&mut rejected, 180, start);
    send(&mut rejected, 486, start + ms(100));
    assert_eq!(
        rejected.kept_messages(),
        1,
        "only the final response is kept"
    );
    rejected.on_ack(start + ms(200));
    assert_eq!(rejected.kept_messages(), 0);
}
