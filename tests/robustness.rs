//! Input the engine must survive without answering: random bytes over UDP and TCP, a
//! response that belongs to no call, a request whose start line is broken. And a
//! configuration mistake, an agent target that points back at the engine, which must end
//! in a final error for the caller instead of an endless loop.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{EngineSettings, Harness, caller_rejected, drain_udp, scenario};

/// Bytes from a fixed xorshift sequence, so a failure can be replayed.
fn noise(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Asserts that `socket` receives nothing for half a second, naming what was sent.
fn assert_no_answer(socket: &UdpSocket, sent: &str) {
    let datagrams = drain_udp(socket, Duration::from_millis(500));
    if let Some((first, from)) = datagrams.first() {
        panic!(
            "the engine answered {sent} with {} datagrams, the first from {from}:\n{}",
            datagrams.len(),
            String::from_utf8_lossy(first)
        );
    }
}

/// Three kinds of datagrams that no one can act on, from one socket on the caller port: random
/// bytes, a 200 OK whose Call-ID and branch belong to no call, and an INVITE whose start
/// line lacks the SIP version but whose Via would allow an answer. The engine must drop
/// each without a response and without forwarding anything to the agent. Random bytes over
/// TCP must not bring it down either. Afterwards a good call must work.
#[test]
fn garbage_and_stray_responses_are_dropped() {
    let h = Harness::start(
        "garbage_and_stray_responses_are_dropped",
        EngineSettings::default(),
    );
    let engine = ("127.0.0.1", h.ports.engine());
    let agent = UdpSocket::bind(("127.0.0.1", h.ports.agent())).expect("bind the agent port");
    let peer = UdpSocket::bind(("127.0.0.1", h.ports.caller())).expect("bind the caller port");
    let port = h.ports.caller();

    for seed in [1, 2, 3] {
        peer.send_to(&noise(700, seed), engine)
            .expect("send random bytes");
    }
    assert_no_answer(&peer, "random bytes");

    let stray_response = format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{engine_port};branch=z9hG4bK-no-such-transaction\r\n\
         From: <sip:12345@127.0.0.1:{engine_port}>;tag=stray-from\r\n\
         To: <sip:agent@127.0.0.1:{port}>;tag=stray-to\r\n\
         Call-ID: no-such-call@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:agent@127.0.0.1:{port}>\r\n\
         Content-Length: 0\r\n\r\n",
        engine_port = h.ports.engine(),
    );
    peer.send_to(stray_response.as_bytes(), engine)
        .expect("send the stray response");
    assert_no_answer(&peer, "a response without a call");

    let broken_start_line = format!(
        "INVITE sip:12345@127.0.0.1:{engine_port}\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-broken-start-line\r\n\
         From: <sip:caller@127.0.0.1:{port}>;tag=broken\r\n\
         To: <sip:12345@127.0.0.1:{engine_port}>\r\n\
         Call-ID: broken-start-line@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        engine_port = h.ports.engine(),
    );
    peer.send_to(broken_start_line.as_bytes(), engine)
        .expect("send the broken request");
    assert_no_answer(&peer, "a request without SIP version");

    let mut stream = TcpStream::connect(engine).expect("connect to the engine over TCP");
    stream
        .write_all(&noise(4000, 4))
        .expect("write random bytes over TCP");
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("set a read timeout");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(
        reply.is_empty(),
        "the engine answered random bytes over TCP:\n{}",
        String::from_utf8_lossy(&reply)
    );
    drop(stream);

    let forwarded = drain_udp(&agent, Duration::from_millis(200));
    assert!(
        forwarded.is_empty(),
        "the engine forwarded {} datagrams to the agent",
        forwarded.len()
    );
    drop(agent);
    drop(peer);

    let mut agent = h.agent(&scenario("agent_answer.xml")).start();
    let mut caller = h
        .second_caller(&scenario("caller_bye.xml"))
        .args(&["-d", "300"])
        .start();
    caller.expect_success();
    agent.expect_success();
    h.stop();
}

/// The agent target is the engine's own address. Its INVITE to the agent comes back to it
/// with its own Via; RFC 3261 §16.3 and §8.2.2.2 call that a loop, to be answered with 482.
/// The engine relays it to the caller as 480, since 482 describes the engine's own hop.
/// The caller must get that final error well before timer B would fire, the looped
/// INVITE must not start a second call, and the engine must still answer OPTIONS.
#[test]
fn agent_target_pointing_at_the_engine_fails_fast() {
    let h = Harness::start_with("agent_target_pointing_at_the_engine_fails_fast", |ports| {
        EngineSettings {
            agent_target: Some(format!("sip:agent@127.0.0.1:{}", ports.engine())),
            ..EngineSettings::default()
        }
    });
    let started = Instant::now();
    let mut caller = h.caller(&caller_rejected(&h.dir, &[482, 480])).start();
    caller.expect_success();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "the looped call took {elapsed:?} to fail"
    );

    let calls = h.engine.log().matches("call started").count();
    assert_eq!(
        calls,
        1,
        "the looped INVITE must be refused, not become a call; the engine's log:\n{}",
        h.engine.log()
    );

    let mut options = h.second_caller(&scenario("options.xml")).start();
    options.expect_success();
    h.stop();
}
