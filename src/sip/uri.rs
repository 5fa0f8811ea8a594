//! The module's own parsers for SIP and tel URIs (RFC 3261 §19.1, RFC 3966), name-addr
//! header values (§20.10), Via (§20.42) and comma-separated header lists (§7.3.1).
//!
//! They replace rsip 0.4's URI parsing where it is wrong: rsip reads `sip:first.last@host`
//! as a host without user, truncates quoted parameter values and values containing `:`.
//! These parsers keep parameters in order and quoted values exactly as received, and
//! [`Uri`]'s `Display` writes back what was parsed.

mod list;
mod name_addr;
mod params;
mod via;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use list::{ListItems, split_list};
pub use name_addr::NameAddr;
pub use params::{Param, Params};
pub use via::{Rport, Transport, Via, params_text as via_params, stamp as stamp_via};

pub(crate) use name_addr::bracketed_params;
pub(crate) use params::{find_param, parse_params, quote, quoted_len, unquote};

/// Failure to parse a URI, parameter list, name-addr or Via value. Each variant carries the
/// offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("missing URI scheme in {input:?}")]
    MissingScheme { input: String },
    #[error("invalid URI scheme {scheme:?}")]
    InvalidScheme { scheme: String },
    #[error("empty user part in {input:?}")]
    EmptyUser { input: String },
    #[error("missing host in {input:?}")]
    MissingHost { input: String },
    #[error("invalid host {host:?}")]
    InvalidHost { host: String },
    #[error("invalid port {port:?}")]
    InvalidPort { port: String },
    #[error("invalid parameter {param:?}")]
    InvalidParam { param: String },
    #[error("invalid URI header {header:?}")]
    InvalidHeader { header: String },
    #[error("unterminated quoted string {input:?}")]
    UnterminatedQuote { input: String },
    #[error("missing '>' after {input:?}")]
    UnterminatedAngleBracket { input: String },
    #[error("unexpected text {rest:?}")]
    TrailingCharacters { rest: String },
    #[error("invalid percent-encoding in {input:?}")]
    InvalidPercentEncoding { input: String },
    #[error("invalid Via sent-protocol {protocol:?}, expected SIP/2.0/<transport>")]
    InvalidViaProtocol { protocol: String },
    #[error("invalid Via parameter {name}={value:?}")]
    InvalidViaParam { name: &'static str, value: String },
}

/// URI scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    /// RFC 3966 telephone number.
    Tel,
    /// Any other scheme, stored in lowercase.
    Other(String),
}

impl Scheme {
    fn parse(scheme: &str) -> Result<Self, UriError> {
        let valid = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !valid {
            return Err(UriError::InvalidScheme {
                scheme: scheme.to_owned(),
            });
        }
        let scheme = match scheme {
            s if s.eq_ignore_ascii_case("sip") => Self::Sip,
            s if s.eq_ignore_ascii_case("sips") => Self::Sips,
            s if s.eq_ignore_ascii_case("tel") => Self::Tel,
            s => Self::Other(s.to_ascii_lowercase()),
        };
        Ok(scheme)
    }

    /// Returns the scheme name in lowercase.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sip => "sip",
            Self::Sips => "sips",
            Self::Tel => "tel",
            Self::Other(scheme) => scheme,
        }
    }
}

/// Host part of a SIP URI or Via sent-by (RFC 3261 §25.1 `host`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// Domain name, kept in the case it was received.
    Domain(String),
    Ipv4(Ipv4Addr),
    /// IPv6 address, written in brackets.
    Ipv6(Ipv6Addr),
}

impl FromStr for Host {
    type Err = UriError;

    /// Parses a domain name, an IPv4 address or a bracketed IPv6 reference.
    fn from_str(host: &str) -> Result<Self, UriError> {
        let invalid = || UriError::InvalidHost {
            host: host.to_owned(),
        };
        if let Some(inner) = host.strip_prefix('[') {
            let address = inner.strip_suffix(']').ok_or_else(invalid)?;
            return address.parse().map(Self::Ipv6).map_err(|_| invalid());
        }
        if let Ok(address) = host.parse() {
            return Ok(Self::Ipv4(address));
        }
        let valid_domain = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        match valid_domain {
            true => Ok(Self::Domain(host.to_owned())),
            false => Err(invalid()),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(domain) => f.write_str(domain),
            Self::Ipv4(address) => f.write_str(Ipv4Text::new(*address).as_str()),
            Self::Ipv6(address) => write!(f, "[{address}]"),
        }
    }
}

/// An IP address as header and SDP text, without brackets. `Ipv4Addr`'s own `Display`
/// formats each octet through the formatting machinery, which took 5 % of the
/// instructions per call in callgrind. This one writes an IPv4 address at once.
#[derive(Debug, Clone, Copy)]
pub struct IpText(pub IpAddr);

impl fmt::Display for IpText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(address) => f.write_str(Ipv4Text::new(address).as_str()),
            IpAddr::V6(address) => address.fmt(f),
        }
    }
}

impl IpText {
    /// Appends the address's text to `out`, without the formatting machinery for IPv4.
    pub fn push_to(&self, out: &mut String) {
        match self.0 {
            IpAddr::V4(address) => out.push_str(Ipv4Text::new(address).as_str()),
            IpAddr::V6(address) => {
                use fmt::Write as _;
                let _ = write!(out, "{address}");
            }
        }
    }
}

/// Appends the decimal digits of `value` to `out`. Header values built per message use
/// it in place of `format!`, whose machinery costs more than the digits.
pub fn push_decimal(out: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

/// Dotted-decimal text of an IPv4 address, built on the stack.
struct Ipv4Text {
    bytes: [u8; 15],
    len: usize,
}

impl Ipv4Text {
    fn new(address: Ipv4Addr) -> Self {
        let mut text = Self {
            bytes: [0; 15],
            len: 0,
        };
        for (index, octet) in address.octets().into_iter().enumerate() {
            if index > 0 {
                text.push(b'.');
            }
            if octet >= 100 {
                text.push(b'0' + octet / 100);
            }
            if octet >= 10 {
                text.push(b'0' + octet / 10 % 10);
            }
            text.push(b'0' + octet % 10);
        }
        text
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and dots were written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// Parses `host [":" port]`, with the IPv6 form `[addr]:port`.
pub(crate) fn parse_host_port(input: &str) -> Result<(Host, Option<u16>), UriError> {
    if input.is_empty() {
        return Err(UriError::MissingHost {
            input: input.to_owned(),
        });
    }
    let host_end = match input.strip_prefix('[') {
        Some(_) => input.find(']').map_or(input.len(), |end| end + 1),
        None => input.find(':').unwrap_or(input.len()),
    };
    let (host, port) = input.split_at(host_end);
    let host = host.parse()?;

    let port = match port.strip_prefix(':') {
        Some(port) => Some(port.parse().map_err(|_| UriError::InvalidPort {
            port: port.to_owned(),
        })?),
        None if port.is_empty() => None,
        None => {
            return Err(UriError::InvalidHost {
                host: input.to_owned(),
            });
        }
    };
    Ok((host, port))
}

/// One `name=value` URI header (RFC 3261 §19.1.1 `headers`), value kept percent-encoded
/// as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriHeader {
    pub name: String,
    pub value: String,
}

/// A SIP, SIPS or tel URI (RFC 3261 §19.1, RFC 3966).
///
/// For `tel:` the number is stored in `user` and `host` is `None`. For other schemes the
/// whole text after the colon is stored unparsed in `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// User part, or telephone number for `tel:`, percent-encoded as received.
    pub user: Option<String>,
    pub password: Option<String>,
    /// Always present for `sip:` and `sips:`.
    pub host: Option<Host>,
    pub port: Option<u16>,
    pub params: Params,
    pub headers: Vec<UriHeader>,
}

impl Uri {
    /// Creates a `sip:` URI with the given user and host and nothing else.
    pub fn sip(user: Option<&str>, host: Host) -> Self {
        Self {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: Some(host),
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        }
    }

    /// Returns the percent-decoded value of URI header `name` (compared case-insensitively),
    /// such as the `Replaces` embedded in a Refer-To (RFC 3515 §2.1).
    ///
    /// # Errors
    ///
    /// [`UriError::InvalidPercentEncoding`] when the value has a bad `%` escape or does
    /// not decode to UTF-8.
    pub fn header(&self, name: &str) -> Result<Option<String>, UriError> {
        let header = self
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name));
        header
            .map(|header| percent_decode(&header.value))
            .transpose()
    }

    /// Appends URI header `name` with `value` percent-encoded as RFC 3261 §19.1.1 requires.
    pub fn push_header(&mut self, name: &str, value: &str) {
        self.headers.push(UriHeader {
            name: name.to_owned(),
            value: percent_encode_header_value(value),
        });
    }

    /// Returns the user part percent-decoded.
    ///
    /// # Errors
    ///
    /// [`UriError::InvalidPercentEncoding`] on a bad `%` escape.
    pub fn decoded_user(&self) -> Result<Option<String>, UriError> {
        self.user.as_deref().map(percent_decode).transpose()
    }

    fn parse_sip(scheme: Scheme, rest: &str) -> Result<Self, UriError> {
        let mut uri = Self {
            scheme,
            user: None,
            password: None,
            host: None,
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        };

        // The user part may contain ';' and '?' (RFC 3261 §25.1 `user-unreserved`) but
        // never '"', so the first '@' before any quote ends it.
        let at = rest
            .bytes()
            .take_while(|&b| b != b'"')
            .position(|b| b == b'@');
        let host_part = match at {
            Some(at) => {
                let (user, password) = match rest[..at].split_once(':') {
                    Some((user, password)) => (user, Some(password.to_owned())),
                    None => (&rest[..at], None),
                };
                if user.is_empty() {
                    return Err(UriError::EmptyUser {
                        input: rest.to_owned(),
                    });
                }
                uri.user = Some(user.to_owned());
                uri.password = password;
                &rest[at + 1..]
            }
            None => rest,
        };

        let host_end = host_part.find([';', '?']).unwrap_or(host_part.len());
        let (host, port) = parse_host_port(&host_part[..host_end])?;
        uri.host = Some(host);
        uri.port = port;
        uri.parse_params_and_headers(&host_part[host_end..])?;
        Ok(uri)
    }

    fn parse_tel(rest: &str) -> Result<Self, UriError> {
        let number_end = rest.find([';', '?']).unwrap_or(rest.len());
        if number_end == 0 {
            return Err(UriError::EmptyUser {
                input: rest.to_owned(),
            });
        }
        let mut uri = Self {
            scheme: Scheme::Tel,
            user: Some(rest[..number_end].to_owned()),
            password: None,
            host: None,
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        };
        uri.parse_params_and_headers(&rest[number_end..])?;
        Ok(uri)
    }

    fn parse_params_and_headers(&mut self, input: &str) -> Result<(), UriError> {
        let (params, rest) = parse_params(input, b"?")?;
        self.params = params;
        let Some(headers) = rest.strip_prefix('?') else {
            return Ok(());
        };

        for header in headers.split('&').filter(|header| !header.is_empty()) {
            let (name, value) = header.split_once('=').unwrap_or((header, ""));
            if name.is_empty() {
                return Err(UriError::InvalidHeader {
                    header: header.to_owned(),
                });
            }
            self.headers.push(UriHeader {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        }
        Ok(())
    }
}

impl FromStr for Uri {
    type Err = UriError;

    /// Parses a URI without surrounding angle brackets.
    fn from_str(input: &str) -> Result<Self, UriError> {
        let input = input.trim();
        let (scheme, rest) = input
            .split_once(':')
            .ok_or_else(|| UriError::MissingScheme {
                input: input.to_owned(),
            })?;

        match Scheme::parse(scheme)? {
            scheme @ (Scheme::Sip | Scheme::Sips) => Self::parse_sip(scheme, rest),
            Scheme::Tel => Self::parse_tel(rest),
            scheme => Ok(Self {
                scheme,
                user: Some(rest.to_owned()),
                password: None,
                host: None,
                port: None,
                params: Params::new(),
                headers: Vec::new(),
            }),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            if self.host.is_some() {
                f.write_str("@")?;
            }
        }
        if let Some(host) = &self.host {
            host.fmt(f)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        self.params.fmt(f)?;

        for (index, header) in self.headers.iter().enumerate() {
            let separator = if index == 0 { '?' } else { '&' };
            write!(f, "{separator}{}={}", header.name, header.value)?;
        }
        Ok(())
    }
}

/// Decodes `%XX` escapes (RFC 3986 §2.1).
///
/// # Errors
///
/// [`UriError::InvalidPercentEncoding`] on a truncated or non-hex escape, or when the
/// decoded bytes are not UTF-8.
pub fn percent_decode(input: &str) -> Result<String, UriError> {
    let invalid = || UriError::InvalidPercentEncoding {
        input: input.to_owned(),
    };
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'%' {
            decoded.push(bytes[index]);
            index += 1;
            continue;
        }
        let escape = bytes.get(index + 1..index + 3).ok_or_else(invalid)?;
        let high = hex_digit(escape[0]).ok_or_else(invalid)?;
        let low = hex_digit(escape[1]).ok_or_else(invalid)?;
        decoded.push(high << 4 | low);
        index += 3;
    }
    String::from_utf8(decoded).map_err(|_| invalid())
}

/// Encodes every byte of `value` that may not appear unescaped in a URI header value
/// (RFC 3261 §25.1 `hvalue`: unreserved characters and `[]/?:+$`).
pub fn percent_encode_header_value(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(value.len() + 16);
    for byte in value.bytes() {
        let unescaped = byte.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&byte);
        if unescaped {
            encoded.push(char::from(byte));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    encoded
}

pub(crate) fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
