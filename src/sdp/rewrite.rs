//! The rewrite of a body for the other leg: the relay takes the place of the endpoint.

use std::net::{IpAddr, SocketAddr};

use super::{OriginState, SdpError, SessionDescription};
use crate::sip::uri::{IpText, push_decimal};

/// Attributes of ICE (RFC 8839) that are dropped, because the relay sends and receives plain RTP and
/// does not run ICE.
const ICE_ATTRIBUTES: &[&str] = &[
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
];

impl SessionDescription {
    /// Rewrites the body for the other leg so that its media goes through the relay.
    ///
    /// `relays` has one address per `m=` line: the relay's local RTP address on the leg the
    /// body is sent to. The RTCP port is the RTP port + 1 unless the section has
    /// `a=rtcp-mux`.
    ///
    /// - `o=` becomes `origin`'s line, whose version is incremented if the rest of the body
    ///   differs from the last one sent with it (RFC 3264 §8).
    /// - Session-level `c=` gets the first relay address, and media-level `c=` the one of
    ///   its section, with `IP4` or `IP6` to match.
    /// - The `m=` port becomes the relay port, except that a disabled stream keeps port 0.
    /// - `a=rtcp` (RFC 3605) gets the relay RTCP port and address.
    /// - ICE attributes are dropped.
    ///
    /// Every other line is kept, in order. The result uses CRLF line endings.
    ///
    /// NOTE: `a=fingerprint`, `a=setup` and `a=crypto` pass through, but the relay drops
    /// DTLS, so a DTLS-SRTP stream (`UDP/TLS/RTP/SAVPF`) gets no media through it.
    ///
    /// # Errors
    ///
    /// [`SdpError::RelayCountMismatch`] if `relays` does not have one entry per `m=` line.
    pub fn rewrite(
        &self,
        relays: &[SocketAddr],
        origin: &mut OriginState,
    ) -> Result<String, SdpError> {
        if relays.len() != self.media.len() {
            return Err(SdpError::RelayCountMismatch {
                media: self.media.len(),
                relays: relays.len(),
            });
        }

        let session_ip = relays.first().map_or(origin.address(), SocketAddr::ip);
        let mut body = String::with_capacity(self.lines.iter().map(|l| l.len() + 2).sum());
        let mut section: Option<usize> = None;
        for (index, line) in self.lines.iter().enumerate() {
            if line.starts_with("m=") {
                section = Some(section.map_or(0, |s| s + 1));
            }
            if index == self.origin_index {
                continue;
            }
            // `section` counts m= lines, which the parser turned into `self.media` one for
            // one, and `relays` has that length: the index is in range.
            let relay = match section {
                Some(section) => relays[section],
                None => SocketAddr::new(session_ip, 0),
            };
            if self.write_line(&mut body, line, section, relay) {
                body.push_str("\r\n");
            }
        }

        origin.advance(&body);

        // The o= line is always the second line, after v= (RFC 4566 §5).
        let (version, rest) = body.split_once("\r\n").unwrap_or((&body, ""));
        let mut out = String::with_capacity(body.len() + 64);
        out.push_str(version);
        out.push_str("\r\n");
        origin.push_line(&mut out);
        out.push_str("\r\n");
        out.push_str(rest);
        Ok(out)
    }

    /// Appends the line to send in place of `line` to `out`, or nothing when the line is
    /// dropped, and returns whether a line was written. `relay` is the relay address of
    /// the line's section, and at session level only its IP is used.
    fn write_line(
        &self,
        out: &mut String,
        line: &str,
        section: Option<usize>,
        relay: SocketAddr,
    ) -> bool {
        if line.starts_with("c=") {
            out.push_str("c=");
            push_connection_field(out, relay.ip());
            return true;
        }
        let attribute = line.strip_prefix("a=");
        let name = attribute.map(|attribute| attribute.split(':').next().unwrap_or_default());
        if name.is_some_and(|name| ICE_ATTRIBUTES.contains(&name.trim_end())) {
            return false;
        }
        let Some(section) = section else {
            out.push_str(line);
            return true;
        };
        let media = &self.media[section];

        if line.starts_with("m=") {
            push_media_line(out, line, media.port, relay.port());
            return true;
        }
        if name == Some("rtcp") {
            let port = if media.rtcp_mux {
                relay.port()
            } else {
                relay.port().wrapping_add(1)
            };
            out.push_str("a=rtcp:");
            push_decimal(out, u64::from(port));
            if media.rtcp.as_ref().is_some_and(|r| r.connection.is_some()) {
                out.push(' ');
                push_connection_field(out, relay.ip());
            }
            return true;
        }
        out.push_str(line);
        true
    }
}

/// Appends `IN IP4 <address>` or `IN IP6 <address>`.
fn push_connection_field(out: &mut String, ip: IpAddr) {
    out.push_str(if ip.is_ipv4() { "IN IP4 " } else { "IN IP6 " });
    IpText(ip).push_to(out);
}

/// Appends an `m=` line with its port replaced. A disabled stream keeps port 0, and a
/// `/<count>` is dropped because the relay gives each section one port pair.
fn push_media_line(out: &mut String, line: &str, original_port: u16, relay_port: u16) {
    let port = if original_port == 0 { 0 } else { relay_port };
    let mut fields = line[2..].splitn(3, ' ');
    let kind = fields.next().unwrap_or_default();
    let _original = fields.next();
    let rest = fields.next().unwrap_or_default();
    out.push_str("m=");
    out.push_str(kind);
    out.push(' ');
    push_decimal(out, u64::from(port));
    out.push(' ');
    out.push_str(rest);
}
