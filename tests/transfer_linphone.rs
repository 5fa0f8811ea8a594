//! Attended transfer started by a real softphone as the agent: linphonec puts the caller
//! on hold, calls the Beijing hotline through the engine and transfers the caller to that
//! consultation call with REFER and Replaces (RFC 3515, RFC 3891).
//!
//! Every process runs in a network namespace that the test creates, so linphonec sees only
//! the namespace's loopback. The test prints `skipping ...` and passes when it may not
//! create a namespace.

mod common;

use std::time::Duration;

use common::linphone::{Linphone, Namespace, NamespaceSipp, start_engine, stop_engine};
use common::{EngineSettings, Ports, TestDir, read_when_written, scenario, wait_until};
use serde_json::{Value, json};

/// Reason header of the BYEs that release the agent after a completed transfer.
const TRANSFERRED: &str = "cause=200";

/// Reads the first transfer record the engine wrote.
fn first_transfer_record(dir: &TestDir) -> Value {
    let path = dir.join("transfers.jsonl");
    let text = read_when_written(&path, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no transfer record in {}", path.display()));
    let line = text.lines().next().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|error| panic!("a transfer record is not JSON ({error}): {line}"))
}

/// The caller calls the engine and linphonec takes the call as the agent. linphonec pauses
/// the caller (the caller accepts the relayed a=sendonly re-INVITE), calls
/// `sip:beijing@127.0.0.1` through the engine, and the remote hotline answers. Then
/// `transfer <caller call> --to-call <consultation call>` sends REFER with Replaces: the
/// engine accepts it, re-INVITEs the remote toward the caller's relay, bridges the two and
/// sends BYE on both of linphonec's calls. The caller hangs up later.
#[test]
fn linphone_attended_transfer_bridges() {
    let test = "linphone_attended_transfer_bridges";
    let namespace = match Namespace::create() {
        Ok(namespace) => namespace,
        Err(reason) => {
            println!("skipping {test}: no network namespace for linphonec: {reason}");
            return;
        }
    };
    common::require_sipp();
    let dir = TestDir::new(test);
    let ports = Ports::allocate();
    let settings = EngineSettings::default();
    let engine = start_engine(&namespace, &dir, &ports, &settings);

    let mut remote = NamespaceSipp::start(
        &namespace,
        &dir,
        "remote0",
        &scenario("xfer_remote_consult.xml"),
        (ports.remote(0), ports.remote_media(0)),
        None,
        &["-rtp_echo"],
    );
    let mut linphone = Linphone::start(&namespace, &dir, &ports);
    let mut caller = NamespaceSipp::start(
        &namespace,
        &dir,
        "caller",
        &scenario("xfer_linphone_caller.xml"),
        (ports.caller(), ports.caller_media()),
        Some(ports.engine()),
        &["-d", "5000"],
    );

    let caller_call = linphone.call_id_of("Receiving new incoming call");
    let call_label = format!("Call {caller_call} with");
    linphone.expect_line(&[&call_label, "connected"]);
    linphone.command(&format!("pause {caller_call}"));
    let held = wait_until(Duration::from_secs(10), || dir.join("call_held").exists());
    assert!(held, "the caller was not put on hold:\n{}", caller.report());

    linphone.command(&format!("call sip:beijing@127.0.0.1:{}", ports.engine()));
    let consultation = linphone.call_id_of("to sip:beijing@");
    linphone.expect_output(&format!("for call {consultation} (audio)"));
    linphone.command(&format!("transfer {caller_call} --to-call {consultation}"));
    linphone.expect_output("has been transfered");
    linphone.expect_line(&[&call_label, "ended"]);

    caller.expect_success();
    remote.expect_success();

    // The REFER went on the caller's call and named the consultation dialog.
    let messages = linphone.messages();
    let refer = messages
        .iter()
        .find(|message| !message.received && message.start_line().starts_with("REFER "))
        .unwrap_or_else(|| panic!("linphonec sent no REFER:\n{}", linphone.output()));
    let refer_to = refer.header("Refer-To").unwrap_or_default();
    assert!(
        refer_to.contains("Replaces="),
        "the REFER is not an attended transfer:\n{}",
        refer.text
    );

    // The engine sent BYE with the Reason of a completed transfer on both agent calls.
    let released: Vec<String> = messages
        .iter()
        .filter(|message| message.received && message.start_line().starts_with("BYE "))
        .filter(|message| {
            message
                .header("Reason")
                .is_some_and(|reason| reason.contains(TRANSFERRED))
        })
        .filter_map(|message| message.header("Call-ID"))
        .collect();
    assert_eq!(
        released.len(),
        2,
        "linphonec should get a BYE with {TRANSFERRED} on each of its two calls, got \
         {released:?}"
    );
    assert_ne!(released[0], released[1], "both BYEs were for one call");
    assert!(
        released.contains(&refer.header("Call-ID").unwrap_or_default()),
        "the caller's call toward linphonec was not released: {released:?}"
    );
    linphone.command("calls");
    linphone.expect_output("No active call.");

    // The caller stayed up: the hold re-INVITE, then the engine's re-INVITE that takes it
    // off hold toward the remote, and no BYE.
    let invites = caller.received("INVITE");
    assert_eq!(
        invites.len(),
        2,
        "the caller should get the hold and the resume re-INVITEs:\n{}",
        caller.report()
    );
    assert!(
        !invites[1].text.contains("a=sendonly") && !invites[1].text.contains("a=inactive"),
        "the resume re-INVITE still holds the caller:\n{}",
        caller.report()
    );
    assert!(
        caller.received("BYE").is_empty(),
        "the caller was hung up on:\n{}",
        caller.report()
    );

    // The remote was re-INVITEd toward the relay and got the caller's BYE.
    let invites = remote.received("INVITE");
    assert_eq!(invites.len(), 2, "{}", remote.report());
    let relay = ports.relay_min()..=ports.relay_max();
    let reinvite_port = invites[1].audio_port().unwrap_or_default();
    assert!(
        relay.contains(&reinvite_port),
        "the re-INVITE does not point at the relay:\n{}",
        invites[1].text
    );
    assert_eq!(remote.received("BYE").len(), 1, "{}", remote.report());

    let record = first_transfer_record(&dir);
    for (field, value) in [
        ("trigger", json!("refer_replaces")),
        ("result", json!("bridged")),
    ] {
        assert_eq!(record[field], value, "field {field} differs in {record:#}");
    }

    drop(linphone);
    stop_engine(engine, Duration::from_secs(settings.grace_period_secs));
    drop(dir);
    drop(namespace);
}
