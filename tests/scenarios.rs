//! Checks the SIPp scenarios themselves, without the engine: each caller scenario runs
//! against the agent scenario it meets in a call-flow test (or a stand-in for the
//! engine), SIPp to SIPp. A failure here is a broken scenario, not an engine bug.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{
    Ports, SippBuilder, TestDir, agent_reject, caller_rejected, drain_udp, first_received,
    read_when_written, require_sipp, scenario,
};

/// Runs `caller` straight at `agent` and asserts that both succeed.
fn pair(test: &str, agent: Scenario, caller: Scenario) -> (TestDir, Ports) {
    require_sipp();
    let dir = TestDir::new(test);
    let ports = Ports::allocate();
    let agent_path = agent.path(&dir);
    let caller_path = caller.path(&dir);
    let mut agent_sipp = SippBuilder::agent(
        &dir,
        "agent",
        &agent_path,
        ports.agent(),
        ports.agent_media(),
    )
    .args(agent.args)
    .start();
    let mut caller_sipp = SippBuilder::caller(
        &dir,
        "caller",
        &caller_path,
        ports.caller(),
        ports.caller_media(),
        ports.agent(),
    )
    .args(caller.args)
    .start();
    caller_sipp.expect_success();
    agent_sipp.expect_success();
    (dir, ports)
}

struct Scenario<'a> {
    name: &'a str,
    args: &'a [&'a str],
    statuses: Option<&'a [u16]>,
    reject_with: Option<&'a str>,
}

impl<'a> Scenario<'a> {
    fn new(name: &'a str) -> Self {
        Scenario {
            name,
            args: &[],
            statuses: None,
            reject_with: None,
        }
    }

    fn args(mut self, args: &'a [&'a str]) -> Self {
        self.args = args;
        self
    }

    fn path(&self, dir: &TestDir) -> std::path::PathBuf {
        if let Some(statuses) = self.statuses {
            return caller_rejected(dir, statuses);
        }
        if let Some(status_line) = self.reject_with {
            return agent_reject(dir, status_line);
        }
        scenario(self.name)
    }
}

fn rejected(statuses: &[u16]) -> Scenario<'_> {
    Scenario {
        statuses: Some(statuses),
        ..Scenario::new("caller_rejected.xml")
    }
}

fn rejecting(status_line: &str) -> Scenario<'_> {
    Scenario {
        reject_with: Some(status_line),
        ..Scenario::new("agent_reject.xml")
    }
}

#[test]
fn caller_bye_meets_agent_answer() {
    pair(
        "caller_bye_meets_agent_answer",
        Scenario::new("agent_answer.xml"),
        Scenario::new("caller_bye.xml").args(&["-d", "200"]),
    );
}

#[test]
fn caller_wait_bye_meets_agent_bye() {
    let (dir, _) = pair(
        "caller_wait_bye_meets_agent_bye",
        Scenario::new("agent_bye.xml").args(&["-d", "200"]),
        Scenario::new("caller_wait_bye.xml"),
    );
    assert!(
        dir.join("call_up").exists(),
        "caller_wait_bye wrote no call_up"
    );
}

#[test]
fn caller_cancel_meets_agent_cancelled() {
    pair(
        "caller_cancel_meets_agent_cancelled",
        Scenario::new("agent_cancelled.xml"),
        Scenario::new("caller_cancel.xml"),
    );
}

#[test]
fn crossing_agent_meets_engine_stand_in() {
    pair(
        "crossing_agent_meets_engine_stand_in",
        Scenario::new("agent_cancel_crossing.xml"),
        Scenario::new("engine_cancel_crossing.xml"),
    );
}

#[test]
fn caller_rejected_meets_agent_reject() {
    for (status_line, statuses) in [
        ("486 Busy Here", &[486][..]),
        ("603 Decline", &[603][..]),
        ("408 Request Timeout", &[480, 408][..]),
        ("480 Temporarily Unavailable", &[480, 408][..]),
        ("503 Service Unavailable", &[408, 503][..]),
        ("403 Forbidden", &[403][..]),
    ] {
        pair(
            &format!("caller_rejected_{}", &status_line[..3]),
            rejecting(status_line),
            rejected(statuses),
        );
    }
}

#[test]
fn caller_max_forwards_meets_483() {
    let (dir, ports) = {
        let dir = TestDir::new("caller_max_forwards_meets_483");
        (dir, Ports::allocate())
    };
    require_sipp();
    let agent_path = common::render_scenario(
        &dir,
        "agent_reject.xml",
        &[("SIP/2.0 486 Busy Here", "SIP/2.0 483 Too Many Hops")],
    );
    let mut agent = SippBuilder::agent(
        &dir,
        "agent",
        &agent_path,
        ports.agent(),
        ports.agent_media(),
    )
    .start();
    let mut caller = SippBuilder::caller(
        &dir,
        "caller",
        &scenario("caller_max_forwards.xml"),
        ports.caller(),
        ports.caller_media(),
        ports.agent(),
    )
    .start();
    caller.expect_success();
    agent.expect_success();
    let invite = first_received(&agent, "INVITE").expect("the agent received the INVITE");
    assert_eq!(invite.header("Max-Forwards").as_deref(), Some("0"));
}

#[test]
fn caller_reinvite_meets_agent_reinvite() {
    pair(
        "caller_reinvite_meets_agent_reinvite",
        Scenario::new("agent_reinvite.xml"),
        Scenario::new("caller_reinvite.xml"),
    );
}

#[test]
fn caller_compact_meets_agent_answer() {
    let (dir, _) = pair(
        "caller_compact_meets_agent_answer",
        Scenario::new("agent_answer.xml"),
        Scenario::new("caller_compact.xml").args(&["-d", "200"]),
    );
    drop(dir);
}

#[test]
fn caller_media_meets_echoing_agent() {
    pair(
        "caller_media_meets_echoing_agent",
        Scenario::new("agent_answer.xml").args(&["-rtp_echo"]),
        Scenario::new("caller_media.xml"),
    );
}

#[test]
fn caller_rtp_peer_writes_answer_port() {
    require_sipp();
    let dir = TestDir::new("caller_rtp_peer_writes_answer_port");
    let ports = Ports::allocate();
    let rtp_port = ports.rtp_peer().to_string();
    let mut agent = SippBuilder::agent(
        &dir,
        "agent",
        &scenario("agent_answer.xml"),
        ports.agent(),
        ports.agent_media(),
    )
    .args(&["-rtp_echo"])
    .start();
    let mut caller = SippBuilder::caller(
        &dir,
        "caller",
        &scenario("caller_rtp_peer.xml"),
        ports.caller(),
        ports.caller_media(),
        ports.agent(),
    )
    .args(&["-key", "rtp_port", &rtp_port, "-d", "500"])
    .start();
    let written = read_when_written(&dir.join("answer_port"), Duration::from_secs(15));
    caller.expect_success();
    agent.expect_success();
    assert_eq!(
        written.as_deref().map(str::trim),
        Some(ports.agent_media().to_string().as_str())
    );
    let invite = first_received(&agent, "INVITE").expect("the agent received the INVITE");
    assert_eq!(invite.audio_port(), Some(ports.rtp_peer()));
}

/// SIPp does not unfold headers, so a SIPp agent cannot answer the folded INVITE. This
/// test reads the INVITE from a plain socket instead and checks that the folds are on
/// the wire and that unfolding gives the expected headers.
#[test]
fn caller_folded_sends_folded_headers() {
    require_sipp();
    let dir = TestDir::new("caller_folded_sends_folded_headers");
    let ports = Ports::allocate();
    let socket = UdpSocket::bind(("127.0.0.1", ports.agent())).expect("bind the agent port");
    let mut caller = SippBuilder::caller(
        &dir,
        "caller",
        &scenario("caller_folded.xml"),
        ports.caller(),
        ports.caller_media(),
        ports.agent(),
    )
    .args(&["-key", "fold", " ", "-timeout", "3"])
    .start();
    let datagrams = drain_udp(&socket, Duration::from_secs(2));
    let (first, _) = datagrams.first().expect("the caller sent an INVITE");
    let text = String::from_utf8_lossy(first);
    assert!(text.starts_with("INVITE sip:12345@127.0.0.1:"), "{text}");
    let folds = text.matches("\r\n ").count();
    assert_eq!(folds, 6, "expected six continuation lines in:\n{text}");

    let unfolded = text.replace("\r\n ", " ");
    assert!(unfolded.contains("\r\nCSeq: 1 INVITE\r\n"), "{unfolded}");
    assert!(unfolded.contains("\r\nSubject: a subject folded over three lines\r\n"));
    assert!(unfolded.contains(";branch=z9hG4bK"), "{unfolded}");
    let (head, body) = unfolded
        .split_once("\r\n\r\n")
        .expect("a header/body separator");
    assert!(head.contains("Content-Length:"), "{head}");
    assert!(body.starts_with("v=0\r\n"), "{body}");
    // Nobody answers, so the caller ends with an error after its 3 s timeout.
    let (code, _) = caller.finish();
    assert_ne!(code, Some(0));
}

#[test]
fn options_meets_auto_answer() {
    require_sipp();
    let dir = TestDir::new("options_meets_auto_answer");
    let ports = Ports::allocate();
    // -aa makes SIPp answer OPTIONS with 200 outside its scenario; the agent is killed
    // when the test ends because its scenario waits for an INVITE.
    let _agent = SippBuilder::agent(
        &dir,
        "agent",
        &scenario("agent_answer.xml"),
        ports.agent(),
        ports.agent_media(),
    )
    .args(&["-aa"])
    .start();
    let mut caller = SippBuilder::caller(
        &dir,
        "caller",
        &scenario("options.xml"),
        ports.caller(),
        ports.caller_media(),
        ports.agent(),
    )
    .start();
    caller.expect_success();
}

#[test]
fn caller_short_body_meets_400() {
    let (dir, ports) = (
        TestDir::new("caller_short_body_meets_400"),
        Ports::allocate(),
    );
    require_sipp();
    let agent_path = common::render_scenario(
        &dir,
        "agent_reject.xml",
        &[("SIP/2.0 486 Busy Here", "SIP/2.0 400 Bad Request")],
    );
    let mut agent = SippBuilder::agent(
        &dir,
        "agent",
        &agent_path,
        ports.agent(),
        ports.agent_media(),
    )
    .start();
    let mut caller = SippBuilder::caller(
        &dir,
        "caller",
        &scenario("caller_short_body.xml"),
        ports.caller(),
        ports.caller_media(),
        ports.agent(),
    )
    .start();
    caller.expect_success();
    agent.expect_success();
    let invite = first_received(&agent, "INVITE").expect("the agent received the INVITE");
    assert_eq!(invite.header("Content-Length").as_deref(), Some("400"));
}

/// Checks the capture helper and the media scenario together: the caller's replayed
/// G.711 and RFC 4733 packets reach the echoing agent and come back. g711a.pcap contains 236
/// packets and dtmf_2833_1.pcap 10 (SIPp 3.6.1 as packaged by Debian).
#[test]
fn capture_counts_sipp_media() {
    require_sipp();
    let dir = TestDir::new("capture_counts_sipp_media");
    let ports = Ports::allocate();
    let media = ports.agent_media();
    let capture = match common::pcap::Capture::start(&dir, media, media + 1) {
        Ok(capture) => capture,
        Err(reason) => {
            eprintln!("skipping capture_counts_sipp_media: {reason}");
            return;
        }
    };
    let mut agent = SippBuilder::agent(
        &dir,
        "agent",
        &scenario("agent_answer.xml"),
        ports.agent(),
        media,
    )
    .args(&["-rtp_echo"])
    .start();
    let mut caller = SippBuilder::caller(
        &dir,
        "caller",
        &scenario("caller_media.xml"),
        ports.caller(),
        ports.caller_media(),
        ports.agent(),
    )
    .start();
    caller.expect_success();
    agent.expect_success();
    let datagrams = capture.stop();

    let to_agent: Vec<_> = datagrams
        .iter()
        .filter(|d| d.destination_port == media)
        .collect();
    let echoed = datagrams.iter().filter(|d| d.source_port == media).count();
    let dtmf = to_agent
        .iter()
        .filter(|d| d.rtp_payload_type() == Some(101))
        .count();
    let audio = to_agent
        .iter()
        .filter(|d| d.rtp_payload_type() == Some(8))
        .count();
    assert!(audio >= 200, "{audio} G.711 packets reached the agent");
    assert!(
        dtmf >= 1,
        "{dtmf} telephone-event packets reached the agent"
    );
    assert!(echoed >= 200, "{echoed} packets were echoed");
}
