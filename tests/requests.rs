//! Requests the engine answers itself: OPTIONS, Max-Forwards 0, untrusted sources and
//! malformed INVITEs. After a malformed request the next good call must still work.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{EngineSettings, Harness, caller_rejected, drain_udp, scenario};

/// Binds the agent port with a plain socket so a test can assert that nothing was
/// forwarded to the agent.
fn silent_agent(h: &Harness) -> UdpSocket {
    UdpSocket::bind(("127.0.0.1", h.ports.agent())).expect("bind the agent port")
}

fn assert_nothing_forwarded(agent: &UdpSocket) {
    let datagrams = drain_udp(agent, Duration::from_millis(500));
    if let Some((first, _)) = datagrams.first() {
        panic!(
            "the engine sent {} datagrams to the agent, the first:\n{}",
            datagrams.len(),
            String::from_utf8_lossy(first)
        );
    }
}

/// Runs a good call with the second caller and an answering agent.
fn assert_next_call_works(h: &Harness) {
    let mut agent = h.agent(&scenario("agent_answer.xml")).start();
    let mut caller = h
        .second_caller(&scenario("caller_bye.xml"))
        .args(&["-d", "300"])
        .start();
    caller.expect_success();
    agent.expect_success();
}

#[test]
fn options_gets_200() {
    let h = Harness::start("options_gets_200", EngineSettings::default());
    let mut caller = h.caller(&scenario("options.xml")).start();
    caller.expect_success();
    h.stop();
}

#[test]
fn max_forwards_zero_gets_483() {
    let h = Harness::start("max_forwards_zero_gets_483", EngineSettings::default());
    let agent = silent_agent(&h);
    let mut caller = h.caller(&scenario("caller_max_forwards.xml")).start();
    caller.expect_success();
    assert_nothing_forwarded(&agent);
    h.stop();
}

#[test]
fn untrusted_source_gets_403() {
    let settings = EngineSettings {
        trusted: vec!["127.0.0.1/32".to_owned()],
        ..EngineSettings::default()
    };
    let h = Harness::start("untrusted_source_gets_403", settings);
    let agent = silent_agent(&h);
    let mut caller = h
        .caller(&caller_rejected(&h.dir, &[403]))
        .local_ip("127.0.0.2")
        .start();
    caller.expect_success();
    assert_nothing_forwarded(&agent);
    drop(agent);
    assert_next_call_works(&h);
    h.stop();
}

#[test]
fn short_body_gets_400() {
    let h = Harness::start("short_body_gets_400", EngineSettings::default());
    let agent = silent_agent(&h);
    let mut caller = h.caller(&scenario("caller_short_body.xml")).start();
    caller.expect_success();
    assert_nothing_forwarded(&agent);
    drop(agent);
    assert_next_call_works(&h);
    h.stop();
}

/// An INVITE without Call-ID, sent from a plain socket because SIPp matches responses by
/// Call-ID. RFC 3261 §8.1.1 makes Call-ID mandatory; the engine must answer 400.
#[test]
fn missing_call_id_gets_400() {
    let h = Harness::start("missing_call_id_gets_400", EngineSettings::default());
    let agent = silent_agent(&h);
    let caller = UdpSocket::bind(("127.0.0.1", h.ports.caller())).expect("bind the caller");
    let port = h.ports.caller();
    let body = "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                t=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let invite = format!(
        "INVITE sip:12345@127.0.0.1:{engine} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-no-call-id\r\n\
         From: <sip:caller@127.0.0.1:{port}>;tag=no-call-id\r\n\
         To: <sip:12345@127.0.0.1:{engine}>\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@127.0.0.1:{port}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {length}\r\n\r\n{body}",
        engine = h.ports.engine(),
        length = body.len(),
    );
    caller
        .send_to(invite.as_bytes(), ("127.0.0.1", h.ports.engine()))
        .expect("send the INVITE");

    let responses = drain_udp(&caller, Duration::from_secs(2));
    let finals: Vec<String> = responses
        .iter()
        .map(|(bytes, _)| String::from_utf8_lossy(bytes).into_owned())
        .filter(|text| !text.starts_with("SIP/2.0 1"))
        .collect();
    let Some(first) = finals.first() else {
        panic!("no final response to an INVITE without Call-ID");
    };
    assert!(first.starts_with("SIP/2.0 400 "), "got:\n{first}");
    assert!(
        first.contains(";branch=z9hG4bK-no-call-id"),
        "the 400 does not echo the Via:\n{first}"
    );
    assert_nothing_forwarded(&agent);
    drop(agent);
    assert_next_call_works(&h);
    h.stop();
}
