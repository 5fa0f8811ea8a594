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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadMap {
    /// `(side A number, side B number)` per codec; a later pair wins over an earlier one.
    /// A call has a few, so a short list searched in full costs less memory than two
    /// 128-entry tables.
    pairs: Box<[(u8, u8)]>,
    /// Telephone-event payload types per side, as bit sets.
    telephone_event: [u128; 2],
}

impl PayloadMap {
    /// Creates the map that changes nothing and marks no telephone-event type.
    pub fn identity() -> PayloadMap {
        PayloadMap::default()
    }

    /// Creates the map from `(side A payload type, side B payload type)` pairs. Pairs with a
    /// number above 127, which RTP cannot carry, are ignored.
    pub fn from_pairs(pairs: &[(u8, u8)]) -> PayloadMap {
        let pairs = pairs
            .iter()
            .copied()
            .filter(|&(a, b)| a < 128 && b < 128)
            .collect();
        PayloadMap {
            pairs,
            telephone_event: [0; 2],
        }
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
        let payload_type = payload_type & 0x7f;
        let mut pairs = self.pairs.iter().rev();
        let found = match from.map_side() {
            Side::A => pairs.find(|pair| pair.0 == payload_type).map(|pair| pair.1),
            _ => pairs.find(|pair| pair.1 == payload_type).map(|pair| pair.0),
        };
        found.unwrap_or(payload_type)
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
