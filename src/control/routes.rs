//! The HTTP routes under `/v1`, their request checks and the API's own counters.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::auth::{BearerToken, require_token};
use super::engine::{Engine, TransferRejection};
use super::error::ApiError;
use super::model::{CallRef, TransferId, TransferRequest};
use crate::cdr::Moment;
use crate::metrics::Counter;

/// Largest request body accepted, in bytes. A transfer request is well under 2 KiB.
pub(super) const BODY_LIMIT: usize = 64 * 1024;

/// Longest accepted value of each transfer field, in characters. The values travel in SIP
/// headers to the destination hotline, so they are kept short.
const MAX_DESTINATION_CHARS: usize = 64;
const MAX_MATTER_CHARS: usize = 32;
const MAX_TICKET_CHARS: usize = 64;
const MAX_AGENT_CHARS: usize = 64;
const MAX_NOTE_CHARS: usize = 500;

/// State shared by every handler.
pub(super) struct ApiState {
    pub(super) engine: Arc<dyn Engine>,
    /// `None` when the environment variable was unset: every authenticated route then
    /// responds with 503.
    pub(super) token: Option<BearerToken>,
    /// Name of the environment variable the token comes from, for the 503 message.
    pub(super) token_env: String,
    pub(super) stats: ApiStats,
    /// Becomes true when the shutdown grace period is over and open requests must end.
    pub(super) aborted: watch::Receiver<bool>,
}

/// The control API's own counters, shown by `GET /v1/stats` under `control`.
#[derive(Debug, Default)]
pub(super) struct ApiStats {
    /// Requests to authenticated routes, authorized or not.
    pub(super) requests: Counter,
    /// Requests rejected with 401 or 503 by the token check.
    pub(super) unauthorized: Counter,
    pub(super) transfers_accepted: Counter,
    pub(super) transfers_rejected: Counter,
    pub(super) reloads: Counter,
    pub(super) reloads_failed: Counter,
}

#[derive(Serialize)]
struct ApiStatsView {
    requests: u64,
    unauthorized: u64,
    transfers_accepted: u64,
    transfers_rejected: u64,
    reloads: u64,
    reloads_failed: u64,
}

impl ApiStats {
    fn view(&self) -> ApiStatsView {
        ApiStatsView {
            requests: self.requests.get(),
            unauthorized: self.unauthorized.get(),
            transfers_accepted: self.transfers_accepted.get(),
            transfers_rejected: self.transfers_rejected.get(),
            reloads: self.reloads.get(),
            reloads_failed: self.reloads_failed.get(),
        }
    }
}

/// Builds the router: `/v1/health` open to all, every other route behind the token.
pub(super) fn router(state: Arc<ApiState>) -> Router {
    let authenticated = Router::new()
        .route("/v1/calls", get(list_calls))
        .route("/v1/calls/{call}/transfer", post(start_transfer))
        .route("/v1/transfers/{id}", get(show_transfer))
        .route("/v1/reload", post(reload))
        .route("/v1/stats", get(stats))
        .route("/v1/gateways", get(gateways))
        .route("/v1/route", get(explain_route))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_token,
        ));

    Router::new()
        .route("/v1/health", get(health))
        .merge(authenticated)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            abort_on_shutdown,
        ))
        .with_state(state)
}

/// Middleware that ends a request with 503 once the shutdown grace period is over, so
/// that a stalled engine call cannot hold the server open.
async fn abort_on_shutdown(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut aborted = state.aborted.clone();
    let abort = async move {
        // The sender lives as long as the server, so an error here only follows its end.
        if aborted.wait_for(|aborted| *aborted).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        response = next.run(request) => response,
        () = abort => ApiError::ShuttingDown.into_response(),
    }
}

/// Reports liveness only: responds while the listener runs, without authentication and without
/// asking the engine, so it reveals nothing about calls.
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method,
        path: uri.path().to_owned(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method,
        path: uri.path().to_owned(),
    }
}

async fn list_calls(State(state): State<Arc<ApiState>>) -> Response {
    Json(state.engine.calls().await).into_response()
}

async fn show_transfer(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let transfer = TransferId(id);
    match state.engine.transfer(transfer.clone()).await {
        Some(summary) => Ok(Json(summary).into_response()),
        None => Err(ApiError::UnknownTransfer { transfer }),
    }
}

async fn reload(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    state.stats.reloads.inc();
    match state.engine.reload().await {
        Ok(report) => {
            info!(
                version = %report.version,
                fingerprint = %report.fingerprint,
                "dialplan reloaded"
            );
            Ok(Json(report).into_response())
        }
        Err(problems) => {
            state.stats.reloads_failed.inc();
            warn!(
                problems = problems.len(),
                first = problems.first().map_or("", String::as_str),
                "dialplan reload rejected; the previous plan stays in force"
            );
            Err(ApiError::ReloadFailed { problems })
        }
    }
}

async fn gateways(State(state): State<Arc<ApiState>>) -> Response {
    Json(state.engine.gateways().await).into_response()
}

async fn explain_route(
    State(state): State<Arc<ApiState>>,
    query: Result<
        axum::extract::Query<super::engine::RouteQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let query = match query {
        Ok(axum::extract::Query(query)) => query,
        Err(rejection) => {
            let body = json!({ "error": rejection.body_text(), "code": "invalid_query" });
            return (axum::http::StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    match state.engine.explain(query).await {
        Ok(explanation) => Json(explanation).into_response(),
        Err(message) => {
            let body = json!({ "error": message, "code": "invalid_query" });
            (axum::http::StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

async fn stats(State(state): State<Arc<ApiState>>) -> Response {
    let engine = state.engine.stats().await;
    Json(json!({ "engine": engine, "control": state.stats.view() })).into_response()
}

/// The JSON body of `POST /v1/calls/{call}/transfer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    destination: String,
    #[serde(default)]
    matter: Option<String>,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn start_transfer(
    State(state): State<Arc<ApiState>>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let received = Moment::now();
    let request = parse_transfer(CallRef(call), &headers, body, received)
        .inspect_err(|_| state.stats.transfers_rejected.inc())?;
    let call = request.call.clone();
    let destination = request.destination.clone();

    let summary = match state.engine.start_transfer(request).await {
        Ok(summary) => summary,
        Err(rejection) => {
            state.stats.transfers_rejected.inc();
            if let TransferRejection::Internal { .. } = rejection {
                error!(%call, %destination, error = %rejection, "transfer failed to start");
            } else {
                info!(%call, %destination, reason = %rejection, "transfer rejected");
            }
            return Err(ApiError::Rejected(rejection));
        }
    };

    state.stats.transfers_accepted.inc();
    info!(
        %call,
        transfer = %summary.transfer,
        %destination,
        agent = summary.agent.as_deref().unwrap_or(""),
        "transfer started"
    );
    let location = format!(
        "/v1/transfers/{}",
        percent_encode_segment(summary.transfer.as_str())
    );
    let mut response = (StatusCode::ACCEPTED, Json(summary)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

/// Checks the content type, the JSON and each field, and builds the engine's request.
fn parse_transfer(
    call: CallRef,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    received: Moment,
) -> Result<TransferRequest, ApiError> {
    check_json_content_type(headers)?;
    let body = body.map_err(body_error)?;
    let body: TransferBody =
        serde_json::from_slice(&body).map_err(|error| ApiError::InvalidJson {
            reason: error.to_string(),
        })?;

    let destination = required_field("destination", body.destination, MAX_DESTINATION_CHARS)?;
    Ok(TransferRequest {
        call,
        destination,
        matter: optional_field("matter", body.matter, MAX_MATTER_CHARS)?,
        ticket: optional_field("ticket", body.ticket, MAX_TICKET_CHARS)?,
        note: optional_field("note", body.note, MAX_NOTE_CHARS)?,
        agent: optional_field("agent", body.agent, MAX_AGENT_CHARS)?,
        force: body.force,
        received,
    })
}

/// Accepts `application/json` with any parameters, such as `; charset=utf-8`.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType { found: None });
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType {
            found: Some(text.into_owned()),
        })
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge { limit: BODY_LIMIT }
    } else {
        ApiError::BodyUnreadable {
            reason: rejection.body_text(),
        }
    }
}

fn required_field(field: &'static str, value: String, max: usize) -> Result<String, ApiError> {
    optional_field(field, Some(value), max)?.ok_or(ApiError::InvalidField {
        field,
        reason: "must not be empty".to_owned(),
    })
}

/// Trims the value; an empty value counts as absent, because web forms send `""` for an
/// untouched field.
fn optional_field(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let chars = value.chars().count();
    if chars > max {
        let reason = format!("must be at most {max} characters, found {chars}");
        return Err(ApiError::InvalidField { field, reason });
    }
    if value.chars().any(char::is_control) {
        let reason = "must not contain control characters such as CR or LF".to_owned();
        return Err(ApiError::InvalidField { field, reason });
    }
    Ok(Some(value.to_owned()))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment.
fn percent_encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_field_trims_and_empties() {
        let value = optional_field("matter", Some("  SB01 ".to_owned()), 8);
        assert_eq!(value.expect("valid"), Some("SB01".to_owned()));
        let value = optional_field("matter", Some("   ".to_owned()), 8);
        assert_eq!(value.expect("valid"), None);
        assert_eq!(optional_field("matter", None, 8).expect("valid"), None);
    }

    #[test]
    fn optional_field_counts_characters() {
        // Four Chinese characters are twelve bytes but four characters.
        let value = optional_field("note", Some("医保报销".to_owned()), 4);
        assert_eq!(value.expect("valid"), Some("医保报销".to_owned()));
        let error = optional_field("note", Some("医保报销了".to_owned()), 4).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid note: must be at most 4 characters, found 5"
        );
    }

    #[test]
    fn optional_field_rejects_line_breaks() {
        let error = optional_field("ticket", Some("BJ1\r\nX: y".to_owned()), 64).unwrap_err();
        assert!(matches!(
            error,
            ApiError::InvalidField {
                field: "ticket",
                ..
            }
        ));
    }

    #[test]
    fn content_type_accepts_parameters() {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_static("Application/JSON; charset=utf-8");
        headers.insert(CONTENT_TYPE, value);
        assert!(check_json_content_type(&headers).is_ok());
    }

    #[test]
    fn location_segment_is_encoded() {
        assert_eq!(percent_encode_segment("t-1.a_b~"), "t-1.a_b~");
        assert_eq!(percent_encode_segment("a/b c"), "a%2Fb%20c");
    }
}
