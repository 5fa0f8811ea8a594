//! RTP load generator for the media runs of `benches/load/run.sh`: G.711 packets every
//! 20 ms on every stream through a relay (the engine or rtpengine), counting what comes
//! back and the one-way delay the relay added.
//!
//! Every caller stream is sent from one "caller" socket and every agent stream from one
//! "agent" socket, so the SDP of every call names the same two addresses and the
//! generator needs no socket per call. Streams are identified by SSRC: caller stream `i`
//! has SSRC `i`, agent stream `j` has `0x8000_0000 | j`. Each packet carries its send time
//! (nanoseconds since the generator started, monotonic clock) in its first 8 payload bytes;
//! sender and receivers share that clock, so the delay is measured on one host without
//! clock sync. Sends are spread evenly over each 20 ms period.
//!
//! It is a bench target (`harness = false`) only so that it builds with the crate's
//! dependencies; `cargo bench` without arguments prints a usage line and exits.
//!
//! ```text
//! rtpgen --caller-port 41000 --agent-port 41002 --a-ports FILE --b-ports FILE --seconds 10
//! ```
//! `--a-ports` lists the relay ports the callers send to (relay side A, one port per line
//! on 127.0.0.1), `--b-ports` the ports the agents send to. The report is one JSON object
//! on standard output.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PTIME: Duration = Duration::from_millis(20);
/// RTP header plus 20 ms of G.711 at 8 kHz (RFC 3551 §4.5.14).
const PACKET_LEN: usize = 12 + 160;
const AGENT_BIT: u32 = 0x8000_0000;
/// Delay histogram resolution: 1 µs buckets up to 1 s; later packets go to the last one.
const HISTOGRAM_BUCKETS: usize = 1_000_000;

struct Options {
    caller_port: u16,
    agent_port: u16,
    a_ports: Vec<u16>,
    b_ports: Vec<u16>,
    seconds: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--bench") || args.is_empty() {
        println!("rtpgen: load generator for benches/load/run.sh; nothing to bench");
        return;
    }
    let options = match parse_options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("rtpgen: {message}");
            std::process::exit(2);
        }
    };
    match run(&options) {
        Ok(report) => println!("{report}"),
        Err(error) => {
            eprintln!("rtpgen: {error}");
            std::process::exit(1);
        }
    }
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        caller_port: 0,
        agent_port: 0,
        a_ports: Vec::new(),
        b_ports: Vec::new(),
        seconds: 10.0,
    };
    for pair in args.chunks(2) {
        let [name, value] = pair else {
            return Err(format!("missing value for {}", pair[0]));
        };
        let invalid = || format!("invalid value {value:?} for {name}");
        match name.as_str() {
            "--caller-port" => options.caller_port = value.parse().map_err(|_| invalid())?,
            "--agent-port" => options.agent_port = value.parse().map_err(|_| invalid())?,
            "--a-ports" => options.a_ports = read_ports(value)?,
            "--b-ports" => options.b_ports = read_ports(value)?,
            "--seconds" => options.seconds = value.parse().map_err(|_| invalid())?,
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if options.a_ports.is_empty() && options.b_ports.is_empty() {
        return Err("no relay ports given (--a-ports, --b-ports)".to_owned());
    }
    Ok(options)
}

fn read_ports(path: &str) -> Result<Vec<u16>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    text.split_whitespace()
        .map(|port| {
            port.parse()
                .map_err(|_| format!("{path}: invalid port {port:?}"))
        })
        .collect()
}

/// Packets and delays seen by one receiving socket.
struct Received {
    packets: u64,
    histogram: Vec<u32>,
    max_us: u64,
}

fn bind(port: u16) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(8 << 20);
    socket.bind(&SocketAddr::new(LOOPBACK, port).into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(socket)
}

fn run(options: &Options) -> std::io::Result<String> {
    let caller = Arc::new(bind(options.caller_port)?);
    let agent = Arc::new(bind(options.agent_port)?);
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));

    let receivers = [Arc::clone(&agent), Arc::clone(&caller)].map(|socket| {
        let stop = Arc::clone(&stop);
        thread::spawn(move || receive(&socket, start, &stop))
    });

    let streams: Vec<(SocketAddr, u32, bool)> = options
        .a_ports
        .iter()
        .enumerate()
        .map(|(i, port)| (SocketAddr::new(LOOPBACK, *port), i as u32, true))
        .chain(options.b_ports.iter().enumerate().map(|(j, port)| {
            (
                SocketAddr::new(LOOPBACK, *port),
                AGENT_BIT | j as u32,
                false,
            )
        }))
        .collect();
    let sent = send(&caller, &agent, &streams, start, options.seconds);

    // Let the relay drain before counting what was lost.
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let [to_agent, to_caller] = receivers.map(|receiver| {
        receiver.join().unwrap_or(Received {
            packets: 0,
            histogram: Vec::new(),
            max_us: 0,
        })
    });
    Ok(report(options, &sent, &to_agent, &to_caller, start))
}

/// Sends every stream's packets for `seconds`, spread over each period. Returns the
/// packets sent by the callers and by the agents.
fn send(
    caller: &UdpSocket,
    agent: &UdpSocket,
    streams: &[(SocketAddr, u32, bool)],
    start: Instant,
    seconds: f64,
) -> [u64; 2] {
    let mut sent = [0u64; 2];
    let mut packet = [0xd5u8; PACKET_LEN];
    packet[0] = 0x80;
    packet[1] = 8;
    let count = streams.len() as u64;
    let period_ns = PTIME.as_nanos() as u64;
    let end_ns = (seconds * 1e9) as u64;
    let mut next = 0u64;
    loop {
        let now_ns = start.elapsed().as_nanos() as u64;
        if now_ns >= end_ns {
            return sent;
        }
        let due = now_ns * count / period_ns + 1;
        while next < due {
            let (target, ssrc, from_caller) = streams[(next % count) as usize];
            let sequence = (next / count) as u16;
            packet[2..4].copy_from_slice(&sequence.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(sequence) * 160).to_be_bytes());
            packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
            let stamp = start.elapsed().as_nanos() as u64;
            packet[12..20].copy_from_slice(&stamp.to_be_bytes());
            let socket = if from_caller { caller } else { agent };
            if socket.send_to(&packet, target).is_ok() {
                sent[usize::from(!from_caller)] += 1;
            }
            next += 1;
        }
        thread::sleep(Duration::from_micros(200));
    }
}

fn receive(socket: &UdpSocket, start: Instant, stop: &AtomicBool) -> Received {
    let mut received = Received {
        packets: 0,
        histogram: vec![0; HISTOGRAM_BUCKETS],
        max_us: 0,
    };
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((length, _)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let now = start.elapsed().as_nanos() as u64;
        let Some(stamp) = buffer.get(12..20).filter(|_| length >= 20) else {
            continue;
        };
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(stamp);
        let delay_us = now.saturating_sub(u64::from_be_bytes(bytes)) / 1_000;
        received.packets += 1;
        received.max_us = received.max_us.max(delay_us);
        let bucket = (delay_us as usize).min(HISTOGRAM_BUCKETS - 1);
        received.histogram[bucket] += 1;
    }
    received
}

fn percentile(histogram: &[u32], total: u64, fraction: f64) -> u64 {
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * fraction).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (bucket, count) in histogram.iter().enumerate() {
        seen += u64::from(*count);
        if seen >= rank {
            return bucket as u64;
        }
    }
    histogram.len() as u64
}

fn report(
    options: &Options,
    sent: &[u64; 2],
    to_agent: &Received,
    to_caller: &Received,
    start: Instant,
) -> String {
    let mut histogram = to_agent.histogram.clone();
    for (total, count) in histogram.iter_mut().zip(&to_caller.histogram) {
        *total += count;
    }
    let received = to_agent.packets + to_caller.packets;
    let sent_total = sent[0] + sent[1];
    format!(
        concat!(
            "{{\"streams\":{},\"seconds\":{:.3},\"sent\":{},\"received\":{},\"lost\":{},",
            "\"sent_by_callers\":{},\"received_by_agents\":{},",
            "\"sent_by_agents\":{},\"received_by_callers\":{},",
            "\"offered_pps\":{:.0},\"delay_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},",
            "\"p999\":{},\"max\":{}}},\"elapsed\":{:.3}}}"
        ),
        options.a_ports.len() + options.b_ports.len(),
        options.seconds,
        sent_total,
        received,
        sent_total.saturating_sub(received),
        sent[0],
        to_agent.packets,
        sent[1],
        to_caller.packets,
        sent_total as f64 / options.seconds,
        percentile(&histogram, received, 0.50),
        percentile(&histogram, received, 0.90),
        percentile(&histogram, received, 0.99),
        percentile(&histogram, received, 0.999),
        to_agent.max_us.max(to_caller.max_us),
        start.elapsed().as_secs_f64(),
    )
}
