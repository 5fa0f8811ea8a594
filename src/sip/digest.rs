//! HTTP digest authentication for requests the engine sends (RFC 3261 §22, RFC 2617):
//! reading a WWW-Authenticate or Proxy-Authenticate challenge and computing the
//! Authorization or Proxy-Authorization answer.

use std::fmt::Write as _;
use std::str::FromStr;

use md5::{Digest, Md5};

/// A digest challenge from a 401 or 407 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `MD5` when absent (RFC 2617 §3.2.1).
    pub algorithm: Option<String>,
    /// The qop options offered, such as `auth`.
    pub qop: Vec<String>,
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest challenge: {0:?}")]
    NotDigest(String),
    #[error("the digest challenge has no {0}")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0:?}; only MD5 is supported")]
    Algorithm(String),
    #[error("the challenge offers only qop {0:?}; only auth is supported")]
    Qop(String),
}

impl FromStr for Challenge {
    type Err = DigestError;

    fn from_str(value: &str) -> Result<Self, DigestError> {
        let value = value.trim();
        let Some(rest) = value
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case("digest"))
            .map(|_| &value[6..])
        else {
            return Err(DigestError::NotDigest(value.to_owned()));
        };
        let mut challenge = Challenge {
            realm: String::new(),
            nonce: String::new(),
            opaque: None,
            algorithm: None,
            qop: Vec::new(),
            stale: false,
        };
        let mut realm = None;
        let mut nonce = None;
        for (name, value) in parameters(rest) {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => challenge.opaque = Some(value),
                "algorithm" => challenge.algorithm = Some(value),
                "qop" => {
                    challenge.qop = value
                        .split(',')
                        .map(|option| option.trim().to_owned())
                        .filter(|option| !option.is_empty())
                        .collect();
                }
                "stale" => challenge.stale = value.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        challenge.realm = realm.ok_or(DigestError::Missing("realm"))?;
        challenge.nonce = nonce.ok_or(DigestError::Missing("nonce"))?;
        Ok(challenge)
    }
}

/// Splits `name=value, name="quoted, value"` pairs, unquoting the values.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let Some(equals) = rest.find('=') else {
            break;
        };
        let name = rest[..equals]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_owned();
        rest = rest[equals + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (index, ch) in quoted.char_indices() {
                match ch {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(index);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            let end = end.unwrap_or(quoted.len());
            value = quoted[..end].replace("\\\"", "\"");
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        pairs.push((name, value));
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    pairs
}

/// The credentials and request an answer is computed for.
pub struct Answer<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    /// The Request-URI, as written in the request line.
    pub uri: &'a str,
    /// Client nonce, for qop=auth.
    pub cnonce: &'a str,
    /// Nonce count, starting at 1 per nonce.
    pub nonce_count: u32,
}

/// Computes the Authorization (or Proxy-Authorization) value answering `challenge`
/// (RFC 2617 §3.2.2), with qop=auth when the challenge offers it.
///
/// NOTE: only the MD5 algorithm is implemented; a challenge asking for SHA-256
/// (RFC 8760) or MD5-sess is refused with [`DigestError::Algorithm`].
pub fn authorization(challenge: &Challenge, answer: &Answer<'_>) -> Result<String, DigestError> {
    if let Some(algorithm) = &challenge.algorithm
        && !algorithm.eq_ignore_ascii_case("MD5")
    {
        return Err(DigestError::Algorithm(algorithm.clone()));
    }
    let use_qop = if challenge.qop.is_empty() {
        false
    } else if challenge
        .qop
        .iter()
        .any(|qop| qop.eq_ignore_ascii_case("auth"))
    {
        true
    } else {
        return Err(DigestError::Qop(challenge.qop.join(",")));
    };

    let ha1 = md5_hex(&format!(
        "{}:{}:{}",
        answer.username, challenge.realm, answer.password
    ));
    let ha2 = md5_hex(&format!("{}:{}", answer.method, answer.uri));
    let nc = format!("{:08x}", answer.nonce_count);
    let response = if use_qop {
        md5_hex(&format!(
            "{ha1}:{}:{nc}:{}:auth:{ha2}",
            challenge.nonce, answer.cnonce
        ))
    } else {
        md5_hex(&format!("{ha1}:{}:{ha2}", challenge.nonce))
    };

    let mut value = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\", algorithm=MD5",
        answer.username, challenge.realm, challenge.nonce, answer.uri
    );
    if use_qop {
        let _ = write!(value, ", qop=auth, nc={nc}, cnonce=\"{}\"", answer.cnonce);
    }
    if let Some(opaque) = &challenge.opaque {
        let _ = write!(value, ", opaque=\"{opaque}\"");
    }
    Ok(value)
}

fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example, which uses qop=auth.
    #[test]
    fn rfc2617_example_response() {
        let challenge: Challenge = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
            .parse()
            .unwrap();
        let answer = Answer {
            username: "Mufasa",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            cnonce: "0a4f113b",
            nonce_count: 1,
        };
        let value = authorization(&challenge, &answer).unwrap();
        assert!(
            value.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{value}"
        );
        assert!(value.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""));
        assert!(value.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
    }

    #[test]
    fn challenge_without_qop() {
        let challenge: Challenge = "Digest realm=\"hotline\",nonce=\"abc\",algorithm=MD5"
            .parse()
            .unwrap();
        assert_eq!(challenge.realm, "hotline");
        assert_eq!(challenge.nonce, "abc");
        assert!(challenge.qop.is_empty());
        let answer = Answer {
            username: "u",
            password: "p",
            method: "INVITE",
            uri: "sip:+861012345@10.0.0.1",
            cnonce: "c",
            nonce_count: 1,
        };
        let value = authorization(&challenge, &answer).unwrap();
        assert!(!value.contains("qop"));
        assert!(value.starts_with("Digest username=\"u\", realm=\"hotline\""));
    }

    #[test]
    fn rejects_other_schemes_and_algorithms() {
        assert!("Basic realm=\"x\"".parse::<Challenge>().is_err());
        assert_eq!(
            "Digest nonce=\"n\"".parse::<Challenge>(),
            Err(DigestError::Missing("realm"))
        );
        let sha: Challenge = "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"
            .parse()
            .unwrap();
        let answer = Answer {
            username: "u",
            password: "p",
            method: "INVITE",
            uri: "sip:x@y",
            cnonce: "c",
            nonce_count: 1,
        };
        assert!(matches!(
            authorization(&sha, &answer),
            Err(DigestError::Algorithm(_))
        ));
    }
}
