//! The line parser behind [`SessionDescription::parse`].
//!
//! It accepts CRLF or bare LF line endings and skips blank lines, checks the fields the
//! relay depends on and rejects a body only when one of those is malformed. Lines of types
//! it does not use (`s=`, `t=`, `b=`, unknown attributes) are kept without inspection.

use std::str::FromStr;

use super::{
    Connection, Direction, Fmtp, MediaDescription, Origin, RtcpAttribute, RtpMap, SdpError,
    SessionDescription,
};

impl SessionDescription {
    /// Parses an SDP body (RFC 4566).
    ///
    /// # Errors
    ///
    /// [`SdpError::NotUtf8`] for invalid UTF-8. Otherwise the error names the first bad line
    /// and its number. A body is rejected for a line that is not `<type>=<value>`, a first
    /// line other than `v=0`, a malformed `o=`, `c=`, `m=`, `a=rtpmap` or `a=rtcp`, a missing
    /// `o=`, or an active `m=` section without any `c=`.
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        match std::str::from_utf8(body) {
            Ok(text) => text.parse(),
            Err(error) => Err(SdpError::NotUtf8 {
                valid_up_to: error.valid_up_to(),
            }),
        }
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(body: &str) -> Result<SessionDescription, SdpError> {
        let mut parser = Parser::default();
        for (index, raw) in body.split('\n').enumerate() {
            let text = raw.strip_suffix('\r').unwrap_or(raw);
            if text.trim().is_empty() {
                continue;
            }
            parser.line(index + 1, text)?;
        }
        parser.finish()
    }
}

/// The parser's state between lines.
#[derive(Default)]
struct Parser {
    lines: Vec<String>,
    origin: Option<(usize, Origin)>,
    connection: Option<Connection>,
    direction: Option<Direction>,
    media: Vec<MediaDescription>,
    /// Line numbers of the `m=` lines, for errors found after the section ends.
    media_line_numbers: Vec<usize>,
    /// The direction attribute of each media section, if it has one.
    media_directions: Vec<Option<Direction>>,
}

impl Parser {
    fn line(&mut self, number: usize, text: &str) -> Result<(), SdpError> {
        let (kind, value) = split_type(number, text)?;

        if self.lines.is_empty() && (kind != 'v' || value.trim() != "0") {
            return Err(SdpError::UnsupportedVersion {
                line: number,
                text: text.to_owned(),
            });
        }

        let index = self.lines.len();
        match kind {
            'o' => {
                let origin = parse_origin(value).ok_or_else(|| invalid(number, "o=", text))?;
                self.origin = Some((index, origin));
            }
            'c' => {
                let connection =
                    parse_connection(value).ok_or_else(|| invalid(number, "c=", text))?;
                match self.media.last_mut() {
                    Some(media) => media.connection = Some(connection),
                    None => self.connection = Some(connection),
                }
            }
            'm' => {
                let media = parse_media(value, index).ok_or_else(|| invalid(number, "m=", text))?;
                self.media.push(media);
                self.media_line_numbers.push(number);
                self.media_directions.push(None);
            }
            'a' => self.attribute(number, text, value)?,
            _ => {}
        }

        self.lines.push(text.to_owned());
        Ok(())
    }

    fn attribute(&mut self, number: usize, text: &str, value: &str) -> Result<(), SdpError> {
        let (name, argument) = match value.split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (value.trim_end(), None),
        };

        if let Some(direction) = Direction::from_attribute(name) {
            match self.media_directions.last_mut() {
                Some(media) => *media = Some(direction),
                None => self.direction = Some(direction),
            }
            return Ok(());
        }

        let Some(media) = self.media.last_mut() else {
            return Ok(());
        };
        match (name, argument) {
            ("rtcp-mux", _) => media.rtcp_mux = true,
            ("rtpmap", Some(argument)) => {
                let rtpmap =
                    parse_rtpmap(argument).ok_or_else(|| invalid(number, "a=rtpmap", text))?;
                media.rtpmaps.push(rtpmap);
            }
            ("fmtp", Some(argument)) => {
                let (format, parameters) = argument.split_once(' ').unwrap_or((argument, ""));
                media.fmtps.push(Fmtp {
                    format: format.to_owned(),
                    parameters: parameters.trim().to_owned(),
                });
            }
            ("rtcp", Some(argument)) => {
                let rtcp = parse_rtcp(argument).ok_or_else(|| invalid(number, "a=rtcp", text))?;
                media.rtcp = Some(rtcp);
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<SessionDescription, SdpError> {
        if self.lines.is_empty() {
            return Err(SdpError::Empty);
        }
        let Some((origin_index, origin)) = self.origin else {
            return Err(SdpError::MissingOrigin);
        };

        let mut media = self.media;
        let sections = media
            .iter_mut()
            .zip(&self.media_line_numbers)
            .zip(&self.media_directions);
        for ((section, number), direction) in sections {
            if section.port != 0 && section.connection.is_none() && self.connection.is_none() {
                return Err(SdpError::MissingConnection { line: *number });
            }
            // A media-level direction overrides the session-level one (RFC 3264 §5.1).
            section.direction = direction.or(self.direction).unwrap_or_default();
        }

        Ok(SessionDescription {
            lines: self.lines,
            origin_index,
            origin,
            connection: self.connection,
            direction: self.direction,
            media,
        })
    }
}

fn invalid(line: usize, field: &'static str, text: &str) -> SdpError {
    SdpError::InvalidField {
        line,
        field,
        text: text.to_owned(),
    }
}

/// Splits `x=value` into its type letter and value (RFC 4566 §5).
fn split_type(number: usize, text: &str) -> Result<(char, &str), SdpError> {
    let malformed = || SdpError::MalformedLine {
        line: number,
        text: text.to_owned(),
    };
    let mut chars = text.chars();
    let kind = chars.next().ok_or_else(malformed)?;
    if !kind.is_ascii_alphabetic() || chars.next() != Some('=') {
        return Err(malformed());
    }
    Ok((kind, &text[2..]))
}

/// `<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`
fn parse_origin(value: &str) -> Option<Origin> {
    let mut fields = value.split_ascii_whitespace();
    let origin = Origin {
        username: fields.next()?.to_owned(),
        session_id: fields.next()?.to_owned(),
        session_version: fields.next()?.to_owned(),
        network_type: fields.next()?.to_owned(),
        address_type: fields.next()?.to_owned(),
        address: fields.next()?.to_owned(),
    };
    fields.next().is_none().then_some(origin)
}

/// `IN <addrtype> <connection-address>`
fn parse_connection(value: &str) -> Option<Connection> {
    let mut fields = value.split_ascii_whitespace();
    if fields.next()? != "IN" {
        return None;
    }
    let address_type = fields.next()?;
    if address_type != "IP4" && address_type != "IP6" {
        return None;
    }
    let connection = Connection {
        address_type: address_type.to_owned(),
        address: fields.next()?.to_owned(),
    };
    fields.next().is_none().then_some(connection)
}

/// `<media> <port>[/<number of ports>] <proto> <fmt> ...`
fn parse_media(value: &str, line_index: usize) -> Option<MediaDescription> {
    let mut fields = value.split_ascii_whitespace();
    let kind = fields.next()?;
    let port_field = fields.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port.parse().ok()?, Some(count.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = fields.next()?;
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return None;
    }
    Some(MediaDescription {
        kind: kind.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        direction: Direction::default(),
        rtcp_mux: false,
        rtcp: None,
        connection: None,
        line_index,
    })
}

/// `<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`
fn parse_rtpmap(argument: &str) -> Option<RtpMap> {
    let (payload_type, encoding) = argument.trim().split_once(' ')?;
    let payload_type: u8 = payload_type.parse().ok()?;
    if payload_type > 127 {
        return None;
    }
    let mut parts = encoding.trim().split('/');
    let name = parts.next().filter(|name| !name.is_empty())?;
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = match parts.next() {
        Some(channels) => Some(channels.parse().ok()?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        payload_type,
        encoding: name.to_owned(),
        clock_rate,
        channels,
    })
}

/// `<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605 §2.1)
fn parse_rtcp(argument: &str) -> Option<RtcpAttribute> {
    let argument = argument.trim();
    let (port, rest) = argument.split_once(' ').unwrap_or((argument, ""));
    let port = port.parse().ok()?;
    let connection = if rest.trim().is_empty() {
        None
    } else {
        Some(parse_connection(rest)?)
    };
    Some(RtcpAttribute { port, connection })
}
