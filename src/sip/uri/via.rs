//! The Via header value (RFC 3261 §20.42) with the `received` and `rport` parameters of
//! §18.2.1 and RFC 3581.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::params::split_param;
use super::{Host, Params, UriError, parse_host_port};

/// Transport in a Via sent-protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other transport token, stored in uppercase.
    Other(String),
}

impl Transport {
    fn parse(token: &str) -> Self {
        match token.to_ascii_uppercase().as_str() {
            "UDP" => Self::Udp,
            "TCP" => Self::Tcp,
            "TLS" => Self::Tls,
            "SCTP" => Self::Sctp,
            "WS" => Self::Ws,
            "WSS" => Self::Wss,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Returns the transport token in uppercase.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Sctp => "SCTP",
            Self::Ws => "WS",
            Self::Wss => "WSS",
            Self::Other(token) => token,
        }
    }
}

/// The `rport` parameter of a Via (RFC 3581 §3, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rport {
    Absent,
    /// Present without value: the client asks for the source port in the response.
    Empty,
    /// Filled in by the server with the request's source port.
    Value(u16),
}

/// Returns the Via value `top` with `received` set to `source`'s address (RFC 3261
/// §18.2.1) and a present `rport` filled with its port (RFC 3581 §4). Everything else is
/// kept as received, so the value is neither parsed into a [`Via`] nor written again.
///
/// # Errors
///
/// [`UriError`] when the parameters cannot be read.
pub fn stamp(top: &str, source: SocketAddr) -> Result<String, UriError> {
    let params = params_text(top);
    let mut stamped = String::with_capacity(top.len() + 40);
    stamped.push_str(top[..top.len() - params.len()].trim_end());
    let received = super::IpText(source.ip());
    let mut received_written = false;
    let mut rest = params.trim_start();
    while let Some(after_semicolon) = rest.strip_prefix(';') {
        let (param, after_param) = split_param(after_semicolon.trim_start(), b"")?;
        rest = after_param.trim_start();
        let Some((name, value)) = param else {
            continue;
        };
        if name.eq_ignore_ascii_case("received") {
            if !received_written {
                let _ = write!(stamped, ";{name}={received}");
                received_written = true;
            }
        } else if name.eq_ignore_ascii_case("rport") {
            let _ = write!(stamped, ";{name}={}", source.port());
        } else {
            stamped.push(';');
            stamped.push_str(name);
            if let Some(value) = value {
                stamped.push('=');
                stamped.push_str(value);
            }
        }
    }
    if !rest.is_empty() {
        return Err(UriError::TrailingCharacters {
            rest: rest.to_owned(),
        });
    }
    if !received_written {
        let _ = write!(stamped, ";received={received}");
    }
    Ok(stamped)
}

/// Returns the parameter text of one Via value, from its first `;` (empty when it has
/// none). The sent-by never contains `;`, so no parse is needed to find it.
pub fn params_text(via: &str) -> &str {
    via.find(';').map_or("", |start| &via[start..])
}

/// One Via header value: `SIP/2.0/<transport> host[:port];params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: Transport,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    /// Returns the `branch` parameter (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// Returns the `received` address. A present value is always an IP address, because
    /// parsing checks it.
    pub fn received(&self) -> Option<IpAddr> {
        parse_received(self.params.value("received")?)
    }

    /// Returns the state of the `rport` parameter. A present value is always a port,
    /// because parsing checks it.
    pub fn rport(&self) -> Rport {
        match self.params.get("rport") {
            None => Rport::Absent,
            Some(param) => match param.value.as_deref().map(str::parse) {
                Some(Ok(port)) => Rport::Value(port),
                _ => Rport::Empty,
            },
        }
    }

    /// Sets `received` to the request's source address (RFC 3261 §18.2.1).
    pub fn set_received(&mut self, address: IpAddr) {
        self.params
            .set("received", Some(super::IpText(address).to_string()));
    }

    /// Fills `rport` with the request's source port (RFC 3581 §4).
    pub fn set_rport(&mut self, port: u16) {
        self.params.set("rport", Some(port.to_string()));
    }

    /// Parses every Via value in one header line (`v1, v2`).
    ///
    /// # Errors
    ///
    /// The first value's [`UriError`].
    pub fn parse_list(value: &str) -> Result<Vec<Self>, UriError> {
        super::split_list(value).map(str::parse).collect()
    }
}

/// Parses a `received` value: an IP address, with IPv6 optionally in brackets.
fn parse_received(value: &str) -> Option<IpAddr> {
    let unbracketed = value
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(value);
    unbracketed.parse().ok()
}

/// Reads `SIP SWS "/" SWS 2.0 SWS "/" SWS transport` and returns the transport and the
/// rest.
fn parse_sent_protocol(input: &str) -> Result<(Transport, &str), UriError> {
    let invalid = || UriError::InvalidViaProtocol {
        protocol: input.split(';').next().unwrap_or(input).to_owned(),
    };
    let mut rest = input;
    let mut parts = [""; 3];
    for (index, part) in parts.iter_mut().enumerate() {
        if index > 0 {
            rest = rest.trim_start().strip_prefix('/').ok_or_else(invalid)?;
            rest = rest.trim_start();
        }
        let len = rest
            .bytes()
            .position(|b| b == b'/' || b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        (*part, rest) = rest.split_at(len);
    }

    let [name, version, transport] = parts;
    let valid = name.eq_ignore_ascii_case("SIP") && version == "2.0" && !transport.is_empty();
    match valid {
        true => Ok((Transport::parse(transport), rest)),
        false => Err(invalid()),
    }
}

fn check_params(params: &Params) -> Result<(), UriError> {
    if let Some(value) = params.value("received")
        && parse_received(value).is_none()
    {
        return Err(UriError::InvalidViaParam {
            name: "received",
            value: value.to_owned(),
        });
    }
    if let Some(value) = params.value("rport")
        && value.parse::<u16>().is_err()
    {
        return Err(UriError::InvalidViaParam {
            name: "rport",
            value: value.to_owned(),
        });
    }
    Ok(())
}

impl FromStr for Via {
    type Err = UriError;

    /// Parses one Via value; split a header line with several values first (see
    /// [`Via::parse_list`]).
    fn from_str(input: &str) -> Result<Self, UriError> {
        let (transport, rest) = parse_sent_protocol(input.trim())?;
        let rest = rest.trim_start();

        let sent_by_end = rest.find(';').unwrap_or(rest.len());
        let (host, port) = parse_host_port(rest[..sent_by_end].trim_end())?;
        let params: Params = rest[sent_by_end..].parse()?;
        check_params(&params)?;

        Ok(Self {
            transport,
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport.as_str(), self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        self.params.fmt(f)
    }
}
