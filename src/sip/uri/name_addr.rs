//! The `name-addr` and `addr-spec` forms of From, To, Contact, Refer-To and similar headers
//! (RFC 3261 §20.10, §25.1).

use std::fmt;
use std::str::FromStr;

use super::{Params, Uri, UriError, quote, quoted_len, unquote};

/// A header value of the form `"Display Name" <uri>;params`, `<uri>;params` or
/// `uri;params`.
///
/// In the form without angle brackets every `;` parameter belongs to the header, not to the
/// URI (RFC 3261 §20.10), so `sip:a@b;tag=x` has the tag in `params`. `Display` always
/// writes the angle-bracket form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name with quotes and escapes removed.
    pub display_name: Option<String>,
    pub uri: Uri,
    /// Header parameters such as `tag`, `expires` or `index`.
    pub params: Params,
}

impl NameAddr {
    /// Creates a name-addr for `uri` without display name or parameters.
    pub fn new(uri: Uri) -> Self {
        Self {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// Returns the `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    fn parse_bracketed(display_name: Option<String>, input: &str) -> Result<Self, UriError> {
        let unterminated = || UriError::UnterminatedAngleBracket {
            input: input.to_owned(),
        };
        let inner = input.strip_prefix('<').ok_or_else(unterminated)?;
        let close = bracket_end(inner).ok_or_else(unterminated)?;
        let uri = inner[..close].parse()?;
        let params: Params = inner[close + 1..].parse()?;
        Ok(Self {
            display_name,
            uri,
            params,
        })
    }
}

/// Returns the header parameters of a value in the name-addr form (the text after `>`)
/// without parsing the URI. Returns `None` for the addr-spec form, because there only a
/// full parse separates the URI's parameters from the header's.
pub(crate) fn bracketed_params(input: &str) -> Result<Option<&str>, UriError> {
    let input = input.trim();
    let unterminated = || UriError::UnterminatedAngleBracket {
        input: input.to_owned(),
    };
    let bracketed = if input.starts_with('"') {
        let quoted = quoted_len(input).ok_or_else(|| UriError::UnterminatedQuote {
            input: input.to_owned(),
        })?;
        input[quoted..].trim_start()
    } else {
        match input.find('<') {
            Some(open) => &input[open..],
            None => return Ok(None),
        }
    };
    let inner = bracketed.strip_prefix('<').ok_or_else(unterminated)?;
    let close = bracket_end(inner).ok_or_else(unterminated)?;
    Ok(Some(&inner[close + 1..]))
}

/// Returns the offset of the `>` closing a URI, skipping quoted parameter values.
fn bracket_end(inner: &str) -> Option<usize> {
    let mut index = 0;
    while index < inner.len() {
        match inner.as_bytes()[index] {
            b'>' => return Some(index),
            b'"' => index += quoted_len(&inner[index..])?,
            _ => index += 1,
        }
    }
    None
}

impl FromStr for NameAddr {
    type Err = UriError;

    fn from_str(input: &str) -> Result<Self, UriError> {
        let input = input.trim();

        if input.starts_with('"') {
            let quoted = quoted_len(input).ok_or_else(|| UriError::UnterminatedQuote {
                input: input.to_owned(),
            })?;
            let display_name = unquote(&input[..quoted]).into_owned();
            return Self::parse_bracketed(Some(display_name), input[quoted..].trim_start());
        }

        if let Some(open) = input.find('<') {
            let display_name = input[..open].trim();
            let display_name = (!display_name.is_empty()).then(|| display_name.to_owned());
            return Self::parse_bracketed(display_name, &input[open..]);
        }

        // addr-spec form: parse everything as a URI, then hand its parameters to the header.
        let mut uri: Uri = input.parse()?;
        let params = std::mem::take(&mut uri.params);
        Ok(Self {
            display_name: None,
            uri,
            params,
        })
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display_name) = &self.display_name {
            write!(f, "{} ", quote(display_name))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}
