//! Typed identifiers taken from SIP messages, and the generators for the ones the engine
//! creates itself.

use std::fmt;
use std::sync::Arc;

/// The magic cookie that marks an RFC 3261 branch (§8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// A Call-ID header value (RFC 3261 §8.1.1.4), compared byte for byte as §20.8 requires.
/// Cloning is cheap: the value is shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(Arc<str>);

/// A From or To tag (RFC 3261 §19.3). Tags compare case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(Arc<str>);

/// A Via branch parameter (RFC 3261 §8.1.1.7), the main part of a transaction key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Branch(Arc<str>);

macro_rules! string_id {
    ($name:ident) => {
        impl $name {
            pub fn new(value: &str) -> Self {
                $name(Arc::from(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(CallId);
string_id!(Tag);
string_id!(Branch);

impl CallId {
    /// A new globally unique Call-ID: 128 random bits in hex, `@` and the engine's host.
    pub fn generate(host: &str) -> Self {
        let mut text = String::with_capacity(33 + host.len());
        push_hex(&mut text, rand::random::<u128>(), 32);
        text.push('@');
        text.push_str(host);
        CallId(Arc::from(text))
    }
}

impl Tag {
    /// A new tag with 64 random bits (§19.3 asks for at least 32).
    pub fn generate() -> Self {
        let mut text = String::with_capacity(16);
        push_hex(&mut text, u128::from(rand::random::<u64>()), 16);
        Tag(Arc::from(text))
    }
}

impl Branch {
    /// A new branch: the magic cookie followed by 64 random bits.
    pub fn generate() -> Self {
        let mut text = String::with_capacity(BRANCH_COOKIE.len() + 16);
        text.push_str(BRANCH_COOKIE);
        push_hex(&mut text, u128::from(rand::random::<u64>()), 16);
        Branch(Arc::from(text))
    }

    /// Whether the branch starts with the RFC 3261 magic cookie, so it alone identifies the
    /// transaction (§17.2.3).
    pub fn is_rfc3261(&self) -> bool {
        self.0.starts_with(BRANCH_COOKIE)
    }
}

/// Appends the low `digits` hex digits of `value`, zero-padded and in lowercase, as
/// `{:0digits$x}` would. Ids are made several times per call, so this skips `format!`.
fn push_hex(out: &mut String, value: u128, digits: u32) {
    for index in (0..digits).rev() {
        let nibble = (value >> (index * 4)) & 0xf;
        out.push(char::from(b"0123456789abcdef"[nibble as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_hex_matches_format() {
        for value in [0, 1, 0xabc, u128::from(u64::MAX), u128::MAX] {
            let mut short = String::new();
            push_hex(&mut short, value, 16);
            assert_eq!(short, format!("{:016x}", value as u64));

            let mut long = String::new();
            push_hex(&mut long, value, 32);
            assert_eq!(long, format!("{value:032x}"));
        }
    }

    #[test]
    fn generated_branch_has_cookie() {
        let branch = Branch::generate();
        assert!(branch.is_rfc3261());
        assert_eq!(branch.as_str().len(), BRANCH_COOKIE.len() + 16);
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(Tag::generate(), Tag::generate());
        assert_ne!(CallId::generate("h"), CallId::generate("h"));
    }

    #[test]
    fn call_id_compares_case_sensitively() {
        assert_ne!(CallId::new("abc@h"), CallId::new("ABC@h"));
    }
}
