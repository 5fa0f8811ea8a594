//! SIP request methods (RFC 3261 §7.1 and the extension RFCs the engine handles).

use std::fmt;
use std::str::FromStr;

/// A request method. Methods compare case-sensitively (RFC 3261 §7.1), so `invite` is an
/// extension method, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Refer,
    Notify,
    Subscribe,
    Info,
    Update,
    Prack,
    Message,
    Publish,
    Other(Box<str>),
}

/// A method token with characters outside RFC 3261's `token` rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid method token {0:?}")]
pub struct InvalidMethod(pub String);

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(token) => token,
        }
    }
}

impl FromStr for Method {
    type Err = InvalidMethod;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        let method = match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            _ if is_token(token) => Method::Other(token.into()),
            _ => return Err(InvalidMethod(token.to_owned())),
        };
        Ok(method)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 §25.1 `token`.
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(super::normalize::is_token_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_round_trip() {
        for token in ["INVITE", "ACK", "BYE", "CANCEL", "REFER", "INFO", "UPDATE"] {
            assert_eq!(token.parse::<Method>().unwrap().as_str(), token);
        }
    }

    #[test]
    fn lowercase_is_extension_method() {
        assert_eq!(
            "invite".parse::<Method>(),
            Ok(Method::Other("invite".into()))
        );
    }

    #[test]
    fn separators_are_rejected() {
        assert!("INV ITE".parse::<Method>().is_err());
        assert!("".parse::<Method>().is_err());
    }
}
