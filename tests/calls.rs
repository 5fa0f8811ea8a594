//! Call flows through the real engine binary between a SIPp caller (the call-centre
//! switch) and a SIPp agent, on loopback. Each SIPp scenario states the messages it
//! expects, so a SIPp exit code of 0 means the flow on that leg was right.

mod common;

use std::time::Duration;

use common::{EngineSettings, Harness, agent_reject, caller_rejected, scenario, trace_messages};

#[test]
fn bye_from_caller() {
    let h = Harness::start("bye_from_caller", EngineSettings::default());
    let mut agent = h.agent(&scenario("agent_answer.xml")).start();
    let mut caller = h
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", "1000"])
        .start();
    caller.expect_success();
    agent.expect_success();
    h.assert_media_anchored(&caller, &agent);
    h.stop();
}

#[test]
fn bye_from_agent() {
    let h = Harness::start("bye_from_agent", EngineSettings::default());
    let mut agent = h
        .agent(&scenario("agent_bye.xml"))
        .args(&["-d", "1000"])
        .start();
    let mut caller = h.caller(&scenario("caller_wait_bye.xml")).start();
    agent.expect_success();
    caller.expect_success();
    h.assert_media_anchored(&caller, &agent);
    h.stop();
}

#[test]
fn cancel_before_answer() {
    let h = Harness::start("cancel_before_answer", EngineSettings::default());
    let mut agent = h.agent(&scenario("agent_cancelled.xml")).start();
    let mut caller = h.caller(&scenario("caller_cancel.xml")).start();
    caller.expect_success();
    agent.expect_success();
    h.stop();
}

#[test]
fn cancel_crossing_answer() {
    let h = Harness::start("cancel_crossing_answer", EngineSettings::default());
    let mut agent = h.agent(&scenario("agent_cancel_crossing.xml")).start();
    let mut caller = h.caller(&scenario("caller_cancel.xml")).start();
    caller.expect_success();
    agent.expect_success();

    let answered = trace_messages(&caller.messages())
        .into_iter()
        .any(|message| {
            message.received
                && message.start_line().starts_with("SIP/2.0 2")
                && message
                    .header("CSeq")
                    .is_some_and(|cseq| cseq.ends_with("INVITE"))
        });
    assert!(!answered, "the caller got a 2xx for the cancelled INVITE");
    h.stop();
}

#[test]
fn agent_busy_486() {
    let h = Harness::start("agent_busy_486", EngineSettings::default());
    let mut agent = h.agent(&agent_reject(&h.dir, "486 Busy Here")).start();
    let mut caller = h.caller(&caller_rejected(&h.dir, &[486])).start();
    caller.expect_success();
    agent.expect_success();
    h.stop();
}

#[test]
fn agent_declines_603() {
    let h = Harness::start("agent_declines_603", EngineSettings::default());
    let mut agent = h.agent(&agent_reject(&h.dir, "603 Decline")).start();
    let mut caller = h.caller(&caller_rejected(&h.dir, &[603])).start();
    caller.expect_success();
    agent.expect_success();
    h.stop();
}

/// The agent rings past `agent.ring_timeout_secs`: the engine cancels it (the agent
/// scenario requires the CANCEL) and the caller gets 480 or 408.
#[test]
fn agent_no_answer() {
    let settings = EngineSettings {
        ring_timeout_secs: 2,
        ..EngineSettings::default()
    };
    let h = Harness::start("agent_no_answer", settings);
    let mut agent = h.agent(&scenario("agent_cancelled.xml")).start();
    let mut caller = h.caller(&caller_rejected(&h.dir, &[480, 408])).start();
    let elapsed = caller.expect_success();
    agent.expect_success();
    assert!(
        elapsed >= Duration::from_millis(1900),
        "the caller was rejected after {elapsed:?}, before the 2 s ring timeout"
    );
    h.stop();
}

/// Nothing listens on the agent port. With T1 = 50 ms, timer B fires after 3.2 s
/// (RFC 3261 §17.1.1.2); an ICMP port unreachable may end the attempt sooner.
#[test]
fn agent_unreachable() {
    let settings = EngineSettings {
        t1_ms: 50,
        t2_ms: 400,
        ..EngineSettings::default()
    };
    // The target is the agent port, where this test starts no SIPp.
    let h = Harness::start("agent_unreachable", settings);
    let mut caller = h.caller(&caller_rejected(&h.dir, &[408, 503])).start();
    let elapsed = caller.expect_success();
    assert!(
        elapsed < Duration::from_secs(15),
        "the caller waited {elapsed:?} for the final response"
    );
    h.stop();
}

#[test]
fn tcp_caller() {
    let h = Harness::start("tcp_caller", EngineSettings::default());
    let mut agent = h.agent(&scenario("agent_answer.xml")).start();
    let mut caller = h
        .caller(&scenario("caller_bye.xml"))
        .tcp()
        .args(&["-d", "500"])
        .start();
    caller.expect_success();
    agent.expect_success();
    h.assert_media_anchored(&caller, &agent);
    let answer = common::first_received(&caller, "SIP/2.0 200").expect("a 200");
    let via = answer.header("Via").unwrap_or_default();
    assert!(via.starts_with("SIP/2.0/TCP"), "Via of the 200: {via}");
    h.stop();
}

#[test]
fn tcp_agent() {
    let settings = EngineSettings {
        agent_over_tcp: true,
        ..EngineSettings::default()
    };
    let h = Harness::start("tcp_agent", settings);
    let mut agent = h.agent(&scenario("agent_answer.xml")).tcp().start();
    let mut caller = h
        .caller(&scenario("caller_bye.xml"))
        .args(&["-d", "500"])
        .start();
    caller.expect_success();
    agent.expect_success();
    h.assert_media_anchored(&caller, &agent);
    let invite = common::first_received(&agent, "INVITE").expect("an INVITE");
    let via = invite.header("Via").unwrap_or_default();
    assert!(via.starts_with("SIP/2.0/TCP"), "Via of the INVITE: {via}");
    h.stop();
}

#[test]
fn compact_headers() {
    let h = Harness::start("compact_headers", EngineSettings::default());
    let mut agent = h.agent(&scenario("agent_answer.xml")).start();
    let mut caller = h
        .caller(&scenario("caller_compact.xml"))
        .args(&["-d", "500"])
        .start();
    caller.expect_success();
    agent.expect_success();
    h.assert_media_anchored(&caller, &agent);
    h.stop();
}

#[test]
fn folded_headers() {
    let h = Harness::start("folded_headers", EngineSettings::default());
    let mut agent = h.agent(&scenario("agent_answer.xml")).start();
    let mut caller = h
        .caller(&scenario("caller_folded.xml"))
        .args(&["-key", "fold", " ", "-d", "500"])
        .start();
    caller.expect_success();
    agent.expect_success();
    h.assert_media_anchored(&caller, &agent);
    h.stop();
}

/// Hold and resume from the caller: each re-INVITE reaches the agent with the caller's
/// direction attribute, and the agent's answer reaches the caller.
#[test]
fn hold_and_resume() {
    let h = Harness::start("hold_and_resume", EngineSettings::default());
    let mut agent = h.agent(&scenario("agent_reinvite.xml")).start();
    let mut caller = h.caller(&scenario("caller_reinvite.xml")).start();
    caller.expect_success();
    agent.expect_success();
    h.assert_media_anchored(&caller, &agent);
    h.stop();
}
