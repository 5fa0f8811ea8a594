//! The control API over real HTTP on loopback, against a mock engine: every route, every
//! error status and body, bearer-token authentication and graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotline_b2bua::cdr::{Moment, TriggerKind};
use hotline_b2bua::config::ControlConfig;
use hotline_b2bua::control::{
    BearerToken, CallRef, CallState, CallSummary, ControlError, ControlServer, Engine,
    EngineFuture, EngineStats, LegRole, LegState, LegSummary, ReloadReport, TransferId,
    TransferRejection, TransferRequest, TransferStatus, TransferSummary, serve,
};
use reqwest::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// A variable no test environment sets.
const UNSET_VARIABLE: &str = "HOTLINE_CONTROL_TEST_UNSET_TOKEN_VARIABLE";
const TALKING_CALL: &str = "a84b4c76e66710@switch.example";
const RINGING_CALL: &str = "ring-1@switch.example";
const BUSY_CALL: &str = "busy-1@switch.example";
/// Started on 2024-05-01T08:30:00.123456Z.
const STARTED_SECS: u64 = 1_714_552_200;
const STARTED_NANOS: u32 = 123_456_000;

/// An engine with three calls: one talking, one ringing and one with a transfer already in
/// progress. Its dialplan has the destinations `beijing` (which does not accept matter `JY01`)
/// and `xiongan`.
struct MockEngine {
    calls: Vec<CallSummary>,
    transfers: Mutex<HashMap<TransferId, TransferSummary>>,
    requests: Mutex<Vec<TransferRequest>>,
    next_transfer: AtomicU64,
    draining: AtomicBool,
    fail_internally: AtomicBool,
    reload_problems: Mutex<Option<Vec<String>>>,
    /// Makes `calls()` never complete, after signalling `calls_entered`.
    stall_calls: AtomicBool,
    calls_entered: Notify,
}

fn started_at() -> SystemTime {
    UNIX_EPOCH + Duration::new(STARTED_SECS, STARTED_NANOS)
}

fn leg(role: LegRole, call_id: &str, peer: &str, state: LegState) -> LegSummary {
    LegSummary {
        leg: role,
        call_id: call_id.to_owned(),
        peer: peer.parse().expect("peer address"),
        state,
    }
}

fn call(call: &str, state: CallState, legs: Vec<LegSummary>) -> CallSummary {
    CallSummary {
        call: CallRef(call.to_owned()),
        caller: "+8613800138000".to_owned(),
        state,
        started_at: started_at(),
        legs,
        transfer: None,
    }
}

fn transfer_summary(id: &str, request: &TransferRequest) -> TransferSummary {
    TransferSummary {
        transfer: TransferId(id.to_owned()),
        call: request.call.clone(),
        destination: request.destination.clone(),
        matter: request.matter.clone(),
        ticket: request.ticket.clone(),
        agent: request.agent.clone(),
        trigger: TriggerKind::Http,
        status: TransferStatus::Trying,
        cause: None,
        sip_status: None,
        started_at: started_at(),
        ringing_at: None,
        answered_at: None,
        bridged_at: None,
        ended_at: None,
    }
}

impl MockEngine {
    fn new() -> Arc<MockEngine> {
        let talking = call(
            TALKING_CALL,
            CallState::Talking,
            vec![
                leg(
                    LegRole::A,
                    TALKING_CALL,
                    "127.0.0.1:5062",
                    LegState::Confirmed,
                ),
                leg(
                    LegRole::B,
                    "b-1@hotline",
                    "127.0.0.1:5070",
                    LegState::Confirmed,
                ),
            ],
        );
        let ringing = call(
            RINGING_CALL,
            CallState::Ringing,
            vec![
                leg(LegRole::A, RINGING_CALL, "127.0.0.1:5062", LegState::Early),
                leg(LegRole::B, "b-2@hotline", "127.0.0.1:5070", LegState::Early),
            ],
        );
        let mut busy = call(BUSY_CALL, CallState::Transferring, Vec::new());
        let existing = TransferSummary {
            status: TransferStatus::Ringing,
            ringing_at: Some(started_at() + Duration::from_millis(40)),
            ..transfer_summary(
                "t-busy",
                &request_for(BUSY_CALL, "beijing", Some("SB01"), false),
            )
        };
        busy.transfer = Some(existing.clone());

        Arc::new(MockEngine {
            calls: vec![talking, ringing, busy],
            transfers: Mutex::new(HashMap::from([(existing.transfer.clone(), existing)])),
            requests: Mutex::new(Vec::new()),
            next_transfer: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            fail_internally: AtomicBool::new(false),
            reload_problems: Mutex::new(None),
            stall_calls: AtomicBool::new(false),
            calls_entered: Notify::new(),
        })
    }

    fn decide(&self, request: &TransferRequest) -> Result<TransferSummary, TransferRejection> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(TransferRejection::Draining);
        }
        if self.fail_internally.load(Ordering::Relaxed) {
            return Err(TransferRejection::Internal {
                reason: "call task ended".to_owned(),
            });
        }
        let Some(call) = self.calls.iter().find(|call| call.call == request.call) else {
            return Err(TransferRejection::UnknownCall {
                call: request.call.clone(),
            });
        };
        if let Some(transfer) = &call.transfer {
            return Err(TransferRejection::InProgress {
                call: call.call.clone(),
                transfer: transfer.transfer.clone(),
            });
        }
        if call.state != CallState::Talking {
            return Err(TransferRejection::NotTransferable {
                call: call.call.clone(),
                state: call.state,
            });
        }
        if !["beijing", "xiongan"].contains(&request.destination.as_str()) {
            return Err(TransferRejection::UnknownDestination {
                destination: request.destination.clone(),
                known: vec!["beijing".to_owned(), "xiongan".to_owned()],
            });
        }
        let matter = request.matter.as_deref();
        if request.destination == "beijing" && matter == Some("JY01") && !request.force {
            return Err(TransferRejection::MatterNotAccepted {
                destination: "beijing".to_owned(),
                matter: "JY01".to_owned(),
                scope: "北京市属学校的招生与学籍".to_owned(),
            });
        }

        let number = self.next_transfer.fetch_add(1, Ordering::Relaxed);
        Ok(transfer_summary(&format!("t-{number}"), request))
    }
}

impl Engine for MockEngine {
    fn calls(&self) -> EngineFuture<'_, Vec<CallSummary>> {
        Box::pin(async move {
            if self.stall_calls.load(Ordering::Relaxed) {
                self.calls_entered.notify_one();
                std::future::pending::<()>().await;
            }
            self.calls.clone()
        })
    }

    fn start_transfer(
        &self,
        request: TransferRequest,
    ) -> EngineFuture<'_, Result<TransferSummary, TransferRejection>> {
        Box::pin(async move {
            let result = self.decide(&request);
            if let Ok(summary) = &result {
                let mut transfers = self.transfers.lock().expect("lock");
                transfers.insert(summary.transfer.clone(), summary.clone());
            }
            self.requests.lock().expect("lock").push(request);
            result
        })
    }

    fn transfer(&self, id: TransferId) -> EngineFuture<'_, Option<TransferSummary>> {
        Box::pin(async move { self.transfers.lock().expect("lock").get(&id).cloned() })
    }

    fn reload(&self) -> EngineFuture<'_, Result<ReloadReport, Vec<String>>> {
        Box::pin(async move {
            match self.reload_problems.lock().expect("lock").clone() {
                Some(problems) => Err(problems),
                None => Ok(ReloadReport {
                    version: "2024.05".to_owned(),
                    fingerprint: "sha256:9f86d081884c7d65".to_owned(),
                    destinations: 14,
                    matters: 14,
                }),
            }
        })
    }

    fn stats(&self) -> EngineFuture<'_, EngineStats> {
        Box::pin(async move {
            EngineStats {
                active_calls: self.calls.len() as u64,
                draining: self.draining.load(Ordering::Relaxed),
                transfers_active: 1,
                transfers_started: 5,
                transfers_bridged: 3,
                transfers_failed: 1,
                plan_version: Some("2024.05".to_owned()),
                ..EngineStats::default()
            }
        })
    }
}

fn request_for(
    call: &str,
    destination: &str,
    matter: Option<&str>,
    force: bool,
) -> TransferRequest {
    TransferRequest {
        call: CallRef(call.to_owned()),
        destination: destination.to_owned(),
        matter: matter.map(str::to_owned),
        ticket: None,
        note: None,
        agent: None,
        force,
        received: Moment::now(),
    }
}

/// A control API serving `engine` on a loopback port, stopped when dropped.
struct Api {
    base: String,
    client: Client,
    engine: Arc<MockEngine>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ControlError>>>,
}

fn loopback_config() -> ControlConfig {
    ControlConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ControlConfig::default()
    }
}

impl Api {
    async fn start(token: Option<BearerToken>) -> Api {
        let engine = MockEngine::new();
        let server = ControlServer::bind(&loopback_config(), token)
            .await
            .expect("bind control API");
        let address = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let dyn_engine: Arc<dyn Engine> = engine.clone();
        let task = tokio::spawn(server.run(dyn_engine, shutdown));
        Api {
            base: format!("http://{address}"),
            client: Client::new(),
            engine,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn with_token() -> Api {
        Api::start(BearerToken::new(TOKEN)).await
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    fn transfer(&self, call: &str, body: Value) -> RequestBuilder {
        self.post(&format!("/v1/calls/{}/transfer", encode(call)))
            .json(&body)
    }

    async fn shut_down(mut self) -> Result<(), ControlError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("task");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("server stops in time")
            .expect("server task")
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Percent-encodes a path segment the way clients must encode a Call-ID.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Sends `request` and returns the status and the JSON body.
async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("send request");
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    assert_eq!(
        content_type.as_ref().and_then(|value| value.to_str().ok()),
        Some("application/json"),
        "content type of a {status} response"
    );
    let body = response.json::<Value>().await.expect("JSON body");
    (status, body)
}

fn transfer_body() -> Value {
    json!({
        "destination": "beijing",
        "matter": "SB01",
        "ticket": "TJ20240501000123",
        "note": "医保异地报销进度",
        "agent": "1001",
    })
}

#[tokio::test]
async fn health_needs_no_token() {
    let api = Api::start(None).await;
    let request = api.client.get(format!("{}/v1/health", api.base));
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok" }));
}

#[tokio::test]
async fn calls_lists_legs_and_transfer() {
    let api = Api::with_token().await;
    let (status, body) = send(api.get("/v1/calls")).await;
    assert_eq!(status, StatusCode::OK);

    let calls = body.as_array().expect("array of calls");
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0],
        json!({
            "call": TALKING_CALL,
            "caller": "+8613800138000",
            "state": "talking",
            "started_at": "2024-05-01T08:30:00.123456Z",
            "legs": [
                { "leg": "a", "call_id": TALKING_CALL, "peer": "127.0.0.1:5062",
                  "state": "confirmed" },
                { "leg": "b", "call_id": "b-1@hotline", "peer": "127.0.0.1:5070",
                  "state": "confirmed" },
            ],
            "transfer": null,
        })
    );
    assert_eq!(calls[1]["state"], "ringing");
    assert_eq!(calls[2]["state"], "transferring");
    assert_eq!(calls[2]["transfer"]["transfer"], "t-busy");
    assert_eq!(calls[2]["transfer"]["status"], "ringing");
    assert_eq!(
        calls[2]["transfer"]["ringing_at"],
        "2024-05-01T08:30:00.163456Z"
    );
}

#[tokio::test]
async fn calls_parse_back_into_summaries() {
    let api = Api::with_token().await;
    let response = api.get("/v1/calls").send().await.expect("send");
    let calls: Vec<CallSummary> = response.json().await.expect("summaries");
    assert_eq!(calls, api.engine.calls);
}

#[tokio::test]
async fn auth_missing_token_is_401() {
    let api = Api::with_token().await;
    for path in ["/v1/calls", "/v1/stats", "/v1/transfers/t-busy"] {
        let request = api.client.get(format!("{}{path}", api.base));
        let response = request.send().await.expect("send");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            response.headers().get(WWW_AUTHENTICATE).expect("challenge"),
            "Bearer realm=\"hotline-control\"",
            "{path}"
        );
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(body["code"], "missing_token", "{path}");
        assert_eq!(
            body["error"], "missing bearer token: send Authorization: Bearer <token>",
            "{path}"
        );
    }
}

#[tokio::test]
async fn auth_wrong_token_is_401() {
    let api = Api::with_token().await;
    let wrong_tokens = [
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[1..]),
        "Bearer 0123456789abcdef0123456789abcdeF".to_owned(),
    ];
    for value in wrong_tokens {
        let request = api
            .client
            .get(format!("{}/v1/calls", api.base))
            .header(AUTHORIZATION, &value);
        let response = request.send().await.expect("send");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(
            response.headers().get(WWW_AUTHENTICATE).expect("challenge"),
            "Bearer realm=\"hotline-control\", error=\"invalid_token\""
        );
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(
            body,
            json!({ "error": "invalid bearer token", "code": "invalid_token" })
        );
    }
}

#[tokio::test]
async fn auth_other_scheme_is_401() {
    let api = Api::with_token().await;
    let request = api
        .client
        .get(format!("{}/v1/calls", api.base))
        .basic_auth("admin", Some(TOKEN));
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "missing_token");
}

#[tokio::test]
async fn auth_accepts_lowercase_scheme() {
    let api = Api::with_token().await;
    let request = api
        .client
        .get(format!("{}/v1/calls", api.base))
        .header(AUTHORIZATION, format!("bearer {TOKEN}"));
    let response = request.send().await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn auth_unset_variable_is_503() {
    let token = BearerToken::from_env(UNSET_VARIABLE);
    assert!(token.is_none());
    let api = Api::start(token).await;

    let requests = [
        api.get("/v1/calls"),
        api.get("/v1/stats"),
        api.get("/v1/transfers/t-busy"),
        api.post("/v1/reload"),
        api.transfer(TALKING_CALL, transfer_body()),
    ];
    for request in requests {
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            json!({
                "error": "control token not configured: set HOTLINE_CONTROL_TOKEN",
                "code": "token_not_configured",
            })
        );
    }
    assert!(api.engine.requests.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn transfer_accepted_is_202() {
    let api = Api::with_token().await;
    let body = json!({
        "destination": " beijing ",
        "matter": "SB01",
        "ticket": "TJ20240501000123",
        "note": "医保异地报销进度",
        "agent": "1001",
        "force": false,
    });
    let response = api.transfer(TALKING_CALL, body).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers().get(LOCATION).expect("Location"),
        "/v1/transfers/t-1"
    );
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(
        body,
        json!({
            "transfer": "t-1",
            "call": TALKING_CALL,
            "destination": "beijing",
            "matter": "SB01",
            "ticket": "TJ20240501000123",
            "agent": "1001",
            "trigger": "http",
            "status": "trying",
            "cause": null,
            "sip_status": null,
            "started_at": "2024-05-01T08:30:00.123456Z",
            "ringing_at": null,
            "answered_at": null,
            "bridged_at": null,
            "ended_at": null,
        })
    );

    let requests = api.engine.requests.lock().expect("lock");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.call, CallRef(TALKING_CALL.to_owned()));
    assert_eq!(request.destination, "beijing");
    assert_eq!(request.note.as_deref(), Some("医保异地报销进度"));
    assert!(!request.force);
    let age = SystemTime::now()
        .duration_since(request.received.wall)
        .expect("received in the past");
    assert!(age < Duration::from_secs(10));
}

#[tokio::test]
async fn transfer_optional_fields_may_be_empty() {
    let api = Api::with_token().await;
    let body = json!({ "destination": "xiongan", "matter": "", "note": "  " });
    let (status, body) = send(api.transfer(TALKING_CALL, body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["matter"], Value::Null);

    let requests = api.engine.requests.lock().expect("lock");
    assert_eq!(requests[0].matter, None);
    assert_eq!(requests[0].note, None);
    assert_eq!(requests[0].ticket, None);
}

#[tokio::test]
async fn transfer_unknown_call_is_404() {
    let api = Api::with_token().await;
    let (status, body) = send(api.transfer("gone/1@switch", transfer_body())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({
            "error": "no active call gone/1@switch",
            "code": "unknown_call",
            "call": "gone/1@switch",
        })
    );
}

#[tokio::test]
async fn transfer_unknown_destination_is_422() {
    let api = Api::with_token().await;
    let body = json!({ "destination": "shanghai" });
    let (status, body) = send(api.transfer(TALKING_CALL, body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({
            "error": "unknown destination \"shanghai\"; known destinations: beijing, xiongan",
            "code": "unknown_destination",
            "destination": "shanghai",
            "known": ["beijing", "xiongan"],
        })
    );
}

#[tokio::test]
async fn transfer_matter_out_of_scope_is_409() {
    let api = Api::with_token().await;
    let body = json!({ "destination": "beijing", "matter": "JY01" });
    let (status, body) = send(api.transfer(TALKING_CALL, body)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({
            "error": "beijing does not accept matter JY01; it accepts: 北京市属学校的招生与学籍",
            "code": "matter_not_accepted",
            "destination": "beijing",
            "matter": "JY01",
            "scope": "北京市属学校的招生与学籍",
        })
    );
}

#[tokio::test]
async fn transfer_force_skips_scope() {
    let api = Api::with_token().await;
    let body = json!({ "destination": "beijing", "matter": "JY01", "force": true });
    let (status, body) = send(api.transfer(TALKING_CALL, body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["matter"], "JY01");
    assert!(api.engine.requests.lock().expect("lock")[0].force);
}

#[tokio::test]
async fn transfer_in_progress_is_409() {
    let api = Api::with_token().await;
    let (status, body) = send(api.transfer(BUSY_CALL, transfer_body())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({
            "error": "call busy-1@switch.example already has transfer t-busy in progress",
            "code": "transfer_in_progress",
            "call": BUSY_CALL,
            "transfer": "t-busy",
        })
    );
}

#[tokio::test]
async fn transfer_ringing_call_is_409() {
    let api = Api::with_token().await;
    let (status, body) = send(api.transfer(RINGING_CALL, transfer_body())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({
            "error": "call ring-1@switch.example cannot be transferred while ringing",
            "code": "not_transferable",
            "call": RINGING_CALL,
            "state": "ringing",
        })
    );
}

#[tokio::test]
async fn transfer_while_draining_is_503() {
    let api = Api::with_token().await;
    api.engine.draining.store(true, Ordering::Relaxed);
    let (status, body) = send(api.transfer(TALKING_CALL, transfer_body())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({
            "error": "the engine is shutting down and starts no new transfers",
            "code": "draining",
        })
    );
}

#[tokio::test]
async fn transfer_engine_failure_is_500() {
    let api = Api::with_token().await;
    api.engine.fail_internally.store(true, Ordering::Relaxed);
    let (status, body) = send(api.transfer(TALKING_CALL, transfer_body())).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "internal");
    assert_eq!(
        body["error"],
        "the engine failed to start the transfer: call task ended"
    );
}

#[tokio::test]
async fn transfer_malformed_json_is_400() {
    let api = Api::with_token().await;
    let request = api
        .post(&format!("/v1/calls/{}/transfer", encode(TALKING_CALL)))
        .header(CONTENT_TYPE, "application/json")
        .body("{\"destination\": \"beijing\",");
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_json");
    assert_eq!(
        body["error"],
        "invalid JSON body: EOF while parsing a value at line 1 column 26"
    );
    assert!(api.engine.requests.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn transfer_wrong_shape_is_400() {
    let api = Api::with_token().await;
    let cases = [
        (
            json!({ "matter": "SB01" }),
            "invalid JSON body: missing field `destination` at line 1 column 17",
        ),
        (
            json!({ "destination": "beijing", "forse": true }),
            "invalid JSON body: unknown field `forse`, expected one of `destination`, \
             `matter`, `ticket`, `note`, `agent`, `force` at line 1 column 32",
        ),
        (
            json!({ "destination": 10 }),
            "invalid JSON body: invalid type: integer `10`, expected a string at line 1 \
             column 17",
        ),
        (
            json!({ "destination": "beijing", "force": "yes" }),
            "invalid JSON body: invalid type: string \"yes\", expected a boolean at line 1 \
             column 38",
        ),
    ];
    for (body, message) in cases {
        let (status, body) = send(api.transfer(TALKING_CALL, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
        assert_eq!(body["code"], "invalid_json");
        assert_eq!(body["error"], message);
    }
}

#[tokio::test]
async fn transfer_invalid_field_is_422() {
    let api = Api::with_token().await;
    let cases = [
        (
            json!({ "destination": "  " }),
            "destination",
            "must not be empty",
        ),
        (
            json!({ "destination": "beijing", "ticket": "BJ1\r\nX-Evil: 1" }),
            "ticket",
            "must not contain control characters such as CR or LF",
        ),
        (
            json!({ "destination": "beijing", "note": "长".repeat(501) }),
            "note",
            "must be at most 500 characters, found 501",
        ),
    ];
    for (body, field, reason) in cases {
        let (status, body) = send(api.transfer(TALKING_CALL, body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(
            body,
            json!({
                "error": format!("invalid {field}: {reason}"),
                "code": "invalid_field",
                "field": field,
            })
        );
    }
    assert!(api.engine.requests.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn transfer_wrong_content_type_is_415() {
    let api = Api::with_token().await;
    let path = format!("/v1/calls/{}/transfer", encode(TALKING_CALL));
    let text = transfer_body().to_string();

    let request = api
        .post(&path)
        .header(CONTENT_TYPE, "text/plain")
        .body(text.clone());
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        body,
        json!({
            "error": "Content-Type must be application/json, found text/plain",
            "code": "unsupported_media_type",
        })
    );

    let (status, body) = send(api.post(&path).body(text)).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        body["error"],
        "Content-Type must be application/json, found none"
    );
}

#[tokio::test]
async fn transfer_charset_parameter_is_accepted() {
    let api = Api::with_token().await;
    let request = api
        .post(&format!("/v1/calls/{}/transfer", encode(TALKING_CALL)))
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body(transfer_body().to_string());
    let (status, _) = send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn transfer_large_body_is_413() {
    let api = Api::with_token().await;
    let note = "x".repeat(70 * 1024);
    let body = json!({ "destination": "beijing", "note": note });
    let (status, body) = send(api.transfer(TALKING_CALL, body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        json!({
            "error": "request body larger than 65536 bytes",
            "code": "body_too_large",
        })
    );
}

#[tokio::test]
async fn transfer_status_after_start() {
    let api = Api::with_token().await;
    let (status, started) = send(api.transfer(TALKING_CALL, transfer_body())).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let (status, body) = send(api.get("/v1/transfers/t-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, started);

    let (status, body) = send(api.get("/v1/transfers/t-busy")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ringing");
    assert_eq!(body["call"], BUSY_CALL);
}

#[tokio::test]
async fn transfer_unknown_id_is_404() {
    let api = Api::with_token().await;
    let (status, body) = send(api.get("/v1/transfers/t-404")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({
            "error": "no transfer t-404",
            "code": "unknown_transfer",
            "transfer": "t-404",
        })
    );
}

#[tokio::test]
async fn reload_returns_report() {
    let api = Api::with_token().await;
    let (status, body) = send(api.post("/v1/reload")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "version": "2024.05",
            "fingerprint": "sha256:9f86d081884c7d65",
            "destinations": 14,
            "matters": 14,
        })
    );
}

#[tokio::test]
async fn reload_problems_are_422() {
    let api = Api::with_token().await;
    let problems = vec![
        "dialplan.toml:12:9: destination `beijing` has no gateway".to_owned(),
        "dialplan.toml:30:1: unknown key `scop` in [matters.SB01]".to_owned(),
    ];
    *api.engine.reload_problems.lock().expect("lock") = Some(problems.clone());

    let (status, body) = send(api.post("/v1/reload")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({
            "error": "dialplan not reloaded because it has 2 problem(s); the previous plan \
                      stays in force",
            "code": "invalid_dialplan",
            "problems": problems,
        })
    );
}

#[tokio::test]
async fn stats_combine_engine_and_api() {
    let api = Api::with_token().await;
    let unauthorized = api.client.get(format!("{}/v1/calls", api.base));
    let _ = unauthorized.send().await.expect("send");
    let (status, _) = send(api.transfer(TALKING_CALL, transfer_body())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = send(api.transfer("nobody", transfer_body())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(api.post("/v1/reload")).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = send(api.get("/v1/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "engine": {
                "active_calls": 3,
                "draining": false,
                "transfers_active": 1,
                "transfers_started": 5,
                "transfers_bridged": 3,
                "transfers_failed": 1,
                "transfers_recalled": 0,
                "transfers_cancelled": 0,
                "plan_version": "2024.05",
                "records_dropped": 0,
            },
            "control": {
                "requests": 5,
                "unauthorized": 1,
                "transfers_accepted": 1,
                "transfers_rejected": 1,
                "reloads": 1,
                "reloads_failed": 0,
            },
        })
    );
}

#[tokio::test]
async fn unknown_route_is_404() {
    let api = Api::with_token().await;
    let (status, body) = send(api.get("/v2/calls")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "error": "no route for GET /v2/calls", "code": "no_route" })
    );
}

#[tokio::test]
async fn wrong_method_is_405() {
    let api = Api::with_token().await;
    let response = api.post("/v1/calls").send().await.expect("send");
    assert_eq!(
        response
            .headers()
            .get(ALLOW)
            .map(|v| v.to_str().unwrap_or("")),
        Some("GET,HEAD")
    );

    let (status, body) = send(api.post("/v1/calls")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        body,
        json!({
            "error": "method POST is not allowed on /v1/calls",
            "code": "method_not_allowed",
        })
    );

    let (status, body) = send(api.get("/v1/reload")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");

    // Without a token the method check comes first; the route gives nothing away.
    let request = api.client.delete(format!("{}/v1/calls", api.base));
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn shutdown_stops_server() {
    let api = Api::with_token().await;
    let address = api.base.clone();
    let (status, _) = send(api.get("/v1/calls")).await;
    assert_eq!(status, StatusCode::OK);

    api.shut_down().await.expect("clean stop");
    let after = Client::new()
        .get(format!("{address}/v1/health"))
        .send()
        .await;
    assert!(after.is_err(), "server still answers after shutdown");
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_stalled_requests() {
    let api = Api::with_token().await;
    api.engine.stall_calls.store(true, Ordering::Relaxed);
    let stalled = tokio::spawn(api.get("/v1/calls").send());
    api.engine.calls_entered.notified().await;

    let stopping = tokio::time::Instant::now();
    api.shut_down().await.expect("clean stop");
    let waited = stopping.elapsed();
    assert!(waited >= Duration::from_secs(5), "stopped after {waited:?}");
    assert!(waited < Duration::from_secs(6), "stopped after {waited:?}");

    let response = stalled.await.expect("request task").expect("response");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(
        body,
        json!({ "error": "the control API is shutting down", "code": "shutting_down" })
    );
}

#[tokio::test]
async fn bind_rejects_remote_address() {
    let config = ControlConfig {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        ..ControlConfig::default()
    };
    let error = ControlServer::bind(&config, BearerToken::new(TOKEN))
        .await
        .unwrap_err();
    assert!(matches!(error, ControlError::NotLoopback { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "control.listen 0.0.0.0:0 is not a loopback address; set control.allow_remote = \
         true to serve other hosts"
    );
}

#[tokio::test]
async fn serve_disabled_waits_for_shutdown() {
    let config = ControlConfig {
        enabled: false,
        ..loopback_config()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let engine: Arc<dyn Engine> = MockEngine::new();
    let task = tokio::spawn(async move {
        serve(&config, engine, async move {
            let _ = stopped.await;
        })
        .await
    });

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!task.is_finished());
    stop.send(()).expect("serve still waiting");
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve returns")
        .expect("task");
    assert!(result.is_ok());
}
