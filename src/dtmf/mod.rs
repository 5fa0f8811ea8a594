//! DTMF key detection for the agent leg, so the engine can recognise transfer feature codes
//! such as `*1` or `*301` that an agent presses during a call.
//!
//! - [`rfc4733`]: a per-stream detector of RFC 4733 telephone events that the media relay
//!   copies to an observer. It reports each key press once, at its first packet and at its
//!   end.
//! - [`info`]: the bodies of SIP INFO requests that carry DTMF (`application/dtmf-relay` and
//!   `application/dtmf`).
//! - [`collector`]: collects the keys of one leg and matches them against the dialplan's
//!   feature codes, deciding which keys are held back from the caller, which are relayed and
//!   when a code is complete.
//!
//! Nothing here touches a socket or reads the clock: the caller passes the current
//! [`tokio::time::Instant`] in, and polls for timeouts at the deadlines it is given.

pub mod collector;
pub mod info;
pub mod rfc4733;

#[cfg(test)]
mod tests;

pub use collector::{Collected, CollectorConfig, KeyAction, KeyCollector, KeyMatch};
pub use info::{InfoDtmfError, parse_info_body};
pub use rfc4733::{DetectorEvent, DigitEnd, DigitStart, EndCause, Rfc4733Detector};

/// One DTMF key press, from any of the transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit {
    /// The key: `0`-`9`, `*`, `#` or `A`-`D`.
    pub key: char,
    /// Length of the press in milliseconds, or `None` when the sender did not report one
    /// (an INFO body without `Duration`).
    pub duration_ms: Option<u32>,
}

/// Returns the key of a DTMF event code (RFC 4733 §3: 0-9 are the digits, 10 is `*`,
/// 11 is `#`, 12-15 are `A`-`D`), or `None` for codes 16 and above, which are not DTMF.
pub fn key_for_event(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Returns the RFC 4733 §3 event code of a key, or `None` for a character that is not a
/// DTMF key. Lowercase `a`-`d` are accepted as `A`-`D`.
pub fn event_for_key(key: char) -> Option<u8> {
    let byte = u8::try_from(key).ok()?;
    match byte.to_ascii_uppercase() {
        digit @ b'0'..=b'9' => Some(digit - b'0'),
        b'*' => Some(10),
        b'#' => Some(11),
        letter @ b'A'..=b'D' => Some(letter - b'A' + 12),
        _ => None,
    }
}
