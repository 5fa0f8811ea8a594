//! Tests of the INVITE client transaction on a paused clock.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{drive, ms, transmit_times};
use crate::transaction::{
    Action, InviteClient, InviteClientState, Timer, Timers, TransactionError,
};

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

#[tokio::test(start_paused = true)]
async fn request_released_after_response() {
    let (mut provisional, start) = begin(false);
    assert_eq!(provisional.kept_messages(), 1);
    provisional.on_response(180, start + ms(100)).unwrap();
    assert_eq!(provisional.kept_messages(), 0);

    let (mut answered, start) = begin(false);
    answered.on_response(200, start + ms(100)).unwrap();
    assert_eq!(answered.kept_messages(), 0);

    let (mut rejected, start) = begin(false);
    rejected.on_response(486, start + ms(100)).unwrap();
    assert_eq!(rejected.kept_messages(), 0);
    rejected.set_ack(ack());
    assert_eq!(
        rejected.kept_messages(),
        1,
        "the ACK stays for 486 retransmissions"
    );
}

#[tokio::test(start_paused = true)]
async fn reliable_keeps_no_request() {
    let (client, _) = begin(true);
    assert_eq!(client.kept_messages(), 0);
}
