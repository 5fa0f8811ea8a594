//! Tests of the non-INVITE client transaction on a paused clock.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{drive, ms, transmit_times};
use crate::transaction::{
    Action, NonInviteClient, NonInviteClientState, Timer, Timers, TransactionError,
};

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

    // The 1xx leaves the pending firing at 3.5 s in place. From then on E is T2.
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

#[tokio::test(start_paused = true)]
async fn request_released_on_final() {
    let (mut client, start) = begin(false);
    client.on_response(100, start + ms(100)).unwrap();
    assert_eq!(
        client.kept_messages(),
        1,
        "timer E still retransmits in Proceeding"
    );
    client.on_response(200, start + ms(200)).unwrap();
    assert_eq!(client.kept_messages(), 0);
}
