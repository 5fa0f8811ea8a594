use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rtp_rs::{RtpPacketBuilder, Seq};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::packet::{PacketKind, classify};
use super::*;
use crate::mailbox::mailbox;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Creates a pool of `pairs` port pairs starting at `first`. Each test uses its own range below
/// the ephemeral ports so tests running in parallel do not compete for pairs.
fn pool(first: u16, pairs: u16) -> Arc<PortPool> {
    PortPool::new(LOOPBACK, first, first + 2 * pairs - 1).unwrap()
}

async fn endpoint() -> UdpSocket {
    UdpSocket::bind((LOOPBACK, 0)).await.unwrap()
}

fn remote(socket: &UdpSocket) -> RemoteEndpoint {
    RemoteEndpoint {
        rtp: socket.local_addr().unwrap(),
        rtcp: None,
        rtcp_mux: false,
    }
}

fn rtp(payload_type: u8, sequence: u16, marker: bool, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(payload_type)
        .sequence(Seq::from(sequence))
        .timestamp(160 * u32::from(sequence))
        .ssrc(0x1234_5678)
        .marked(marker)
        .payload(payload)
        .build()
        .unwrap()
}

/// Builds an RTCP receiver report with no report blocks (RFC 3550 §6.4.2).
fn rtcp_receiver_report() -> Vec<u8> {
    vec![0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef]
}

async fn receive(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buffer = vec![0; 2048];
    let receive = socket.recv_from(&mut buffer);
    let (length, source) = tokio::time::timeout(Duration::from_secs(5), receive)
        .await
        .expect("no datagram within 5 s")
        .unwrap();
    buffer.truncate(length);
    (buffer, source)
}

/// A one-stream session with a caller on side A and an agent on side B, both known from
/// SDP.
struct Call {
    session: MediaSession,
    caller: UdpSocket,
    agent: UdpSocket,
    relay_a: SocketAddr,
    relay_b: SocketAddr,
}

async fn call(first_port: u16) -> Call {
    call_with_timeout(first_port, None).await
}

async fn call_with_timeout(first_port: u16, inactivity_timeout: Option<Duration>) -> Call {
    let session = MediaSession::new(&pool(first_port, 2), inactivity_timeout, 1).unwrap();
    let caller = endpoint().await;
    let agent = endpoint().await;
    session.set_remote(Side::A, 0, remote(&caller)).unwrap();
    session.set_remote(Side::B, 0, remote(&agent)).unwrap();
    Call {
        relay_a: session.local_addr(Side::A, 0).unwrap(),
        relay_b: session.local_addr(Side::B, 0).unwrap(),
        session,
        caller,
        agent,
    }
}

fn rtcp_port(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip(), address.port() + 1)
}

#[tokio::test]
async fn relay_rtp_both_directions() {
    let call = call(11000).await;

    let packet = rtp(0, 1, true, b"caller audio");
    call.caller.send_to(&packet, call.relay_a).await.unwrap();
    let (received, source) = receive(&call.agent).await;
    assert_eq!(received, packet);
    assert_eq!(source, call.relay_b);

    let packet = rtp(0, 7, false, b"agent audio");
    call.agent.send_to(&packet, call.relay_b).await.unwrap();
    let (received, source) = receive(&call.caller).await;
    assert_eq!(received, packet);
    assert_eq!(source, call.relay_a);

    let a = call.session.counters(Side::A, 0).unwrap();
    assert_eq!(a.packets_received, 1);
    assert_eq!(a.packets_sent, 1);
    assert_eq!(
        a.bytes_received,
        rtp(0, 1, true, b"caller audio").len() as u64
    );
    let b = call.session.counters(Side::B, 0).unwrap();
    assert_eq!(b.packets_received, 1);
    assert_eq!(b.packets_sent, 1);
}

#[tokio::test]
async fn relay_local_ports_are_even_pairs() {
    let call = call(11020).await;
    assert_eq!(call.relay_a.port() % 2, 0);
    assert_eq!(call.relay_b.port() % 2, 0);
    assert_ne!(call.relay_a, call.relay_b);
    assert_eq!(call.relay_a.ip(), LOOPBACK);
}

#[tokio::test]
async fn relay_rtcp_on_next_port() {
    let call = call(11040).await;
    let caller_rtcp = endpoint().await;
    let agent_rtcp = endpoint().await;
    let caller_remote = RemoteEndpoint {
        rtcp: Some(caller_rtcp.local_addr().unwrap()),
        ..remote(&call.caller)
    };
    let agent_remote = RemoteEndpoint {
        rtcp: Some(agent_rtcp.local_addr().unwrap()),
        ..remote(&call.agent)
    };
    call.session.set_remote(Side::A, 0, caller_remote).unwrap();
    call.session.set_remote(Side::B, 0, agent_remote).unwrap();

    let report = rtcp_receiver_report();
    caller_rtcp
        .send_to(&report, rtcp_port(call.relay_a))
        .await
        .unwrap();
    let (received, source) = receive(&agent_rtcp).await;
    assert_eq!(received, report);
    assert_eq!(source, rtcp_port(call.relay_b));

    agent_rtcp
        .send_to(&report, rtcp_port(call.relay_b))
        .await
        .unwrap();
    let (received, source) = receive(&caller_rtcp).await;
    assert_eq!(received, report);
    assert_eq!(source, rtcp_port(call.relay_a));
}

#[tokio::test]
async fn relay_rtcp_mux_to_separate_ports() {
    let call = call(11060).await;
    let agent_rtcp = endpoint().await;
    let caller_remote = RemoteEndpoint {
        rtcp_mux: true,
        ..remote(&call.caller)
    };
    let agent_remote = RemoteEndpoint {
        rtcp: Some(agent_rtcp.local_addr().unwrap()),
        ..remote(&call.agent)
    };
    call.session.set_remote(Side::A, 0, caller_remote).unwrap();
    call.session.set_remote(Side::B, 0, agent_remote).unwrap();

    // The caller multiplexes: its RTCP arrives on the RTP port and leaves from B's RTCP port.
    let report = rtcp_receiver_report();
    call.caller.send_to(&report, call.relay_a).await.unwrap();
    let (received, source) = receive(&agent_rtcp).await;
    assert_eq!(received, report);
    assert_eq!(source, rtcp_port(call.relay_b));

    // The agent's RTCP goes to the caller's RTP address, from A's RTP port.
    agent_rtcp
        .send_to(&report, rtcp_port(call.relay_b))
        .await
        .unwrap();
    let (received, source) = receive(&call.caller).await;
    assert_eq!(received, report);
    assert_eq!(source, call.relay_a);

    // RTP on the multiplexed port still goes to RTP.
    let packet = rtp(8, 1, false, b"audio");
    call.caller.send_to(&packet, call.relay_a).await.unwrap();
    let (received, _) = receive(&call.agent).await;
    assert_eq!(received, packet);
}

#[tokio::test]
async fn relay_rewrites_only_payload_type() {
    let call = call(11080).await;
    let map = PayloadMap::from_pairs(&[(8, 8), (101, 96)]);
    call.session.set_payload_map(0, map).unwrap();

    for marker in [true, false] {
        let packet = rtp(101, 42, marker, &[0x05, 0x8a, 0x03, 0x20]);
        call.caller.send_to(&packet, call.relay_a).await.unwrap();
        let (received, _) = receive(&call.agent).await;

        assert_eq!(received.len(), packet.len());
        assert_eq!(received[1] & 0x7f, 96);
        assert_eq!(received[1] & 0x80, packet[1] & 0x80);
        assert_eq!(received[0], packet[0]);
        assert_eq!(received[2..], packet[2..]);
    }

    let packet = rtp(96, 43, false, &[0x05, 0x0a, 0x00, 0xa0]);
    call.agent.send_to(&packet, call.relay_b).await.unwrap();
    let (received, _) = receive(&call.caller).await;
    assert_eq!(received[1] & 0x7f, 101);
    assert_eq!(received[2..], packet[2..]);

    let packet = rtp(8, 44, false, b"pcma");
    call.caller.send_to(&packet, call.relay_a).await.unwrap();
    let (received, _) = receive(&call.agent).await;
    assert_eq!(received, packet);
}

#[tokio::test]
async fn relay_passes_telephone_event_to_observer() {
    let mut call = call(11100).await;
    let map = PayloadMap::from_pairs(&[(101, 101)]).with_telephone_event(Side::A, 101);
    call.session.set_payload_map(0, map).unwrap();
    let (observer, mut events) = mailbox(8);
    call.session.set_event_observer(Side::A, Some(observer));

    // Digit 5, end bit set, volume 10, duration 800 (RFC 4733 §2.3).
    let event = [0x05, 0x8a, 0x03, 0x20];
    let packet = rtp(101, 9, true, &event);
    call.caller.send_to(&packet, call.relay_a).await.unwrap();
    let (received, _) = receive(&call.agent).await;
    assert_eq!(received, packet);

    let seen = events.recv().await.unwrap();
    assert_eq!(seen.stream, 0);
    assert_eq!(seen.side, Side::A);
    assert_eq!(seen.source, call.caller.local_addr().unwrap());
    assert_eq!(seen.payload_type, 101);
    assert!(seen.marker);
    assert_eq!(seen.sequence, 9);
    assert_eq!(seen.timestamp, 1440);
    assert_eq!(seen.ssrc, 0x1234_5678);
    assert_eq!(&seen.payload[..], event);

    // Audio is not observed.
    call.caller
        .send_to(&rtp(0, 10, false, b"audio"), call.relay_a)
        .await
        .unwrap();
    receive(&call.agent).await;
    assert!(events.try_recv().is_none());
}

#[tokio::test]
async fn relay_latches_to_actual_source() {
    let call = call(11120).await;
    // The caller is behind NAT: it sends from another port than its SDP gave.
    let natted = endpoint().await;

    natted
        .send_to(&rtp(0, 1, false, b"a"), call.relay_a)
        .await
        .unwrap();
    receive(&call.agent).await;

    let packet = rtp(0, 1, false, b"b");
    call.agent.send_to(&packet, call.relay_b).await.unwrap();
    let (received, _) = receive(&natted).await;
    assert_eq!(received, packet);
}

#[tokio::test]
async fn relay_sends_to_sdp_address_before_latching() {
    let call = call(11140).await;
    let packet = rtp(0, 1, false, b"early");
    call.agent.send_to(&packet, call.relay_b).await.unwrap();
    let (received, _) = receive(&call.caller).await;
    assert_eq!(received, packet);
}

#[tokio::test(start_paused = true)]
async fn relay_drops_stray_until_silence() {
    // Loopback datagrams are queued when `send_to` returns, so the paused clock, which
    // moves only when no task or socket is ready, never jumps past one in flight.
    let call = call(11160).await;
    let stray = endpoint().await;

    call.caller
        .send_to(&rtp(0, 1, false, b"first"), call.relay_a)
        .await
        .unwrap();
    receive(&call.agent).await;

    stray
        .send_to(&rtp(0, 1, false, b"stray"), call.relay_a)
        .await
        .unwrap();
    let packet = rtp(0, 2, false, b"second");
    call.caller.send_to(&packet, call.relay_a).await.unwrap();
    let (received, _) = receive(&call.agent).await;
    assert_eq!(received, packet);
    assert_eq!(call.session.counters(Side::A, 0).unwrap().dropped_stray, 1);

    tokio::time::advance(RELATCH_SILENCE).await;
    let packet = rtp(0, 3, false, b"moved");
    stray.send_to(&packet, call.relay_a).await.unwrap();
    let (received, _) = receive(&call.agent).await;
    assert_eq!(received, packet);

    let reply = rtp(0, 3, false, b"reply");
    call.agent.send_to(&reply, call.relay_b).await.unwrap();
    let (received, _) = receive(&stray).await;
    assert_eq!(received, reply);
}

#[tokio::test]
async fn relay_relatches_on_new_sdp_address() {
    let call = call(11180).await;
    let transferred = endpoint().await;

    call.caller
        .send_to(&rtp(0, 1, false, b"old"), call.relay_a)
        .await
        .unwrap();
    receive(&call.agent).await;

    call.session
        .set_remote(Side::A, 0, remote(&transferred))
        .unwrap();
    let packet = rtp(0, 2, false, b"new");
    call.agent.send_to(&packet, call.relay_b).await.unwrap();
    let (received, _) = receive(&transferred).await;
    assert_eq!(received, packet);
}

#[tokio::test]
async fn relay_drops_garbage_and_counts() {
    let call = call(11200).await;

    let stun_binding_request = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    let garbage: [&[u8]; 4] = [b"hello", &stun_binding_request, &[0x80], &[]];
    for datagram in garbage {
        call.caller.send_to(datagram, call.relay_a).await.unwrap();
    }
    // RTP arriving on the RTCP port is not RTCP.
    call.caller
        .send_to(&rtp(0, 1, false, b"x"), rtcp_port(call.relay_a))
        .await
        .unwrap();

    let packet = rtp(0, 2, false, b"valid");
    call.caller.send_to(&packet, call.relay_a).await.unwrap();
    let (received, _) = receive(&call.agent).await;
    assert_eq!(received, packet);

    // The RTCP socket may be served after the RTP socket, so wait for its count.
    let deadline = Instant::now() + Duration::from_secs(5);
    while call.session.counters(Side::A, 0).unwrap().dropped_invalid < 5 {
        assert!(Instant::now() < deadline, "invalid datagrams not counted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let counters = call.session.counters(Side::A, 0).unwrap();
    assert_eq!(counters.dropped_invalid, 5);
    assert_eq!(counters.packets_received, 6);
    assert_eq!(call.session.counters(Side::B, 0).unwrap().packets_sent, 1);
}

#[tokio::test]
async fn relay_counts_unroutable() {
    let session = MediaSession::new(&pool(11220, 2), None, 1).unwrap();
    let caller = endpoint().await;
    let relay_a = session.local_addr(Side::A, 0).unwrap();

    caller
        .send_to(&rtp(0, 1, false, b"no agent yet"), relay_a)
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    while session.counters(Side::A, 0).unwrap().dropped_unroutable == 0 {
        assert!(Instant::now() < deadline, "unroutable datagram not counted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn relay_two_streams_independent() {
    let session = MediaSession::new(&pool(11240, 4), None, 2).unwrap();
    let mut callers = Vec::new();
    let mut agents = Vec::new();
    for stream in 0..2 {
        let caller = endpoint().await;
        let agent = endpoint().await;
        session
            .set_remote(Side::A, stream, remote(&caller))
            .unwrap();
        session.set_remote(Side::B, stream, remote(&agent)).unwrap();
        callers.push(caller);
        agents.push(agent);
    }

    for stream in 0..2 {
        let packet = rtp(96 + stream as u8, 1, false, b"stream");
        let relay_a = session.local_addr(Side::A, stream).unwrap();
        callers[stream].send_to(&packet, relay_a).await.unwrap();
        let (received, _) = receive(&agents[stream]).await;
        assert_eq!(received, packet);
    }
}

#[tokio::test]
async fn session_rejects_unknown_stream() {
    let session = MediaSession::new(&pool(11260, 2), None, 1).unwrap();
    let error = session.local_addr(Side::A, 1).unwrap_err();
    assert!(matches!(
        error,
        MediaError::NoSuchStream {
            stream: 1,
            count: 1
        }
    ));
    assert!(session.set_payload_map(3, PayloadMap::identity()).is_err());
}

#[tokio::test(start_paused = true)]
async fn inactivity_fires_after_timeout() {
    let session = MediaSession::new(&pool(11280, 2), Some(Duration::from_secs(30)), 1).unwrap();
    let start = Instant::now();

    session.inactive().await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn inactivity_reset_by_rtp() {
    let call = call_with_timeout(11300, Some(Duration::from_secs(30))).await;

    tokio::time::advance(Duration::from_secs(20)).await;
    call.caller
        .send_to(&rtp(0, 1, false, b"talk"), call.relay_a)
        .await
        .unwrap();
    receive(&call.agent).await;
    let last_packet = Instant::now();

    // 20 s after the packet the call is still active.
    let early = tokio::time::timeout(Duration::from_secs(20), call.session.inactive()).await;
    assert!(early.is_err());

    call.session.inactive().await;
    assert_eq!(last_packet.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn inactivity_suspended_on_hold() {
    let session = MediaSession::new(&pool(11340, 2), Some(Duration::from_secs(30)), 1).unwrap();
    session.set_hold(true);

    let held = tokio::time::timeout(Duration::from_secs(600), session.inactive()).await;
    assert!(held.is_err());

    session.set_hold(false);
    let resumed = Instant::now();
    session.inactive().await;
    assert_eq!(resumed.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn inactivity_hold_during_wait() {
    let session = MediaSession::new(&pool(11360, 2), Some(Duration::from_secs(30)), 1).unwrap();
    let start = Instant::now();

    let inactive = session.inactive();
    tokio::pin!(inactive);
    let waited = tokio::time::timeout(Duration::from_secs(10), &mut inactive).await;
    assert!(waited.is_err());

    session.set_hold(true);
    let held = tokio::time::timeout(Duration::from_secs(100), &mut inactive).await;
    assert!(held.is_err());

    session.set_hold(false);
    inactive.await;
    assert_eq!(start.elapsed(), Duration::from_secs(140));
}

#[tokio::test(start_paused = true)]
async fn inactivity_disabled() {
    let session = MediaSession::new(&pool(11380, 2), None, 1).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(3600), session.inactive()).await;
    assert!(result.is_err());
}

#[test]
fn inactivity_timeout_from_config() {
    let disabled = crate::config::MediaConfig {
        inactivity_timeout_secs: 0,
        ..Default::default()
    };
    assert_eq!(inactivity_timeout(&disabled), None);
    let enabled = crate::config::MediaConfig {
        inactivity_timeout_secs: 45,
        ..Default::default()
    };
    assert_eq!(inactivity_timeout(&enabled), Some(Duration::from_secs(45)));
}

#[tokio::test]
async fn pool_exhausts_and_releases() {
    let pool = pool(11400, 2);
    assert_eq!(pool.capacity(), 2);

    let first = pool.allocate().unwrap();
    let second = pool.allocate().unwrap();
    assert_eq!(pool.in_use(), 2);
    let error = pool.allocate().unwrap_err();
    assert!(matches!(
        error,
        MediaError::PortsExhausted {
            min: 11400,
            max: 11403,
            ..
        }
    ));

    let freed = first.rtp_addr();
    drop(first);
    assert_eq!(pool.in_use(), 1);
    let third = pool.allocate().unwrap();
    assert_eq!(third.rtp_addr(), freed);
    assert_ne!(third.rtp_addr(), second.rtp_addr());
}

#[tokio::test(start_paused = true)]
async fn pool_reuses_released_pair_after_rest() {
    let pool = pool(11480, 4);
    let first = pool.allocate().unwrap();
    let port = first.rtp_addr().port();
    drop(first);
    assert_eq!((pool.in_use(), pool.parked()), (0, 1));

    // Still resting: the next pair is bound instead.
    let second = pool.allocate().unwrap();
    assert_eq!(second.rtp_addr().port(), port + 2);

    tokio::time::advance(PAIR_REST).await;
    let reused = pool.allocate().unwrap();
    assert_eq!(reused.rtp_addr().port(), port);
    assert_eq!((pool.in_use(), pool.parked()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn reused_pair_discards_datagrams_of_the_ended_call() {
    let pool = pool(11500, 2);
    let pair = pool.allocate().unwrap();
    let (rtp, rtcp) = (
        pair.rtp_addr(),
        SocketAddr::new(LOOPBACK, pair.rtp_addr().port() + 1),
    );
    drop(pair);
    let late = endpoint().await;
    late.send_to(&[0x80, 0, 0, 1], rtp).await.unwrap();
    late.send_to(&[0x80, 200, 0, 1], rtcp).await.unwrap();
    // Let loopback deliver before the pair is taken again.
    std::thread::sleep(Duration::from_millis(20));

    tokio::time::advance(PAIR_REST).await;
    let pair = pool.allocate().unwrap();
    assert_eq!(pair.rtp_addr(), rtp);
    let mut buffer = [0; 16];
    for socket in [pair.rtp(), pair.rtcp()] {
        let error = socket.try_recv_from(&mut buffer).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock);
    }
}

#[tokio::test]
async fn full_pool_cuts_a_rest_short() {
    let pool = pool(11520, 1);
    let pair = pool.allocate().unwrap();
    let port = pair.rtp_addr().port();
    drop(pair);
    assert_eq!(pool.allocate().unwrap().rtp_addr().port(), port);
}

#[tokio::test(start_paused = true)]
async fn bound_pool_reuses_resting_pair() {
    let pool = pool(11560, 4);
    pool.limit_bound(2);
    let first = pool.allocate().unwrap();
    let second = pool.allocate().unwrap();
    let port = first.rtp_addr().port();
    drop(first);
    assert_eq!((pool.in_use(), pool.parked()), (1, 1));

    // A free port is left in the range, but binding it would pass the bound.
    let third = pool.allocate().unwrap();
    assert_eq!(third.rtp_addr().port(), port);
    assert_eq!((pool.in_use(), pool.parked()), (2, 0));
    drop((second, third));
    assert_eq!((pool.in_use(), pool.parked()), (0, 2));
}

#[tokio::test(start_paused = true)]
async fn lowered_bound_closes_released_pairs() {
    let pool = pool(11580, 4);
    let pairs: Vec<_> = (0..3).map(|_| pool.allocate().unwrap()).collect();
    pool.limit_bound(1);
    drop(pairs);
    // One pair leased and none parked would already fill the bound.
    assert_eq!((pool.in_use(), pool.parked()), (0, 1));

    tokio::time::advance(PAIR_REST).await;
    let (first, second) = (pool.allocate().unwrap(), pool.allocate());
    assert_eq!(pool.in_use(), 1);
    assert!(
        matches!(second, Err(MediaError::PortsExhausted { .. })),
        "{second:?}"
    );
    drop(first);
}

#[tokio::test]
async fn prebind_parks_pairs_ready_for_use() {
    let pool = pool(11540, 8);
    // At most a quarter of the range.
    assert_eq!(pool.prebind(PREBOUND).unwrap(), 2);
    assert_eq!((pool.in_use(), pool.parked()), (0, 2));

    let pair = pool.allocate().unwrap();
    assert_eq!(pair.rtp_addr().port(), 11540);
    assert_eq!((pool.in_use(), pool.parked()), (1, 1));
}

#[tokio::test]
async fn pool_skips_ports_in_use() {
    let pool = pool(11420, 3);
    // Another socket is bound to the RTCP port of the first pair.
    let _other = std::net::UdpSocket::bind((LOOPBACK, 11421)).unwrap();

    let pair = pool.allocate().unwrap();
    assert_eq!(pair.rtp_addr().port(), 11422);
}

#[tokio::test]
async fn pool_round_robin() {
    let pool = pool(11440, 3);
    let first = pool.allocate().unwrap();
    let first_port = first.rtp_addr().port();
    drop(first);

    let next = pool.allocate().unwrap();
    assert_eq!(next.rtp_addr().port(), first_port + 2);
}

#[test]
fn pool_rejects_invalid_ranges() {
    for (min, max) in [
        (0, 100),
        (20001, 20001),
        (20000, 20000),
        (30000, 20000),
        (65535, 65535),
    ] {
        let result = PortPool::new(LOOPBACK, min, max);
        assert!(
            matches!(result, Err(MediaError::InvalidPortRange { .. })),
            "{min}-{max}"
        );
    }
}

#[test]
fn pool_rounds_odd_minimum_up() {
    let pool = PortPool::new(LOOPBACK, 20001, 20005).unwrap();
    assert_eq!(pool.capacity(), 2);
    let pool = PortPool::new(LOOPBACK, 65532, 65535).unwrap();
    assert_eq!(pool.capacity(), 2);
}

#[test]
fn pool_needs_runtime() {
    let pool = pool(11460, 1);
    assert!(matches!(pool.allocate(), Err(MediaError::NoRuntime)));
}

#[tokio::test]
async fn session_drop_frees_ports() {
    let pool = pool(11480, 2);
    let session = MediaSession::new(&pool, None, 1).unwrap();
    assert_eq!(pool.in_use(), 2);
    assert!(MediaSession::new(&pool, None, 1).is_err());

    drop(session);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.in_use() > 0 {
        assert!(Instant::now() < deadline, "ports not released");
        tokio::task::yield_now().await;
    }
    assert!(MediaSession::new(&pool, None, 1).is_ok());
}

#[tokio::test]
async fn session_failed_creation_frees_ports() {
    let pool = pool(11500, 3);
    assert!(MediaSession::new(&pool, None, 2).is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.in_use() > 0 {
        assert!(Instant::now() < deadline, "ports not released");
        tokio::task::yield_now().await;
    }
}

#[test]
fn classify_rtp_and_rtcp() {
    assert_eq!(classify(&rtp(0, 1, false, b"x")), Some(PacketKind::Rtp));
    assert_eq!(classify(&rtp(127, 1, true, b"x")), Some(PacketKind::Rtp));
    assert_eq!(classify(&rtcp_receiver_report()), Some(PacketKind::Rtcp));

    let mut sender_report = vec![0x80, 200, 0, 6];
    sender_report.extend_from_slice(&[0; 24]);
    assert_eq!(classify(&sender_report), Some(PacketKind::Rtcp));

    // RTCP whose length field runs past the datagram.
    assert_eq!(classify(&[0x80, 201, 0, 9, 0, 0, 0, 1]), None);
    // Second octet in the RTCP range without the top bit: neither.
    assert_eq!(classify(&[0x80, 72, 0, 1, 0, 0, 0, 1]), None);
    // Version 1.
    assert_eq!(classify(&[0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(classify(&[]), None);
}

#[test]
fn payload_map_translates_both_ways() {
    let map = PayloadMap::from_pairs(&[(101, 96), (8, 8), (200, 1)]);
    assert_eq!(map.translate(Side::A, 101), 96);
    assert_eq!(map.translate(Side::B, 96), 101);
    assert_eq!(map.translate(Side::A, 0), 0);
    assert_eq!(map.translate(Side::B, 1), 1);
    assert_eq!(PayloadMap::default(), PayloadMap::identity());
}

#[test]
fn payload_map_telephone_event_per_side() {
    let map = PayloadMap::identity()
        .with_telephone_event(Side::A, 101)
        .with_telephone_event(Side::B, 96)
        .with_telephone_event(Side::B, 200);
    assert!(map.is_telephone_event(Side::A, 101));
    assert!(!map.is_telephone_event(Side::A, 96));
    assert!(map.is_telephone_event(Side::B, 96));
    assert!(!map.is_telephone_event(Side::B, 200));
}

#[tokio::test]
async fn observer_reaches_added_stream() {
    let mut session = MediaSession::new(&pool(11520, 4), None, 1).unwrap();
    let (observer, mut events) = mailbox(8);
    session.set_event_observer(Side::B, Some(observer));
    let stream = session.add_stream().unwrap();
    assert_eq!(stream, 1);
    assert_eq!(session.stream_count(), 2);

    let map = PayloadMap::identity().with_telephone_event(Side::B, 96);
    session.set_payload_map(stream, map).unwrap();
    let agent = endpoint().await;
    let relay_b = session.local_addr(Side::B, stream).unwrap();
    agent
        .send_to(&rtp(96, 1, true, &[1, 0x80, 0, 160]), relay_b)
        .await
        .unwrap();

    let seen = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.stream, 1);
    assert_eq!(seen.side, Side::B);
}

/// Builds a call whose pool also has room for side C.
async fn call_with_room_for_c(first_port: u16) -> Call {
    let session = MediaSession::new(&pool(first_port, 3), None, 1).unwrap();
    let caller = endpoint().await;
    let agent = endpoint().await;
    session.set_remote(Side::A, 0, remote(&caller)).unwrap();
    session.set_remote(Side::B, 0, remote(&agent)).unwrap();
    let relay_a = session.local_addr(Side::A, 0).unwrap();
    let relay_b = session.local_addr(Side::B, 0).unwrap();
    Call {
        session,
        caller,
        agent,
        relay_a,
        relay_b,
    }
}

#[tokio::test]
async fn side_c_bridges_caller_to_remote() {
    let mut call = call_with_room_for_c(11600).await;
    assert!(call.session.local_addr(Side::C, 0).is_err());
    call.session.add_side_c().unwrap();
    let relay_c = call.session.local_addr(Side::C, 0).unwrap();
    let remote_hotline = endpoint().await;
    call.session
        .set_remote(Side::C, 0, remote(&remote_hotline))
        .unwrap();
    call.session.set_route(Side::A, Some(Side::C));
    call.session.set_route(Side::C, Some(Side::A));
    call.session.set_route(Side::B, None);

    let from_caller = rtp(8, 1, false, &[1; 160]);
    call.caller
        .send_to(&from_caller, call.relay_a)
        .await
        .unwrap();
    let (received, source) = receive(&remote_hotline).await;
    assert_eq!(received, from_caller);
    assert_eq!(source, relay_c);

    let from_remote = rtp(8, 7, false, &[2; 160]);
    remote_hotline.send_to(&from_remote, relay_c).await.unwrap();
    let (received, source) = receive(&call.caller).await;
    assert_eq!(received, from_remote);
    assert_eq!(source, call.relay_a);

    // The agent is cut off: its packets go nowhere.
    call.agent
        .send_to(&rtp(8, 2, false, &[3; 160]), call.relay_b)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let counters = call.session.counters(Side::B, 0).unwrap();
    assert_eq!(counters.dropped_unroutable, 1);
}

#[tokio::test]
async fn side_c_removal_restores_agent() {
    let mut call = call_with_room_for_c(11620).await;
    call.session.add_side_c().unwrap();
    call.session.set_route(Side::A, Some(Side::C));
    call.session.remove_side_c();
    call.session.set_route(Side::A, Some(Side::B));
    assert!(call.session.local_addr(Side::C, 0).is_err());

    let packet = rtp(8, 1, false, &[9; 160]);
    call.caller.send_to(&packet, call.relay_a).await.unwrap();
    let (received, _) = receive(&call.agent).await;
    assert_eq!(received, packet);
}

#[tokio::test]
async fn ringback_reaches_caller() {
    let call = call(11640).await;
    call.session.set_ringback(Some(Ringback {
        law: G711::ALaw,
        payload_type: 8,
    }));
    let (first, source) = receive(&call.caller).await;
    let (second, _) = receive(&call.caller).await;
    assert_eq!(source, call.relay_a);
    assert_eq!(first.len(), 172);
    assert_eq!(first[1] & 0x7f, 8);
    let sequence = |packet: &[u8]| u16::from_be_bytes([packet[2], packet[3]]);
    assert_eq!(sequence(&second), sequence(&first).wrapping_add(1));
    call.session.set_ringback(None);
}

/// An RFC 4733 payload: event, end bit, volume 10, duration.
fn event_payload(event: u8, end: bool, duration: u16) -> Vec<u8> {
    let [high, low] = duration.to_be_bytes();
    vec![event, if end { 0x80 | 10 } else { 10 }, high, low]
}

fn event_packet(sequence: u16, timestamp: u32, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(101)
        .sequence(Seq::from(sequence))
        .timestamp(timestamp)
        .ssrc(0x0bad_cafe)
        .payload(payload)
        .build()
        .unwrap()
}

#[tokio::test]
async fn event_gate_holds_feature_code() {
    let mut call = call(11660).await;
    let (observer, mut observed) = mailbox(16);
    call.session.set_event_observer(Side::B, Some(observer));
    let map = PayloadMap::identity()
        .with_telephone_event(Side::A, 101)
        .with_telephone_event(Side::B, 101);
    call.session.set_payload_map(0, map).unwrap();
    call.session.arm_event_gate(Side::B, 1 << 10);

    // `5` passes, `*` starts the feature code and is held back, `1` too.
    let five = event_packet(1, 1000, &event_payload(5, true, 800));
    call.agent.send_to(&five, call.relay_b).await.unwrap();
    let (received, _) = receive(&call.caller).await;
    assert_eq!(received, five);

    for (sequence, timestamp, event) in [(2, 2000, 10), (3, 3000, 1)] {
        let packet = event_packet(sequence, timestamp, &event_payload(event, true, 800));
        call.agent.send_to(&packet, call.relay_b).await.unwrap();
    }
    // The session releases the gate only after the relay has seen the digits.
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(5), observed.recv())
            .await
            .expect("event not observed")
            .unwrap();
    }
    call.session.release_event_gate(Side::B);
    // An end packet of the held event still arrives after the release and is held too.
    let late_end = event_packet(4, 3000, &event_payload(1, true, 800));
    call.agent.send_to(&late_end, call.relay_b).await.unwrap();
    let next = event_packet(5, 4000, &event_payload(7, true, 800));
    call.agent.send_to(&next, call.relay_b).await.unwrap();

    let (received, _) = receive(&call.caller).await;
    assert_eq!(received, next);
}
