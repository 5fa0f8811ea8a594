//! Codecs behind payload types, and the payload-type map between the two legs.

use super::MediaDescription;

/// A codec as identified for matching: encoding name, clock rate and channels
/// (RFC 4566 §6 `a=rtpmap`, RFC 3551 §6 for static payload types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name as written; compare it ignoring ASCII case.
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels; 1 when not given.
    pub channels: u16,
}

impl Codec {
    /// Returns whether two codecs are the same for relaying: equal name ignoring case,
    /// clock rate and channel count. Format parameters are not compared.
    pub fn matches(&self, other: &Codec) -> bool {
        self.encoding.eq_ignore_ascii_case(&other.encoding)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }

    /// Returns the codec of a static payload type from RFC 3551 §6 tables 4 and 5, or
    /// `None` for dynamic and unassigned numbers.
    pub fn from_static(payload_type: u8) -> Option<Codec> {
        let (encoding, clock_rate, channels) = match payload_type {
            0 => ("PCMU", 8000, 1),
            3 => ("GSM", 8000, 1),
            4 => ("G723", 8000, 1),
            5 => ("DVI4", 8000, 1),
            6 => ("DVI4", 16000, 1),
            7 => ("LPC", 8000, 1),
            8 => ("PCMA", 8000, 1),
            9 => ("G722", 8000, 1),
            10 => ("L16", 44100, 2),
            11 => ("L16", 44100, 1),
            12 => ("QCELP", 8000, 1),
            13 => ("CN", 8000, 1),
            14 => ("MPA", 90000, 1),
            15 => ("G728", 8000, 1),
            16 => ("DVI4", 11025, 1),
            17 => ("DVI4", 22050, 1),
            18 => ("G729", 8000, 1),
            25 => ("CelB", 90000, 1),
            26 => ("JPEG", 90000, 1),
            28 => ("nv", 90000, 1),
            31 => ("H261", 90000, 1),
            32 => ("MPV", 90000, 1),
            33 => ("MP2T", 90000, 1),
            34 => ("H263", 90000, 1),
            _ => return None,
        };
        Some(Codec {
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }
}

impl MediaDescription {
    /// Returns the codec of a payload type: its `a=rtpmap` if present, else the static
    /// assignment of RFC 3551.
    pub fn codec(&self, payload_type: u8) -> Option<Codec> {
        let rtpmap = self
            .rtpmaps
            .iter()
            .find(|rtpmap| rtpmap.payload_type == payload_type);
        match rtpmap {
            Some(rtpmap) => Some(Codec {
                encoding: rtpmap.encoding.clone(),
                clock_rate: rtpmap.clock_rate,
                channels: rtpmap.channels.unwrap_or(1),
            }),
            None => Codec::from_static(payload_type),
        }
    }
}

/// Pairs of payload types that carry the same codec on the two legs: `(pt_a, pt_b)`,
/// where `pt_a` is the number used on side A (the caller) and `pt_b` on side B (the agent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadTypeMap {
    pairs: Vec<(u8, u8)>,
}

impl PayloadTypeMap {
    /// Returns every matched pair, in side A's preference order.
    pub fn pairs(&self) -> &[(u8, u8)] {
        &self.pairs
    }

    /// Returns the side B number for a side A payload type.
    pub fn a_to_b(&self, payload_type: u8) -> Option<u8> {
        let pair = self.pairs.iter().find(|(a, _)| *a == payload_type);
        pair.map(|(_, b)| *b)
    }

    /// Returns the side A number for a side B payload type.
    pub fn b_to_a(&self, payload_type: u8) -> Option<u8> {
        let pair = self.pairs.iter().find(|(_, b)| *b == payload_type);
        pair.map(|(a, _)| *a)
    }

    /// Returns whether every matched codec has the same number on both legs, so that the
    /// relay has nothing to rewrite.
    pub fn is_identity(&self) -> bool {
        self.pairs.iter().all(|(a, b)| a == b)
    }
}

/// Matches the payload types of the same stream as described on side A and side B by
/// codec (encoding name, clock rate, channels).
///
/// Each side A payload type is paired with at most one side B type, which is preferably the
/// same number and otherwise the first unused match in side B's order. A payload type is
/// left out when its codec is unknown (a dynamic number without `a=rtpmap`) or has no
/// match, so the relay passes it unchanged.
pub fn map_payload_types(a: &MediaDescription, b: &MediaDescription) -> PayloadTypeMap {
    let codecs_b: Vec<(u8, Codec)> = b
        .payload_types()
        .filter_map(|pt| Some((pt, b.codec(pt)?)))
        .collect();
    let mut used = [false; 128];
    let mut pairs = Vec::new();

    for pt_a in a.payload_types() {
        let Some(codec_a) = a.codec(pt_a) else {
            continue;
        };
        let free_match =
            |(pt_b, codec_b): &&(u8, Codec)| !used[usize::from(*pt_b)] && codec_b.matches(&codec_a);
        let same_number = codecs_b
            .iter()
            .filter(|(pt_b, _)| *pt_b == pt_a)
            .find(free_match);
        let Some((pt_b, _)) = same_number.or_else(|| codecs_b.iter().find(free_match)) else {
            continue;
        };
        used[usize::from(*pt_b)] = true;
        pairs.push((pt_a, *pt_b));
    }

    PayloadTypeMap { pairs }
}
