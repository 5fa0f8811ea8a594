//! Payload-type translation between the sides, and the telephone-event hook.

use std::net::SocketAddr;

use bytes::Bytes;

use super::Side;

/// The payload-type numbers of each side for codecs numbered differently on the two legs,
/// and which numbers carry RFC 4733 telephone events on each side.
///
/// Numbers not in the map pass unchanged. Build it from the pairs the SDP module computes
/// (`sdp::map_payload_types`).
///
/// NOTE: SRTP (RFC 3711) authenticates the RTP header, so a map that changes numbers breaks
/// `RTP/SAVP` streams. Use the identity map for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadMap {
    /// Side A number to side B number, indexed by the 7-bit payload type.
    a_to_b: [u8; 128],
    /// Side B number to side A number.
    b_to_a: [u8; 128],
    /// Telephone-event payload types per side, as bit sets.
    telephone_event: [u128; 2],
}

impl Default for PayloadMap {
    fn default() -> Self {
        PayloadMap::identity()
    }
}

impl PayloadMap {
    /// Creates the map that changes nothing and marks no telephone-event type.
    pub fn identity() -> PayloadMap {
        let mut table = [0u8; 128];
        for (pt, entry) in (0u8..).zip(table.iter_mut()) {
            *entry = pt;
        }
        PayloadMap {
            a_to_b: table,
            b_to_a: table,
            telephone_event: [0; 2],
        }
    }

    /// Creates the map from `(side A payload type, side B payload type)` pairs. Pairs with a
    /// number above 127, which RTP cannot carry, are ignored.
    pub fn from_pairs(pairs: &[(u8, u8)]) -> PayloadMap {
        let mut map = PayloadMap::identity();
        for &(a, b) in pairs {
            if a < 128 && b < 128 {
                map.a_to_b[usize::from(a)] = b;
                map.b_to_a[usize::from(b)] = a;
            }
        }
        map
    }

    /// Marks `payload_type` as telephone-event on `side`, so its packets also go to the
    /// side's observer. Numbers above 127 are ignored.
    pub fn with_telephone_event(mut self, side: Side, payload_type: u8) -> PayloadMap {
        if payload_type < 128 {
            self.telephone_event[side.map_side().index()] |= 1u128 << payload_type;
        }
        self
    }

    /// Returns the number to send to the other side for a payload type received from
    /// `from`. Only the low 7 bits of `payload_type` are used.
    pub fn translate(&self, from: Side, payload_type: u8) -> u8 {
        let index = usize::from(payload_type & 0x7f);
        match from.map_side() {
            Side::A => self.a_to_b[index],
            _ => self.b_to_a[index],
        }
    }

    /// Returns whether `payload_type` carries telephone events when received from `side`.
    pub fn is_telephone_event(&self, side: Side, payload_type: u8) -> bool {
        let bit = 1u128.checked_shl(u32::from(payload_type)).unwrap_or(0);
        self.telephone_event[side.map_side().index()] & bit != 0
    }
}

/// A telephone-event (RFC 4733) RTP packet seen by the relay, copied for an observer.
/// The packet itself is relayed unchanged apart from its payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephoneEventPacket {
    /// Index of the media stream (`m=` line).
    pub stream: usize,
    /// The side that sent the packet.
    pub side: Side,
    pub source: SocketAddr,
    /// Payload type as received, before translation.
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// The RTP payload: one or more RFC 4733 §2.3 event blocks.
    pub payload: Bytes,
}
