//! The in-process part of a one-key transfer: the agent's RFC 4733 presses of `*1` reach
//! the detector, the collector matches them against the shipped dialplans, the router
//! picks the Beijing gateway, and the INVITE toward the remote hotline is built and
//! encoded the way the call task builds it. Sockets, the transaction machine and the
//! media re-offer are left out; the load harness measures the whole path. The INFO path
//! is timed twice: back to back, and after the thread has slept, as it has in the engine.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use hotline_b2bua::dialog::Dialog;
use hotline_b2bua::dialplan::Plan;
use hotline_b2bua::dtmf::collector::{CollectorConfig, KeyAction, KeyCollector, KeyMatch};
use hotline_b2bua::dtmf::rfc4733::{DetectorEvent, EventPacket, Rfc4733Detector};
use hotline_b2bua::routing::{Origin, PlanRouter, gateway_specs};
use hotline_b2bua::session::routing::{KeyMatch as RouteMatch, RouteRequest, Routed, Router};
use hotline_b2bua::sip::{Branch, CallId, Headers, Method};
use hotline_b2bua::trunk::TrunkRegistry;
use tokio::time::Instant;

/// The offer the relay would put in the INVITE to the remote hotline.
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hotline-b2bua\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20004 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
a=ptime:20\r\na=sendrecv\r\n";
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, REFER";

fn router() -> PlanRouter {
    let dialplans = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dialplans");
    let plan = match Plan::load(&[dialplans]) {
        Ok(plan) => Arc::new(plan),
        Err(problems) => panic!("shipped dialplans do not load: {problems:?}"),
    };
    let registry = match TrunkRegistry::from_specs(gateway_specs(&plan)) {
        Ok(registry) => Arc::new(registry),
        Err(error) => panic!("shipped gateways are invalid: {error}"),
    };
    let origin = Origin {
        number: "0311-12345".to_owned(),
        hop_limit: 4,
    };
    PlanRouter::new(plan, registry, origin)
}

/// The RFC 4733 packets of one press as a phone sends them: a start packet, one
/// continuation and three end packets that share a sequence number.
struct Press {
    packets: [[u8; 4]; 5],
    sequences: [u16; 5],
}

fn press(event: u8) -> Press {
    let block = |end: bool, duration: u16| {
        let [high, low] = duration.to_be_bytes();
        [event, if end { 0x80 | 10 } else { 10 }, high, low]
    };
    Press {
        packets: [
            block(false, 160),
            block(false, 320),
            block(true, 800),
            block(true, 800),
            block(true, 800),
        ],
        sequences: [0, 1, 2, 2, 2],
    }
}

/// Feeds one press to the detector with the timestamp and sequence base given, and
/// returns the key of its start.
fn detect(detector: &mut Rfc4733Detector, press: &Press, timestamp: u32, sequence: u16) -> char {
    let now = Instant::now();
    let mut key = '\0';
    for (payload, offset) in press.packets.iter().zip(press.sequences) {
        let packet = EventPacket {
            ssrc: 0x1234_5678,
            sequence: sequence.wrapping_add(offset),
            timestamp,
            marker: offset == 0,
            payload,
        };
        for event in detector.receive(packet, now) {
            if let DetectorEvent::DigitStart(start) = event {
                key = start.key;
            }
        }
    }
    key
}

fn route_request(destination: &str) -> RouteRequest {
    RouteRequest {
        destination: destination.to_owned(),
        matter: Some("transport".to_owned()),
        ticket: None,
        agent: Some("8001".to_owned()),
        caller: "13800000000".to_owned(),
        caller_display: None,
        history: Vec::new(),
        force: false,
        at: SystemTime::now(),
    }
}

/// Builds and encodes the INVITE on a new leg C to the first gateway, as the call task
/// does when a transfer starts.
fn transfer_invite(routed: &Routed) -> usize {
    let Some(gateway) = routed.gateways.first() else {
        return 0;
    };
    let mut leg = Dialog::new_uac(
        CallId::generate("127.0.0.1:5060"),
        routed.from.clone(),
        format!("<{}>", gateway.request_uri),
        gateway.request_uri.clone(),
    );
    let mut invite = leg.request(Method::Invite, None);
    for (name, value) in &routed.headers {
        invite.push_header(name.clone(), value.as_str());
    }
    invite.push_header("Allow", ALLOW);
    invite.push_header("User-Agent", "hotline-b2bua/0.1.0");
    invite.set_body(OFFER.into(), Some("application/sdp"));
    let via = format!(
        "SIP/2.0/UDP 127.0.0.1:5060;branch={};rport",
        Branch::generate()
    );
    invite.prepend_header("Via", via);
    invite.set_header("Contact", "<sip:127.0.0.1:5060>");
    invite.encode().len()
}

fn match_keys(router: &PlanRouter, keys: &str) -> KeyMatch<String> {
    match router.match_keys(keys) {
        RouteMatch::Complete(destination) => KeyMatch::Complete(destination),
        RouteMatch::Partial => KeyMatch::Partial,
        RouteMatch::NoMatch => KeyMatch::NoMatch,
    }
}

fn transfer(c: &mut Criterion) {
    let router = router();
    if let Err(refusal) = router.route(&route_request("beijing")) {
        panic!("the shipped dialplans refuse a transfer to beijing: {refusal}");
    }
    let star = press(10);
    let one = press(1);
    let collector_config = CollectorConfig {
        prefixes: vec!['*'],
        inter_digit_timeout: Duration::from_secs(3),
        ..CollectorConfig::default()
    };

    c.bench_function("transfer/route beijing", |b| {
        b.iter(|| router.route(black_box(&route_request("beijing"))).is_ok())
    });

    c.bench_function("transfer/rfc4733 *1 to invite bytes", |b| {
        let mut detector = Rfc4733Detector::new(8000).unwrap_or_else(|_| panic!("8 kHz clock"));
        let mut collector = KeyCollector::new(collector_config.clone());
        let mut timestamp = 0u32;
        let mut sequence = 0u16;
        b.iter(|| {
            let mut bytes = 0;
            for press in [&star, &one] {
                let key = detect(&mut detector, press, timestamp, sequence);
                timestamp = timestamp.wrapping_add(1600);
                sequence = sequence.wrapping_add(3);
                let collected =
                    collector.push(key, Instant::now(), |keys| match_keys(&router, keys));
                if let KeyAction::Fire { target, .. } = collected.action {
                    let Ok(routed) = router.route(&route_request(&target)) else {
                        return 0;
                    };
                    bytes = transfer_invite(&routed);
                }
            }
            bytes
        })
    });

    c.bench_function("transfer/info *1 to invite bytes", |b| {
        let mut collector = KeyCollector::new(collector_config.clone());
        b.iter(|| info_transfer(&router, &mut collector))
    });

    // The same path when each transfer comes to a thread that has slept in between, as
    // in the engine, where a transfer's trigger finds the caches and branch predictors
    // holding other work. Criterion cannot leave time between iterations, so each one
    // sleeps first and only the path is timed.
    let mut group = c.benchmark_group("transfer after 100 ms idle");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(5));
    group.bench_function("info *1 to invite bytes", |b| {
        let mut collector = KeyCollector::new(collector_config.clone());
        b.iter_custom(|iters| {
            let mut path = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(IDLE);
                let start = std::time::Instant::now();
                black_box(info_transfer(&router, &mut collector));
                path += start.elapsed();
            }
            path
        })
    });
    group.finish();
}

/// Sleep before each timed run of the idle group.
const IDLE: Duration = Duration::from_millis(100);

/// Runs the agent's `*` and `1` as INFO bodies through the collector, the router and the
/// INVITE's encoding, and returns the INVITE's length.
fn info_transfer(router: &PlanRouter, collector: &mut KeyCollector) -> usize {
    let mut bytes = 0;
    for body in [
        "Signal=*\r\nDuration=160\r\n",
        "Signal=1\r\nDuration=160\r\n",
    ] {
        let Ok(digit) = hotline_b2bua::dtmf::info::parse_dtmf_relay(black_box(body)) else {
            return 0;
        };
        let collected = collector.push(digit.key, Instant::now(), |keys| match_keys(router, keys));
        if let KeyAction::Fire { target, .. } = collected.action {
            let Ok(routed) = router.route(&route_request(&target)) else {
                return 0;
            };
            bytes = transfer_invite(&routed);
        }
    }
    bytes
}

criterion_group!(benches, transfer);
criterion_main!(benches);
