//! The Reason header (RFC 3326 §2): why a request was sent, as a SIP status code or an
//! ISDN Q.850 cause.

use std::fmt;
use std::str::FromStr;

use super::{HeaderError, number_param};
use crate::sip::uri::{Params, quote, split_list, unquote};

/// Protocol of a Reason value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReasonProtocol {
    /// `cause` is a SIP status code.
    Sip,
    /// `cause` is an ITU-T Q.850 cause value.
    Q850,
    /// Any other protocol token, kept as received.
    Other(String),
}

impl ReasonProtocol {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sip => "SIP",
            Self::Q850 => "Q.850",
            Self::Other(token) => token,
        }
    }
}

/// One Reason value: `protocol ;cause=N ;text="..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub protocol: ReasonProtocol,
    pub cause: Option<u16>,
    /// Text with quotes and escapes removed.
    pub text: Option<String>,
    /// Extension parameters other than `cause` and `text`.
    pub params: Params,
}

impl Reason {
    pub const NAME: &'static str = "Reason";

    /// Creates a value without extension parameters.
    pub fn new(protocol: ReasonProtocol, cause: u16, text: Option<&str>) -> Self {
        Self {
            protocol,
            cause: Some(cause),
            text: text.map(str::to_owned),
            params: Params::new(),
        }
    }

    /// Parses every value of a Reason header line, which may carry one SIP and one Q.850
    /// value.
    ///
    /// # Errors
    ///
    /// The first invalid value's error.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, HeaderError> {
        split_list(value).map(str::parse).collect()
    }
}

impl FromStr for Reason {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let value = value.trim();
        let params_start = value.find(';').unwrap_or(value.len());
        let protocol = match value[..params_start].trim() {
            "" => return Err(HeaderError::Empty { header: Self::NAME }),
            p if p.eq_ignore_ascii_case("SIP") => ReasonProtocol::Sip,
            p if p.eq_ignore_ascii_case("Q.850") => ReasonProtocol::Q850,
            p => ReasonProtocol::Other(p.to_owned()),
        };

        let mut params: Params = value[params_start..].parse()?;
        let cause = params.remove("cause");
        let cause = number_param(
            Self::NAME,
            "cause",
            cause.as_ref().and_then(|p| p.value.as_deref()),
        )?;
        let text = params
            .remove("text")
            .and_then(|param| param.value)
            .map(|text| unquote(&text).into_owned());
        Ok(Self {
            protocol,
            cause,
            text,
            params,
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.protocol.as_str())?;
        if let Some(cause) = self.cause {
            write!(f, ";cause={cause}")?;
        }
        if let Some(text) = &self.text {
            write!(f, ";text={}", quote(text))?;
        }
        self.params.fmt(f)
    }
}
