//! Ringback tone generated toward the caller while a transfer target rings without
//! sending early media: 450 Hz, 1 s on and 4 s off, the ringback tone of telephone
//! networks in mainland China, in 20 ms G.711 RTP packets.

use std::f64::consts::TAU;
use std::time::Duration;

/// Samples per second of G.711.
const SAMPLE_RATE: u32 = 8000;
/// Samples per 20 ms packet.
const SAMPLES_PER_PACKET: usize = 160;
/// Packet interval.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);
const TONE_HZ: f64 = 450.0;
/// Cadence in packets: 50 packets (1 s) of tone, then 200 packets (4 s) of silence.
const ON_PACKETS: u32 = 50;
const CYCLE_PACKETS: u32 = 250;
/// Peak amplitude of the tone in 16-bit linear samples, about -10 dBm0.
const AMPLITUDE: f64 = 7000.0;
const RTP_HEADER: usize = 12;
/// The length of one generated packet: the RTP header and 20 ms of G.711.
pub(super) const PACKET_BYTES: usize = RTP_HEADER + SAMPLES_PER_PACKET;

/// The G.711 law of the caller's negotiated codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    /// PCMA, static payload type 8.
    ALaw,
    /// PCMU, static payload type 0.
    MuLaw,
}

/// What the relay needs to generate ringback toward a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ringback {
    pub law: G711,
    /// Payload type the side negotiated for that law.
    pub payload_type: u8,
}

/// The state of one ringback RTP stream.
#[derive(Debug)]
pub(super) struct ToneGenerator {
    spec: Ringback,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    packet: u32,
}

impl ToneGenerator {
    pub(super) fn new(spec: Ringback) -> ToneGenerator {
        ToneGenerator {
            spec,
            ssrc: rand::random(),
            sequence: rand::random(),
            timestamp: rand::random(),
            packet: 0,
        }
    }

    /// Writes the next 20 ms packet into `buffer` and returns its length.
    pub(super) fn next_packet(&mut self, buffer: &mut [u8]) -> usize {
        let length = PACKET_BYTES;
        if buffer.len() < length {
            return 0;
        }
        let marker = self.packet.is_multiple_of(CYCLE_PACKETS);
        buffer[0] = 0x80;
        buffer[1] = (self.spec.payload_type & 0x7f) | if marker { 0x80 } else { 0 };
        buffer[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        buffer[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buffer[8..12].copy_from_slice(&self.ssrc.to_be_bytes());

        let tone_on = self.packet % CYCLE_PACKETS < ON_PACKETS;
        let first_sample = u64::from(self.packet) * SAMPLES_PER_PACKET as u64;
        for (offset, byte) in buffer[RTP_HEADER..length].iter_mut().enumerate() {
            let linear = if tone_on {
                let t = (first_sample + offset as u64) as f64 / f64::from(SAMPLE_RATE);
                (AMPLITUDE * (TAU * TONE_HZ * t).sin()) as i16
            } else {
                0
            };
            *byte = match self.spec.law {
                G711::ALaw => linear_to_alaw(linear),
                G711::MuLaw => linear_to_ulaw(linear),
            };
        }

        self.packet = self.packet.wrapping_add(1);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(SAMPLES_PER_PACKET as u32);
        length
    }
}

/// ITU-T G.711 A-law encoding of a 16-bit linear sample.
fn linear_to_alaw(sample: i16) -> u8 {
    let (sign, magnitude) = if sample >= 0 {
        (0x80u8, i32::from(sample) >> 3)
    } else {
        (0x00u8, (-(i32::from(sample) + 1)) >> 3)
    };
    let magnitude = magnitude.min(0xfff);
    let encoded = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let exponent = 31 - (magnitude as u32).leading_zeros() - 4;
        let mantissa = ((magnitude >> exponent) & 0x0f) as u8;
        ((exponent as u8) << 4) | mantissa
    };
    (sign | encoded) ^ 0x55
}

/// ITU-T G.711 mu-law encoding of a 16-bit linear sample.
fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let (sign, magnitude) = if sample < 0 {
        (0x80u8, (-i32::from(sample)).min(CLIP))
    } else {
        (0x00u8, i32::from(sample).min(CLIP))
    };
    let biased = magnitude + BIAS;
    let exponent = (31 - (biased as u32).leading_zeros())
        .saturating_sub(7)
        .min(7);
    let mantissa = ((biased >> (exponent + 3)) & 0x0f) as u8;
    !(sign | ((exponent as u8) << 4) | mantissa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alaw_known_values() {
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
    }

    #[test]
    fn ulaw_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(-32635), 0x00);
    }

    #[test]
    fn packets_advance_sequence_and_timestamp() {
        let mut generator = ToneGenerator::new(Ringback {
            law: G711::ALaw,
            payload_type: 8,
        });
        let mut first = [0u8; 200];
        let mut second = [0u8; 200];
        assert_eq!(generator.next_packet(&mut first), 172);
        assert_eq!(generator.next_packet(&mut second), 172);
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(seq(&second), seq(&first).wrapping_add(1));
        assert_eq!(ts(&second), ts(&first).wrapping_add(160));
        assert_eq!(first[1], 0x80 | 8);
        assert_eq!(second[1], 8);
    }

    #[test]
    fn cadence_is_silent_after_one_second() {
        let mut generator = ToneGenerator::new(Ringback {
            law: G711::MuLaw,
            payload_type: 0,
        });
        let mut packet = [0u8; 200];
        for _ in 0..ON_PACKETS {
            generator.next_packet(&mut packet);
        }
        generator.next_packet(&mut packet);
        assert!(packet[RTP_HEADER..172].iter().all(|&byte| byte == 0xff));
    }
}

/// Writes the RFC 4733 packets of one key press into `out`: a start packet with the
/// marker bit, then three end packets (the redundancy RFC 4733 §2.5.1.4 recommends), all
/// with the same timestamp. `sequence` is advanced per packet.
pub(super) fn key_press_packets(
    event: u8,
    payload_type: u8,
    ssrc: u32,
    timestamp: u32,
    sequence: &mut u16,
) -> Vec<[u8; RTP_HEADER + 4]> {
    /// 100 ms at 8000 Hz, a press every receiver recognises.
    const DURATION: u16 = 800;
    const VOLUME: u8 = 10;
    let mut packets = Vec::with_capacity(4);
    for index in 0..4 {
        let end = index > 0;
        let duration = if end { DURATION } else { 160 };
        let mut packet = [0u8; RTP_HEADER + 4];
        packet[0] = 0x80;
        packet[1] = (payload_type & 0x7f) | if index == 0 { 0x80 } else { 0 };
        packet[2..4].copy_from_slice(&sequence.to_be_bytes());
        packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
        packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
        packet[12] = event;
        packet[13] = if end { 0x80 | VOLUME } else { VOLUME };
        packet[14..16].copy_from_slice(&duration.to_be_bytes());
        *sequence = sequence.wrapping_add(1);
        packets.push(packet);
    }
    packets
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn key_press_has_start_and_three_ends() {
        let mut sequence = 65534;
        let packets = key_press_packets(10, 101, 7, 1000, &mut sequence);
        assert_eq!(packets.len(), 4);
        assert_eq!(packets[0][1], 0x80 | 101);
        assert_eq!(packets[0][13] & 0x80, 0);
        for end in &packets[1..] {
            assert_eq!(end[1], 101);
            assert_eq!(end[12], 10);
            assert_eq!(end[13] & 0x80, 0x80);
            assert_eq!(u16::from_be_bytes([end[14], end[15]]), 800);
        }
        assert_eq!(sequence, 2);
    }
}
