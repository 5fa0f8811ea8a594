//! Gateway health through the real engine: OPTIONS probes configured in the dialplan mark
//! a gateway that stops responding down, a transfer then skips it without sending it an
//! INVITE, and it comes back up when it responds again.

mod common;

use std::time::Duration;

use common::plans::{
    ControlClient, HealthCheck, PlanGateway, SilentGateway, beijing_plan, checked_fingerprint,
    log_lines, remote_hotline, transfer_records,
};
use common::{
    EngineSettings, Harness, Ports, SippBuilder, TestDir, require_sipp, scenario, trace_messages,
    wait_until,
};

/// Probes every second with a 500 ms timeout: down after 2 failures, up after 1 success.
const FAST_PROBES: HealthCheck = HealthCheck {
    interval_secs: 1,
    timeout_ms: 500,
    failures_to_down: 2,
    successes_to_up: 1,
};
/// Maximum wait for a health change: a few probe intervals with a margin for a loaded
/// machine.
const HEALTH_WAIT: Duration = Duration::from_secs(10);

/// Waits until the engine logs a health change of `gateway` from `from` to `to` at info.
fn wait_transition(harness: &Harness, gateway: &str, from: &str, to: &str) {
    let gateway = format!("gateway={gateway}");
    let from = format!("from={from}");
    let to = format!("to={to}");
    let parts = ["INFO", "gateway health changed", &gateway, &from, &to];
    let logged = wait_until(HEALTH_WAIT, || {
        !log_lines(&harness.engine.log(), &parts).is_empty()
    });
    assert!(logged, "the engine did not log {parts:?}");
}

/// `gw_probed.xml` responds to probes and answers a call, each on its own Call-ID, SIPp to SIPp.
#[test]
fn gw_probed_meets_probes_and_call() {
    require_sipp();
    let dir = TestDir::new("gw_probed_meets_probes_and_call");
    let ports = Ports::allocate();
    let mut gateway = SippBuilder::agent(
        &dir,
        "gateway",
        &scenario("gw_probed.xml"),
        ports.remote(0),
        ports.remote_media(0),
    )
    .args(&["-m", "3"])
    .start();
    let mut prober = SippBuilder::caller(
        &dir,
        "prober",
        &scenario("options.xml"),
        ports.caller(),
        ports.caller_media(),
        ports.remote(0),
    )
    .args(&["-m", "2"])
    .start();
    prober.expect_success();

    let mut caller = SippBuilder::caller(
        &dir,
        "caller",
        &scenario("caller_bye.xml"),
        ports.second_caller(),
        ports.second_caller_media(),
        ports.remote(0),
    )
    .args(&["-d", "200"])
    .start();
    caller.expect_success();
    gateway.expect_success();
}

#[test]
fn down_gateway_is_skipped() {
    let harness = Harness::start_with("down_gateway_is_skipped", |ports| EngineSettings {
        dialplan: Some(beijing_plan(
            ports,
            &[PlanGateway::new("a", 0, 1), PlanGateway::new("b", 1, 2)],
            Some(FAST_PROBES),
        )),
        ..EngineSettings::default()
    });
    let control = ControlClient::new(&harness.ports);
    let fingerprint = checked_fingerprint(&harness.dir.join("engine.toml"));

    // Gateway a responds to two probes and exits. Gateway b responds to every probe and
    // answers the transfer.
    let mut first = remote_hotline(&harness, 0, &scenario("gw_probed.xml"))
        .args(&["-m", "2"])
        .start();
    let second = remote_hotline(&harness, 1, &scenario("gw_probed.xml"))
        .args(&["-m", "1000"])
        .start();
    wait_transition(&harness, "beijing/a", "unknown", "up");
    first.expect_success();
    let silent = SilentGateway::bind(harness.ports.remote(0));
    wait_transition(&harness, "beijing/a", "up", "down");

    let mut agent = harness.agent(&scenario("agent_answer.xml")).start();
    let mut caller = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", "4000"])
        .start();
    let calls = control.wait_talking(1, Duration::from_secs(10));
    let transfer = control.transfer_to_end(&calls[0], "beijing");
    assert_eq!(transfer["status"], "bridged", "{transfer}");
    caller.expect_success();
    agent.expect_success();

    assert_eq!(
        silent.count("INVITE"),
        0,
        "the down gateway a got an INVITE: {:?}",
        silent.start_lines()
    );
    assert!(
        silent.count("OPTIONS") >= 2,
        "the down gateway a is no longer probed: {:?}",
        silent.start_lines()
    );
    let invites = trace_messages(&second.messages())
        .into_iter()
        .filter(|message| message.received && message.start_line().starts_with("INVITE "))
        .count();
    assert_eq!(invites, 1, "gateway b got {invites} INVITEs");
    let records = transfer_records(&harness, 1);
    assert_eq!(records[0]["gateway"], "beijing/b", "{}", records[0]);

    let idle = wait_until(Duration::from_secs(5), || {
        control.get("/v1/stats").1["engine"]["active_calls"] == 0
    });
    let (status, stats) = control.get("/v1/stats");
    assert_eq!(status, 200, "{stats}");
    assert!(idle, "calls still active after both ended: {stats}");
    let engine = &stats["engine"];
    assert_eq!(engine["transfers_started"], 1, "{stats}");
    assert_eq!(engine["transfers_bridged"], 1, "{stats}");
    assert_eq!(engine["transfers_failed"], 0, "{stats}");
    assert_eq!(engine["transfers_active"], 0, "{stats}");
    assert_eq!(engine["plan_version"], fingerprint.as_str(), "{stats}");
    assert_eq!(stats["control"]["transfers_accepted"], 1, "{stats}");

    // One answered probe brings gateway a back (successes_to_up = 1).
    drop(silent);
    let mut recovered = remote_hotline(&harness, 0, &scenario("gw_probed.xml"))
        .args(&["-m", "1"])
        .start();
    wait_transition(&harness, "beijing/a", "down", "up");
    recovered.expect_success();
    drop(second);
    harness.stop();
}
