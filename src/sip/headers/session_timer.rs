//! Session timer headers Session-Expires and Min-SE (RFC 4028 §4, §5).

use std::fmt;
use std::str::FromStr;

use super::{HeaderError, parse_number};
use crate::sip::uri::Params;

/// Smallest Session-Expires a UA may send or accept, in seconds (RFC 4028 §4). A
/// smaller value gets a 422 response.
pub const MIN_SESSION_EXPIRES: u32 = 90;

/// Side that refreshes the session (RFC 4028 §4 `refresher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uac => "uac",
            Self::Uas => "uas",
        }
    }
}

/// Session-Expires value (RFC 4028 §4): `delta-seconds [;refresher=uac|uas]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpires {
    /// Session interval in seconds.
    pub delta_seconds: u32,
    pub refresher: Option<Refresher>,
    /// Extension parameters other than `refresher`.
    pub params: Params,
}

impl SessionExpires {
    pub const NAME: &'static str = "Session-Expires";

    /// Creates a value without extension parameters.
    pub fn new(delta_seconds: u32, refresher: Option<Refresher>) -> Self {
        Self {
            delta_seconds,
            refresher,
            params: Params::new(),
        }
    }
}

impl FromStr for SessionExpires {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let (delta, mut params) = split_delta(Self::NAME, value)?;
        let refresher = match params.remove("refresher") {
            None => None,
            Some(param) => Some(parse_refresher(param.value.as_deref().unwrap_or(""))?),
        };
        Ok(Self {
            delta_seconds: delta,
            refresher,
            params,
        })
    }
}

fn parse_refresher(value: &str) -> Result<Refresher, HeaderError> {
    match value {
        v if v.eq_ignore_ascii_case("uac") => Ok(Refresher::Uac),
        v if v.eq_ignore_ascii_case("uas") => Ok(Refresher::Uas),
        v => Err(HeaderError::InvalidParam {
            header: SessionExpires::NAME,
            param: "refresher",
            value: v.to_owned(),
        }),
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta_seconds)?;
        if let Some(refresher) = self.refresher {
            write!(f, ";refresher={}", refresher.as_str())?;
        }
        self.params.fmt(f)
    }
}

/// Min-SE value (RFC 4028 §5): the smallest session interval accepted, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinSe {
    pub delta_seconds: u32,
    pub params: Params,
}

impl MinSe {
    pub const NAME: &'static str = "Min-SE";

    /// Creates a value without parameters.
    pub fn new(delta_seconds: u32) -> Self {
        Self {
            delta_seconds,
            params: Params::new(),
        }
    }
}

impl FromStr for MinSe {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let (delta_seconds, params) = split_delta(Self::NAME, value)?;
        Ok(Self {
            delta_seconds,
            params,
        })
    }
}

impl fmt::Display for MinSe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.delta_seconds, self.params)
    }
}

/// Splits `delta-seconds *(;param)`.
fn split_delta(header: &'static str, value: &str) -> Result<(u32, Params), HeaderError> {
    let params_start = value.find(';').unwrap_or(value.len());
    let delta = parse_number(header, &value[..params_start])?;
    let params = value[params_start..].parse()?;
    Ok((delta, params))
}
