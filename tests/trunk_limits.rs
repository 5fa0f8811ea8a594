//! Channel limits of gateways (`channels` in the dialplan), through the real engine. A
//! full gateway is skipped for the next one of the trunk. A transfer whose trunk has no
//! free channel left is refused while the caller stays with the agent.

mod common;

use std::time::Duration;

use serde_json::Value;

use common::plans::{ControlClient, PlanGateway, beijing_plan, remote_hotline, transfer_records};
use common::{EngineSettings, Harness, first_received, scenario};

/// How long each caller stays on the call before its BYE; both transfers happen meanwhile.
const CALL_MS: &str = "6000";

fn start(test: &str, gateways: &[PlanGateway]) -> (Harness, ControlClient) {
    let harness = Harness::start_with(test, |ports| EngineSettings {
        dialplan: Some(beijing_plan(ports, gateways, None)),
        ..EngineSettings::default()
    });
    let control = ControlClient::new(&harness.ports);
    (harness, control)
}

/// Finds the record of the transfer of the call whose A-leg Call-ID is `call`.
fn record_of<'a>(records: &'a [Value], call: &str) -> &'a Value {
    records
        .iter()
        .find(|record| record["call_id"] == call)
        .unwrap_or_else(|| panic!("no transfer record for {call}: {records:?}"))
}

#[test]
fn full_gateway_spills_to_next() {
    let (harness, control) = start(
        "full_gateway_spills_to_next",
        &[
            PlanGateway::new("a", 0, 1).channels(1),
            PlanGateway::new("b", 1, 2),
        ],
    );
    let mut agent = harness
        .agent(&scenario("agent_answer.xml"))
        .args(&["-m", "2"])
        .start();
    let mut first_remote = remote_hotline(&harness, 0, &scenario("gw_answer.xml")).start();
    let mut second_remote = remote_hotline(&harness, 1, &scenario("gw_answer.xml")).start();
    let mut caller = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", CALL_MS])
        .start();
    let mut second_caller = harness
        .second_caller(&scenario("caller_bye.xml"))
        .args(&["-d", CALL_MS])
        .start();

    // Both transfers start before either is answered: the first takes gateway a's only
    // channel before its 202, so the second finds a full.
    let calls = control.wait_talking(2, Duration::from_secs(10));
    let mut ids = Vec::new();
    for call in &calls {
        let (status, body) = control.transfer(call, "beijing");
        assert_eq!(status, 202, "transfer of {call} not accepted: {body}");
        ids.push(body["transfer"].as_str().expect("transfer id").to_owned());
    }
    for id in &ids {
        let transfer = control.wait_transfer_final(id, Duration::from_secs(15));
        assert_eq!(transfer["status"], "bridged", "{transfer}");
    }

    first_remote.expect_success();
    second_remote.expect_success();
    caller.expect_success();
    second_caller.expect_success();
    agent.expect_success();

    let records = transfer_records(&harness, 2);
    assert_eq!(record_of(&records, &calls[0])["gateway"], "beijing/a");
    assert_eq!(record_of(&records, &calls[1])["gateway"], "beijing/b");
    harness.stop();
}

/// Fills gateway a's only channel with one transfer, then transfers a second call and
/// checks that it stays with the agent. Returns the status and body of the second
/// transfer request.
fn transfer_on_full_trunk(test: &str) -> (u16, Value) {
    let (harness, control) = start(test, &[PlanGateway::new("a", 0, 1).channels(1)]);
    let mut agent = harness
        .agent(&scenario("agent_answer.xml"))
        .args(&["-m", "2"])
        .start();
    let mut remote = remote_hotline(&harness, 0, &scenario("gw_answer.xml")).start();
    let mut caller = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", CALL_MS])
        .start();
    let mut second_caller = harness
        .second_caller(&scenario("caller_bye.xml"))
        .args(&["-d", CALL_MS])
        .start();

    let calls = control.wait_talking(2, Duration::from_secs(10));
    let first = control.transfer_to_end(&calls[0], "beijing");
    assert_eq!(first["status"], "bridged", "{first}");

    // Gateway a's only channel carries the first call: the second transfer is refused,
    // either at once or as a failed transfer.
    let (status, body) = control.transfer(&calls[1], "beijing");
    if status == 202 {
        let id = body["transfer"].as_str().expect("transfer id");
        let second = control.wait_transfer_final(id, Duration::from_secs(15));
        assert!(
            matches!(second["status"].as_str(), Some("failed" | "recalled")),
            "{second}"
        );
        assert_eq!(second["cause"], "no gateway available", "{second}");
    } else {
        assert!(
            status >= 400,
            "transfer with no free channel got {status}: {body}"
        );
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("beijing/a"),
            "the refusal does not name the full gateway: {body}"
        );
    }
    let after = control.calls();
    let stays = after
        .iter()
        .find(|call| call["call"] == calls[1].as_str())
        .unwrap_or_else(|| panic!("the second call ended: {after:?}"));
    assert_eq!(stays["state"], "talking", "{stays}");

    remote.expect_success();
    caller.expect_success();
    second_caller.expect_success();
    agent.expect_success();

    // The agent got a BYE for each call: "transferred" for the first, the caller's own
    // hang-up relayed for the second.
    let byes: Vec<String> = common::trace_messages(&agent.messages())
        .into_iter()
        .filter(|message| message.received && message.start_line().starts_with("BYE"))
        .map(|message| message.text)
        .collect();
    assert_eq!(byes.len(), 2, "{byes:?}");
    let transferred = byes
        .iter()
        .filter(|bye| bye.contains("Call transferred"))
        .count();
    assert_eq!(transferred, 1, "{byes:?}");
    assert!(first_received(&remote, "INVITE").is_some());
    harness.stop();
    (status, body)
}

#[test]
fn full_trunk_refuses_transfer() {
    let (status, body) = transfer_on_full_trunk("full_trunk_refuses_transfer");
    assert_ne!(status, 202, "{body}");
}

#[test]
fn full_trunk_refusal_is_503() {
    let (status, body) = transfer_on_full_trunk("full_trunk_refusal_is_503");
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("beijing/a all 1 channels in use"),
        "the refusal does not say in words why beijing/a was skipped: {body}"
    );
}
