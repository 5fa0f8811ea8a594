//! Transfers that the agent's phone starts with REFER (RFC 3515): blind to a destination
//! the dialplan maps the Refer-To to, rejected for an unlisted target, and attended with
//! Replaces (RFC 3891) after a consultation call through the engine. The agent follows
//! progress in NOTIFYs with message/sipfrag bodies.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::transfer::{
    all_received, assert_bridged_ladder, assert_record, body, drain_udp_now, is_sip, last_index,
    render_without_block,
};
use common::{
    EngineSettings, Harness, Sipp, SippBuilder, read_when_written, render_scenario, scenario,
};
use serde_json::json;

/// Asserts the NOTIFYs the agent received for its REFER: `100 Trying` first, the last
/// one with `final_status` and `Subscription-State: terminated`, all with Event refer
/// and a message/sipfrag body.
fn assert_notifies(agent: &Sipp, final_status: u16) {
    let notifies = all_received(agent, "NOTIFY");
    assert!(
        notifies.len() >= 2,
        "the agent got {} NOTIFYs:\n{}",
        notifies.len(),
        agent.report()
    );
    for notify in &notifies {
        let event = notify.header("Event").unwrap_or_default();
        assert!(
            event.starts_with("refer"),
            "Event is {event:?}:\n{}",
            notify.text
        );
        let content_type = notify.header("Content-Type").unwrap_or_default();
        assert!(
            content_type.starts_with("message/sipfrag"),
            "Content-Type is {content_type:?}:\n{}",
            notify.text
        );
    }
    let first = &notifies[0];
    assert!(
        body(first).starts_with("SIP/2.0 100"),
        "the first NOTIFY does not report 100:\n{}",
        first.text
    );
    let last = &notifies[notifies.len() - 1];
    let expected = format!("SIP/2.0 {final_status}");
    assert!(
        body(last).starts_with(&expected),
        "the last NOTIFY does not report {final_status}:\n{}",
        last.text
    );
    let state = last.header("Subscription-State").unwrap_or_default();
    assert!(
        state.starts_with("terminated"),
        "the last NOTIFY has Subscription-State {state:?}"
    );
    for notify in &notifies[..notifies.len() - 1] {
        let state = notify.header("Subscription-State").unwrap_or_default();
        assert!(
            state.starts_with("active"),
            "a NOTIFY before the last has Subscription-State {state:?}:\n{}",
            notify.text
        );
    }
}

/// Runs a blind REFER to `refer_to` and checks that it bridges the caller to Beijing.
fn blind_refer_bridges(test: &str, refer_to: &str) {
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut agent = h
        .agent(&scenario("xfer_agent_refer.xml"))
        .args(&["-key", "refer_to", refer_to])
        .start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    remote.expect_success();

    let invite = common::first_received(&remote, "INVITE").expect("the remote got an INVITE");
    assert!(
        invite.start_line().starts_with("INVITE sip:+861012345@"),
        "Request-URI is not Beijing's number:\n{}",
        invite.text
    );
    assert_notifies(&agent, 200);
    assert_bridged_ladder(&caller, &agent, &remote);
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("bridged")),
            ("trigger", json!("refer")),
            ("destination", json!("beijing")),
        ],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &remote, 0);
    }
    h.stop();
}

#[test]
fn refer_sip_uri_bridges_to_beijing() {
    blind_refer_bridges(
        "refer_sip_uri_bridges_to_beijing",
        "<sip:beijing@127.0.0.1>",
    );
}

#[test]
fn refer_tel_uri_bridges_to_beijing() {
    blind_refer_bridges("refer_tel_uri_bridges_to_beijing", "<tel:010-12345>");
}

/// The remote answers the REFER's transfer with 486: the agent's last NOTIFY reports
/// 486 and the caller talks to the agent again.
#[test]
fn refer_to_busy_remote_notifies_failure() {
    let test = "refer_to_busy_remote_notifies_failure";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h.remote(0, &scenario("xfer_remote_reject.xml")).start();
    let agent_scenario = render_without_block(&h.dir, "xfer_agent_refer.xml", "progress");
    let mut agent = h
        .agent(&agent_scenario)
        .args(&["-rtp_echo", "-key", "refer_to", "<sip:beijing@127.0.0.1>"])
        .start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    caller.expect_success();
    agent.expect_success();
    remote.expect_success();

    assert_notifies(&agent, 486);
    let byes = all_received(&agent, "BYE");
    assert_eq!(byes.len(), 1, "{}", agent.report());
    assert!(
        byes[0].header("Reason").is_none(),
        "the agent was released as if the transfer completed:\n{}",
        byes[0].text
    );
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[("trigger", json!("refer")), ("sip_status", json!(486))],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        let rejected = last_index(&datagrams, |datagram| {
            is_sip(datagram, h.ports.remote(0), "SIP/2.0 486")
        })
        .expect("the capture has the remote's 486");
        h.assert_caller_back_with_agent(&datagrams, &caller, &agent, rejected);
    }
    h.stop();
}

/// Runs an agent whose REFER with `refer_to` must get `status`, after which the agent
/// hangs up and the caller gets BYE. Nothing may reach the remote hotline. The caller's
/// Call-ID is `own-1@127.0.0.1`.
fn refer_rejected(test: &str, refer_to: &str, status: u16) {
    let h = Harness::start(test, EngineSettings::default());
    let remote = UdpSocket::bind(("127.0.0.1", h.ports.remote(0))).expect("bind the remote port");
    let agent_scenario = render_scenario(
        &h.dir,
        "xfer_agent_refer_rejected.xml",
        &[(
            "<recv response=\"403\"/>",
            &format!("<recv response=\"{status}\"/>"),
        )],
    );
    let mut agent = h
        .agent(&agent_scenario)
        .args(&["-key", "refer_to", refer_to])
        .start();
    let mut caller = h
        .caller(&scenario("caller_wait_bye.xml"))
        .args(&["-cid_str", "own-%u@127.0.0.1"])
        .start();
    agent.expect_success();
    caller.expect_success();

    let received = drain_udp_now(&remote);
    assert!(
        received.is_empty(),
        "the remote hotline received {} datagrams, the first:\n{}",
        received.len(),
        String::from_utf8_lossy(&received[0])
    );
    assert!(
        h.transfer_records_now().is_empty(),
        "a rejected REFER wrote a transfer record: {:?}",
        h.transfer_records_now()
    );
    h.stop();
}

/// A mobile number is in no destination's `numbers`: 403, and the call goes on with the
/// agent until its BYE.
#[test]
fn refer_to_unlisted_number_rejected() {
    refer_rejected(
        "refer_to_unlisted_number_rejected",
        "<sip:13800000000@127.0.0.1>",
        403,
    );
}

/// Replaces naming a dialog the engine does not have: 481.
#[test]
fn replaces_unknown_dialog_rejected() {
    refer_rejected(
        "replaces_unknown_dialog_rejected",
        "<sip:beijing@127.0.0.1?Replaces=nobody%40127.0.0.1%3Bto-tag%3Done%3Bfrom-tag%3Dtwo>",
        481,
    );
}

/// Replaces naming the caller's own dialog: 403.
#[test]
fn replaces_own_dialog_rejected() {
    refer_rejected(
        "replaces_own_dialog_rejected",
        "<sip:beijing@127.0.0.1?Replaces=own-1%40127.0.0.1%3Bto-tag%3Done%3Bfrom-tag%3Dtwo>",
        403,
    );
}

/// The agent hangs up right after the 202 and the first NOTIFY, while the remote waits
/// 1 s before it rings: the transfer goes on and bridges.
#[test]
fn agent_hangs_up_after_refer_accepted() {
    let test = "agent_hangs_up_after_refer_accepted";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo", "-d", "1000"])
        .start();
    let mut agent = h
        .agent(&scenario("xfer_agent_refer_bye.xml"))
        .args(&["-key", "refer_to", "<sip:beijing@127.0.0.1>"])
        .start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    remote.expect_success();

    assert!(
        all_received(&caller, "BYE").is_empty(),
        "the caller was hung up on:\n{}",
        caller.report()
    );
    assert_eq!(all_received(&remote, "BYE").len(), 1, "{}", remote.report());
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[("result", json!("bridged")), ("trigger", json!("refer"))],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &remote, 0);
    }
    h.stop();
}

/// Attended transfer: the agent's consultation call reaches Beijing through the engine,
/// then the agent REFERs the caller's call with Replaces naming the consultation dialog.
/// The engine re-INVITEs the remote toward the caller's relay, bridges them and hangs up
/// both agent legs.
///
/// The consultation call is placed before the caller's call here, because the agent's
/// SIPp learns the Replaces values only from its command line.
#[test]
fn attended_refer_replaces_bridges() {
    let test = "attended_refer_replaces_bridges";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(0, &scenario("xfer_remote_consult.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut consult = SippBuilder::caller(
        &h.dir,
        "consult",
        &scenario("xfer_agent_consult.xml"),
        h.ports.second_caller(),
        h.ports.second_caller_media(),
        h.ports.engine(),
    )
    .args(&["-s", "beijing"])
    .start();
    let Some(dialog) = read_when_written(&h.dir.join("consult"), Duration::from_secs(15)) else {
        panic!(
            "the consultation call was not answered:\n{}",
            consult.report()
        );
    };
    let fields: Vec<&str> = dialog.split_whitespace().collect();
    let [call_id, engine_tag, agent_tag] = fields[..] else {
        panic!("unexpected consultation dialog {dialog:?}");
    };
    let refer_to = format!(
        "<sip:beijing@127.0.0.1?Replaces={}%3Bto-tag%3D{engine_tag}%3Bfrom-tag%3D{agent_tag}>",
        call_id.replace('@', "%40")
    );

    let agent_scenario = render_without_block(&h.dir, "xfer_agent_refer.xml", "progress");
    let mut agent = h
        .agent(&agent_scenario)
        .args(&["-key", "refer_to", &refer_to])
        .start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    consult.expect_success();
    caller.expect_success();
    remote.expect_success();

    assert_notifies(&agent, 200);
    assert_bridged_ladder(&caller, &agent, &remote);
    assert_eq!(
        all_received(&consult, "BYE").len(),
        1,
        "the consultation leg should be hung up:\n{}",
        consult.report()
    );
    let invites = all_received(&remote, "INVITE");
    assert_eq!(invites.len(), 2, "{}", remote.report());
    let relay = h.ports.relay_min()..=h.ports.relay_max();
    let reinvite_port = invites[1].audio_port().unwrap_or_default();
    assert!(
        relay.contains(&reinvite_port),
        "the re-INVITE does not point at the relay:\n{}",
        invites[1].text
    );
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("bridged")),
            ("trigger", json!("refer_replaces")),
        ],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote_at(&datagrams, &caller, 0, reinvite_port);
    }
    h.stop();
}
