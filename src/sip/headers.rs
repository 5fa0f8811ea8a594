//! Typed header values that rsip 0.4 leaves untyped or parses wrongly.
//!
//! Each type parses a header value (the text after the colon) with `FromStr` and writes it
//! back with `Display`, so the same type serves received and built messages. Every type has
//! a `NAME` constant with the header's long name. Address-carrying headers build on
//! [`NameAddr`](super::uri::NameAddr).

mod event;
mod identity;
mod reason;
mod refer;
mod session_timer;
mod uui;

use std::fmt;
use std::str::FromStr;

pub use event::{Event, SubscriptionState, SubscriptionStatus, parse_sipfrag_status};
pub use identity::{HistoryIndex, HistoryInfo, HistoryInfoEntry, HistoryTarget, PAssertedIdentity};
pub use reason::{Reason, ReasonProtocol};
pub use refer::{ReferTo, ReferredBy, Replaces};
pub use session_timer::{MIN_SESSION_EXPIRES, MinSe, Refresher, SessionExpires};
pub use uui::UserToUser;

use super::normalize::is_token_byte;
use super::uri::UriError;

/// Failure to parse a typed header value. Variants name the header and carry the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error(transparent)]
    Uri(#[from] UriError),
    #[error("empty {header} value")]
    Empty { header: &'static str },
    #[error("invalid number {value:?} in {header}")]
    InvalidNumber { header: &'static str, value: String },
    #[error("invalid token {value:?} in {header}")]
    InvalidToken { header: &'static str, value: String },
    #[error("invalid method {value:?} in CSeq")]
    InvalidMethod { value: String },
    #[error("missing {param} parameter in {header}")]
    MissingParam {
        header: &'static str,
        param: &'static str,
    },
    #[error("invalid {param} parameter {value:?} in {header}")]
    InvalidParam {
        header: &'static str,
        param: &'static str,
        value: String,
    },
    #[error("invalid History-Info index {value:?}")]
    InvalidIndex { value: String },
    #[error("invalid hex data in User-to-User: {value:?}")]
    InvalidHex { value: String },
    #[error("invalid sipfrag status line {line:?}")]
    InvalidSipFrag { line: String },
}

/// Parses a decimal number for `header`, reporting the text on failure.
fn parse_number<T: FromStr>(header: &'static str, value: &str) -> Result<T, HeaderError> {
    let value = value.trim();
    let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    let parsed = digits_only.then(|| value.parse().ok()).flatten();
    parsed.ok_or_else(|| HeaderError::InvalidNumber {
        header,
        value: value.to_owned(),
    })
}

/// Parses an optional numeric parameter.
fn number_param<T: FromStr>(
    header: &'static str,
    param: &'static str,
    value: Option<&str>,
) -> Result<Option<T>, HeaderError> {
    let Some(value) = value else {
        return Ok(None);
    };
    value
        .parse()
        .map(Some)
        .map_err(|_| HeaderError::InvalidParam {
            header,
            param,
            value: value.to_owned(),
        })
}

/// CSeq value (RFC 3261 §20.16): sequence number and request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    /// Method token, case-sensitive as RFC 3261 §7.1 requires.
    pub method: String,
}

impl CSeq {
    pub const NAME: &'static str = "CSeq";

    /// Creates a CSeq value.
    pub fn new(seq: u32, method: impl Into<String>) -> Self {
        Self {
            seq,
            method: method.into(),
        }
    }
}

impl FromStr for CSeq {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let value = value.trim();
        let (seq, method) =
            value
                .split_once([' ', '\t'])
                .ok_or_else(|| HeaderError::InvalidMethod {
                    value: value.to_owned(),
                })?;
        let seq = parse_number(Self::NAME, seq)?;

        let method = method.trim();
        if method.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(HeaderError::InvalidMethod {
                value: method.to_owned(),
            });
        }
        Ok(Self::new(seq, method))
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Max-Forwards value (RFC 3261 §20.22), 0 to 255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MaxForwards(pub u8);

impl MaxForwards {
    pub const NAME: &'static str = "Max-Forwards";
}

impl FromStr for MaxForwards {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        parse_number(Self::NAME, value).map(Self)
    }
}

impl fmt::Display for MaxForwards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests;
