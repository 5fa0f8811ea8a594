//! RTP through the engine's relay. One test is its own RTP peer on the caller side and
//! needs nothing beyond SIPp. The other replays real G.711 and RFC 4733 captures and
//! counts packets with dumpcap, so it is skipped where capturing on `lo` is not permitted.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::Duration;

use common::pcap::Capture;
use common::{EngineSettings, Harness, drain_udp, first_received, read_when_written, scenario};

const SSRC: u32 = 0x4854_4c31;
const AUDIO_PACKETS: u16 = 50;
const DTMF_PACKETS: u16 = 3;
const PCMA: u8 = 8;
const TELEPHONE_EVENT: u8 = 101;

/// Builds an RTP packet (RFC 3550 §5.1) with the given header fields and payload.
fn rtp_packet(
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut packet = vec![0x80, payload_type | if marker { 0x80 } else { 0 }];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&SSRC.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// Sends 50 G.711 A-law packets and one RFC 4733 event (digit 5 in three packets, the
/// last with the end bit) from the test's socket to the caller-side relay port. The
/// echoing agent's copies must come back from that same relay port.
#[test]
fn relays_rtp_both_ways() {
    let h = Harness::start("relays_rtp_both_ways", EngineSettings::default());
    let socket = UdpSocket::bind(("127.0.0.1", h.ports.rtp_peer())).expect("bind the RTP peer");
    let rtp_port = h.ports.rtp_peer().to_string();
    let mut agent = h
        .agent(&scenario("agent_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut caller = h
        .caller(&scenario("caller_rtp_peer.xml"))
        .args(&["-key", "rtp_port", &rtp_port, "-d", "4000"])
        .start();

    let answer = read_when_written(&h.dir.join("answer_port"), Duration::from_secs(20));
    let Some(answer) = answer else {
        panic!("the call was not answered:\n{}", caller.report());
    };
    let relay_port: u16 = answer.trim().parse().expect("answer_port holds a port");
    assert!(
        (h.ports.relay_min()..=h.ports.relay_max()).contains(&relay_port),
        "the caller was answered with port {relay_port}, outside the relay range"
    );
    let relay = SocketAddr::from(([127, 0, 0, 1], relay_port));

    let receiver = socket.try_clone().expect("clone the RTP socket");
    let echoes = thread::spawn(move || drain_udp(&receiver, Duration::from_millis(3000)));
    for index in 0..AUDIO_PACKETS {
        let payload = [index as u8; 160];
        let packet = rtp_packet(
            PCMA,
            index == 0,
            1000 + index,
            160 * u32::from(index),
            &payload,
        );
        socket.send_to(&packet, relay).expect("send RTP");
        thread::sleep(Duration::from_millis(20));
    }
    for index in 0..DTMF_PACKETS {
        let end = index == DTMF_PACKETS - 1;
        let duration = 400 * (index + 1);
        let [high, low] = duration.to_be_bytes();
        // Event 5, end bit on the last packet, volume 10 (RFC 4733 §2.3).
        let payload = [5, if end { 0x80 | 10 } else { 10 }, high, low];
        let sequence = 1000 + AUDIO_PACKETS + index;
        let packet = rtp_packet(TELEPHONE_EVENT, index == 0, sequence, 8000, &payload);
        socket.send_to(&packet, relay).expect("send RTP");
        thread::sleep(Duration::from_millis(20));
    }
    let echoes = echoes.join().expect("the receiving thread");

    let mut audio = BTreeSet::new();
    let mut dtmf = 0;
    for (packet, from) in &echoes {
        assert_eq!(
            *from, relay,
            "RTP came back from {from}, not from the relay port"
        );
        assert!(
            packet.len() >= 12,
            "a {}-byte datagram is not RTP",
            packet.len()
        );
        match packet[1] & 0x7f {
            PCMA => {
                let body = &packet[12..];
                assert_eq!(body.len(), 160, "audio payload changed size");
                assert!(
                    body.iter().all(|byte| *byte == body[0]),
                    "audio payload changed"
                );
                audio.insert(body[0]);
            }
            TELEPHONE_EVENT => dtmf += 1,
            other => panic!("RTP came back with payload type {other}"),
        }
    }
    assert!(
        audio.len() >= usize::from(AUDIO_PACKETS) * 9 / 10,
        "only {} of {AUDIO_PACKETS} audio packets came back through the agent",
        audio.len()
    );
    assert!(
        dtmf >= 1,
        "no telephone-event packet came back through the agent"
    );

    caller.expect_success();
    agent.expect_success();
    h.stop();
}

/// A full call with real media: the caller replays about 8 s of G.711 A-law and one
/// RFC 4733 digit, the agent echoes. dumpcap on `lo` counts packets per direction on the
/// relay's two ports.
#[test]
fn full_call_relays_captured_media() {
    let h = Harness::start("full_call_relays_captured_media", EngineSettings::default());
    let capture = match Capture::start(&h.dir, h.ports.relay_min(), h.ports.relay_max()) {
        Ok(capture) => capture,
        Err(reason) => {
            eprintln!("skipping full_call_relays_captured_media: {reason}");
            h.stop();
            return;
        }
    };
    let mut agent = h
        .agent(&scenario("agent_answer.xml"))
        .args(&["-rtp_echo"])
        .start();
    let mut caller = h.caller(&scenario("caller_media.xml")).start();
    caller.expect_success();
    agent.expect_success();
    let datagrams = capture.stop();

    h.assert_media_anchored(&caller, &agent);
    let caller_relay = first_received(&caller, "SIP/2.0 200")
        .and_then(|answer| answer.audio_port())
        .expect("the caller's answer has an m=audio port");
    let agent_relay = first_received(&agent, "INVITE")
        .and_then(|offer| offer.audio_port())
        .expect("the agent's offer has an m=audio port");
    let agent_media = h.ports.agent_media();

    let count = |matches: &dyn Fn(&common::pcap::Datagram) -> bool| {
        datagrams
            .iter()
            .filter(|datagram| matches(datagram))
            .count()
    };
    let caller_to_engine = count(&|d| d.destination_port == caller_relay);
    let engine_to_agent =
        count(&|d| d.source_port == agent_relay && d.destination_port == agent_media);
    let agent_to_engine =
        count(&|d| d.source_port == agent_media && d.destination_port == agent_relay);
    let engine_to_caller = count(&|d| d.source_port == caller_relay);
    let dtmf_to_agent =
        count(&|d| d.source_port == agent_relay && d.rtp_payload_type() == Some(TELEPHONE_EVENT));
    let dtmf_to_caller =
        count(&|d| d.source_port == caller_relay && d.rtp_payload_type() == Some(TELEPHONE_EVENT));

    // g711a.pcap contains 236 packets, dtmf_2833_1.pcap 10 (SIPp 3.6.1 as packaged by
    // Debian); the margin allows for a few packets sent before the relay latched.
    let minimum = 200;
    let counts = format!(
        "caller->engine {caller_to_engine}, engine->agent {engine_to_agent}, \
         agent->engine {agent_to_engine}, engine->caller {engine_to_caller}, \
         telephone-event to agent {dtmf_to_agent}, back to caller {dtmf_to_caller}"
    );
    assert!(caller_to_engine >= minimum, "{counts}");
    assert!(engine_to_agent >= minimum, "{counts}");
    assert!(agent_to_engine >= minimum, "{counts}");
    assert!(engine_to_caller >= minimum, "{counts}");
    assert!(dtmf_to_agent >= 1, "{counts}");
    assert!(dtmf_to_caller >= 1, "{counts}");
    h.stop();
}
