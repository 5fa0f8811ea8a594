//! Transfers that the agent starts with keys: RFC 4733 events from the real captures of a
//! phone (`*` then `1`, payload type 101) and from SIPp's generator (payload type 96), and
//! SIP INFO with application/dtmf-relay. The caller is bridged to the remote hotline's
//! SIPp, and the feature code is kept from the caller.
//!
//! The RTP checks capture on `lo` with dumpcap and are skipped, with a message, where
//! capturing is not permitted.

mod common;

use common::pcap::Datagram;
use common::transfer::{
    TELEPHONE_EVENT, all_received, assert_bridged_ladder, assert_record, header_values,
    received_audio_port,
};
use common::{EngineSettings, Harness, first_received, render_scenario, scenario};
use serde_json::json;

/// `*` and `1` replayed from a phone's captures transfer the caller to Beijing: the
/// remote gets the E.164 Request-URI and the caller's identity and context, the agent
/// gets BYE, and the caller talks to the remote until it hangs up.
#[test]
fn star1_captures_bridge_to_beijing() {
    let test = "star1_captures_bridge_to_beijing";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut agent = h.agent(&scenario("xfer_agent_dtmf.xml")).start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    remote.expect_success();

    let invite = first_received(&remote, "INVITE").expect("the remote received an INVITE");
    assert!(
        invite.start_line().starts_with("INVITE sip:+861012345@"),
        "Request-URI is not Beijing's E.164 number:\n{}",
        invite.text
    );
    let identity = invite.header("P-Asserted-Identity").unwrap_or_default();
    assert!(
        identity.contains("sip:+8613800000000@"),
        "P-Asserted-Identity does not carry the caller's number:\n{}",
        invite.text
    );
    let history: Vec<String> = header_values(&invite, "History-Info")
        .iter()
        .flat_map(|value| value.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(history.len(), 2, "History-Info entries: {history:?}");
    assert!(
        history[1].contains("sip:+861012345@"),
        "the last History-Info entry is not the new target: {history:?}"
    );
    let user_to_user = invite.header("User-to-User").unwrap_or_default();
    assert!(
        user_to_user.contains("encoding=hex"),
        "User-to-User is not hex-encoded: {user_to_user}"
    );
    assert!(
        user_to_user.contains("purpose="),
        "User-to-User has no purpose: {user_to_user}"
    );
    assert_bridged_ladder(&caller, &agent, &remote);

    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("bridged")),
            ("trigger", json!("dtmf")),
            ("destination", json!("beijing")),
            ("gateway", json!("beijing/lab")),
            ("sip_status", json!(200)),
        ],
    );
    assert!(
        records[0]["latency_us"]["invite_us"].is_u64(),
        "no invite latency in {:#}",
        records[0]
    );

    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &remote, 0);
    }
    h.stop();
}

/// The same captures 500 ms after the ACK and 400 ms apart, the pace of the load
/// scenario. SIPp replays each file's SSRC, sequence numbers and timestamps, and those of
/// `1` lie 420 packets and 9 s before those of `*`. So the `1` arrives 260 ms after the
/// end of `*` from a sender that went back, and must still complete the code.
#[test]
fn star1_captures_400ms_apart_bridge() {
    let test = "star1_captures_400ms_apart_bridge";
    let h = Harness::start(test, EngineSettings::default());
    let agent_scenario = render_scenario(
        &h.dir,
        "xfer_agent_dtmf.xml",
        &[
            (
                "<pause milliseconds=\"500\"/>",
                "<pause milliseconds=\"400\"/>",
            ),
            (
                "<pause milliseconds=\"1000\"/>",
                "<pause milliseconds=\"500\"/>",
            ),
        ],
    );
    let mut remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut agent = h.agent(&agent_scenario).start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    remote.expect_success();

    let invite = first_received(&remote, "INVITE").expect("the remote received an INVITE");
    assert!(
        invite.start_line().starts_with("INVITE sip:+861012345@"),
        "Request-URI is not Beijing's E.164 number:\n{}",
        invite.text
    );
    assert_bridged_ladder(&caller, &agent, &remote);
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("bridged")),
            ("trigger", json!("dtmf")),
            ("destination", json!("beijing")),
        ],
    );
    h.stop();
}

/// `*2` from SIPp's generated RFC 4733 (payload type 96, end packets with increasing
/// sequence numbers) transfers to Tianjin, whose trunk writes national numbers.
#[test]
fn generated_star2_reaches_tianjin() {
    let test = "generated_star2_reaches_tianjin";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(1, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut agent = h.agent(&scenario("xfer_agent_play_dtmf.xml")).start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    remote.expect_success();

    let invite = first_received(&remote, "INVITE").expect("the remote received an INVITE");
    assert!(
        invite.start_line().starts_with("INVITE sip:02212345@"),
        "Request-URI is not Tianjin's national number:\n{}",
        invite.text
    );
    let identity = invite.header("P-Asserted-Identity").unwrap_or_default();
    assert!(
        identity.contains("sip:13800000000@"),
        "P-Asserted-Identity does not carry the caller's national number:\n{}",
        invite.text
    );
    assert_bridged_ladder(&caller, &agent, &remote);
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("bridged")),
            ("trigger", json!("dtmf")),
            ("destination", json!("tianjin")),
        ],
    );

    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &remote, 1);
    }
    h.stop();
}

/// Returns the RFC 4733 event code of a telephone-event packet (RFC 4733 §2.3).
fn event_code(datagram: &Datagram) -> Option<u8> {
    (datagram.rtp_payload_type() == Some(TELEPHONE_EVENT))
        .then(|| datagram.payload.get(12).copied())
        .flatten()
}

/// The agent presses `5`, then `*1`. The `5` is no transfer code and reaches the caller;
/// the events of `*` (code 10) and `1` (code 1) never do.
#[test]
fn feature_code_not_relayed_to_caller() {
    let test = "feature_code_not_relayed_to_caller";
    let h = Harness::start(test, EngineSettings::default());
    let Some(capture) = h.capture(test) else {
        h.stop();
        return;
    };
    let agent_scenario = render_scenario(
        &h.dir,
        "xfer_agent_dtmf.xml",
        &[(
            "<!-- KEYS -->",
            "<nop>\n    <action>\n      \
             <exec play_pcap_audio=\"pcap/dtmf_2833_5.pcap\"/>\n    \
             </action>\n  </nop>\n  <pause milliseconds=\"500\"/>",
        )],
    );
    let mut remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut agent = h.agent(&agent_scenario).start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "4000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    remote.expect_success();
    let datagrams = capture.stop();

    let caller_relay = received_audio_port(&caller, "SIP/2.0 200");
    let agent_relay = received_audio_port(&agent, "INVITE");
    let events = |from: u16, to: u16, code: u8| {
        datagrams
            .iter()
            .filter(|datagram| datagram.source_port == from && datagram.destination_port == to)
            .filter(|datagram| event_code(datagram) == Some(code))
            .count()
    };
    let agent_media = h.ports.agent_media();
    let caller_media = h.ports.caller_media();
    let counts = format!(
        "agent -> relay: 5 {}, * {}, 1 {}; relay -> caller: 5 {}, * {}, 1 {}",
        events(agent_media, agent_relay, 5),
        events(agent_media, agent_relay, 10),
        events(agent_media, agent_relay, 1),
        events(caller_relay, caller_media, 5),
        events(caller_relay, caller_media, 10),
        events(caller_relay, caller_media, 1),
    );
    assert!(events(agent_media, agent_relay, 10) > 0, "{counts}");
    assert!(events(agent_media, agent_relay, 1) > 0, "{counts}");
    assert!(events(caller_relay, caller_media, 5) > 0, "{counts}");
    assert_eq!(events(caller_relay, caller_media, 10), 0, "{counts}");
    assert_eq!(events(caller_relay, caller_media, 1), 0, "{counts}");
    assert_bridged_ladder(&caller, &agent, &remote);
    h.stop();
}

/// The agent hangs up 300 ms after `*1`, while the remote hotline waits 1 s before it
/// rings: the transfer goes on without the agent and bridges the caller.
#[test]
fn agent_hangs_up_after_star1() {
    let test = "agent_hangs_up_after_star1";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo", "-d", "1000"])
        .start();
    let mut agent = h.agent(&scenario("xfer_agent_dtmf_bye.xml")).start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    remote.expect_success();

    assert!(
        all_received(&agent, "BYE").is_empty(),
        "the agent hung up itself and should get no BYE:\n{}",
        agent.report()
    );
    assert!(
        all_received(&caller, "BYE").is_empty(),
        "the caller was hung up on:\n{}",
        caller.report()
    );
    assert_eq!(all_received(&remote, "BYE").len(), 1, "{}", remote.report());
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[("result", json!("bridged")), ("trigger", json!("dtmf"))],
    );

    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &remote, 0);
    }
    h.stop();
}

/// `*` and `1` in SIP INFO (application/dtmf-relay) each get 200 and bridge the caller
/// to Beijing. An INFO before them whose Signal is no DTMF key gets 400.
#[test]
fn info_keys_bridge_to_beijing() {
    let test = "info_keys_bridge_to_beijing";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut agent = h.agent(&scenario("xfer_agent_info.xml")).start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    remote.expect_success();

    let statuses: Vec<String> = all_received(&agent, "SIP/2.0")
        .iter()
        .filter(|response| {
            response
                .header("CSeq")
                .is_some_and(|cseq| cseq.ends_with("INFO"))
        })
        .map(|response| response.start_line().to_owned())
        .collect();
    assert_eq!(statuses.len(), 3, "responses to INFO: {statuses:?}");
    assert!(statuses[0].starts_with("SIP/2.0 400"), "{statuses:?}");
    assert!(statuses[1].starts_with("SIP/2.0 200"), "{statuses:?}");
    assert!(statuses[2].starts_with("SIP/2.0 200"), "{statuses:?}");
    assert_bridged_ladder(&caller, &agent, &remote);
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("bridged")),
            ("trigger", json!("info")),
            ("destination", json!("beijing")),
        ],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &remote, 0);
    }
    h.stop();
}
