//! The engine's JSON log format: one JSON object per line on standard error, so a log
//! collector can parse every line, and the call's span fields on each line of a call.

mod common;

use std::fs;
use std::time::Duration;

use common::{EngineSettings, Harness, scenario, trace_messages};
use serde_json::Value;

const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/// One call with `log.format = "json"` at debug level. Every line of the engine's output,
/// from startup to the exit after SIGTERM, must be a JSON object with a level and a
/// message. The lines logged inside the call carry its Call-ID and the caller's address
/// as the fields `call.id` and `peer` of the `call` span.
#[test]
fn json_log_lines_carry_the_call_span() {
    let settings = EngineSettings {
        log_json: true,
        ..EngineSettings::default()
    };
    let h = Harness::start("json_log_lines_carry_the_call_span", settings);
    let mut agent = h.agent(&scenario("agent_answer.xml")).start();
    let mut caller = h
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", "300"])
        .start();
    caller.expect_success();
    agent.expect_success();

    let invite = trace_messages(&caller.messages())
        .into_iter()
        .find(|message| !message.received && message.start_line().starts_with("INVITE"))
        .expect("the caller sent an INVITE");
    let call_id = invite.header("Call-ID").expect("the INVITE has a Call-ID");
    let peer = format!("127.0.0.1:{}", h.ports.caller());

    let grace = Duration::from_secs(h.settings.grace_period_secs);
    let Harness { engine, dir, .. } = h;
    engine.stop(grace, Duration::from_secs(5));
    let log = fs::read_to_string(dir.join("engine.log")).expect("read engine.log");

    let mut call_lines = 0;
    for (index, line) in log.lines().enumerate() {
        let number = index + 1;
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("line {number} is not JSON ({error}):\n{line}"));
        let level = entry["level"].as_str();
        assert!(
            level.is_some_and(|level| LEVELS.contains(&level)),
            "line {number} has no valid level:\n{line}"
        );
        assert!(
            entry["fields"]["message"].is_string(),
            "line {number} has no message:\n{line}"
        );
        let in_call = entry["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|span| span["name"] == "call");
        if let Some(span) = in_call {
            assert_eq!(
                span["call.id"], call_id,
                "line {number} is in another call's span:\n{line}"
            );
            assert_eq!(
                span["peer"], peer,
                "line {number} names another peer:\n{line}"
            );
            call_lines += 1;
        }
    }
    assert!(
        log.lines().count() > 3,
        "the engine logged almost nothing:\n{log}"
    );
    assert!(
        call_lines >= 2,
        "only {call_lines} lines carry the call span:\n{log}"
    );
    drop(dir);
}
