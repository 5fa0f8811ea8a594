//! The transaction key: the values that match a request or response to its transaction
//! (RFC 3261 §17.1.3 for clients, §17.2.3 for servers).

use std::fmt;

use thiserror::Error;

/// The prefix of every branch parameter built under RFC 3261 (§8.1.1.7). A server takes
/// its presence to mean that the branch is unique and can identify the transaction.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The side of a transaction that a key identifies. A client and a server transaction of this
/// element never share a key, even if a peer reuses one of our branch values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The client transaction we created to send a request (§17.1).
    Client,
    /// The server transaction we created for a request we received (§17.2).
    Server,
}

/// Values rejected when building a [`TransactionKey`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The branch lacks the `z9hG4bK` magic cookie or has nothing after it.
    #[error(
        "invalid branch {branch:?}: expected \"z9hG4bK\" followed by a unique value \
         (RFC 2543 transaction matching is not supported)"
    )]
    InvalidBranch { branch: String },
    /// The sent-by value of a server key is empty.
    #[error("missing sent-by value in the top Via")]
    MissingSentBy,
    /// The method is empty.
    #[error("missing method")]
    MissingMethod,
}

/// The identity of a transaction in a transaction table.
///
/// A client key is the top Via branch and the method (§17.1.3): a response matches when its
/// top Via branch and its CSeq method equal those of the request. A server key adds the
/// sent-by value of the top Via (§17.2.3), because two clients may pick the same branch by accident
/// or on purpose.
///
/// ACK takes the method INVITE, so an ACK for a 3xx-6xx response matches the INVITE
/// transaction it acknowledges. CANCEL keeps its own method and is a transaction of its
/// own, and [`TransactionKey::cancelled_invite`] finds the INVITE it targets (§9.2).
///
/// Branch values compare byte for byte, because retransmissions, ACK and CANCEL copy the
/// branch of the original request. Sent-by values compare without regard to ASCII case,
/// because host names are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    role: Role,
    branch: Box<str>,
    sent_by: Box<str>,
    method: Box<str>,
}

impl TransactionKey {
    /// Builds the key of a client transaction from the top Via branch of the request we
    /// sent, or of a response we received, and the request method, or the CSeq method of
    /// the response (§17.1.3).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidBranch`] when the branch lacks the magic cookie,
    /// [`KeyError::MissingMethod`] when the method is empty.
    pub fn client(branch: &str, method: &str) -> Result<Self, KeyError> {
        Self::build(Role::Client, branch, "", method)
    }

    /// Builds the key of a server transaction from the top Via branch and sent-by of a
    /// received request, and its method (§17.2.3).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidBranch`] when the branch lacks the magic cookie,
    /// [`KeyError::MissingSentBy`] or [`KeyError::MissingMethod`] when a value is empty.
    pub fn server(branch: &str, sent_by: &str, method: &str) -> Result<Self, KeyError> {
        if sent_by.is_empty() {
            return Err(KeyError::MissingSentBy);
        }
        Self::build(Role::Server, branch, sent_by, method)
    }

    fn build(role: Role, branch: &str, sent_by: &str, method: &str) -> Result<Self, KeyError> {
        let unique_part = branch.strip_prefix(MAGIC_COOKIE).unwrap_or_default();
        if unique_part.is_empty() {
            return Err(KeyError::InvalidBranch {
                branch: branch.to_owned(),
            });
        }
        if method.is_empty() {
            return Err(KeyError::MissingMethod);
        }

        // Method names are case-sensitive (§7.1), so only ACK in capitals maps to INVITE.
        let method = if method == "ACK" { "INVITE" } else { method };
        Ok(Self {
            role,
            branch: branch.into(),
            sent_by: sent_by.to_ascii_lowercase().into(),
            method: method.into(),
        })
    }

    /// Returns the key of the INVITE transaction that this CANCEL key targets: same
    /// branch and sent-by, method INVITE (§9.2). Returns `None` for any other method.
    pub fn cancelled_invite(&self) -> Option<Self> {
        if &*self.method != "CANCEL" {
            return None;
        }
        Some(Self {
            method: "INVITE".into(),
            ..self.clone()
        })
    }

    /// Returns the side of the transaction.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Returns the branch parameter, magic cookie included.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// Returns the sent-by value in lowercase, empty in a client key.
    pub fn sent_by(&self) -> &str {
        &self.sent_by
    }

    /// Returns the method, INVITE for an ACK.
    pub fn method(&self) -> &str {
        &self.method
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role {
            Role::Client => write!(f, "client {} {}", self.method, self.branch),
            Role::Server => write!(
                f,
                "server {} {} from {}",
                self.method, self.branch, self.sent_by
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const BRANCH: &str = "z9hG4bK74bf9";

    #[test]
    fn response_matches_client_key() {
        let request = TransactionKey::client(BRANCH, "INVITE").unwrap();
        let response = TransactionKey::client(BRANCH, "INVITE").unwrap();
        assert_eq!(request, response);
        assert_eq!(request.sent_by(), "");
    }

    #[test]
    fn ack_matches_invite() {
        let invite = TransactionKey::server(BRANCH, "10.0.0.1:5060", "INVITE").unwrap();
        let ack = TransactionKey::server(BRANCH, "10.0.0.1:5060", "ACK").unwrap();
        assert_eq!(invite, ack);
        assert_eq!(ack.method(), "INVITE");
    }

    #[test]
    fn cancel_is_own_transaction() {
        let invite = TransactionKey::server(BRANCH, "10.0.0.1:5060", "INVITE").unwrap();
        let cancel = TransactionKey::server(BRANCH, "10.0.0.1:5060", "CANCEL").unwrap();
        assert_ne!(invite, cancel);
        assert_eq!(cancel.cancelled_invite(), Some(invite.clone()));
        assert_eq!(invite.cancelled_invite(), None);
    }

    #[test]
    fn sent_by_distinguishes_servers() {
        let first = TransactionKey::server(BRANCH, "10.0.0.1:5060", "INVITE").unwrap();
        let second = TransactionKey::server(BRANCH, "10.0.0.2:5060", "INVITE").unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn sent_by_ignores_case() {
        let lower = TransactionKey::server(BRANCH, "pbx.example.com", "BYE").unwrap();
        let upper = TransactionKey::server(BRANCH, "PBX.Example.COM", "BYE").unwrap();
        assert_eq!(lower, upper);
    }

    #[test]
    fn branch_is_case_sensitive() {
        let lower = TransactionKey::client("z9hG4bKabc", "BYE").unwrap();
        let upper = TransactionKey::client("z9hG4bKABC", "BYE").unwrap();
        assert_ne!(lower, upper);
    }

    #[test]
    fn roles_never_collide() {
        let client = TransactionKey::client(BRANCH, "OPTIONS").unwrap();
        let server = TransactionKey::server(BRANCH, "10.0.0.1", "OPTIONS").unwrap();
        let table: HashSet<_> = [client.clone(), server.clone()].into_iter().collect();
        assert_eq!(table.len(), 2);
        assert_eq!(client.role(), Role::Client);
        assert_eq!(server.role(), Role::Server);
    }

    #[test]
    fn method_differs_in_client_key() {
        let invite = TransactionKey::client(BRANCH, "INVITE").unwrap();
        let cancel = TransactionKey::client(BRANCH, "CANCEL").unwrap();
        assert_ne!(invite, cancel);
    }

    #[test]
    fn rejects_invalid_values() {
        for branch in ["", "z9hG4bK", "abc123", "Z9HG4BKabc"] {
            assert_eq!(
                TransactionKey::client(branch, "INVITE"),
                Err(KeyError::InvalidBranch {
                    branch: branch.to_owned()
                }),
                "branch {branch:?}"
            );
        }
        assert_eq!(
            TransactionKey::server(BRANCH, "", "INVITE"),
            Err(KeyError::MissingSentBy)
        );
        assert_eq!(
            TransactionKey::client(BRANCH, ""),
            Err(KeyError::MissingMethod)
        );
    }

    #[test]
    fn display_names_side_and_method() {
        let client = TransactionKey::client(BRANCH, "INVITE").unwrap();
        let server = TransactionKey::server(BRANCH, "10.0.0.1:5060", "ACK").unwrap();
        assert_eq!(client.to_string(), "client INVITE z9hG4bK74bf9");
        assert_eq!(
            server.to_string(),
            "server INVITE z9hG4bK74bf9 from 10.0.0.1:5060"
        );
    }
}
