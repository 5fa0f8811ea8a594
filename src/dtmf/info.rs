//! DTMF carried in the bodies of SIP INFO requests (RFC 6086 with the de facto DTMF bodies).
//!
//! - `application/dtmf-relay`: lines of `name=value`, such as `Signal=1` and
//!   `Duration=160` (milliseconds). Names are case-insensitive and blanks around names and
//!   values are allowed. Some Cisco equipment sends `Signal=10` for `*` and `Signal=11` for
//!   `#`, so numeric signals are read as RFC 4733 event codes.
//! - `application/dtmf`: the key alone, such as `5` or `*`, or its event code.
//!
//! [`InfoDtmfError::status_code`] maps each error to the response the INFO request gets.

use std::str;

use thiserror::Error;

use super::{Digit, event_for_key, key_for_event};

/// Content type of `Signal=`/`Duration=` bodies.
pub const DTMF_RELAY: &str = "application/dtmf-relay";

/// Content type of bodies that carry the key alone.
pub const DTMF: &str = "application/dtmf";

/// Value of the Accept header in a 415 response to an INFO whose content type is not one of
/// these (RFC 3261).
pub const ACCEPTED_CONTENT_TYPES: &str = "application/dtmf-relay, application/dtmf";

/// Reason an INFO body does not yield a DTMF key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InfoDtmfError {
    #[error(
        "unsupported INFO content type {0:?}: expected application/dtmf-relay or application/dtmf"
    )]
    UnsupportedContentType(String),
    #[error("invalid INFO DTMF body: it is not UTF-8 text")]
    NotUtf8,
    #[error("missing DTMF signal in the INFO body")]
    MissingSignal,
    #[error("invalid DTMF signal {0:?}: expected 0-9, *, #, A-D or an event code from 0 to 15")]
    InvalidSignal(String),
    #[error("invalid DTMF duration {0:?}: expected a whole number of milliseconds")]
    InvalidDuration(String),
}

impl InfoDtmfError {
    /// Returns the status code of the response to the INFO request: 415 (Unsupported Media
    /// Type, with [`ACCEPTED_CONTENT_TYPES`] in Accept) for a content type that carries no
    /// DTMF, 400 (Bad Request) for a body that cannot be read.
    pub fn status_code(&self) -> u16 {
        match self {
            InfoDtmfError::UnsupportedContentType(_) => 415,
            InfoDtmfError::NotUtf8
            | InfoDtmfError::MissingSignal
            | InfoDtmfError::InvalidSignal(_)
            | InfoDtmfError::InvalidDuration(_) => 400,
        }
    }
}

/// Parses the body of an INFO request by its Content-Type header value. Parameters after
/// `;` and the letter case of the media type are ignored.
///
/// # Errors
///
/// [`InfoDtmfError::UnsupportedContentType`] for any type other than [`DTMF_RELAY`] and
/// [`DTMF`]; the other variants for bodies that carry no valid key.
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Result<Digit, InfoDtmfError> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let is_relay = media_type.eq_ignore_ascii_case(DTMF_RELAY);
    if !is_relay && !media_type.eq_ignore_ascii_case(DTMF) {
        return Err(InfoDtmfError::UnsupportedContentType(
            content_type.to_owned(),
        ));
    }

    let text = str::from_utf8(body).map_err(|_| InfoDtmfError::NotUtf8)?;
    if is_relay {
        parse_dtmf_relay(text)
    } else {
        parse_dtmf(text)
    }
}

/// Parses an `application/dtmf-relay` body. Lines other than `Signal` and `Duration` are
/// ignored, and so is an empty `Duration` value. The first `Signal` line counts.
///
/// # Errors
///
/// [`InfoDtmfError::MissingSignal`] without a `Signal` line,
/// [`InfoDtmfError::InvalidSignal`] and [`InfoDtmfError::InvalidDuration`] for values that
/// are not a key or a number of milliseconds.
pub fn parse_dtmf_relay(body: &str) -> Result<Digit, InfoDtmfError> {
    let mut signal = None;
    let mut duration = None;
    for line in body.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        let value = value.trim();
        if name.eq_ignore_ascii_case("signal") && signal.is_none() {
            signal = Some(value);
        } else if name.eq_ignore_ascii_case("duration") && duration.is_none() {
            duration = Some(value);
        }
    }

    let signal = signal.ok_or(InfoDtmfError::MissingSignal)?;
    let key = parse_signal(signal).ok_or_else(|| InfoDtmfError::InvalidSignal(signal.into()))?;
    let duration_ms = match duration {
        None | Some("") => None,
        Some(value) => Some(
            value
                .parse::<u32>()
                .map_err(|_| InfoDtmfError::InvalidDuration(value.into()))?,
        ),
    };
    Ok(Digit { key, duration_ms })
}

/// Parses an `application/dtmf` body: one key, blanks around it allowed.
///
/// # Errors
///
/// [`InfoDtmfError::MissingSignal`] for an empty body, [`InfoDtmfError::InvalidSignal`]
/// for anything other than one key or event code.
pub fn parse_dtmf(body: &str) -> Result<Digit, InfoDtmfError> {
    let signal = body.trim();
    if signal.is_empty() {
        return Err(InfoDtmfError::MissingSignal);
    }
    let key = parse_signal(signal).ok_or_else(|| InfoDtmfError::InvalidSignal(signal.into()))?;
    Ok(Digit {
        key,
        duration_ms: None,
    })
}

/// Parses a signal value: one key (`0`-`9`, `*`, `#`, `A`-`D` in either case) or an
/// RFC 4733 event code from 0 to 15 in decimal. Returns the key, with letters in uppercase.
pub fn parse_signal(value: &str) -> Option<char> {
    let mut chars = value.chars();
    if let (Some(key), None) = (chars.next(), chars.next()) {
        let event = event_for_key(key)?;
        return key_for_event(event);
    }
    if !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let event = value.parse::<u8>().ok()?;
    key_for_event(event)
}
