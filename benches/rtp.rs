//! RTP costs: one G.711 packet relayed through a `media::MediaSession` on loopback, from
//! a caller socket to the relay's side A and out of side B to an agent socket, and the
//! RFC 4733 detector's cost per telephone-event packet.
//!
//! The relay runs on a one-worker tokio runtime, as it would on one core. The caller and
//! the agent are blocking sockets on the bench thread. "one in flight" measures the
//! round through the kernel and the relay task for a lone packet (the latency), "16 in
//! flight" sends a burst before reading it back (closer to the cost per packet under
//! load).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotline_b2bua::dtmf::rfc4733::{EventPacket, Rfc4733Detector};
use hotline_b2bua::media::{MediaSession, PortPool, RemoteEndpoint, Side};
use tokio::time::Instant;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Relay ports for the bench, outside the engine's default range and the tests' blocks.
const PORT_MIN: u16 = 33_000;
const PORT_MAX: u16 = 33_063;
/// RTP header plus 20 ms of G.711 at 8 kHz.
const PACKET_LEN: usize = 12 + 160;

fn endpoint() -> UdpSocket {
    let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap_or_else(|error| panic!("bind: {error}"));
    let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
    socket
}

fn remote(socket: &UdpSocket) -> RemoteEndpoint {
    let rtp = socket
        .local_addr()
        .unwrap_or_else(|error| panic!("local address: {error}"));
    RemoteEndpoint {
        rtp,
        rtcp: None,
        rtcp_mux: false,
    }
}

/// Builds a G.711 A-law packet (payload type 8) with the given sequence number.
fn g711(sequence: u16) -> [u8; PACKET_LEN] {
    let mut packet = [0xd5; PACKET_LEN];
    packet[..12].copy_from_slice(&[0x80, 8, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&(u32::from(sequence) * 160).to_be_bytes());
    packet
}

fn relay(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("tokio runtime: {error}"));
    let _entered = runtime.enter();
    let pool = PortPool::new(LOOPBACK, PORT_MIN, PORT_MAX)
        .unwrap_or_else(|error| panic!("relay ports {PORT_MIN}-{PORT_MAX}: {error}"));
    let session =
        MediaSession::new(&pool, None, 1).unwrap_or_else(|error| panic!("media session: {error}"));
    let caller = endpoint();
    let agent = endpoint();
    let _ = session.set_remote(Side::A, 0, remote(&caller));
    let _ = session.set_remote(Side::B, 0, remote(&agent));
    let relay_a: SocketAddr = session
        .local_addr(Side::A, 0)
        .unwrap_or_else(|error| panic!("relay address: {error}"));

    let mut buffer = [0u8; 2048];
    let mut sequence = 0u16;
    let mut relay_one = |count: usize| {
        for _ in 0..count {
            sequence = sequence.wrapping_add(1);
            let _ = caller.send_to(&g711(sequence), relay_a);
        }
        let mut received = 0;
        for _ in 0..count {
            match agent.recv_from(&mut buffer) {
                Ok((length, _)) => received += length,
                Err(error) => panic!("relayed packet {sequence} not received: {error}"),
            }
        }
        received
    };
    // The first packets latch the caller's address.
    relay_one(4);

    let mut group = c.benchmark_group("rtp/relay g711");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one in flight", |b| b.iter(|| relay_one(1)));
    group.throughput(Throughput::Elements(16));
    group.bench_function("16 in flight", |b| b.iter(|| relay_one(16)));
    group.finish();
    drop(session);
}

fn detection(c: &mut Criterion) {
    let mut detector = Rfc4733Detector::new(8000).unwrap_or_else(|_| panic!("8 kHz clock"));
    let mut sequence = 0u16;
    let mut timestamp = 0u32;
    let mut duration = 0u16;

    c.bench_function("rtp/rfc4733 detect per packet", |b| {
        b.iter(|| {
            // A press of 8 packets (a start, 6 continuations, one end), then the next.
            duration = duration.wrapping_add(160);
            let end = duration >= 8 * 160;
            let [high, low] = duration.to_be_bytes();
            let payload = [5, if end { 0x8a } else { 0x0a }, high, low];
            sequence = sequence.wrapping_add(1);
            let packet = EventPacket {
                ssrc: 0x1234_5678,
                sequence,
                timestamp,
                marker: duration == 160,
                payload: &payload,
            };
            let events = detector.receive(black_box(packet), Instant::now());
            if end {
                duration = 0;
                timestamp = timestamp.wrapping_add(8 * 160 + 160);
            }
            events.len()
        })
    });
}

criterion_group!(benches, relay, detection);
criterion_main!(benches);
