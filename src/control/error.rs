//! Every failure an API request can meet, and the one function that turns each into its
//! HTTP status and JSON body.
//!
//! Error bodies are `{"error": "<message>", "code": "<stable name>", ...}`, with extra
//! fields that carry the values involved (`scope`, `transfer`, `problems`, ...). Clients
//! should branch on `code`, whose values do not change between releases, and show
//! `error` to people.

use axum::Json;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::engine::TransferRejection;
use super::model::TransferId;

/// Realm sent in `WWW-Authenticate` challenges (RFC 6750 §3).
const CHALLENGE: &str = "Bearer realm=\"hotline-control\"";
const CHALLENGE_INVALID: &str = "Bearer realm=\"hotline-control\", error=\"invalid_token\"";

/// A failure of an API request.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    #[error("control token not configured: set {variable}")]
    TokenNotConfigured { variable: String },
    #[error("missing bearer token: send Authorization: Bearer <token>")]
    MissingToken,
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("no route for {method} {path}")]
    NoRoute { method: Method, path: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: Method, path: String },
    #[error("Content-Type must be application/json, found {}", found.as_deref().unwrap_or("none"))]
    UnsupportedMediaType { found: Option<String> },
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("failed to read the request body: {reason}")]
    BodyUnreadable { reason: String },
    #[error("invalid JSON body: {reason}")]
    InvalidJson { reason: String },
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error(transparent)]
    Rejected(TransferRejection),
    #[error("no transfer {transfer}")]
    UnknownTransfer { transfer: TransferId },
    #[error("the control API is shutting down")]
    ShuttingDown,
    #[error("dialplan not reloaded because it has {} problem(s); the previous plan stays in force", problems.len())]
    ReloadFailed { problems: Vec<String> },
}

impl ApiError {
    /// Maps each failure to its HTTP status, stable code and extra body fields.
    fn parts(&self) -> (StatusCode, &'static str, Map<String, Value>) {
        let mut extra = Map::new();
        let (status, code) = match self {
            ApiError::TokenNotConfigured { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "token_not_configured")
            }
            ApiError::MissingToken => (StatusCode::UNAUTHORIZED, "missing_token"),
            ApiError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            ApiError::NoRoute { .. } => (StatusCode::NOT_FOUND, "no_route"),
            ApiError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            ApiError::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::BodyUnreadable { .. } => (StatusCode::BAD_REQUEST, "body_unreadable"),
            ApiError::InvalidJson { .. } => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::InvalidField { field, .. } => {
                extra.insert("field".to_owned(), json!(field));
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
            }
            ApiError::Rejected(rejection) => rejection_parts(rejection, &mut extra),
            ApiError::UnknownTransfer { transfer } => {
                extra.insert("transfer".to_owned(), json!(transfer));
                (StatusCode::NOT_FOUND, "unknown_transfer")
            }
            ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            ApiError::ReloadFailed { problems } => {
                extra.insert("problems".to_owned(), json!(problems));
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_dialplan")
            }
        };
        (status, code, extra)
    }
}

fn rejection_parts(
    rejection: &TransferRejection,
    extra: &mut Map<String, Value>,
) -> (StatusCode, &'static str) {
    match rejection {
        TransferRejection::UnknownCall { call } => {
            extra.insert("call".to_owned(), json!(call));
            (StatusCode::NOT_FOUND, "unknown_call")
        }
        TransferRejection::UnknownDestination { destination, known } => {
            extra.insert("destination".to_owned(), json!(destination));
            extra.insert("known".to_owned(), json!(known));
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_destination")
        }
        TransferRejection::UnknownMatter { matter } => {
            extra.insert("matter".to_owned(), json!(matter));
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_matter")
        }
        TransferRejection::MatterNotAccepted {
            destination,
            matter,
            scope,
        } => {
            extra.insert("destination".to_owned(), json!(destination));
            extra.insert("matter".to_owned(), json!(matter));
            extra.insert("scope".to_owned(), json!(scope));
            (StatusCode::CONFLICT, "matter_not_accepted")
        }
        TransferRejection::InProgress { call, transfer } => {
            extra.insert("call".to_owned(), json!(call));
            extra.insert("transfer".to_owned(), json!(transfer));
            (StatusCode::CONFLICT, "transfer_in_progress")
        }
        TransferRejection::NotTransferable { call, state } => {
            extra.insert("call".to_owned(), json!(call));
            extra.insert("state".to_owned(), json!(state));
            (StatusCode::CONFLICT, "not_transferable")
        }
        TransferRejection::NoGateway {
            destination,
            reason,
        } => {
            extra.insert("destination".to_owned(), json!(destination));
            extra.insert("reason".to_owned(), json!(reason));
            (StatusCode::SERVICE_UNAVAILABLE, "no_gateway")
        }
        TransferRejection::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
        TransferRejection::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, mut body) = self.parts();
        body.insert("error".to_owned(), json!(self.to_string()));
        body.insert("code".to_owned(), json!(code));
        let mut response = (status, Json(Value::Object(body))).into_response();

        let headers = response.headers_mut();
        match self {
            ApiError::MissingToken => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
            }
            ApiError::InvalidToken => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE_INVALID),
                );
            }
            _ => {}
        }
        response
    }
}
