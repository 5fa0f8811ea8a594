//! Detection of DTMF key presses in RFC 4733 telephone-event packets.
//!
//! A sender reports one press as a series of packets that share the RTP timestamp of the
//! press's start and carry a growing duration, and it sends the final packet, which has the
//! E bit set, usually three times. [`Rfc4733Detector`] turns such a series into one
//! [`DigitStart`] at its first packet and one [`DigitEnd`] at its end. It must hold up
//! against what real senders do:
//!
//! - the final packet repeated with the same sequence number, or with increasing ones;
//! - a marker bit that is never set or set on every packet, so the marker is not used;
//! - long presses that a sender splits into segments with new timestamps (RFC 4733
//!   §2.5.1.3), and senders that re-stamp the packets of one press;
//! - a new SSRC, or a jump in the sequence numbers, between two presses;
//! - a sender that restarts with the same SSRC and goes back in sequence numbers and
//!   timestamps;
//! - the same key pressed twice (`*11`): a new timestamp after an end starts a new press;
//! - lost final packets: a press ends when another press starts or after a timeout.
//!
//! The detector reads no clock: [`Rfc4733Detector::receive`] and [`Rfc4733Detector::poll`]
//! take the current time, and [`Rfc4733Detector::next_deadline`] returns when to poll.

use std::time::Duration;

use thiserror::Error;
use tokio::time::Instant;

use super::{Digit, key_for_event};
use crate::media::TelephoneEventPacket;

/// Time without packets after which a press that never received an end packet is reported
/// as ended. Senders typically refresh a press every 20 to 50 ms, so this survives several
/// lost packets.
pub const DEFAULT_END_TIMEOUT: Duration = Duration::from_millis(500);

/// Largest gap between the end of what a press has reported and a packet with a new
/// timestamp for which that packet still continues the press. It covers lost packets at the
/// boundary of a long-duration segment. A repeated key whose first press lost its end packets
/// and whose second press starts within this gap is taken as one press.
pub const CONTINUATION_SLACK: Duration = Duration::from_millis(50);

/// Largest number of sequence numbers by which reordering can put a packet behind the
/// newest one of its stream (`MAX_MISORDER` of RFC 3550 Appendix A.1). A packet further
/// behind comes from a sender that restarted its sequence numbers, such as a switch that
/// moves the stream to another source and keeps the SSRC.
pub const MAX_MISORDER: u16 = 100;

/// Size of one event block (RFC 4733 §2.3).
const BLOCK_LEN: usize = 4;

/// One event block of a telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBlock {
    /// Event code. Codes 0-15 are DTMF (RFC 4733 §3).
    pub event: u8,
    /// The E bit: this packet reports the end of the event.
    pub end: bool,
    /// The R bit, which is reserved. Senders set it to 0 and receivers ignore it.
    pub reserved: bool,
    /// Power level of the tone, 0 to 63, in dBm0 below zero (so 10 means -10 dBm0).
    pub volume: u8,
    /// Length of the event so far, in RTP timestamp units, counted from the packet's RTP
    /// timestamp.
    pub duration: u16,
}

impl EventBlock {
    /// Parses the first four bytes of `bytes` as an event block, or returns `None` if there
    /// are fewer than four.
    pub fn parse(bytes: &[u8]) -> Option<EventBlock> {
        let [event, flags, high, low] = *bytes.first_chunk::<BLOCK_LEN>()?;
        Some(EventBlock {
            event,
            end: flags & 0x80 != 0,
            reserved: flags & 0x40 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([high, low]),
        })
    }
}

/// Reason a telephone-event payload is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// The payload is empty or shorter than one event block.
    #[error("telephone-event payload of {length} bytes is shorter than one 4-byte event block")]
    Short { length: usize },
    /// The payload is not a whole number of event blocks.
    #[error("telephone-event payload of {length} bytes is not a multiple of 4-byte event blocks")]
    Trailing { length: usize },
}

/// Splits a telephone-event payload into its event blocks. A payload carries more than one
/// block only when a sender packs consecutive events into one packet (RFC 4733 §2.5.1.5).
///
/// # Errors
///
/// [`PayloadError`] when the payload is not one or more whole 4-byte blocks.
pub fn parse_payload(
    payload: &[u8],
) -> Result<impl Iterator<Item = EventBlock> + '_, PayloadError> {
    let length = payload.len();
    if length < BLOCK_LEN {
        return Err(PayloadError::Short { length });
    }
    if !length.is_multiple_of(BLOCK_LEN) {
        return Err(PayloadError::Trailing { length });
    }
    Ok(payload
        .chunks_exact(BLOCK_LEN)
        .filter_map(EventBlock::parse))
}

/// The parts of a telephone-event RTP packet that the detector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket<'a> {
    pub ssrc: u32,
    pub sequence: u16,
    /// RTP timestamp, in units of the negotiated clock rate.
    pub timestamp: u32,
    /// The RTP marker bit. The detector does not use it, because some senders never set it
    /// and others set it on every packet.
    pub marker: bool,
    /// The RTP payload: one or more event blocks.
    pub payload: &'a [u8],
}

impl<'a> From<&'a TelephoneEventPacket> for EventPacket<'a> {
    fn from(packet: &'a TelephoneEventPacket) -> Self {
        EventPacket {
            ssrc: packet.ssrc,
            sequence: packet.sequence,
            timestamp: packet.timestamp,
            marker: packet.marker,
            payload: &packet.payload,
        }
    }
}

/// An output of the detector: a press started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorEvent {
    DigitStart(DigitStart),
    DigitEnd(DigitEnd),
}

/// The first packet of a new key press. It comes as early as possible, so the engine can
/// stop relaying the press before the caller hears much of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitStart {
    /// The key: `0`-`9`, `*`, `#` or `A`-`D`.
    pub key: char,
    pub ssrc: u32,
    /// RTP timestamp of the press's start.
    pub timestamp: u32,
    /// Power level in dBm0 below zero, as in [`EventBlock::volume`].
    pub volume: u8,
}

/// The end of a key press. Exactly one follows each [`DigitStart`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitEnd {
    pub key: char,
    /// Length of the press in milliseconds, from the largest duration reported. It is
    /// shorter than the real press when the last packets were lost.
    pub duration_ms: u32,
    pub ssrc: u32,
    /// RTP timestamp of the press's start, the same as in its [`DigitStart`].
    pub timestamp: u32,
    /// Power level of the last packet, in dBm0 below zero.
    pub volume: u8,
    pub cause: EndCause,
}

impl DigitEnd {
    /// Returns the press as a transport-neutral [`Digit`].
    pub fn digit(&self) -> Digit {
        Digit {
            key: self.key,
            duration_ms: Some(self.duration_ms),
        }
    }
}

/// The signal that ended a press.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndCause {
    /// A packet with the E bit set.
    EndPacket,
    /// No packet for the end timeout: the end packets were lost or never sent.
    Timeout,
    /// Another press started before this one's end packet arrived.
    Superseded,
}

/// Packet and block counts of a detector, mostly of what it ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectorCounters {
    /// Packets received.
    pub packets: u64,
    /// Packets dropped because their payload is not whole event blocks.
    pub malformed: u64,
    /// Blocks with event codes 16 and above, which are not DTMF.
    pub not_dtmf: u64,
    /// Blocks that repeat a press already ended, such as the repeated end packets.
    pub duplicates: u64,
    /// Blocks older than the current press, which arrived out of order.
    pub stale: u64,
    /// Presses ended by the timeout or by a new press instead of an end packet.
    pub lost_ends: u64,
}

/// Invalid detector settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DetectorError {
    #[error("invalid telephone-event clock rate of 0 Hz: use the rate from the SDP rtpmap")]
    ZeroClockRate,
}

/// One key press the detector follows, or the last one it finished.
#[derive(Debug, Clone, Copy)]
struct Press {
    ssrc: u32,
    event: u8,
    /// RTP timestamp of the press's first segment.
    origin: u32,
    /// Offset from `origin` of the latest segment's timestamp, in RTP units.
    segment: u32,
    /// Offset from `origin` of the furthest end any packet reported, in RTP units.
    span: u32,
    volume: u8,
    /// Highest sequence number seen for the press.
    sequence: u16,
    /// Arrival of the latest packet of the press.
    arrival: Instant,
    ended: bool,
}

/// The relation of a block to the presses the detector tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// Continues the current press. The value is the block's offset from its origin.
    Continues(u32),
    Duplicate,
    Stale,
    NewPress,
}

/// Detector of DTMF presses on one telephone-event stream (one SSRC at a time), following
/// the receiver rules of RFC 4733.
///
/// Feed it every telephone-event packet of the stream with [`receive`](Self::receive), and
/// call [`poll`](Self::poll) at [`next_deadline`](Self::next_deadline).
#[derive(Debug, Clone)]
pub struct Rfc4733Detector {
    clock_rate: u32,
    end_timeout: Duration,
    /// [`CONTINUATION_SLACK`] in RTP units.
    slack: u32,
    current: Option<Press>,
    /// The press before `current`, kept to recognise its late packets after an SSRC change.
    previous: Option<Press>,
    counters: DetectorCounters,
}

impl Rfc4733Detector {
    /// Creates a detector for a stream whose telephone-event clock runs at `clock_rate` Hz,
    /// as the SDP `a=rtpmap` line gives it (usually 8000, or 48000 next to Opus).
    ///
    /// # Errors
    ///
    /// [`DetectorError::ZeroClockRate`] when `clock_rate` is 0.
    pub fn new(clock_rate: u32) -> Result<Rfc4733Detector, DetectorError> {
        if clock_rate == 0 {
            return Err(DetectorError::ZeroClockRate);
        }
        Ok(Rfc4733Detector {
            clock_rate,
            end_timeout: DEFAULT_END_TIMEOUT,
            slack: samples(CONTINUATION_SLACK, clock_rate),
            current: None,
            previous: None,
            counters: DetectorCounters::default(),
        })
    }

    /// Sets the time without packets after which an unfinished press ends
    /// ([`DEFAULT_END_TIMEOUT`] unless set).
    pub fn with_end_timeout(mut self, end_timeout: Duration) -> Rfc4733Detector {
        self.end_timeout = end_timeout;
        self
    }

    /// Returns the clock rate in Hz given at construction.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Returns the detector's counters.
    pub fn counters(&self) -> DetectorCounters {
        self.counters
    }

    /// Processes one telephone-event packet that arrived at `now` and returns what it
    /// started and ended, in order. A press that timed out before `now` is ended first.
    /// Malformed payloads and non-DTMF events are counted and otherwise ignored.
    pub fn receive(&mut self, packet: EventPacket<'_>, now: Instant) -> Vec<DetectorEvent> {
        let mut events = Vec::new();
        if let Some(end) = self.poll(now) {
            events.push(DetectorEvent::DigitEnd(end));
        }
        self.counters.packets += 1;

        let blocks = match parse_payload(packet.payload) {
            Ok(blocks) => blocks,
            Err(error) => {
                tracing::trace!(ssrc = packet.ssrc, %error, "dropped telephone-event packet");
                self.counters.malformed += 1;
                return events;
            }
        };

        // Packed events follow each other without a gap, so each block after the first
        // starts where the one before it ends.
        let mut timestamp = packet.timestamp;
        for block in blocks {
            self.receive_block(&packet, timestamp, block, now, &mut events);
            timestamp = timestamp.wrapping_add(u32::from(block.duration));
        }
        events
    }

    /// Processes a packet copied by the media relay, as [`receive`](Self::receive) does.
    pub fn receive_relayed(
        &mut self,
        packet: &TelephoneEventPacket,
        now: Instant,
    ) -> Vec<DetectorEvent> {
        self.receive(EventPacket::from(packet), now)
    }

    /// Ends the current press if no packet of it arrived for the end timeout before `now`.
    pub fn poll(&mut self, now: Instant) -> Option<DigitEnd> {
        let deadline = self.next_deadline()?;
        if now < deadline {
            return None;
        }
        self.counters.lost_ends += 1;
        self.finish_current(EndCause::Timeout)
    }

    /// Returns when [`poll`](Self::poll) must next be called, or `None` while no press is
    /// unfinished.
    pub fn next_deadline(&self) -> Option<Instant> {
        let press = self.current.as_ref().filter(|press| !press.ended)?;
        Some(press.arrival + self.end_timeout)
    }

    fn receive_block(
        &mut self,
        packet: &EventPacket<'_>,
        timestamp: u32,
        block: EventBlock,
        now: Instant,
        events: &mut Vec<DetectorEvent>,
    ) {
        let Some(key) = key_for_event(block.event) else {
            self.counters.not_dtmf += 1;
            return;
        };

        match self.relate(packet, timestamp, &block, now) {
            Relation::Continues(offset) => {
                if let Some(end) = self.extend(packet.sequence, offset, &block, now) {
                    events.push(DetectorEvent::DigitEnd(end));
                }
            }
            Relation::Duplicate => self.counters.duplicates += 1,
            Relation::Stale => self.counters.stale += 1,
            Relation::NewPress => {
                if self.current.is_some_and(|press| !press.ended) {
                    self.counters.lost_ends += 1;
                    if let Some(end) = self.finish_current(EndCause::Superseded) {
                        events.push(DetectorEvent::DigitEnd(end));
                    }
                }
                self.start(packet, timestamp, key, &block, now, events);
            }
        }
    }

    /// Relates a block to the current press, and to the previous one when the block comes
    /// from another SSRC than the current press.
    fn relate(
        &self,
        packet: &EventPacket<'_>,
        timestamp: u32,
        block: &EventBlock,
        now: Instant,
    ) -> Relation {
        let Some(current) = &self.current else {
            return Relation::NewPress;
        };
        if current.ssrc == packet.ssrc {
            return self.relate_to(current, packet.sequence, timestamp, block, now);
        }
        match &self.previous {
            Some(previous) if previous.ssrc == packet.ssrc => {
                match self.relate_to(previous, packet.sequence, timestamp, block, now) {
                    Relation::Duplicate | Relation::Stale => Relation::Duplicate,
                    _ => Relation::NewPress,
                }
            }
            _ => Relation::NewPress,
        }
    }

    /// Relates a block from the same SSRC to `press`.
    fn relate_to(
        &self,
        press: &Press,
        sequence: u16,
        timestamp: u32,
        block: &EventBlock,
        now: Instant,
    ) -> Relation {
        let offset = timestamp.wrapping_sub(press.origin);
        let newer = is_newer(sequence, press.sequence);

        // A timestamp before the press is a late packet of an earlier press, unless the
        // sequence number moved on, moved back further than reordering explains, or the
        // stream was silent, because then the sender has restarted its timestamps.
        if offset >= 1 << 31 {
            let reordered = press.sequence.wrapping_sub(sequence) <= MAX_MISORDER;
            let recent = now.saturating_duration_since(press.arrival) < self.end_timeout;
            return if reordered && recent {
                Relation::Stale
            } else {
                Relation::NewPress
            };
        }
        if block.event != press.event {
            return Relation::NewPress;
        }

        if !press.ended {
            // Segments of a long press and re-stamped packets start no later than where
            // the press has reached.
            // NOTE: a repeated key whose first press lost every end packet is taken as one
            // press when the second starts within the first's reach, as with SIPp's
            // play_dtmf timestamps.
            return if offset <= press.span.saturating_add(self.slack) {
                Relation::Continues(offset)
            } else {
                Relation::NewPress
            };
        }

        if block.end {
            // A repeated end packet keeps the timestamp, or moves it a little when the
            // sender re-stamps packets.
            let repeated =
                offset < press.span || offset <= press.segment.saturating_add(self.slack);
            return if repeated {
                Relation::Duplicate
            } else {
                Relation::NewPress
            };
        }
        if offset >= press.span && offset > press.segment {
            return Relation::NewPress;
        }

        // A packet inside the ended press is late, unless it was sent after the end packets
        // and reports less of the press than they did. Such a packet starts a new press at a
        // timestamp inside the old one. Some senders reuse the timestamp, and SIPp 3.6.1's
        // play_dtmf advances it by 400 units per key although each press lasts 1600.
        let reach = offset.saturating_add(u32::from(block.duration));
        if newer && reach < press.span {
            Relation::NewPress
        } else {
            Relation::Duplicate
        }
    }

    /// Adds a block to the current press and returns its end if the block has the E bit.
    fn extend(
        &mut self,
        sequence: u16,
        offset: u32,
        block: &EventBlock,
        now: Instant,
    ) -> Option<DigitEnd> {
        let press = self.current.as_mut()?;
        let reach = offset.saturating_add(u32::from(block.duration));
        press.span = press.span.max(reach);
        press.segment = press.segment.max(offset);
        press.volume = block.volume;
        press.arrival = now;
        if is_newer(sequence, press.sequence) {
            press.sequence = sequence;
        }

        if block.end {
            return self.finish_current(EndCause::EndPacket);
        }
        None
    }

    fn start(
        &mut self,
        packet: &EventPacket<'_>,
        timestamp: u32,
        key: char,
        block: &EventBlock,
        now: Instant,
        events: &mut Vec<DetectorEvent>,
    ) {
        let press = Press {
            ssrc: packet.ssrc,
            event: block.event,
            origin: timestamp,
            segment: 0,
            span: u32::from(block.duration),
            volume: block.volume,
            sequence: packet.sequence,
            arrival: now,
            ended: false,
        };
        self.previous = self.current.replace(press);
        events.push(DetectorEvent::DigitStart(DigitStart {
            key,
            ssrc: packet.ssrc,
            timestamp,
            volume: block.volume,
        }));

        if block.end
            && let Some(end) = self.finish_current(EndCause::EndPacket)
        {
            events.push(DetectorEvent::DigitEnd(end));
        }
    }

    /// Marks the current press as ended and returns its end, or `None` if it had already
    /// ended.
    fn finish_current(&mut self, cause: EndCause) -> Option<DigitEnd> {
        let press = self.current.as_mut().filter(|press| !press.ended)?;
        press.ended = true;
        let key = key_for_event(press.event)?;
        Some(DigitEnd {
            key,
            duration_ms: milliseconds(press.span, self.clock_rate),
            ssrc: press.ssrc,
            timestamp: press.origin,
            volume: press.volume,
            cause,
        })
    }
}

/// Returns whether RTP sequence number `a` comes after `b`, allowing for wrap-around.
fn is_newer(a: u16, b: u16) -> bool {
    let distance = a.wrapping_sub(b);
    distance != 0 && distance < 0x8000
}

/// Converts a duration to RTP timestamp units at `clock_rate` Hz, saturating at `u32::MAX`.
fn samples(duration: Duration, clock_rate: u32) -> u32 {
    let units = duration.as_millis() * u128::from(clock_rate) / 1000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// Converts RTP timestamp units at `clock_rate` Hz (never 0) to milliseconds, saturating.
fn milliseconds(units: u32, clock_rate: u32) -> u32 {
    let millis = u64::from(units) * 1000 / u64::from(clock_rate.max(1));
    u32::try_from(millis).unwrap_or(u32::MAX)
}
