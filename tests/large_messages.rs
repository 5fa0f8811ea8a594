//! Requests larger than `sip.udp_max_bytes` (RFC 3261 §18.1.1): the engine must send them
//! over TCP even though the agent target names no transport, and name TCP in the Via. The
//! rule is for requests only: a response goes back over the transport its request came
//! on (§18.2.2), whatever its size.

mod common;

use std::path::PathBuf;

use common::{EngineSettings, Harness, Sipp, first_received, render_scenario, scenario};

/// A limit above the engine's responses to the caller (about 650 bytes with SDP) and
/// below its INVITE to the agent with the padded offer.
const UDP_MAX_BYTES: usize = 1000;
/// A limit below the engine's 200 with SDP to the caller.
const SMALL_UDP_MAX_BYTES: usize = 600;

/// SDP attribute lines that make the caller's offer, and so the engine's INVITE to the
/// agent, larger than [`UDP_MAX_BYTES`].
fn padding() -> String {
    (0..16)
        .map(|index| format!("a=x-padding-{index}:{}\n      ", "p".repeat(40)))
        .collect()
}

/// Renders a caller scenario from `tests/scenarios` with its SDP offer padded, so that
/// the engine's INVITE to the agent exceeds [`UDP_MAX_BYTES`].
fn padded_caller(h: &Harness, name: &str) -> PathBuf {
    let padded = format!("{}a=sendrecv", padding());
    render_scenario(&h.dir, name, &[("a=sendrecv", &padded)])
}

fn large_invite_settings() -> EngineSettings {
    EngineSettings {
        udp_max_bytes: Some(UDP_MAX_BYTES),
        ..EngineSettings::default()
    }
}

/// Asserts that the agent's INVITE was above the limit and names TCP in its Via.
fn assert_invite_over_tcp(agent: &Sipp) {
    let invite = first_received(agent, "INVITE").expect("the agent received an INVITE");
    assert!(
        invite.text.len() > UDP_MAX_BYTES,
        "the INVITE is only {} bytes; the test needs it above {UDP_MAX_BYTES}:\n{}",
        invite.text.len(),
        invite.text
    );
    let via = invite.header("Via").expect("the INVITE has a Via");
    assert!(
        via.starts_with("SIP/2.0/TCP "),
        "the INVITE went over TCP but its Via says otherwise (RFC 3261 §18.1.1): {via}"
    );
}

/// The agent SIPp listens only on TCP at the agent port. The target is plain
/// `sip:agent@127.0.0.1:<port>`, so the engine would choose UDP for a small INVITE. The
/// caller's large offer makes the INVITE exceed `udp_max_bytes`, so the agent must receive
/// it over TCP with a TCP Via. The agent rejects with 486, which the caller must get, and
/// the engine's ACK for the 486 must reach the agent on the same TCP connection.
#[test]
fn large_invite_goes_over_tcp() {
    let h = Harness::start("large_invite_goes_over_tcp", large_invite_settings());
    let mut agent = h.agent(&scenario("agent_reject.xml")).tcp().start();
    let mut caller = h.caller(&padded_caller(&h, "caller_rejected.xml")).start();
    caller.expect_success();
    agent.expect_success();
    assert_invite_over_tcp(&agent);
    h.stop();
}

/// As [`large_invite_goes_over_tcp`], but the agent answers and the caller ends the call
/// with BYE. The agent's 200 came over TCP and its Contact says `transport=TCP`, so the
/// ACK and the BYE must reach it over TCP (RFC 3261 §12.2.1.1 sends in-dialog requests to
/// the remote target, and §18.1.1 keeps the transport the INVITE used).
#[test]
fn large_invite_call_completes_over_tcp() {
    let h = Harness::start(
        "large_invite_call_completes_over_tcp",
        large_invite_settings(),
    );
    let mut agent = h.agent(&scenario("agent_answer.xml")).tcp().start();
    let mut caller = h
        .caller(&padded_caller(&h, "caller_bye.xml"))
        .args(&["-d", "300"])
        .start();
    caller.expect_success();
    agent.expect_success();
    assert_invite_over_tcp(&agent);
    h.stop();
}

/// With `udp_max_bytes` below the size of the engine's 200 with SDP, the INVITE to the
/// agent goes over TCP. The caller's INVITE came over UDP, so the 200 must go back over
/// UDP to the Via's address (RFC 3261 §18.2.2). The §18.1.1 size rule is for requests, and
/// the caller listens on UDP only.
#[test]
fn large_response_stays_on_udp() {
    let settings = EngineSettings {
        udp_max_bytes: Some(SMALL_UDP_MAX_BYTES),
        ..EngineSettings::default()
    };
    let h = Harness::start("large_response_stays_on_udp", settings);
    let mut agent = h.agent(&scenario("agent_answer.xml")).tcp().start();
    let mut caller = h
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", "300"])
        .start();
    caller.expect_success();
    agent.expect_success();

    let answer = first_received(&caller, "SIP/2.0 200").expect("the caller received a 200");
    assert!(
        answer.text.len() > SMALL_UDP_MAX_BYTES,
        "the 200 is only {} bytes; the test needs it above {SMALL_UDP_MAX_BYTES}",
        answer.text.len()
    );
    h.stop();
}
