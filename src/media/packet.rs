//! Classifying datagrams as RTP or RTCP, and the payload-type rewrite.

use rtp_rs::RtpReader;

/// The protocol of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PacketKind {
    Rtp,
    Rtcp,
}

/// Classifies a datagram, or returns `None` for anything that is neither valid RTP
/// (RFC 3550 §5.1, as `RtpReader` checks it) nor plausible RTCP.
///
/// RTCP is distinguished from RTP by the second octet, as in RFC 5761 §4: RTCP packet types
/// 192-223 appear there, which read as RTP marker plus payload type 64-95. This is applied
/// on every socket, because those payload types are never assigned to RTP.
pub(super) fn classify(packet: &[u8]) -> Option<PacketKind> {
    let second = *packet.get(1)?;
    if (64..=95).contains(&(second & 0x7f)) {
        return is_rtcp(packet).then_some(PacketKind::Rtcp);
    }
    RtpReader::new(packet).ok().map(|_| PacketKind::Rtp)
}

/// Checks the first RTCP header of a (compound) packet (RFC 3550 §6.4): version 2, a
/// packet type 192-223, room for the sender SSRC, and a length that fits the datagram.
fn is_rtcp(packet: &[u8]) -> bool {
    if packet.len() < 8 || packet[0] >> 6 != 2 || !(192..=223).contains(&packet[1]) {
        return false;
    }
    let words = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    (words + 1) * 4 <= packet.len()
}

/// Returns the 7-bit payload type of an RTP packet; `packet` must have passed
/// [`classify`] as RTP.
pub(super) fn payload_type(packet: &[u8]) -> u8 {
    packet.get(1).map_or(0, |second| second & 0x7f)
}

/// Sets the payload type of an RTP packet and leaves the marker bit and every other byte
/// as they are.
pub(super) fn set_payload_type(packet: &mut [u8], payload_type: u8) {
    if let Some(second) = packet.get_mut(1) {
        *second = (*second & 0x80) | (payload_type & 0x7f);
    }
}
