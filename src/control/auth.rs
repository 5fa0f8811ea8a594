//! Bearer-token authentication (RFC 6750 §2.1) for every route except the health check.
//!
//! The token comes from an environment variable named in the configuration, never from
//! the file itself. Without a token every authenticated route responds with 503, so an engine
//! started without one is visibly unusable instead of silently open.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tracing::warn;

use super::error::ApiError;
use super::routes::ApiState;

/// Tokens shorter than this are accepted but logged at warn at startup.
pub(super) const MIN_TOKEN_BYTES: usize = 16;

/// The shared secret that clients send as `Authorization: Bearer <token>`. Its `Debug`
/// output never shows the value.
#[derive(Clone)]
pub struct BearerToken(Arc<[u8]>);

impl BearerToken {
    /// Wraps `token`, or returns `None` when it is empty.
    pub fn new(token: &str) -> Option<BearerToken> {
        if token.is_empty() {
            return None;
        }
        Some(BearerToken(Arc::from(token.as_bytes())))
    }

    /// Reads the token from the environment variable `name`. Returns `None` when the
    /// variable is unset, empty or not valid Unicode.
    pub fn from_env(name: &str) -> Option<BearerToken> {
        let value = std::env::var(name).ok()?;
        BearerToken::new(&value)
    }

    /// Length of the token in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false, because [`BearerToken::new`] rejects empty tokens.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares in time that depends only on the lengths, not on where the bytes differ.
    fn matches(&self, presented: &[u8]) -> bool {
        self.0.ct_eq(presented).into()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Middleware that lets a request through only with the right bearer token.
pub(super) async fn require_token(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    state.stats.requests.inc();
    let error = match check(&state, request.headers()) {
        Ok(()) => return next.run(request).await,
        Err(error) => error,
    };

    state.stats.unauthorized.inc();
    let rejected = state.stats.unauthorized.get();
    // The missing-token case at startup is logged once by the server instead. Counts that
    // are powers of two keep a scanner from flooding the log.
    let bad_credentials = matches!(error, ApiError::MissingToken | ApiError::InvalidToken);
    if bad_credentials && rejected.is_power_of_two() {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.to_string());
        warn!(
            peer = peer.as_deref().unwrap_or("unknown"),
            path = request.uri().path(),
            %error,
            rejected,
            "control API request without valid token"
        );
    }
    error.into_response()
}

fn check(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.token else {
        return Err(ApiError::TokenNotConfigured {
            variable: state.token_env.clone(),
        });
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| bearer_credentials(value.as_bytes()))
        .ok_or(ApiError::MissingToken)?;
    if token.matches(presented) {
        Ok(())
    } else {
        Err(ApiError::InvalidToken)
    }
}

/// Returns the credentials of a `Bearer` authorization value. The scheme name is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let credentials = value[SCHEME.len()..].trim_ascii();
    (!credentials.is_empty()).then_some(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_credentials(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_credentials(b"bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_credentials(b"BEARER  abc "), Some(&b"abc"[..]));
    }

    #[test]
    fn bearer_rejects_other_schemes() {
        assert_eq!(bearer_credentials(b"Basic YWxhZGRpbjpvcGVu"), None);
        assert_eq!(bearer_credentials(b"Bearer"), None);
        assert_eq!(bearer_credentials(b"Bearer "), None);
        assert_eq!(bearer_credentials(b"Bearer    "), None);
        assert_eq!(bearer_credentials(b""), None);
    }

    #[test]
    fn token_matches_exactly() {
        let token = BearerToken::new("s3cret-token").expect("not empty");
        assert!(token.matches(b"s3cret-token"));
        assert!(!token.matches(b"s3cret-tokem"));
        assert!(!token.matches(b"s3cret-token2"));
        assert!(!token.matches(b"s3cret"));
        assert!(!token.matches(b""));
    }

    #[test]
    fn empty_token_is_none() {
        assert!(BearerToken::new("").is_none());
    }

    #[test]
    fn debug_hides_token() {
        let token = BearerToken::new("s3cret-token").expect("not empty");
        assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
    }
}
