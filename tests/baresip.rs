//! Calls to a real SIP user agent: baresip answers as the agent, a SIPp caller calls the
//! engine. The media test counts RTP per direction with dumpcap on `lo` and skips the
//! counts where capturing is not permitted.

mod common;

use std::ops::RangeInclusive;
use std::time::Duration;

use common::baresip::Baresip;
use common::pcap::{Capture, Datagram};
use common::{EngineSettings, Harness, scenario, wait_until};

/// baresip's log line when the other side ended a call.
const CALL_ENDED: &str = "terminated (duration:";
/// baresip's log line when it ends a call itself.
const CALL_HUNG_UP: &str = "call: terminate call";
const CALL_ESTABLISHED: &str = "Call established";

/// The caller replays about 8 s of G.711 A-law and one RFC 4733 digit, then sends BYE.
/// baresip answers by itself and sends its sine back. RTP must flow through the relay in
/// all four directions, and the BYE must end baresip's call too.
#[test]
fn baresip_answers_and_caller_hangs_up() {
    let h = Harness::start(
        "baresip_answers_and_caller_hangs_up",
        EngineSettings::default(),
    );
    let capture = Capture::start(&h.dir, h.ports.relay_min(), h.ports.relay_max());
    if let Err(reason) = &capture {
        eprintln!("RTP is not counted in baresip_answers_and_caller_hangs_up: {reason}");
    }
    let baresip = Baresip::start(&h.dir, &h.ports);
    let mut caller = h.caller(&scenario("caller_media.xml")).start();
    caller.expect_success();

    assert!(
        baresip.wait_for_log(CALL_ENDED, Duration::from_secs(5)),
        "baresip did not end its call after the caller's BYE"
    );
    assert_eq!(baresip.active_calls(), 0, "baresip still has a call");
    assert!(
        baresip.log().contains(CALL_ESTABLISHED),
        "baresip never established the call"
    );

    if let Ok(capture) = capture {
        let datagrams = capture.stop();
        let relay = h.ports.relay_min()..=h.ports.relay_max();
        let caller = h.ports.caller_media()..=h.ports.caller_media();
        let agent = h.ports.agent_media()..=h.ports.agent_media() + 3;
        let count = |from: &RangeInclusive<u16>, to: &RangeInclusive<u16>| {
            datagrams
                .iter()
                .filter(|datagram| is_rtp_between(datagram, from, to))
                .count()
        };
        let counts = [
            ("caller -> engine", count(&caller, &relay)),
            ("engine -> baresip", count(&relay, &agent)),
            ("baresip -> engine", count(&agent, &relay)),
            ("engine -> caller", count(&relay, &caller)),
        ];
        // The caller's capture contains 236 packets. baresip sends one packet per 20 ms
        // from the ACK until the BYE, about 9 s.
        for (direction, packets) in counts {
            assert!(
                packets >= 200,
                "only {packets} RTP packets {direction}: {counts:?}"
            );
        }
    }
    drop(baresip);
    h.stop();
}

/// baresip hangs up an answered call: the engine must send BYE to the caller, and the
/// caller's 200 ends the call on both legs.
#[test]
fn baresip_hangs_up() {
    let h = Harness::start("baresip_hangs_up", EngineSettings::default());
    let baresip = Baresip::start(&h.dir, &h.ports);
    let mut caller = h.caller(&scenario("caller_wait_bye.xml")).start();

    let call_up = h.dir.join("call_up");
    let up = wait_until(Duration::from_secs(15), || call_up.exists());
    assert!(up, "the call was not answered:\n{}", caller.report());
    assert!(
        baresip.wait_for_log(CALL_ESTABLISHED, Duration::from_secs(5)),
        "baresip did not establish the call"
    );
    assert_eq!(baresip.active_calls(), 1, "baresip should have one call");

    baresip.command("hangup", "");
    caller.expect_success();
    assert!(
        baresip.wait_for_log(CALL_HUNG_UP, Duration::from_secs(5)),
        "baresip did not end its call"
    );
    assert_eq!(baresip.active_calls(), 0, "baresip still has a call");
    drop(baresip);
    h.stop();
}

/// Returns whether `datagram` is RTP from a port in `from` to a port in `to`. RTCP also has
/// version 2, so its packet types 200-204 (payload type 72-76 in RTP terms, RFC 5761
/// §4) are left out.
fn is_rtp_between(
    datagram: &Datagram,
    from: &RangeInclusive<u16>,
    to: &RangeInclusive<u16>,
) -> bool {
    from.contains(&datagram.source_port)
        && to.contains(&datagram.destination_port)
        && datagram
            .rtp_payload_type()
            .is_some_and(|payload_type| !(72..=76).contains(&payload_type))
}
