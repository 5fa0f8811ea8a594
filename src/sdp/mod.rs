//! SDP offers and answers (RFC 4566, RFC 3264): a line-oriented parser and the rewrite that
//! points a body at the relay.
//!
//! There is deliberately no SDP object model that is printed back. The parser keeps every
//! line as it arrived and extracts only what the engine needs: the origin, the connection
//! addresses, and per `m=` section the port, formats, codecs, direction and RTCP attributes.
//! [`SessionDescription::rewrite`] then changes only the lines the relay must change (`o=`,
//! `c=`, the `m=` port, `a=rtcp`, ICE attributes) and keeps all others in their order,
//! because endpoints rely on attributes a relay does not understand.
//!
//! This module does not use SIP or the relay's sockets. The session core passes the relay
//! addresses in and hands the payload-type map to the media module.

mod origin;
mod parse;
mod payload;
mod rewrite;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

pub use origin::OriginState;
pub use payload::{Codec, PayloadTypeMap, map_payload_types};

/// Errors from parsing or rewriting an SDP body. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is not valid UTF-8 after byte {valid_up_to}")]
    NotUtf8 { valid_up_to: usize },
    #[error("SDP body is empty")]
    Empty,
    #[error("SDP line {line} is not of the form <type>=<value>: {text:?}")]
    MalformedLine { line: usize, text: String },
    #[error("SDP line {line} must be \"v=0\" but is {text:?}")]
    UnsupportedVersion { line: usize, text: String },
    #[error("SDP body has no o= line")]
    MissingOrigin,
    #[error("SDP line {line} has an invalid {field}: {text:?}")]
    InvalidField {
        line: usize,
        field: &'static str,
        text: String,
    },
    #[error("SDP m= line {line} has no c= line at media or session level")]
    MissingConnection { line: usize },
    #[error("rewrite needs one relay address per m= line: {media} m= lines, {relays} addresses")]
    RelayCountMismatch { media: usize, relays: usize },
}

/// Media direction attribute (RFC 3264 §5.1, §8.4 for hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Parses the attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Returns whether the party that wrote this direction puts the stream on hold: it does
    /// not want to receive media (RFC 3264 §8.4: `sendonly` or `inactive`).
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }
}

/// The `o=` line (RFC 4566 §5.2). Id and version are kept as text because they are only
/// compared, never computed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: String,
    pub network_type: String,
    pub address_type: String,
    pub address: String,
}

/// A `c=` line (RFC 4566 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6`.
    pub address_type: String,
    /// The address as written, possibly with a multicast `/ttl` suffix or a host name.
    pub address: String,
}

impl Connection {
    /// Returns the unicast IP address, or `None` for host names. A multicast `/ttl` or
    /// `/count` suffix is ignored.
    pub fn ip(&self) -> Option<IpAddr> {
        let host = self.address.split('/').next().unwrap_or_default();
        host.parse().ok()
    }

    /// Returns whether this is the RFC 2543 hold form `c=IN IP4 0.0.0.0`, which older
    /// endpoints still send in place of `a=sendonly`.
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// An `a=rtpmap` attribute (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    /// Encoding name as written, such as `opus` or `telephone-event`.
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count for audio; `None` when omitted, which means 1.
    pub channels: Option<u16>,
}

/// An `a=fmtp` attribute (RFC 4566 §6): the format and its parameters as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    pub format: String,
    pub parameters: String,
}

/// An `a=rtcp` attribute (RFC 3605): the RTCP port, and an address when one is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttribute {
    pub port: u16,
    pub connection: Option<Connection>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `image`, `application`, ...
    pub kind: String,
    /// RTP port; 0 means the stream is disabled or rejected (RFC 3264 §6).
    pub port: u16,
    /// The `/<count>` suffix of the port, if any.
    pub port_count: Option<u16>,
    /// Transport protocol such as `RTP/AVP` or `UDP/TLS/RTP/SAVPF`.
    pub proto: String,
    /// The formats in preference order; for RTP these are payload type numbers.
    pub formats: Vec<String>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<Fmtp>,
    /// The media-level direction, else the session-level one, else `sendrecv`.
    pub direction: Direction,
    /// `a=rtcp-mux` is present (RFC 5761 §5.1.1).
    pub rtcp_mux: bool,
    pub rtcp: Option<RtcpAttribute>,
    /// Media-level `c=`; see [`SessionDescription::connection_for`] for the effective one.
    pub connection: Option<Connection>,
    /// Index of the `m=` line in [`SessionDescription::lines`].
    line_index: usize,
}

impl MediaDescription {
    /// Returns the formats that are RTP payload type numbers (0-127), in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|format| format.parse::<u8>().ok())
            .filter(|pt| *pt < 128)
    }

    /// Returns the payload types whose encoding name matches `encoding` (ignoring case),
    /// such as every `telephone-event` clock rate offered.
    pub fn payload_types_for(&self, encoding: &str) -> Vec<u8> {
        self.payload_types()
            .filter(|pt| {
                self.codec(*pt)
                    .is_some_and(|codec| codec.encoding.eq_ignore_ascii_case(encoding))
            })
            .collect()
    }

    /// Returns the parameters of `a=fmtp` for a payload type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|fmtp| fmtp.format.parse::<u8>() == Ok(payload_type))
            .map(|fmtp| fmtp.parameters.as_str())
    }
}

/// A parsed SDP body that keeps its lines for [`SessionDescription::rewrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// Every line without its line ending, in order.
    lines: Vec<String>,
    /// Index of the `o=` line in `lines`.
    origin_index: usize,
    pub origin: Origin,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level direction attribute, if present.
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Returns the lines of the body as received, without line endings.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Returns the effective connection of a media section: its own `c=`, else the
    /// session-level one (RFC 4566 §5.7).
    pub fn connection_for(&self, media: usize) -> Option<&Connection> {
        let section = self.media.get(media)?;
        section.connection.as_ref().or(self.connection.as_ref())
    }

    /// Returns where the peer wants RTP for a media section, or `None` when the stream is
    /// disabled (port 0) or the connection is a host name.
    pub fn rtp_address(&self, media: usize) -> Option<SocketAddr> {
        let section = self.media.get(media)?;
        if section.port == 0 {
            return None;
        }
        let ip = self.connection_for(media)?.ip()?;
        Some(SocketAddr::new(ip, section.port))
    }

    /// Returns where the peer wants RTCP: the same address as RTP with `a=rtcp-mux`, the
    /// `a=rtcp` port and address (RFC 3605) when given, else the RTP port + 1 (RFC 3550 §11).
    pub fn rtcp_address(&self, media: usize) -> Option<SocketAddr> {
        let rtp = self.rtp_address(media)?;
        let section = &self.media[media];
        if section.rtcp_mux {
            return Some(rtp);
        }
        let Some(rtcp) = &section.rtcp else {
            return Some(SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)));
        };
        let ip = rtcp
            .connection
            .as_ref()
            .and_then(Connection::ip)
            .unwrap_or(rtp.ip());
        Some(SocketAddr::new(ip, rtcp.port))
    }

    /// Returns whether the writer of this body puts media section `media` on hold: its
    /// direction is `sendonly` or `inactive`, or its connection is `0.0.0.0` (RFC 2543).
    pub fn is_hold(&self, media: usize) -> bool {
        let Some(section) = self.media.get(media) else {
            return false;
        };
        let unspecified = self
            .connection_for(media)
            .is_some_and(Connection::is_unspecified);
        section.direction.is_hold() || unspecified
    }
}
