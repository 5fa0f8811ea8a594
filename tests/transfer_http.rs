//! Transfers ordered through the control API: `POST /v1/calls/{call}/transfer` on a call
//! between a SIPp caller and agent, followed with `GET /v1/transfers/{id}` until the
//! caller is bridged to the remote hotline. Also the API's errors for an unknown call, an
//! unknown destination and a matter the destination does not accept.

mod common;

use std::time::Duration;

use common::transfer::{assert_bridged_ladder, assert_record};
use common::{EngineSettings, Harness, Sipp, scenario};
use serde_json::{Value, json};

/// Starts the remote, an echoing agent and a caller that hangs up after 6 s, waits until
/// the call is up and returns them with the call's id (the caller's Call-ID).
fn start_call(h: &Harness) -> (Sipp, Sipp, Sipp, String) {
    let remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let agent = h
        .agent(&scenario("agent_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    h.wait_call_up(&caller);

    let (status, calls) = h.control("GET", "/v1/calls", None);
    assert_eq!(status, 200, "GET /v1/calls: {calls}");
    let calls = calls.as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 1, "GET /v1/calls: {calls:?}");
    let call = calls[0]["call"]
        .as_str()
        .expect("the call has an id")
        .to_owned();
    (remote, agent, caller, call)
}

fn transfer_path(call: &str) -> String {
    format!("/v1/calls/{}/transfer", call.replace('/', "%2F"))
}

/// The agent's platform transfers a social-insurance matter to Beijing: 202, the status
/// reaches bridged, and the record carries the matter, ticket and agent. The call list
/// shows the caller's and the agent's legs before the transfer.
#[test]
fn http_transfer_bridges_to_beijing() {
    let test = "http_transfer_bridges_to_beijing";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let (mut remote, mut agent, mut caller, call) = start_call(&h);

    let (_, calls) = h.control("GET", "/v1/calls", None);
    let listed = &calls[0];
    assert_eq!(listed["state"], "talking", "{listed:#}");
    let legs: Vec<&Value> = listed["legs"].as_array().into_iter().flatten().collect();
    let roles: Vec<&str> = legs.iter().filter_map(|leg| leg["leg"].as_str()).collect();
    assert!(
        roles.contains(&"a") && roles.contains(&"b"),
        "legs: {listed:#}"
    );
    for leg in &legs {
        assert_eq!(leg["state"], "confirmed", "{listed:#}");
    }
    let a_leg = legs.iter().find(|leg| leg["leg"] == "a").expect("leg a");
    assert_eq!(a_leg["call_id"], json!(call), "{listed:#}");

    let order = json!({
        "destination": "beijing",
        "matter": "social_insurance",
        "ticket": "T1",
        "agent": "1001",
    });
    let (status, accepted) = h.control("POST", &transfer_path(&call), Some(&order));
    assert_eq!(status, 202, "POST transfer: {accepted}");
    let id = accepted["transfer"]
        .as_str()
        .expect("the 202 names the transfer")
        .to_owned();
    let bridged = h.wait_transfer_status(&id, "bridged", Duration::from_secs(10));
    assert_eq!(bridged["trigger"], "http", "{bridged:#}");
    assert_eq!(bridged["sip_status"], 200, "{bridged:#}");
    assert!(bridged["bridged_at"].is_string(), "{bridged:#}");

    agent.expect_success();
    caller.expect_success();
    remote.expect_success();
    assert_bridged_ladder(&caller, &agent, &remote);
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[
            ("result", json!("bridged")),
            ("trigger", json!("http")),
            ("destination", json!("beijing")),
            ("matter", json!("social_insurance")),
            ("ticket", json!("T1")),
            ("agent", json!("1001")),
            ("transfer", json!(id)),
        ],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &remote, 0);
    }
    h.stop();
}

/// Errors before any transfer starts: an unknown call gets 404, an unknown destination
/// 422, and housing to Beijing, which rejects it, 409 with Beijing's scope text. With
/// `force: true` the housing matter is transferred anyway.
#[test]
fn http_errors_then_forced_transfer() {
    let test = "http_errors_then_forced_transfer";
    let h = Harness::start(test, EngineSettings::default());
    let (mut remote, mut agent, mut caller, call) = start_call(&h);

    let order = json!({"destination": "beijing", "matter": "social_insurance"});
    let (status, error) = h.control(
        "POST",
        &transfer_path("no-such-call@127.0.0.1"),
        Some(&order),
    );
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["code"], "unknown_call", "{error}");

    let order = json!({"destination": "shanghai"});
    let (status, error) = h.control("POST", &transfer_path(&call), Some(&order));
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["code"], "unknown_destination", "{error}");

    let order = json!({"destination": "beijing", "matter": "housing"});
    let (status, error) = h.control("POST", &transfer_path(&call), Some(&order));
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["code"], "matter_not_accepted", "{error}");
    assert_eq!(
        error["scope"], "Beijing takes no housing matters from other cities",
        "{error}"
    );
    assert!(
        h.transfer_records_now().is_empty(),
        "a refused order wrote a record"
    );

    let order = json!({"destination": "beijing", "matter": "housing", "force": true});
    let (status, accepted) = h.control("POST", &transfer_path(&call), Some(&order));
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["transfer"]
        .as_str()
        .expect("transfer id")
        .to_owned();
    h.wait_transfer_status(&id, "bridged", Duration::from_secs(10));

    agent.expect_success();
    caller.expect_success();
    remote.expect_success();
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[("result", json!("bridged")), ("matter", json!("housing"))],
    );
    h.stop();
}
