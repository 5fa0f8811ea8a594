//! Graceful shutdown: on SIGTERM the engine rejects new calls with 503 and Retry-After,
//! lets the active call run for the grace period, then ends both legs with BYE and
//! exits 0.

mod common;

use std::time::{Duration, Instant};

use common::{EngineSettings, Harness, caller_rejected, first_received, scenario, wait_until};

const GRACE_SECS: u64 = 4;
const RETRY_AFTER_SECS: u32 = 7;

#[test]
fn sigterm_drains_active_call() {
    let settings = EngineSettings {
        grace_period_secs: GRACE_SECS,
        retry_after_secs: RETRY_AFTER_SECS,
        ..EngineSettings::default()
    };
    let mut h = Harness::start("sigterm_drains_active_call", settings);
    let mut agent = h.agent(&scenario("agent_answer.xml")).start();
    let mut caller = h.caller(&scenario("caller_wait_bye.xml")).start();
    let up = wait_until(Duration::from_secs(15), || h.dir.join("call_up").exists());
    assert!(up, "the call did not come up:\n{}", caller.report());

    h.engine.signal("TERM");
    let signalled = Instant::now();

    // A new call during the drain gets 503 with the configured Retry-After.
    std::thread::sleep(Duration::from_millis(300));
    let mut late = h.second_caller(&caller_rejected(&h.dir, &[503])).start();
    late.expect_success();
    let rejection = first_received(&late, "SIP/2.0 503").expect("a 503");
    assert_eq!(
        rejection.header("Retry-After").as_deref(),
        Some(RETRY_AFTER_SECS.to_string().as_str()),
        "503 without the configured Retry-After:\n{}",
        rejection.text
    );

    // Both legs of the active call get a BYE, but only after the grace period. Each
    // scenario exits 1 s after it answered the BYE, so exiting before GRACE_SECS means
    // the BYE came more than 1 s early.
    caller.expect_success();
    agent.expect_success();
    let ended = signalled.elapsed();
    let earliest = Duration::from_secs(GRACE_SECS);
    assert!(
        ended >= earliest,
        "the call ended {ended:?} after SIGTERM, before the {GRACE_SECS} s grace period"
    );

    let status = h.engine.wait(Duration::from_secs(10));
    let Some(status) = status else {
        panic!("the engine still runs 10 s after the drained call ended");
    };
    assert!(status.success(), "the engine exited with {status}");
}
