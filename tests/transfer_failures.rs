//! Transfers that fail, started with `*1` from the agent's RFC 4733 captures: the remote
//! hotline rejects (486, 603), never answers, cannot be reached, or its gateways are down.
//! The caller must always end up with the agent again and hear it (首接负责: the first
//! hotline keeps the caller). Also a failover to a second gateway, the caller hanging up
//! while the remote rings, and the hop limit.
//!
//! Every agent here echoes RTP, so hearing the agent again means that the caller's own
//! audio comes back to it after the failure.

mod common;

use std::net::UdpSocket;

use common::pcap::Datagram;
use common::transfer::{
    TELEPHONE_EVENT, all_received, assert_record, drain_udp_now, is_sip, last_index,
};
use common::{EngineSettings, Harness, Sipp, default_dialplan, render_scenario, scenario};
use serde_json::json;

/// `xfer_remote_reject.xml` made to reject with `status_line`, such as `603 Decline`.
fn remote_reject(h: &Harness, status_line: &str) -> std::path::PathBuf {
    render_scenario(
        &h.dir,
        "xfer_remote_reject.xml",
        &[("SIP/2.0 486 Busy Here", &format!("SIP/2.0 {status_line}"))],
    )
}

/// Builds the default plan with a second Beijing gateway, `beijing/backup` on remote hotline 2,
/// tried after `beijing/lab` fails.
fn plan_with_backup_gateway(ports: &common::Ports) -> String {
    let primary = format!("address = \"127.0.0.1:{}\"\n", ports.remote(0));
    let plan = default_dialplan(ports);
    assert!(plan.contains(&primary), "the default plan changed");
    plan.replacen(
        &primary,
        &format!(
            "{primary}priority = 1\n\
             [trunk.beijing.gateway.backup]\n\
             address = \"127.0.0.1:{}\"\n\
             priority = 2\n",
            ports.remote(2)
        ),
        1,
    )
}

/// Starts the echoing agent that presses `*1` and the caller that hangs up after
/// `hold_ms`.
fn start_agent_and_caller(h: &Harness, hold_ms: u64) -> (Sipp, Sipp) {
    let agent = h
        .agent(&scenario("xfer_agent_dtmf.xml"))
        .args(&["-rtp_echo"])
        .start();
    let caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", &hold_ms.to_string()])
        .start();
    (agent, caller)
}

/// Like [`start_agent_and_caller`], with a caller that restarts its 7 s of audio 5 s
/// after the answer and hangs up `hold_ms` after that, for failures that take seconds.
fn start_agent_and_long_caller(h: &Harness, hold_ms: u64) -> (Sipp, Sipp) {
    let agent = h
        .agent(&scenario("xfer_agent_dtmf.xml"))
        .args(&["-rtp_echo"])
        .start();
    let caller_scenario = render_scenario(
        &h.dir,
        "xfer_caller.xml",
        &[(
            "  <pause/>",
            "  <pause milliseconds=\"5000\"/>\n  <nop>\n    <action>\n      \
             <exec play_pcap_audio=\"pcap/g711a.pcap\"/>\n    </action>\n  </nop>\n  <pause/>",
        )],
    );
    let caller = h
        .caller(&caller_scenario)
        .args(&["-d", &hold_ms.to_string()])
        .start();
    (agent, caller)
}

/// Asserts that the agent stayed in the call until the caller hung up: its only BYE is
/// the caller's, without the Reason the engine puts on a completed transfer.
fn assert_agent_kept_call(caller: &Sipp, agent: &Sipp) {
    let byes = all_received(agent, "BYE");
    assert_eq!(
        byes.len(),
        1,
        "the agent should get one BYE:\n{}",
        agent.report()
    );
    assert!(
        byes[0].header("Reason").is_none(),
        "the agent was released as if the transfer completed:\n{}",
        byes[0].text
    );
    assert!(
        all_received(caller, "BYE").is_empty(),
        "the caller was hung up on:\n{}",
        caller.report()
    );
}

/// Asserts the record of a transfer that failed back to the agent with `status`.
fn assert_failed_record(h: &Harness, status: u16) {
    let records = h.transfer_records(1);
    let record = &records[0];
    assert!(
        record["result"] == "failed" || record["result"] == "recalled",
        "result is neither failed nor recalled in {record:#}"
    );
    assert_record(
        record,
        &[
            ("trigger", json!("dtmf")),
            ("destination", json!("beijing")),
            ("sip_status", json!(status)),
        ],
    );
}

/// Returns the index of the agent's last telephone-event packet: the end of its `*1`.
fn last_key_index(h: &Harness, datagrams: &[Datagram]) -> usize {
    last_index(datagrams, |datagram| {
        datagram.source_port == h.ports.agent_media()
            && datagram.rtp_payload_type() == Some(TELEPHONE_EVENT)
    })
    .expect("the agent sent no telephone-event packet")
}

/// Runs a transfer that the remote hotline rejects with `status_line` and checks that
/// the caller is back with the agent.
fn rejected_transfer_returns_to_agent(test: &str, status_line: &str, status: u16) {
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h.remote(0, &remote_reject(&h, status_line)).start();
    let (mut agent, mut caller) = start_agent_and_caller(&h, 6000);
    caller.expect_success();
    agent.expect_success();
    remote.expect_success();

    assert_agent_kept_call(&caller, &agent);
    assert_failed_record(&h, status);
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        let prefix = format!("SIP/2.0 {status}");
        let rejected = last_index(&datagrams, |datagram| {
            is_sip(datagram, h.ports.remote(0), &prefix)
        })
        .expect("the capture has the remote's rejection");
        h.assert_caller_back_with_agent(&datagrams, &caller, &agent, rejected);
    }
    h.stop();
}

#[test]
fn remote_busy_returns_caller_to_agent() {
    rejected_transfer_returns_to_agent("remote_busy_returns_caller_to_agent", "486 Busy Here", 486);
}

#[test]
fn remote_decline_returns_caller_to_agent() {
    rejected_transfer_returns_to_agent(
        "remote_decline_returns_caller_to_agent",
        "603 Decline",
        603,
    );
}

/// The remote rings past Beijing's 4 s ring timeout: it gets CANCEL and the caller goes
/// back to the agent.
#[test]
fn remote_no_answer_is_cancelled() {
    let test = "remote_no_answer_is_cancelled";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h.remote(0, &scenario("xfer_remote_ring.xml")).start();
    let (mut agent, mut caller) = start_agent_and_long_caller(&h, 4000);
    caller.expect_success();
    agent.expect_success();
    remote.expect_success();

    assert_eq!(
        all_received(&remote, "CANCEL").len(),
        1,
        "{}",
        remote.report()
    );
    assert_agent_kept_call(&caller, &agent);
    assert_failed_record(&h, 480);
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        let cancelled = last_index(&datagrams, |datagram| {
            is_sip(datagram, h.ports.engine(), "CANCEL")
        })
        .expect("the capture has the engine's CANCEL");
        h.assert_caller_back_with_agent(&datagrams, &caller, &agent, cancelled);
    }
    h.stop();
}

/// Nothing listens on the remote's port. With T1 = 50 ms, timer B (64*T1) ends the INVITE
/// after 3.2 s and the caller goes back to the agent.
#[test]
fn remote_unreachable_returns_caller_to_agent() {
    let test = "remote_unreachable_returns_caller_to_agent";
    let settings = EngineSettings {
        t1_ms: 50,
        t2_ms: 400,
        ..EngineSettings::default()
    };
    let h = Harness::start(test, settings);
    let capture = h.capture(test);
    let (mut agent, mut caller) = start_agent_and_long_caller(&h, 4000);
    caller.expect_success();
    agent.expect_success();

    assert_agent_kept_call(&caller, &agent);
    let records = h.transfer_records(1);
    let status = &records[0]["sip_status"];
    assert!(
        *status == 408 || *status == 503,
        "an unreachable remote should give 408 or 503: {:#}",
        records[0]
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        let last_invite = last_index(&datagrams, |datagram| {
            datagram.destination_port == h.ports.remote(0)
                && is_sip(datagram, h.ports.engine(), "INVITE")
        })
        .expect("the capture has the INVITE to the remote");
        h.assert_caller_back_with_agent(&datagrams, &caller, &agent, last_invite);
    }
    h.stop();
}

/// Beijing's first gateway answers 503: the INVITE goes to the second one, which
/// answers, and the caller talks to it.
#[test]
fn failover_to_second_gateway() {
    let test = "failover_to_second_gateway";
    let h = Harness::start_with(test, |ports| EngineSettings {
        dialplan: Some(plan_with_backup_gateway(ports)),
        ..EngineSettings::default()
    });
    let capture = h.capture(test);
    let mut first = h
        .remote(0, &remote_reject(&h, "503 Service Unavailable"))
        .start();
    let mut second = h
        .remote(2, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let agent_scenario = scenario("xfer_agent_dtmf.xml");
    let mut agent = h.agent(&agent_scenario).start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    agent.expect_success();
    caller.expect_success();
    first.expect_success();
    second.expect_success();

    common::transfer::assert_bridged_ladder(&caller, &agent, &second);
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("bridged")),
            ("gateway", json!("beijing/backup")),
            ("sip_status", json!(200)),
        ],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &second, 2);
    }
    h.stop();
}

/// Both Beijing gateways answer 503: the caller goes back to the agent.
#[test]
fn all_gateways_down_returns_caller() {
    let test = "all_gateways_down_returns_caller";
    let h = Harness::start_with(test, |ports| EngineSettings {
        dialplan: Some(plan_with_backup_gateway(ports)),
        ..EngineSettings::default()
    });
    let capture = h.capture(test);
    let unavailable = remote_reject(&h, "503 Service Unavailable");
    let mut first = h.remote(0, &unavailable).start();
    let mut second = h.remote(2, &unavailable).start();
    let (mut agent, mut caller) = start_agent_and_caller(&h, 6000);
    caller.expect_success();
    agent.expect_success();
    first.expect_success();
    second.expect_success();

    assert_agent_kept_call(&caller, &agent);
    assert_failed_record(&h, 503);
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        let rejected = last_index(&datagrams, |datagram| {
            is_sip(datagram, h.ports.remote(2), "SIP/2.0 503")
        })
        .expect("the capture has the second gateway's 503");
        h.assert_caller_back_with_agent(&datagrams, &caller, &agent, rejected);
    }
    h.stop();
}

/// The caller hangs up while the remote rings: the remote gets CANCEL, the agent BYE, and
/// the record says cancelled.
#[test]
fn caller_hangs_up_while_remote_rings() {
    let h = Harness::start(
        "caller_hangs_up_while_remote_rings",
        EngineSettings::default(),
    );
    let mut remote = h.remote(0, &scenario("xfer_remote_ring.xml")).start();
    let (mut agent, mut caller) = start_agent_and_caller(&h, 3000);
    caller.expect_success();
    agent.expect_success();
    remote.expect_success();

    assert_eq!(
        all_received(&remote, "CANCEL").len(),
        1,
        "{}",
        remote.report()
    );
    assert_eq!(all_received(&agent, "BYE").len(), 1, "{}", agent.report());
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("cancelled")),
            ("destination", json!("beijing")),
        ],
    );
    h.stop();
}

/// A caller whose INVITE already lists four hotlines in History-Info (the default
/// `transfer.hop_limit`) cannot be transferred again: no INVITE reaches the remote and
/// the caller stays with the agent.
#[test]
fn hop_limit_rejects_transfer() {
    let test = "hop_limit_rejects_transfer";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let remote = UdpSocket::bind(("127.0.0.1", h.ports.remote(0))).expect("bind the remote port");
    let caller_scenario = render_scenario(
        &h.dir,
        "xfer_caller.xml",
        &[(
            "Subject: 12345 hotline call",
            "Subject: 12345 hotline call\n      \
             History-Info: <sip:+861012345@beijing.example>;index=1,\
             <sip:+862212345@tianjin.example>;index=1.1\n      \
             History-Info: <sip:+8631112345@shijiazhuang.example>;index=1.1.1,\
             <sip:+8631212345@baoding.example>;index=1.1.1.1",
        )],
    );
    let mut agent = h
        .agent(&scenario("xfer_agent_dtmf.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut caller = h.caller(&caller_scenario).args(&["-d", "5000"]).start();
    caller.expect_success();
    agent.expect_success();

    let received = drain_udp_now(&remote);
    assert!(
        received.is_empty(),
        "the remote hotline received {} datagrams, the first:\n{}",
        received.len(),
        String::from_utf8_lossy(&received[0])
    );
    assert_agent_kept_call(&caller, &agent);
    assert!(
        h.engine
            .log()
            .contains("the call has already passed 4 hotlines"),
        "the engine did not log the hop limit:\n{}",
        h.engine.log()
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        let keys = last_key_index(&h, &datagrams);
        h.assert_caller_back_with_agent(&datagrams, &caller, &agent, keys);
    }
    h.stop();
}

/// The record of a transfer that failed while the agent was still on the line says
/// `failed`, as the record format documents; `recalled` is for a caller sent back to an
/// agent who had left.
#[test]
fn rejected_transfer_record_says_failed() {
    let h = Harness::start(
        "rejected_transfer_record_says_failed",
        EngineSettings::default(),
    );
    let mut remote = h.remote(0, &remote_reject(&h, "486 Busy Here")).start();
    let (mut agent, mut caller) = start_agent_and_caller(&h, 3000);
    caller.expect_success();
    agent.expect_success();
    remote.expect_success();
    let records = h.transfer_records(1);
    assert_record(&records[0], &[("result", json!("failed"))]);
    h.stop();
}

/// The agent hangs up right after `*1` and the remote then rejects: the engine calls the
/// agent back and bridges the caller with it. A second SIPp takes the call-back on the
/// agent's port.
#[test]
fn agent_called_back_after_failure() {
    let test = "agent_called_back_after_failure";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(0, &remote_reject(&h, "486 Busy Here"))
        .args(&["-d", "2000"])
        .start();
    let mut agent = h.agent(&scenario("xfer_agent_dtmf_bye.xml")).start();
    let caller_scenario = scenario("xfer_caller.xml");
    let mut caller = h.caller(&caller_scenario).args(&["-d", "6500"]).start();
    agent.expect_success();
    let mut callback = common::SippBuilder::agent(
        &h.dir,
        "callback",
        &scenario("agent_answer.xml"),
        h.ports.agent(),
        h.ports.agent_media(),
    )
    .args(&["-rtp_echo"])
    .start();
    caller.expect_success();
    callback.expect_success();
    remote.expect_success();

    assert!(
        all_received(&caller, "BYE").is_empty(),
        "the caller was hung up on:\n{}",
        caller.report()
    );
    assert_eq!(
        all_received(&callback, "BYE").len(),
        1,
        "the called-back agent should get the caller's BYE:\n{}",
        callback.report()
    );
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[("sip_status", json!(486)), ("trigger", json!("dtmf"))],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        let rejected = last_index(&datagrams, |datagram| {
            is_sip(datagram, h.ports.remote(0), "SIP/2.0 486")
        })
        .expect("the capture has the remote's rejection");
        h.assert_caller_back_with_agent(&datagrams, &caller, &callback, rejected);
    }
    h.stop();
}

/// The record of a transfer whose caller was called back to an agent who had left says
/// `recalled`.
#[test]
fn called_back_record_says_recalled() {
    let h = Harness::start(
        "called_back_record_says_recalled",
        EngineSettings::default(),
    );
    let mut remote = h
        .remote(0, &remote_reject(&h, "486 Busy Here"))
        .args(&["-d", "2000"])
        .start();
    let mut agent = h.agent(&scenario("xfer_agent_dtmf_bye.xml")).start();
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "5000"])
        .start();
    agent.expect_success();
    let mut callback = common::SippBuilder::agent(
        &h.dir,
        "callback",
        &scenario("agent_answer.xml"),
        h.ports.agent(),
        h.ports.agent_media(),
    )
    .start();
    caller.expect_success();
    callback.expect_success();
    remote.expect_success();
    let records = h.transfer_records(1);
    assert_record(&records[0], &[("result", json!("recalled"))]);
    h.stop();
}
