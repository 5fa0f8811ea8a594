//! The detector on the RFC 4733 captures that ship with SIPp (Debian package `sip-tester`):
//! one press per file, payload type 101, three end packets with one sequence number.

use std::path::Path;
use std::time::Duration;

use rtp_rs::RtpReader;
use tokio::time::Instant;

use crate::dtmf::rfc4733::{DetectorEvent, EndCause, EventPacket, Rfc4733Detector};

const CAPTURE_DIR: &str = "/usr/share/sip-tester";

/// An RTP packet read from a capture, with its capture time relative to the first record.
struct CapturedRtp {
    offset: Duration,
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

/// Reads the UDP payloads of a classic pcap file (Ethernet, IPv4, UDP) and parses them as
/// RTP. Records of other link or network types are skipped.
fn read_pcap(bytes: &[u8]) -> Vec<CapturedRtp> {
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let (little_endian, nanoseconds) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        other => panic!("not a pcap file: magic {other:#010x}"),
    };
    let word = |at: usize| {
        let raw: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if little_endian {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        }
    };
    assert_eq!(word(20), 1, "link type must be Ethernet");

    let mut packets = Vec::new();
    let mut first = None;
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let seconds = u64::from(word(at));
        let fraction = u64::from(word(at + 4));
        let captured = usize::try_from(word(at + 8)).unwrap();
        let frame = &bytes[at + 16..at + 16 + captured];
        at += 16 + captured;

        let nanos = if nanoseconds {
            fraction
        } else {
            fraction * 1000
        };
        let time = Duration::from_secs(seconds) + Duration::from_nanos(nanos);
        let offset = time - *first.get_or_insert(time);
        if let Some(packet) = udp_payload(frame).and_then(|udp| parse_rtp(offset, udp)) {
            packets.push(packet);
        }
    }
    packets
}

/// Returns the UDP payload of an Ethernet frame carrying IPv4, or `None`.
fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let ether_type = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ether_type != 0x0800 {
        return None;
    }
    let ip = frame.get(14..)?;
    let header_length = usize::from(ip.first()? & 0x0f) * 4;
    let total_length = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    if *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(header_length..total_length)?;
    let udp_length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    udp.get(8..udp_length)
}

fn parse_rtp(offset: Duration, datagram: &[u8]) -> Option<CapturedRtp> {
    let reader = RtpReader::new(datagram).ok()?;
    Some(CapturedRtp {
        offset,
        payload_type: reader.payload_type(),
        marker: reader.mark(),
        sequence: u16::from(reader.sequence_number()),
        timestamp: reader.timestamp(),
        ssrc: reader.ssrc(),
        payload: reader.payload().to_vec(),
    })
}

#[test]
fn captures_give_one_digit_each() {
    let captures = [
        ("0", '0'),
        ("1", '1'),
        ("2", '2'),
        ("3", '3'),
        ("4", '4'),
        ("5", '5'),
        ("6", '6'),
        ("7", '7'),
        ("8", '8'),
        ("9", '9'),
        ("star", '*'),
        ("pound", '#'),
    ];
    let mut checked = 0;
    for (name, key) in captures {
        let path = Path::new(CAPTURE_DIR).join(format!("dtmf_2833_{name}.pcap"));
        let Ok(bytes) = std::fs::read(&path) else {
            println!(
                "skipped {}: not installed (Debian package sip-tester)",
                path.display()
            );
            continue;
        };
        let packets = read_pcap(&bytes);
        assert!(!packets.is_empty(), "{}: no RTP packets", path.display());
        assert!(packets.iter().all(|packet| packet.payload_type == 101));

        let mut detector = Rfc4733Detector::new(8000).unwrap();
        let epoch = Instant::now();
        let mut events = Vec::new();
        for packet in &packets {
            let event_packet = EventPacket {
                ssrc: packet.ssrc,
                sequence: packet.sequence,
                timestamp: packet.timestamp,
                marker: packet.marker,
                payload: &packet.payload,
            };
            events.extend(detector.receive(event_packet, epoch + packet.offset));
        }
        let last = packets
            .last()
            .map_or(Duration::ZERO, |packet| packet.offset);
        events.extend(
            detector
                .poll(epoch + last + Duration::from_secs(10))
                .map(DetectorEvent::DigitEnd),
        );

        assert_eq!(events.len(), 2, "{}: {events:?}", path.display());
        let DetectorEvent::DigitStart(start) = events[0] else {
            panic!("{}: first event is not a start: {events:?}", path.display());
        };
        let DetectorEvent::DigitEnd(end) = events[1] else {
            panic!("{}: second event is not an end: {events:?}", path.display());
        };
        assert_eq!(start.key, key, "{}", path.display());
        assert_eq!(end.key, key, "{}", path.display());
        assert_eq!(end.cause, EndCause::EndPacket, "{}", path.display());
        assert_eq!(end.duration_ms, 280, "{}", path.display());
        assert_eq!(detector.counters().duplicates, 2, "{}", path.display());
        assert_eq!(detector.counters().malformed, 0, "{}", path.display());
        checked += 1;
    }
    println!("checked {checked} captures");
}

/// The `*` capture and, 400 ms after its start, the `1` capture on one stream, as SIPp's
/// `play_pcap_audio` sends them. SIPp keeps each file's SSRC, sequence numbers and
/// timestamps, and those of `1` lie 420 packets and 9 s before those of `*`.
#[test]
fn star_then_one_captures_give_two_digits() {
    let mut packets = Vec::new();
    for (name, start) in [("star", Duration::ZERO), ("1", Duration::from_millis(400))] {
        let path = Path::new(CAPTURE_DIR).join(format!("dtmf_2833_{name}.pcap"));
        let Ok(bytes) = std::fs::read(&path) else {
            println!(
                "skipped: {} not installed (Debian package sip-tester)",
                path.display()
            );
            return;
        };
        packets.extend(read_pcap(&bytes).into_iter().map(|mut packet| {
            packet.offset += start;
            packet
        }));
    }

    let mut detector = Rfc4733Detector::new(8000).unwrap();
    let epoch = Instant::now();
    let mut keys = String::new();
    for packet in &packets {
        let event_packet = EventPacket {
            ssrc: packet.ssrc,
            sequence: packet.sequence,
            timestamp: packet.timestamp,
            marker: packet.marker,
            payload: &packet.payload,
        };
        for event in detector.receive(event_packet, epoch + packet.offset) {
            if let DetectorEvent::DigitStart(start) = event {
                keys.push(start.key);
            }
        }
    }

    assert_eq!(keys, "*1");
    assert_eq!(detector.counters().stale, 0);
    assert_eq!(detector.next_deadline(), None);
}
