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
        CallId(Arc::from(format!("{:032x}@{host}", rand::random::<u128>())))
    }
}

impl Tag {
    /// A new tag with 64 random bits (§19.3 asks for at least 32).
    pub fn generate() -> Self {
        Tag(Arc::from(format!("{:016x}", rand::random::<u64>())))
    }
}

impl Branch {
    /// A new branch: the magic cookie followed by 64 random bits.
    pub fn generate() -> Self {
        Branch(Arc::from(format!(
            "{BRANCH_COOKIE}{:016x}",
            rand::random::<u64>()
        )))
    }

    /// Whether the branch starts with the RFC 3261 magic cookie, so it alone identifies the
    /// transaction (§17.2.3).
    pub fn is_rfc3261(&self) -> bool {
        self.0.starts_with(BRANCH_COOKIE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
