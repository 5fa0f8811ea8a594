//! The engine's own `o=` line per leg (RFC 4566 §5.2, RFC 3264 §8).

use std::net::IpAddr;

use crate::sip::uri::{IpText, push_decimal};

/// The origin the engine presents to one leg, with the version rule of RFC 3264 §8. Each
/// new body sent to the leg carries a version one higher than the previous body. An
/// unchanged body keeps the version.
///
/// Keep one per leg for the life of the call and pass it to every
/// [`SessionDescription::rewrite`](super::SessionDescription::rewrite) for that leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginState {
    username: String,
    session_id: u64,
    version: u64,
    address: IpAddr,
    /// The last body sent, without its `o=` line; `None` before the first.
    last_body: Option<String>,
}

impl OriginState {
    /// Creates the origin for one leg with a random session id. `username` is used as
    /// given unless it is empty or contains whitespace, which `o=` cannot carry; then it is
    /// `-`. `address` is the relay address, written as `IN IP4` or `IN IP6`.
    pub fn new(username: &str, address: IpAddr) -> OriginState {
        // Kept below 2^63 because some endpoints parse the id as a signed 64-bit number.
        let session_id = rand::random::<u64>() >> 1;
        OriginState::with_session_id(username, session_id, address)
    }

    /// Creates the origin with a given session id; the first version is 1.
    pub fn with_session_id(username: &str, session_id: u64, address: IpAddr) -> OriginState {
        let valid = !username.is_empty() && !username.chars().any(char::is_whitespace);
        OriginState {
            username: if valid { username } else { "-" }.to_owned(),
            session_id,
            version: 1,
            address,
            last_body: None,
        }
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Returns the relay address written in `o=`.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// Returns the version of the last body sent, or the first version if none was sent.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Formats the current `o=` line, without line ending.
    pub fn line(&self) -> String {
        let mut line = String::with_capacity(64);
        self.push_line(&mut line);
        line
    }

    /// Appends the current `o=` line, without line ending, to `out`.
    pub fn push_line(&self, out: &mut String) {
        out.push_str("o=");
        out.push_str(&self.username);
        out.push(' ');
        push_decimal(out, self.session_id);
        out.push(' ');
        push_decimal(out, self.version);
        out.push_str(if self.address.is_ipv4() {
            " IN IP4 "
        } else {
            " IN IP6 "
        });
        IpText(self.address).push_to(out);
    }

    /// Records the body about to be sent (everything but the `o=` line) and increments the
    /// version if it differs from the previous body. Returns whether the version changed.
    pub(super) fn advance(&mut self, body: &str) -> bool {
        match &self.last_body {
            None => {
                self.last_body = Some(body.to_owned());
                false
            }
            Some(last) if last == body => false,
            Some(_) => {
                self.last_body = Some(body.to_owned());
                self.version = self.version.wrapping_add(1);
                true
            }
        }
    }
}
