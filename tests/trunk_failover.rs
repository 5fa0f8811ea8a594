//! Failover between the gateways of one trunk, through the real engine: a gateway that
//! responds to a transfer INVITE with 503 is a gateway fault and the next gateway is tried,
//! while 486 is the remote hotline's answer and ends the transfer. Also checks that
//! `route` names the gateways and the Request-URI the engine then uses.

mod common;

use std::time::Duration;

use serde_json::Value;

use common::plans::{
    ControlClient, PlanGateway, SilentGateway, beijing_plan, hotline, remote_hotline,
    transfer_records,
};
use common::{EngineSettings, Harness, Sipp, first_received, render_scenario, scenario};

/// How long the caller stays on the call before its BYE; the transfer happens meanwhile.
const CALL_MS: &str = "5000";

/// Beijing with gateway `a` on remote hotline 0 (priority 1) and `b` on remote hotline 1
/// (priority 2), no health checks.
fn start(test: &str) -> (Harness, ControlClient) {
    start_with_gateways(
        test,
        &[PlanGateway::new("a", 0, 1), PlanGateway::new("b", 1, 2)],
    )
}

/// Starts the engine with Beijing on `gateways` and no health checks.
fn start_with_gateways(test: &str, gateways: &[PlanGateway]) -> (Harness, ControlClient) {
    let harness = Harness::start_with(test, |ports| EngineSettings {
        dialplan: Some(beijing_plan(ports, gateways, None)),
        ..EngineSettings::default()
    });
    let control = ControlClient::new(&harness.ports);
    (harness, control)
}

/// Runs one call that the agent transfers to Beijing, where remote hotline `remote`
/// picks up. Checks that the transfer was bridged and that every SIPp exited with
/// success, then returns the agent and the remote for checks on their messages, and the
/// transfer's final state.
fn bridged_transfer(
    harness: &Harness,
    control: &ControlClient,
    remote: u16,
) -> (Sipp, Sipp, Value) {
    let mut agent = harness.agent(&scenario("agent_answer.xml")).start();
    let mut answering = remote_hotline(harness, remote, &scenario("gw_answer.xml")).start();
    let mut caller = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", CALL_MS])
        .start();

    let calls = control.wait_talking(1, Duration::from_secs(10));
    let transfer = control.transfer_to_end(&calls[0], "beijing");
    assert_eq!(transfer["status"], "bridged", "{transfer}");

    answering.expect_success();
    caller.expect_success();
    agent.expect_success();
    (agent, answering, transfer)
}

#[test]
fn failover_503_tries_next_gateway() {
    let (harness, control) = start("failover_503_tries_next_gateway");
    let mut rejecting = remote_hotline(&harness, 0, &scenario("gw_reject.xml")).start();
    let (agent, _answering, transfer) = bridged_transfer(&harness, &control, 1);
    assert_eq!(transfer["sip_status"], 200, "{transfer}");
    rejecting.expect_success();

    let records = transfer_records(&harness, 1);
    assert_eq!(records[0]["gateway"], "beijing/b", "{}", records[0]);
    assert_eq!(records[0]["result"], "bridged", "{}", records[0]);
    let bye = first_received(&agent, "BYE").expect("the agent received a BYE");
    assert!(
        bye.text.contains("Call transferred"),
        "the agent's BYE does not say the call was transferred:\n{}",
        bye.text
    );
    harness.stop();
}

/// Gateway `a` is reached over TCP on a port nothing listens on: the refused connection
/// fails the INVITE's transaction at once, and gateway `b` gets the transfer.
#[test]
fn refused_tcp_gateway_fails_over() {
    let (harness, control) = start_with_gateways(
        "refused_tcp_gateway_fails_over",
        &[
            PlanGateway::new("a", 0, 1).tcp(),
            PlanGateway::new("b", 1, 2),
        ],
    );
    bridged_transfer(&harness, &control, 1);

    // Bridged while the caller was still on: waiting for Timer B (32 s) in place of the
    // transport error would have outlasted the call.
    let records = transfer_records(&harness, 1);
    assert_eq!(records[0]["gateway"], "beijing/b", "{}", records[0]);
    harness.stop();
}

#[test]
fn failover_not_on_486() {
    let (harness, control) = start("failover_not_on_486");
    let busy = render_scenario(
        &harness.dir,
        "gw_reject.xml",
        &[("SIP/2.0 503 Service Unavailable", "SIP/2.0 486 Busy Here")],
    );
    let mut agent = harness.agent(&scenario("agent_answer.xml")).start();
    let mut rejecting = remote_hotline(&harness, 0, &busy).start();
    let second = SilentGateway::bind(harness.ports.remote(1));
    let mut caller = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", CALL_MS])
        .start();

    let calls = control.wait_talking(1, Duration::from_secs(10));
    let transfer = control.transfer_to_end(&calls[0], "beijing");
    assert!(
        matches!(transfer["status"].as_str(), Some("failed" | "recalled")),
        "486 should fail the transfer back to the agent: {transfer}"
    );
    assert_eq!(transfer["sip_status"], 486, "{transfer}");
    rejecting.expect_success();

    // The caller is back with the agent until it hangs up.
    let after = control.calls();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["state"], "talking", "{after:?}");
    caller.expect_success();
    agent.expect_success();

    assert_eq!(
        second.count("INVITE"),
        0,
        "gateway b got an INVITE after a 486 from gateway a: {:?}",
        second.start_lines()
    );
    let records = transfer_records(&harness, 1);
    assert_eq!(records[0]["gateway"], "beijing/a", "{}", records[0]);
    assert_eq!(records[0]["sip_status"], 486, "{}", records[0]);
    let bye = first_received(&agent, "BYE").expect("the agent received a BYE");
    assert!(
        !bye.text.contains("Call transferred"),
        "the agent was released although the transfer failed:\n{}",
        bye.text
    );
    harness.stop();
}

#[test]
fn route_cli_matches_engine() {
    let (harness, control) = start("route_cli_matches_engine");
    let a = format!("127.0.0.1:{}", harness.ports.remote(0));
    let b = format!("127.0.0.1:{}", harness.ports.remote(1));

    let output = hotline(
        harness.dir.path(),
        &["route", "--keys", "*1", "--config", "engine.toml"],
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{text}");
    let first = text
        .find(&format!("beijing/a sip:{a}"))
        .unwrap_or_else(|| panic!("route does not list gateway a at {a}:\n{text}"));
    let second = text
        .find(&format!("beijing/b sip:{b}"))
        .unwrap_or_else(|| panic!("route does not list gateway b at {b}:\n{text}"));
    assert!(
        first < second,
        "gateway a (priority 1) is not listed first:\n{text}"
    );
    let request_uri = format!("sip:+861012345@{a}");
    assert!(
        text.contains(&format!(
            "result: routed to beijing through beijing/a: INVITE {request_uri}"
        )),
        "route does not end with the Request-URI {request_uri}:\n{text}"
    );

    let (_agent, remote, _transfer) = bridged_transfer(&harness, &control, 0);

    let invite = first_received(&remote, "INVITE").expect("remote 0 received the INVITE");
    assert_eq!(
        invite.start_line(),
        format!("INVITE {request_uri} SIP/2.0"),
        "the engine's Request-URI differs from the one route printed"
    );
    let to = invite.header("To").unwrap_or_default();
    assert!(
        to.starts_with(&format!("<{request_uri}>")),
        "To {to:?} differs from route's <{request_uri}>"
    );
    harness.stop();
}

/// Returns the names of the `name=value` pairs in a User-to-User payload.
fn payload_names(payload: &str) -> Vec<String> {
    payload
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn route_cli_user_to_user_matches_engine() {
    let (harness, control) = start("route_cli_user_to_user_matches_engine");
    let output = hotline(
        harness.dir.path(),
        &["route", "--keys", "*1", "--config", "engine.toml"],
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let preview = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("User-to-User: hex("))
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("route shows no User-to-User:\n{text}"));
    let previewed = payload_names(preview);

    let mut agent = harness.agent(&scenario("agent_answer.xml")).start();
    let mut remote = remote_hotline(&harness, 0, &scenario("gw_answer.xml")).start();
    let mut caller = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", CALL_MS])
        .start();
    let calls = control.wait_talking(1, Duration::from_secs(10));
    let body = serde_json::json!({
        "destination": "beijing", "ticket": "TJ20240501000123", "agent": "1001"
    });
    let (status, accepted) = control.post(&format!("/v1/calls/{}/transfer", calls[0]), Some(&body));
    assert_eq!(status, 202, "{accepted}");
    remote.expect_success();
    caller.expect_success();
    agent.expect_success();

    let invite = first_received(&remote, "INVITE").expect("remote 0 received the INVITE");
    let header = invite
        .header("User-to-User")
        .expect("the INVITE has User-to-User");
    let hex = header.split(';').next().unwrap_or_default();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let sent = String::from_utf8_lossy(&bytes).into_owned();
    for name in payload_names(&sent) {
        assert!(
            previewed.contains(&name),
            "the engine sends {name:?} in User-to-User ({sent}), route previews {preview}"
        );
    }
    harness.stop();
}
