//! Event and Subscription-State (RFC 6665 §8.2) and the message/sipfrag status line
//! (RFC 3420) of the NOTIFY requests that report REFER progress (RFC 3515 §2.4.5).

use std::fmt;
use std::str::FromStr;

use super::{HeaderError, is_token_byte, number_param, parse_number};
use crate::sip::uri::Params;

/// Event value (RFC 6665 §8.2.1): `package[.template];id=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event package, such as `refer` or `dialog`.
    pub package: String,
    /// `id` parameter; for `refer` it is the CSeq number of the REFER (RFC 3515 §2.4.4).
    pub id: Option<String>,
    /// Other parameters.
    pub params: Params,
}

impl Event {
    pub const NAME: &'static str = "Event";

    /// Creates an event value without parameters other than `id`.
    pub fn new(package: impl Into<String>, id: Option<String>) -> Self {
        Self {
            package: package.into(),
            id,
            params: Params::new(),
        }
    }
}

impl FromStr for Event {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let value = value.trim();
        let params_start = value.find(';').unwrap_or(value.len());
        let package = value[..params_start].trim();
        if package.is_empty() {
            return Err(HeaderError::Empty { header: Self::NAME });
        }
        if !package.bytes().all(is_token_byte) {
            return Err(HeaderError::InvalidToken {
                header: Self::NAME,
                value: package.to_owned(),
            });
        }

        let mut params: Params = value[params_start..].parse()?;
        let id = params.remove("id").and_then(|param| param.value);
        Ok(Self {
            package: package.to_owned(),
            id,
            params,
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.package)?;
        if let Some(id) = &self.id {
            write!(f, ";id={id}")?;
        }
        self.params.fmt(f)
    }
}

/// Subscription state (RFC 6665 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Active,
    Pending,
    Terminated,
    /// Any other state token, to be treated as `active` (RFC 6665 §4.1.3).
    Other(String),
}

impl SubscriptionStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Terminated => "terminated",
            Self::Other(token) => token,
        }
    }
}

/// Subscription-State value (RFC 6665 §8.2.3): `terminated;reason=noresource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub status: SubscriptionStatus,
    /// Remaining subscription time in seconds.
    pub expires: Option<u32>,
    /// Termination reason, such as `noresource` or `timeout`.
    pub reason: Option<String>,
    /// Seconds to wait before resubscribing.
    pub retry_after: Option<u32>,
    /// Other parameters.
    pub params: Params,
}

impl SubscriptionState {
    pub const NAME: &'static str = "Subscription-State";

    /// Creates a state with no parameters.
    pub fn new(status: SubscriptionStatus) -> Self {
        Self {
            status,
            expires: None,
            reason: None,
            retry_after: None,
            params: Params::new(),
        }
    }
}

impl FromStr for SubscriptionState {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let value = value.trim();
        let params_start = value.find(';').unwrap_or(value.len());
        let status = match value[..params_start].trim() {
            "" => return Err(HeaderError::Empty { header: Self::NAME }),
            s if s.eq_ignore_ascii_case("active") => SubscriptionStatus::Active,
            s if s.eq_ignore_ascii_case("pending") => SubscriptionStatus::Pending,
            s if s.eq_ignore_ascii_case("terminated") => SubscriptionStatus::Terminated,
            s => SubscriptionStatus::Other(s.to_owned()),
        };

        let mut params: Params = value[params_start..].parse()?;
        let mut take = |name: &str| params.remove(name).and_then(|param| param.value);
        let expires = take("expires");
        let reason = take("reason");
        let retry_after = take("retry-after");
        Ok(Self {
            status,
            expires: number_param(Self::NAME, "expires", expires.as_deref())?,
            reason,
            retry_after: number_param(Self::NAME, "retry-after", retry_after.as_deref())?,
            params,
        })
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status.as_str())?;
        if let Some(expires) = self.expires {
            write!(f, ";expires={expires}")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, ";reason={reason}")?;
        }
        if let Some(retry_after) = self.retry_after {
            write!(f, ";retry-after={retry_after}")?;
        }
        self.params.fmt(f)
    }
}

/// Reads the status code from a message/sipfrag body whose first line is a status line,
/// such as `SIP/2.0 180 Ringing` in a NOTIFY for a REFER (RFC 3515 §2.4.5).
///
/// # Errors
///
/// [`HeaderError::InvalidSipFrag`] when the first line is not `SIP/2.0 <3 digits> ...`.
pub fn parse_sipfrag_status(body: &[u8]) -> Result<u16, HeaderError> {
    let line_end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[..line_end]);
    let line = line.trim_end();
    let invalid = || HeaderError::InvalidSipFrag {
        line: line.to_owned(),
    };

    let mut parts = line.splitn(3, ' ');
    let version = parts.next().ok_or_else(invalid)?;
    let code = parts.next().ok_or_else(invalid)?;
    if !version.eq_ignore_ascii_case("SIP/2.0") || code.len() != 3 {
        return Err(invalid());
    }
    let code: u16 = parse_number("sipfrag", code).map_err(|_| invalid())?;
    match code {
        100..=699 => Ok(code),
        _ => Err(invalid()),
    }
}
