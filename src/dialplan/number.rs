//! Telephone numbers of hotlines and callers: the canonical form used to compare them, and
//! the forms written on a trunk.
//!
//! Numbers are compared in China's national form: a fixed-line number is `0` + area code +
//! subscriber number (`01012345`), a mobile number is its 11 digits. `+86` numbers are
//! converted to that form, so `tel:+86-10-12345` and `tel:010-12345` are the same number.

use std::fmt;

use serde::Serialize;

/// China's country code (ITU-T E.164).
const COUNTRY_CODE: &str = "86";
/// Maximum number of digits: E.164 allows 15, plus room for national prefixes.
const MAX_DIGITS: usize = 20;

/// Failure to read a telephone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("{text:?} contains no digits")]
    Empty { text: String },
    #[error("{text:?} contains {found:?}, expected digits, a leading + and separators - . ( )")]
    InvalidCharacter { text: String, found: char },
    #[error("{text:?} has more than {MAX_DIGITS} digits")]
    TooLong { text: String },
}

/// Format of the called hotline's number on a trunk, in the Request-URI and To.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberFormat {
    /// `+86` + area code without its leading 0 + service number: `+861012345`.
    E164,
    /// Area code + service number: `01012345`.
    National,
    /// The destination's own `user` value, for trunks that route by name.
    User,
}

impl NumberFormat {
    /// Returns the name used in dialplans.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberFormat::E164 => "e164",
            NumberFormat::National => "national",
            NumberFormat::User => "user",
        }
    }

    /// Parses the dialplan name.
    pub fn parse(name: &str) -> Option<NumberFormat> {
        [
            NumberFormat::E164,
            NumberFormat::National,
            NumberFormat::User,
        ]
        .into_iter()
        .find(|format| format.as_str() == name)
    }

    /// Writes a caller's number the way this trunk writes numbers. Fixed-line and mobile
    /// numbers of China get `+86` in E.164 and lose it in national form. Short numbers,
    /// numbers that do not parse and every number on a [`NumberFormat::User`] trunk are
    /// passed through unchanged.
    pub fn caller_number(self, caller: &str) -> String {
        let Ok(canonical) = canonical_number(caller) else {
            return caller.to_owned();
        };
        match self {
            NumberFormat::User => caller.to_owned(),
            NumberFormat::National => canonical,
            NumberFormat::E164 => to_e164(&canonical).unwrap_or(canonical),
        }
    }
}

impl fmt::Display for NumberFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returns `text` in canonical national form, after removing the RFC 3966 §3 visual
/// separators (`-` `.` `(` `)`) and spaces.
///
/// `+86` and `0086` numbers become national: the bare 11 digits for mobiles (11 digits
/// starting with 1), `0` + area code + subscriber for everything else. Other
/// international numbers keep their `+`.
///
/// # Errors
///
/// [`NumberError`] when no digits remain, another character is present, or the number
/// is longer than 20 digits.
pub fn canonical_number(text: &str) -> Result<String, NumberError> {
    let mut digits = String::with_capacity(text.len());
    let mut global = false;
    for (index, ch) in text.trim().char_indices() {
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if index == 0 => global = true,
            '-' | '.' | '(' | ')' | ' ' => {}
            found => {
                return Err(NumberError::InvalidCharacter {
                    text: text.to_owned(),
                    found,
                });
            }
        }
    }
    if digits.is_empty() {
        return Err(NumberError::Empty {
            text: text.to_owned(),
        });
    }
    if digits.len() > MAX_DIGITS {
        return Err(NumberError::TooLong {
            text: text.to_owned(),
        });
    }

    let international = match (global, digits.strip_prefix("00")) {
        (true, _) => Some(digits.as_str()),
        (false, Some(rest)) => Some(rest),
        (false, None) => None,
    };
    let Some(international) = international else {
        return Ok(digits);
    };
    match international.strip_prefix(COUNTRY_CODE) {
        // "+86 010 ..." keeps the trunk prefix that E.164 drops; read it as national.
        Some(national) if is_mobile(national) || national.starts_with('0') => {
            Ok(national.to_owned())
        }
        Some(national) if !national.is_empty() => Ok(format!("0{national}")),
        _ => Ok(format!("+{international}")),
    }
}

/// Writes a canonical Chinese number in E.164 form, or `None` for a number that is
/// neither fixed-line (leading 0) nor mobile (11 digits starting with 1).
fn to_e164(canonical: &str) -> Option<String> {
    if canonical.starts_with('+') {
        return Some(canonical.to_owned());
    }
    if let Some(national) = canonical.strip_prefix('0') {
        return Some(format!("+{COUNTRY_CODE}{national}"));
    }
    is_mobile(canonical).then(|| format!("+{COUNTRY_CODE}{canonical}"))
}

/// Returns whether `digits` is a mobile number of China: 11 digits starting with 1. Beijing's
/// area code 10 also starts with 1, so the length matters.
fn is_mobile(digits: &str) -> bool {
    digits.len() == 11 && digits.starts_with('1')
}

/// Returns the user part of a hotline's Request-URI in `format`: `+861012345` (E.164) or
/// `01012345` (national) from area code `010` and service number `12345`, or `user`.
pub fn hotline_user(
    format: NumberFormat,
    area_code: &str,
    service_number: &str,
    user: Option<&str>,
) -> String {
    match format {
        NumberFormat::E164 => {
            let area = area_code.strip_prefix('0').unwrap_or(area_code);
            format!("+{COUNTRY_CODE}{area}{service_number}")
        }
        NumberFormat::National => format!("{area_code}{service_number}"),
        // A destination on a `user` trunk always has a user: the loader rejects it
        // otherwise. The service number is the fallback for a hand-built plan.
        NumberFormat::User => user.unwrap_or(service_number).to_owned(),
    }
}

/// Returns whether `code` is a Chinese area code: `0` followed by two or three digits, the first
/// not 0.
pub fn is_area_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    (3..=4).contains(&bytes.len())
        && bytes[0] == b'0'
        && bytes[1] != b'0'
        && bytes.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_removes_separators() {
        assert_eq!(canonical_number("010-12345").unwrap(), "01012345");
        assert_eq!(canonical_number("(022) 12345").unwrap(), "02212345");
        assert_eq!(canonical_number("0311.12345").unwrap(), "031112345");
    }

    #[test]
    fn canonical_converts_country_code() {
        assert_eq!(canonical_number("+861012345").unwrap(), "01012345");
        assert_eq!(canonical_number("+86-10-12345").unwrap(), "01012345");
        assert_eq!(canonical_number("00862212345").unwrap(), "02212345");
        assert_eq!(canonical_number("+86 022 12345").unwrap(), "02212345");
        assert_eq!(canonical_number("+8613800000000").unwrap(), "13800000000");
        assert_eq!(canonical_number("+14155550100").unwrap(), "+14155550100");
        assert_eq!(canonical_number("+86").unwrap(), "+86");
    }

    #[test]
    fn canonical_rejects_bad_text() {
        assert!(matches!(
            canonical_number("-- ."),
            Err(NumberError::Empty { .. })
        ));
        assert!(matches!(
            canonical_number("010-12345x"),
            Err(NumberError::InvalidCharacter { found: 'x', .. })
        ));
        assert!(matches!(
            canonical_number("01+012345"),
            Err(NumberError::InvalidCharacter { found: '+', .. })
        ));
        assert!(matches!(
            canonical_number("123456789012345678901"),
            Err(NumberError::TooLong { .. })
        ));
    }

    #[test]
    fn hotline_user_per_format() {
        let e164 = hotline_user(NumberFormat::E164, "010", "12345", None);
        assert_eq!(e164, "+861012345");
        let national = hotline_user(NumberFormat::National, "0311", "12345", None);
        assert_eq!(national, "031112345");
        let user = hotline_user(NumberFormat::User, "0312", "12345", Some("xiongan"));
        assert_eq!(user, "xiongan");
    }

    #[test]
    fn caller_number_per_format() {
        assert_eq!(
            NumberFormat::E164.caller_number("13800000000"),
            "+8613800000000"
        );
        assert_eq!(
            NumberFormat::E164.caller_number("031187654321"),
            "+8631187654321"
        );
        assert_eq!(
            NumberFormat::National.caller_number("+8631187654321"),
            "031187654321"
        );
        assert_eq!(NumberFormat::E164.caller_number("10086"), "10086");
        assert_eq!(NumberFormat::User.caller_number("+86-138"), "+86-138");
        assert_eq!(NumberFormat::E164.caller_number("anonymous"), "anonymous");
    }

    #[test]
    fn area_codes() {
        for code in ["010", "022", "0311", "0335"] {
            assert!(is_area_code(code), "{code}");
        }
        for code in ["10", "0010", "01234", "03a1", ""] {
            assert!(!is_area_code(code), "{code}");
        }
    }
}
