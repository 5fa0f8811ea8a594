use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::dtmf::rfc4733::{
    DetectorError, DetectorEvent, DigitEnd, EndCause, EventBlock, EventPacket, MAX_MISORDER,
    PayloadError, Rfc4733Detector, parse_payload,
};
use crate::media::{Side, TelephoneEventPacket};

const SSRC: u32 = 0x0e05_384e;

/// Encodes one event block (RFC 4733 §2.3).
fn block(event: u8, end: bool, volume: u8, duration: u16) -> [u8; 4] {
    let flags = if end { 0x80 } else { 0 } | (volume & 0x3f);
    let [high, low] = duration.to_be_bytes();
    [event, flags, high, low]
}

/// How a simulated sender sets the marker bit.
#[derive(Clone, Copy)]
enum Marker {
    FirstPacket,
    Never,
    Always,
}

/// How a simulated sender numbers its repeated end packets.
#[derive(Clone, Copy)]
enum EndSequence {
    /// One sequence number for the three copies, like the SIPp captures.
    Same,
    /// A new sequence number for each copy, like SIPp's `play_dtmf`.
    Increasing,
}

/// A telephone-event sender and the detector it feeds, on a virtual clock in milliseconds.
struct Link {
    detector: Rfc4733Detector,
    epoch: Instant,
    ssrc: u32,
    sequence: u16,
    /// Samples per millisecond.
    rate: u32,
    events: Vec<DetectorEvent>,
}

impl Link {
    fn new(clock_rate: u32) -> Link {
        Link {
            detector: Rfc4733Detector::new(clock_rate).unwrap(),
            epoch: Instant::now(),
            ssrc: SSRC,
            sequence: 7984,
            rate: clock_rate / 1000,
            events: Vec::new(),
        }
    }

    fn with_timeout(mut self, timeout: Duration) -> Link {
        self.detector = self.detector.with_end_timeout(timeout);
        self
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Sends one packet with the next sequence number.
    fn send(&mut self, ms: u64, timestamp: u32, marker: bool, payload: &[u8]) {
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        self.send_with(ms, sequence, timestamp, marker, payload);
    }

    fn send_with(&mut self, ms: u64, sequence: u16, timestamp: u32, marker: bool, payload: &[u8]) {
        let packet = EventPacket {
            ssrc: self.ssrc,
            sequence,
            timestamp,
            marker,
            payload,
        };
        let now = self.at(ms);
        self.events.extend(self.detector.receive(packet, now));
    }

    /// Sends a whole press of `event` starting at `start_ms` with RTP timestamp `timestamp`:
    /// an update every 20 ms up to `length_ms`, then three end packets. Returns the time
    /// after the last end packet.
    fn press(
        &mut self,
        start_ms: u64,
        timestamp: u32,
        event: u8,
        length_ms: u32,
        marker: Marker,
        ends: EndSequence,
    ) -> u64 {
        let mut elapsed = 0;
        while elapsed < length_ms {
            let set = match marker {
                Marker::FirstPacket => elapsed == 0,
                Marker::Never => false,
                Marker::Always => true,
            };
            let duration = self.units(elapsed);
            let ms = start_ms + u64::from(elapsed);
            self.send(ms, timestamp, set, &block(event, false, 10, duration));
            elapsed += 20;
        }

        let end = block(event, true, 10, self.units(length_ms));
        let end_ms = start_ms + u64::from(length_ms);
        let sequence = self.sequence;
        for copy in 0..3u16 {
            let marker = matches!(marker, Marker::Always);
            match ends {
                EndSequence::Same => self.send_with(end_ms, sequence, timestamp, marker, &end),
                EndSequence::Increasing => {
                    self.send_with(end_ms, sequence + copy, timestamp, marker, &end);
                }
            }
        }
        self.sequence = match ends {
            EndSequence::Same => sequence.wrapping_add(1),
            EndSequence::Increasing => sequence.wrapping_add(3),
        };
        end_ms
    }

    fn units(&self, ms: u32) -> u16 {
        u16::try_from(ms * self.rate).unwrap()
    }

    fn starts(&self) -> String {
        self.events
            .iter()
            .filter_map(|event| match event {
                DetectorEvent::DigitStart(start) => Some(start.key),
                DetectorEvent::DigitEnd(_) => None,
            })
            .collect()
    }

    fn ends(&self) -> Vec<DigitEnd> {
        self.events
            .iter()
            .filter_map(|event| match event {
                DetectorEvent::DigitEnd(end) => Some(*end),
                DetectorEvent::DigitStart(_) => None,
            })
            .collect()
    }

    fn ended_keys(&self) -> String {
        self.ends().iter().map(|end| end.key).collect()
    }
}

#[test]
fn block_fields_parse() {
    let parsed = EventBlock::parse(&[0x0b, 0xca, 0x03, 0x20]).unwrap();
    assert_eq!(parsed.event, 11);
    assert!(parsed.end);
    assert!(parsed.reserved);
    assert_eq!(parsed.volume, 10);
    assert_eq!(parsed.duration, 800);

    let quiet = EventBlock::parse(&[0x01, 0x3f, 0xff, 0xff]).unwrap();
    assert!(!quiet.end);
    assert!(!quiet.reserved);
    assert_eq!(quiet.volume, 63);
    assert_eq!(quiet.duration, 0xffff);

    assert_eq!(EventBlock::parse(&[1, 2, 3]), None);
}

#[test]
fn payload_rejects_partial_blocks() {
    assert_eq!(
        parse_payload(&[]).err(),
        Some(PayloadError::Short { length: 0 })
    );
    assert_eq!(
        parse_payload(&[1, 0, 0]).err(),
        Some(PayloadError::Short { length: 3 })
    );
    assert_eq!(
        parse_payload(&[1, 0, 0, 0, 9]).err(),
        Some(PayloadError::Trailing { length: 5 })
    );
    assert_eq!(parse_payload(&[1, 0, 0, 0, 2, 0, 0, 0]).unwrap().count(), 2);
}

#[test]
fn detector_rejects_zero_clock_rate() {
    assert_eq!(
        Rfc4733Detector::new(0).err(),
        Some(DetectorError::ZeroClockRate)
    );
}

#[test]
fn triple_end_same_sequence() {
    let mut link = Link::new(8000);
    link.press(0, 13280, 1, 140, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "1");
    let ends = link.ends();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].key, '1');
    assert_eq!(ends[0].duration_ms, 140);
    assert_eq!(ends[0].cause, EndCause::EndPacket);
    assert_eq!(ends[0].timestamp, 13280);
    assert_eq!(ends[0].volume, 10);
    assert_eq!(link.detector.counters().duplicates, 2);
    assert_eq!(link.detector.next_deadline(), None);
}

#[test]
fn increasing_sequence_ends() {
    // What SIPp 3.6.1 sends for play_dtmf="*11#", as captured on loopback: a new timestamp
    // every 400 units although each press lasts 1600, the R bit set on some packets, and
    // three end packets with increasing sequence numbers.
    let mut link = Link::new(8000);
    let mut sequence = 1240u16;
    for (index, event) in [10u8, 1, 1, 11].into_iter().enumerate() {
        let start_ms = 400 * u64::try_from(index).unwrap();
        let timestamp = 24_400 + 400 * u32::try_from(index).unwrap();
        for step in 0..13u16 {
            let end = step >= 10;
            let duration = 160 * step.min(10);
            let mut payload = block(event, end, 10, duration);
            if (step + sequence).is_multiple_of(5) {
                payload[1] |= 0x40;
            }
            let ms = start_ms + 20 * u64::from(step.min(10));
            link.send_with(ms, sequence, timestamp, step == 0, &payload);
            sequence = sequence.wrapping_add(1);
        }
    }

    assert_eq!(link.starts(), "*11#");
    assert_eq!(link.ended_keys(), "*11#");
    assert!(
        link.ends()
            .iter()
            .all(|end| end.cause == EndCause::EndPacket)
    );
    assert!(link.ends().iter().all(|end| end.duration_ms == 200));
    assert_eq!(link.detector.counters().duplicates, 8);
}

#[test]
fn press_without_marker() {
    let mut link = Link::new(8000);
    link.press(0, 500, 5, 100, Marker::Never, EndSequence::Same);

    assert_eq!(link.starts(), "5");
    assert_eq!(link.ended_keys(), "5");
}

#[test]
fn marker_on_every_packet() {
    let mut link = Link::new(8000);
    link.press(0, 500, 5, 100, Marker::Always, EndSequence::Same);
    link.press(200, 2500, 5, 100, Marker::Always, EndSequence::Increasing);

    assert_eq!(link.starts(), "55");
    assert_eq!(link.ended_keys(), "55");
    assert_eq!(link.detector.counters().lost_ends, 0);
}

#[test]
fn long_press_in_segments() {
    // 20 s of `0` at 8 kHz: segments of 0xFFFF units (8.19 s), each continuing at the
    // previous timestamp plus its duration, without the E bit until the last.
    let mut link = Link::new(8000);
    let origin = 100_000u32;
    let total = 20 * 8000u32;
    let mut sent = 0u32;
    let mut ms = 0u64;
    while sent < total {
        let segment_start = origin + sent;
        let segment_length = (total - sent).min(0xffff);
        let mut duration = 0u32;
        loop {
            let last = duration == segment_length;
            let end = last && sent + segment_length == total;
            let field = u16::try_from(duration).unwrap();
            link.send(ms, segment_start, false, &block(0, end, 12, field));
            if last {
                break;
            }
            duration = (duration + 400).min(segment_length);
            ms += 50;
        }
        sent += segment_length;
    }
    let last = link.sequence.wrapping_sub(1);
    link.send_with(
        ms,
        last,
        origin + 2 * 0xffff,
        false,
        &block(0, true, 12, 28930),
    );

    assert_eq!(link.starts(), "0");
    let ends = link.ends();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].duration_ms, 20_000);
    assert_eq!(ends[0].timestamp, origin);
    assert_eq!(ends[0].cause, EndCause::EndPacket);
    assert_eq!(link.detector.counters().lost_ends, 0);
}

#[test]
fn long_press_lost_segment_boundary() {
    // The last two packets of the first segment are lost; the next segment still joins.
    let mut link = Link::new(8000);
    link.send(0, 0, true, &block(9, false, 10, 0));
    link.send(50, 0, false, &block(9, false, 10, 0xffff - 320));
    link.send(100, 0xffff, false, &block(9, false, 10, 160));
    link.send(120, 0xffff, false, &block(9, true, 10, 320));

    assert_eq!(link.starts(), "9");
    assert_eq!(link.ends().len(), 1);
    assert_eq!(link.ends()[0].duration_ms, (0xffff + 320) / 8);
}

#[test]
fn restamped_press_is_one_digit() {
    // A sender that stamps each update of one press with the audio clock.
    let mut link = Link::new(8000);
    for step in 0..8u16 {
        let timestamp = 4000 + u32::from(step) * 160;
        link.send(
            u64::from(step) * 20,
            timestamp,
            step == 0,
            &block(2, false, 10, 160),
        );
    }
    for _ in 0..3 {
        link.send(160, 4000 + 8 * 160, false, &block(2, true, 10, 160));
    }

    assert_eq!(link.starts(), "2");
    let ends = link.ends();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].duration_ms, 180);
    assert_eq!(ends[0].timestamp, 4000);
}

#[test]
fn ssrc_change_between_digits() {
    let mut link = Link::new(8000);
    link.press(0, 1000, 10, 100, Marker::FirstPacket, EndSequence::Same);
    let old_end_sequence = link.sequence.wrapping_sub(1);

    link.ssrc = 0x1234_5678;
    link.sequence = 40_000;
    link.press(300, 777_000, 3, 100, Marker::FirstPacket, EndSequence::Same);

    // A late copy of the first press's end, from the old SSRC.
    link.ssrc = SSRC;
    link.send_with(
        420,
        old_end_sequence,
        1000,
        false,
        &block(10, true, 10, 800),
    );

    assert_eq!(link.starts(), "*3");
    assert_eq!(link.ended_keys(), "*3");
    assert_eq!(link.ends()[1].ssrc, 0x1234_5678);
}

#[test]
fn sequence_jump_between_digits() {
    let mut link = Link::new(8000);
    link.press(0, 1000, 1, 100, Marker::FirstPacket, EndSequence::Same);
    link.sequence = link.sequence.wrapping_add(30_000);
    link.press(300, 5000, 2, 100, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "12");
    assert_eq!(link.ended_keys(), "12");
}

#[test]
fn lost_end_superseded_by_next_press() {
    let mut link = Link::new(8000);
    link.send(0, 1000, true, &block(3, false, 10, 0));
    link.send(20, 1000, false, &block(3, false, 10, 160));
    link.send(40, 1000, false, &block(3, false, 10, 320));
    // The end packets are lost; the next press begins 200 ms later.
    link.press(240, 2600, 4, 100, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "34");
    let ends = link.ends();
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0].key, '3');
    assert_eq!(ends[0].cause, EndCause::Superseded);
    assert_eq!(ends[0].duration_ms, 40);
    assert_eq!(ends[1].cause, EndCause::EndPacket);
    assert_eq!(link.detector.counters().lost_ends, 1);
}

#[test]
fn lost_end_same_key_superseded() {
    let mut link = Link::new(8000);
    link.send(0, 1000, true, &block(1, false, 10, 0));
    link.send(20, 1000, false, &block(1, false, 10, 160));
    link.press(
        140,
        1000 + 140 * 8,
        1,
        100,
        Marker::FirstPacket,
        EndSequence::Same,
    );

    assert_eq!(link.starts(), "11");
    assert_eq!(link.ends()[0].cause, EndCause::Superseded);
}

#[test]
fn lost_end_times_out() {
    let mut link = Link::new(8000).with_timeout(Duration::from_millis(300));
    link.send(0, 1000, true, &block(7, false, 10, 0));
    link.send(20, 1000, false, &block(7, false, 10, 160));

    assert_eq!(link.detector.next_deadline(), Some(link.at(320)));
    assert_eq!(link.detector.poll(link.at(319)), None);
    let end = link.detector.poll(link.at(320)).unwrap();
    assert_eq!(end.key, '7');
    assert_eq!(end.cause, EndCause::Timeout);
    assert_eq!(end.duration_ms, 20);
    assert_eq!(link.detector.next_deadline(), None);
    assert_eq!(link.detector.poll(link.at(1000)), None);

    // The end packet arriving late changes nothing.
    link.send(900, 1000, false, &block(7, true, 10, 800));
    assert_eq!(link.starts(), "7");
    assert!(link.ends().is_empty());
    assert_eq!(link.detector.counters().lost_ends, 1);
}

#[test]
fn timeout_reported_by_next_packet() {
    let mut link = Link::new(8000);
    link.send(0, 1000, true, &block(7, false, 10, 0));
    link.press(2000, 30_000, 8, 100, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "78");
    let ends = link.ends();
    assert_eq!(ends[0].cause, EndCause::Timeout);
    assert_eq!(ends[1].key, '8');
}

#[test]
fn star_one_one_gives_three_digits() {
    let mut link = Link::new(8000);
    let mut ms = 0;
    let mut timestamp = 8000;
    for event in [10u8, 1, 1] {
        ms = link.press(
            ms,
            timestamp,
            event,
            100,
            Marker::FirstPacket,
            EndSequence::Same,
        );
        ms += 60;
        timestamp += 160 * 8;
    }

    assert_eq!(link.starts(), "*11");
    assert_eq!(link.ended_keys(), "*11");
    assert_eq!(link.detector.counters().lost_ends, 0);
}

#[test]
fn repeated_key_reusing_timestamp() {
    // A sender that keeps the timestamp of the previous press for the next one.
    let mut link = Link::new(8000);
    link.press(0, 8000, 1, 100, Marker::FirstPacket, EndSequence::Same);
    link.press(200, 8000, 1, 100, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "11");
    assert_eq!(link.ended_keys(), "11");
}

#[test]
fn clock_rate_48000() {
    let mut link = Link::new(48_000);
    link.press(0, 96_000, 11, 240, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "#");
    assert_eq!(link.ends()[0].duration_ms, 240);
    assert_eq!(link.detector.clock_rate(), 48_000);
}

#[test]
fn short_payloads_are_counted() {
    let mut link = Link::new(8000);
    link.send(0, 1000, true, &[]);
    link.send(20, 1000, false, &[1, 0, 0]);
    link.send(40, 1000, false, &[1, 0, 0, 0, 0]);

    assert!(link.events.is_empty());
    assert_eq!(link.detector.counters().malformed, 3);
    assert_eq!(link.detector.counters().packets, 3);

    link.press(100, 2000, 6, 60, Marker::FirstPacket, EndSequence::Same);
    assert_eq!(link.starts(), "6");
}

#[test]
fn events_above_fifteen_ignored() {
    let mut link = Link::new(8000);
    for event in [16u8, 32, 255] {
        link.send(0, 1000, true, &block(event, false, 10, 0));
        link.send(20, 1000, false, &block(event, true, 10, 160));
    }

    assert!(link.events.is_empty());
    assert_eq!(link.detector.counters().not_dtmf, 6);
    assert_eq!(link.detector.next_deadline(), None);
}

#[test]
fn reordered_packet_is_stale() {
    let mut link = Link::new(8000);
    link.press(0, 1000, 4, 100, Marker::FirstPacket, EndSequence::Same);
    let late_sequence = link.sequence.wrapping_sub(3);
    link.send(200, 2600, true, &block(5, false, 10, 0));
    link.send_with(210, late_sequence, 1000, false, &block(4, false, 10, 480));
    link.send(220, 2600, false, &block(5, true, 10, 160));

    assert_eq!(link.starts(), "45");
    assert_eq!(link.ended_keys(), "45");
    assert_eq!(link.detector.counters().stale, 1);
}

#[test]
fn sequence_and_timestamp_restart_starts_new_press() {
    // The sender goes back 420 packets and 9 s with the same SSRC, 260 ms after `*`
    // ended. SIPp sends this when it replays its `*` capture and then its `1` capture.
    let mut link = Link::new(8000);
    link.sequence = 8397;
    let star_end = link.press(0, 85_760, 10, 140, Marker::FirstPacket, EndSequence::Same);
    link.sequence = 7984;
    link.press(
        star_end + 264,
        13_280,
        1,
        140,
        Marker::FirstPacket,
        EndSequence::Same,
    );

    assert_eq!(link.starts(), "*1");
    assert_eq!(link.ended_keys(), "*1");
    assert_eq!(link.detector.counters().stale, 0);
}

#[test]
fn misorder_limit_bounds_late_packets() {
    // Older timestamps: 100 packets behind is still reordering, 101 is a restart.
    let mut link = Link::new(8000);
    let end = link.press(0, 100_000, 4, 100, Marker::FirstPacket, EndSequence::Same);
    let newest = link.sequence.wrapping_sub(1);
    let late = newest.wrapping_sub(MAX_MISORDER);
    link.send_with(end + 10, late, 90_000, false, &block(4, false, 10, 160));
    assert_eq!(link.starts(), "4");
    assert_eq!(link.detector.counters().stale, 1);

    let restarted = late.wrapping_sub(1);
    link.send_with(end + 20, restarted, 90_000, true, &block(5, false, 10, 0));
    assert_eq!(link.starts(), "45");
}

#[test]
fn timestamp_restart_starts_new_press() {
    // The sender restarts its timestamp base (a new stream with the same SSRC).
    let mut link = Link::new(8000);
    link.press(0, 2_000_000, 1, 100, Marker::FirstPacket, EndSequence::Same);
    link.press(200, 3000, 2, 100, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "12");
    assert_eq!(link.ended_keys(), "12");
}

#[test]
fn timestamp_wrap_between_presses() {
    let mut link = Link::new(8000);
    link.press(
        0,
        u32::MAX - 200,
        3,
        100,
        Marker::FirstPacket,
        EndSequence::Same,
    );
    link.press(200, 1000, 3, 100, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "33");
    assert_eq!(link.ends()[0].duration_ms, 100);
}

#[test]
fn sequence_wraps_within_press() {
    let mut link = Link::new(8000);
    link.sequence = u16::MAX - 2;
    link.press(0, 1000, 9, 100, Marker::FirstPacket, EndSequence::Same);
    link.press(200, 3000, 9, 100, Marker::FirstPacket, EndSequence::Same);

    assert_eq!(link.starts(), "99");
    assert_eq!(link.ended_keys(), "99");
}

#[test]
fn packed_events_in_one_packet() {
    // `1` ended and `2` begun in one packet (RFC 4733 §2.5.1.5), then `2` ends.
    let mut link = Link::new(8000);
    let mut payload = Vec::new();
    payload.extend_from_slice(&block(1, true, 10, 800));
    payload.extend_from_slice(&block(2, false, 10, 160));
    link.send(0, 1000, true, &payload);
    link.send(20, 1800, false, &block(2, true, 10, 800));

    assert_eq!(link.starts(), "12");
    assert_eq!(link.ended_keys(), "12");
    assert_eq!(link.ends()[1].timestamp, 1800);
}

#[test]
fn end_packet_alone_is_a_press() {
    let mut link = Link::new(8000);
    for _ in 0..3 {
        link.send_with(0, 10, 1000, false, &block(12, true, 10, 800));
    }

    assert_eq!(link.starts(), "A");
    assert_eq!(link.ended_keys(), "A");
    assert_eq!(link.ends()[0].duration_ms, 100);
}

#[test]
fn start_reported_at_first_packet() {
    let mut link = Link::new(8000);
    link.send(0, 1000, true, &block(10, false, 10, 0));

    assert_eq!(link.starts(), "*");
    assert!(link.ends().is_empty());
    assert_eq!(link.detector.next_deadline(), Some(link.at(500)));
}

#[test]
fn relayed_packet_is_accepted() {
    let mut detector = Rfc4733Detector::new(8000).unwrap();
    let source: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let packet = TelephoneEventPacket {
        stream: 0,
        side: Side::B,
        source,
        payload_type: 96,
        marker: true,
        sequence: 1,
        timestamp: 160,
        ssrc: 42,
        payload: Bytes::copy_from_slice(&block(11, true, 10, 800)),
    };
    let events = detector.receive_relayed(&packet, Instant::now());

    assert_eq!(events.len(), 2);
    let DetectorEvent::DigitEnd(end) = events[1] else {
        panic!("expected a digit end, got {:?}", events[1]);
    };
    assert_eq!(end.digit().key, '#');
    assert_eq!(end.digit().duration_ms, Some(100));
}
