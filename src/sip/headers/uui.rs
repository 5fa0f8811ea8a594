//! The User-to-User header (RFC 7433 §4.1): opaque call control data, hex-encoded.

use std::fmt;
use std::str::FromStr;

use super::HeaderError;
use crate::sip::uri::{Params, hex_digit, unquote};

/// User-to-User value: `hexdata;encoding=hex;purpose=isdn-uui;content=isdn-uui`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserToUser {
    /// Decoded data.
    pub data: Vec<u8>,
    /// `encoding` parameter as received; `None` when absent.
    pub encoding: Option<String>,
    /// `purpose` parameter, the UUI package (RFC 7433 §4.1, for example `isdn-uui`).
    pub purpose: Option<String>,
    /// `content` parameter, the kind of data within the package.
    pub content: Option<String>,
    /// Other parameters.
    pub params: Params,
}

impl UserToUser {
    pub const NAME: &'static str = "User-to-User";

    /// Creates a value carrying `data`, written with `encoding=hex`.
    pub fn from_bytes(data: &[u8], purpose: Option<&str>, content: Option<&str>) -> Self {
        Self {
            data: data.to_vec(),
            encoding: Some("hex".to_owned()),
            purpose: purpose.map(str::to_owned),
            content: content.map(str::to_owned),
            params: Params::new(),
        }
    }

    fn is_hex(&self) -> bool {
        self.encoding
            .as_deref()
            .is_none_or(|encoding| encoding.eq_ignore_ascii_case("hex"))
    }
}

impl FromStr for UserToUser {
    type Err = HeaderError;

    /// Parses the value and hex-decodes the data when `encoding` is `hex` or absent.
    /// Data in any other encoding is kept as its bytes.
    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let value = value.trim();
        let params_start = value.find(';').unwrap_or(value.len());
        let raw = unquote(value[..params_start].trim_end());
        if raw.is_empty() {
            return Err(HeaderError::Empty { header: Self::NAME });
        }

        let mut params: Params = value[params_start..].parse()?;
        let mut take = |name: &str| {
            params
                .remove(name)
                .and_then(|param| param.value)
                .map(|value| unquote(&value).into_owned())
        };
        let mut uui = Self {
            data: Vec::new(),
            encoding: take("encoding"),
            purpose: take("purpose"),
            content: take("content"),
            params: Params::new(),
        };
        uui.params = params;

        // NOTE: data without an `encoding` parameter is decoded as hex, because ISDN gateways
        // send it that way. Raw text from another sender fails with InvalidHex.
        uui.data = match uui.is_hex() {
            true => decode_hex(&raw)?,
            false => raw.as_bytes().to_vec(),
        };
        Ok(uui)
    }
}

impl fmt::Display for UserToUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_hex() {
            write_hex(f, &self.data)?;
        } else {
            f.write_str(&String::from_utf8_lossy(&self.data))?;
        }
        if let Some(encoding) = &self.encoding {
            write!(f, ";encoding={encoding}")?;
        }
        if let Some(purpose) = &self.purpose {
            write!(f, ";purpose={purpose}")?;
        }
        if let Some(content) = &self.content {
            write!(f, ";content={content}")?;
        }
        self.params.fmt(f)
    }
}

/// Writes `data` as upper-case hex digits, a chunk at a time: a formatting call per byte
/// made a transfer's UUI header the costliest part of routing it.
fn write_hex(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut text = [0u8; 64];
    for chunk in data.chunks(text.len() / 2) {
        for (index, byte) in chunk.iter().enumerate() {
            text[2 * index] = DIGITS[usize::from(byte >> 4)];
            text[2 * index + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        let digits = std::str::from_utf8(&text[..2 * chunk.len()]).map_err(|_| fmt::Error)?;
        f.write_str(digits)?;
    }
    Ok(())
}

fn decode_hex(text: &str) -> Result<Vec<u8>, HeaderError> {
    let invalid = || HeaderError::InvalidHex {
        value: text.to_owned(),
    };
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(invalid());
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)
}
