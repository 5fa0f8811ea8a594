//! Transfers started by a real softphone as the agent: baresip's `/transfer` sends a
//! blind REFER (no Replaces) on the caller's call.

mod common;

use std::time::Duration;

use common::baresip::Baresip;
use common::transfer::{all_received, assert_record};
use common::{EngineSettings, Harness, scenario};
use serde_json::json;

/// baresip log line once a call is answered.
const CALL_ESTABLISHED: &str = "Call established";

/// baresip answers the caller, then transfers it to `sip:beijing@127.0.0.1`: the remote
/// answers, the caller talks to it, and baresip's call ends.
#[test]
fn baresip_blind_transfer_bridges() {
    let test = "baresip_blind_transfer_bridges";
    let h = Harness::start(test, EngineSettings::default());
    let capture = h.capture(test);
    let mut remote = h
        .remote(0, &scenario("xfer_remote_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let baresip = Baresip::start(&h.dir, &h.ports);
    let mut caller = h
        .caller(&scenario("xfer_caller.xml"))
        .args(&["-d", "6000"])
        .start();
    h.wait_call_up(&caller);
    assert!(
        baresip.wait_for_log(CALL_ESTABLISHED, Duration::from_secs(5)),
        "baresip did not establish the call"
    );

    baresip.command("transfer", "sip:beijing@127.0.0.1");
    caller.expect_success();
    remote.expect_success();

    assert!(
        all_received(&caller, "BYE").is_empty(),
        "the caller was hung up on:\n{}",
        caller.report()
    );
    assert_eq!(all_received(&remote, "BYE").len(), 1, "{}", remote.report());
    let invite = common::first_received(&remote, "INVITE").expect("the remote got an INVITE");
    assert!(
        invite.start_line().starts_with("INVITE sip:+861012345@"),
        "{}",
        invite.text
    );
    assert_eq!(baresip.active_calls(), 0, "baresip still has a call");
    let records = h.transfer_records(1);
    assert_record(
        &records[0],
        &[("result", json!("bridged")), ("trigger", json!("refer"))],
    );
    if let Some(capture) = capture {
        let datagrams = capture.stop();
        h.assert_caller_talks_to_remote(&datagrams, &caller, &remote, 0);
    }
    drop(baresip);
    h.stop();
}
