//! Loading and reloading the dialplan in the running engine. An invalid plan stops
//! startup with `file:line:column` problems. SIGHUP and `POST /v1/reload` put a new plan
//! in force without disturbing calls, an invalid plan never replaces the one in force,
//! and calls keep the plan they started with.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::plans::{
    ControlClient, PlanGateway, beijing_plan, checked_fingerprint, hotline, log_lines,
    remote_hotline, transfer_records, write_plan,
};
use common::{
    Engine, EngineSettings, Harness, Ports, TestDir, first_received, require_sipp, scenario,
    tcp_port_taken, wait_until,
};

/// A plan with four problems that `check` finds in one pass.
const INVALID_PLAN: &str = "\
[keys.map]
\"*1\" = \"beijing\"

[destination.beijing]
name = \"北京市热线\"
name_en = \"Beijing 12345 hotline\"
area_code = \"10\"
trunk = \"beijing\"
ring_timeout_secs = 0
colour = \"red\"

[trunk.beijing]
[trunk.beijing.gateway.a]
address = \"sips:127.0.0.1:5081\"
";

/// The lines `check` prints for [`INVALID_PLAN`] written as `dialplan.toml`.
const INVALID_PLAN_PROBLEMS: [&str; 4] = [
    "dialplan.toml:7:13: destination.beijing.area_code must be 0 followed by 2 or 3 digits, \
     such as \"010\" or \"0311\", found \"10\"",
    "dialplan.toml:9:21: destination.beijing.ring_timeout_secs must be between 1 and 600, \
     found 0",
    "dialplan.toml:10:1: unknown key `colour` in [destination.beijing], expected one of: \
     name, name_en, area_code, service_number, trunk, user, numbers, sip_users, names, \
     ring_timeout_secs, schedule, accepts, rejects",
    "dialplan.toml:14:11: trunk.beijing.gateway.a.address \"sips:127.0.0.1:5081\" is not a \
     usable gateway address: sips: needs TLS, which the engine does not have",
];

/// How long the callers of [`reload_keeps_calls_up`] hold each call, in milliseconds.
const HOLD_MS: &str = "8000";
/// Calls in progress while the plan is reloaded.
const LOAD_CALLS: &str = "50";

fn plan_on_remote(ports: &Ports, remote: u16) -> String {
    beijing_plan(ports, &[PlanGateway::new("a", remote, 1)], None)
}

/// Adds an HTTP name for Tianjin to `plan`, which changes its fingerprint.
fn with_tianjin_name(plan: &str, name: &str) -> String {
    let changed = plan.replace(
        "trunk = \"tianjin\"\n",
        &format!("trunk = \"tianjin\"\nnames = [\"{name}\"]\n"),
    );
    assert_ne!(changed, plan, "the plan has no Tianjin destination");
    changed
}

/// Writes the engine configuration and [`INVALID_PLAN`], runs `run` on them and returns
/// (exit code, standard error). The engine is killed if it is still running after 10 s.
fn run_invalid_plan(test: &str) -> (TestDir, Ports, Option<i32>, String) {
    let dir = TestDir::new(test);
    let ports = Ports::allocate();
    fs::write(
        dir.join("engine.toml"),
        EngineSettings::default().to_toml(&ports),
    )
    .expect("write engine.toml");
    write_plan(dir.path(), INVALID_PLAN);
    let stderr = dir.join("run.err");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline-b2bua"))
        .args(["run", "--config", "engine.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).expect("create run.err"))
        .spawn()
        .expect("start the engine binary");

    let mut status = None;
    wait_until(Duration::from_secs(10), || {
        status = child.try_wait().expect("poll the engine");
        status.is_some()
    });
    let bound = tcp_port_taken(ports.engine());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        status.is_some(),
        "the engine started with an invalid dialplan"
    );
    assert!(
        !bound,
        "the engine bound its SIP port with an invalid dialplan"
    );
    let code = status.and_then(|status| status.code());
    let text = fs::read_to_string(&stderr).unwrap_or_default();
    (dir, ports, code, text)
}

#[test]
fn invalid_plan_stops_startup() {
    let (dir, _ports, code, stderr) = run_invalid_plan("invalid_plan_stops_startup");
    assert!(
        code.is_some_and(|code| code != 0),
        "run exited with {code:?} on an invalid dialplan:\n{stderr}"
    );
    for problem in INVALID_PLAN_PROBLEMS {
        let location = problem.split(": ").next().unwrap_or(problem);
        assert!(
            stderr.contains(location),
            "run does not report {location}:\n{stderr}"
        );
    }

    let output = hotline(dir.path(), &["check", "--config", "engine.toml"]);
    let check_stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = check_stderr.lines().collect();
    let mut expected = INVALID_PLAN_PROBLEMS.to_vec();
    expected.push("engine.toml: invalid dialplan, 4 problems");
    assert_eq!(lines, expected);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn invalid_plan_run_prints_like_check() {
    let (_dir, _ports, code, stderr) = run_invalid_plan("invalid_plan_run_prints_like_check");
    let lines: Vec<&str> = stderr.lines().collect();
    for problem in INVALID_PLAN_PROBLEMS {
        assert!(
            lines.contains(&problem),
            "run does not print the line {problem:?}:\n{stderr}"
        );
    }
    assert_eq!(code, Some(2), "run on an invalid dialplan:\n{stderr}");
}

/// Starts the engine with its relay on 127.0.0.50, ports 40000-40999, so that many calls
/// fit: the relay range of a test's port block holds 16 pairs.
fn start_for_load(test: &str) -> Harness {
    require_sipp();
    let dir = TestDir::new(test);
    let ports = Ports::allocate();
    let settings = EngineSettings {
        dialplan: Some(plan_on_remote(&ports, 0)),
        ..EngineSettings::default()
    };
    let config = settings
        .to_toml(&ports)
        .replace("address = \"127.0.0.1\"", "address = \"127.0.0.50\"")
        .replace(
            &format!("port_min = {}", ports.relay_min()),
            "port_min = 40000",
        )
        .replace(
            &format!("port_max = {}", ports.relay_max()),
            "port_max = 40999",
        );
    fs::write(dir.join("engine.toml"), config).expect("write engine.toml");
    write_plan(dir.path(), settings.dialplan.as_deref().unwrap_or_default());
    let engine = Engine::launch(&dir, &ports);
    Harness {
        engine,
        settings,
        ports,
        dir,
    }
}

/// Asserts that the engine logged the plan with `fingerprint` as in force, at info.
fn assert_in_force(harness: &Harness, fingerprint: &str) {
    let field = format!("fingerprint={fingerprint}");
    let parts = ["INFO", "dialplan in force", field.as_str()];
    let logged = wait_until(Duration::from_secs(5), || {
        !log_lines(&harness.engine.log(), &parts).is_empty()
    });
    assert!(logged, "the engine did not log {parts:?}");
}

#[test]
fn reload_keeps_calls_up() {
    let harness = start_for_load("reload_keeps_calls_up");
    let control = ControlClient::new(&harness.ports);
    let config = harness.dir.join("engine.toml");
    let plan = plan_on_remote(&harness.ports, 0);

    let mut agent = harness
        .agent(&scenario("agent_answer.xml"))
        .args(&["-m", LOAD_CALLS])
        .start();
    let mut callers = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&[
            "-m", LOAD_CALLS, "-l", LOAD_CALLS, "-r", "25", "-d", HOLD_MS,
        ])
        .start();
    let all_up = wait_until(Duration::from_secs(10), || {
        control.get("/v1/stats").1["engine"]["active_calls"] == 50
    });
    assert!(all_up, "50 calls not up: {}", control.get("/v1/stats").1);

    write_plan(harness.dir.path(), &with_tianjin_name(&plan, "tj-hup"));
    let by_signal = checked_fingerprint(&config);
    harness.engine.signal("HUP");
    assert_in_force(&harness, &by_signal);

    write_plan(harness.dir.path(), &with_tianjin_name(&plan, "tj-http"));
    let by_request = checked_fingerprint(&config);
    assert_ne!(by_request, by_signal);
    let (status, body) = control.reload();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fingerprint"], by_request.as_str(), "{body}");
    assert_in_force(&harness, &by_request);
    let (_, stats) = control.get("/v1/stats");
    assert_eq!(stats["engine"]["active_calls"], 50, "{stats}");
    assert_eq!(
        stats["engine"]["plan_version"],
        by_request.as_str(),
        "{stats}"
    );

    callers.expect_success();
    agent.expect_success();
    harness.stop();
}

#[test]
fn invalid_reload_keeps_old_plan() {
    let harness = Harness::start_with("invalid_reload_keeps_old_plan", |ports| EngineSettings {
        dialplan: Some(plan_on_remote(ports, 0)),
        ..EngineSettings::default()
    });
    let control = ControlClient::new(&harness.ports);
    let config = harness.dir.join("engine.toml");
    let old = checked_fingerprint(&config);
    let mut agent = harness.agent(&scenario("agent_answer.xml")).start();
    let mut remote = remote_hotline(&harness, 0, &scenario("gw_answer.xml")).start();
    let mut caller = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", "5000"])
        .start();
    let calls = control.wait_talking(1, Duration::from_secs(10));

    write_plan(harness.dir.path(), INVALID_PLAN);
    let (status, body) = control.reload();
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_dialplan", "{body}");
    let problems: Vec<&str> = body["problems"]
        .as_array()
        .map(|problems| problems.iter().filter_map(|p| p.as_str()).collect())
        .unwrap_or_default();
    let plan_path = harness.dir.join("dialplan.toml").display().to_string();
    let expected: Vec<String> = INVALID_PLAN_PROBLEMS
        .iter()
        .map(|problem| problem.replacen("dialplan.toml", &plan_path, 1))
        .collect();
    assert_eq!(problems, expected, "{body}");

    // SIGHUP with the same plan is rejected the same way, and logged at warn.
    harness.engine.signal("HUP");
    let warned = wait_until(Duration::from_secs(5), || {
        let log = harness.engine.log();
        !log_lines(&log, &["WARN", "dialplan rejected", "problems=4"]).is_empty()
            && log_lines(&log, &["WARN", "dialplan problem", "area_code"]).len() >= 2
    });
    assert!(warned, "the rejected plan is not logged at warn twice");

    let (_, stats) = control.get("/v1/stats");
    assert_eq!(stats["engine"]["plan_version"], old.as_str(), "{stats}");
    assert_eq!(stats["control"]["reloads_failed"], 1, "{stats}");

    // The old plan still routes Beijing to remote hotline 0.
    let transfer = control.transfer_to_end(&calls[0], "beijing");
    assert_eq!(transfer["status"], "bridged", "{transfer}");
    remote.expect_success();
    caller.expect_success();
    agent.expect_success();
    harness.stop();
}

#[test]
fn reload_moves_gateway_for_new_calls() {
    let harness = Harness::start_with("reload_moves_gateway_for_new_calls", |ports| {
        EngineSettings {
            dialplan: Some(plan_on_remote(ports, 0)),
            ..EngineSettings::default()
        }
    });
    let control = ControlClient::new(&harness.ports);
    let mut agent = harness
        .agent(&scenario("agent_answer.xml"))
        .args(&["-m", "2"])
        .start();
    let mut old_remote = remote_hotline(&harness, 0, &scenario("gw_answer.xml")).start();
    let mut new_remote = remote_hotline(&harness, 2, &scenario("gw_answer.xml")).start();
    let mut caller = harness
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", "7000"])
        .start();
    let before = control.wait_talking(1, Duration::from_secs(10));

    write_plan(harness.dir.path(), &plan_on_remote(&harness.ports, 2));
    let (status, body) = control.reload();
    assert_eq!(status, 200, "{body}");
    let mut second_caller = harness
        .second_caller(&scenario("caller_bye.xml"))
        .args(&["-d", "5000"])
        .start();
    let both = control.wait_talking(2, Duration::from_secs(10));
    let after = both
        .iter()
        .find(|call| !before.contains(call))
        .expect("a call started after the reload")
        .clone();

    let transfer = control.transfer_to_end(&before[0], "beijing");
    assert_eq!(transfer["status"], "bridged", "{transfer}");
    let transfer = control.transfer_to_end(&after, "beijing");
    assert_eq!(transfer["status"], "bridged", "{transfer}");

    old_remote.expect_success();
    new_remote.expect_success();
    caller.expect_success();
    second_caller.expect_success();
    agent.expect_success();
    for (remote, index) in [(&old_remote, 0), (&new_remote, 2)] {
        let invite = first_received(remote, "INVITE").expect("the remote got an INVITE");
        let address = format!("@127.0.0.1:{} SIP/2.0", harness.ports.remote(index));
        assert!(
            invite.start_line().ends_with(&address),
            "remote {index} got {:?}",
            invite.start_line()
        );
    }
    let records = transfer_records(&harness, 2);
    assert!(
        records.iter().all(|record| record["result"] == "bridged"),
        "{records:?}"
    );
    harness.stop();
}
