//! Helpers for the dialplan and trunk tests: dialplans with one Beijing trunk of several
//! gateways, a client for the engine's control API, and a silent gateway that records
//! the requests sent to a remote hotline's port without responding.

use std::fmt::Write as _;
use std::fs;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::{CONTROL_TOKEN, Harness, Ports, SippBuilder, read_when_written, wait_until};

/// One gateway of the Beijing trunk, on remote hotline `remote`.
#[derive(Debug, Clone, Copy)]
pub struct PlanGateway {
    pub name: &'static str,
    pub remote: u16,
    pub priority: u32,
    pub channels: Option<u32>,
    /// Whether the engine reaches the gateway over TCP in place of UDP.
    pub tcp: bool,
}

impl PlanGateway {
    pub fn new(name: &'static str, remote: u16, priority: u32) -> PlanGateway {
        PlanGateway {
            name,
            remote,
            priority,
            channels: None,
            tcp: false,
        }
    }

    pub fn tcp(mut self) -> PlanGateway {
        self.tcp = true;
        self
    }

    pub fn channels(mut self, channels: u32) -> PlanGateway {
        self.channels = Some(channels);
        self
    }
}

/// The `[trunk.beijing.health_check]` values; `None` in [`beijing_plan`] disables probes.
#[derive(Debug, Clone, Copy)]
pub struct HealthCheck {
    pub interval_secs: u32,
    pub timeout_ms: u32,
    pub failures_to_down: u32,
    pub successes_to_up: u32,
}

/// Builds a plan with one destination, Beijing (`*1`, E.164 numbers, 4 s ring timeout), whose
/// trunk has `gateways`, plus Tianjin (`*2`) on remote hotline 3 so that a plan change
/// can be made without touching Beijing.
pub fn beijing_plan(
    ports: &Ports,
    gateways: &[PlanGateway],
    health: Option<HealthCheck>,
) -> String {
    let mut plan = String::from(
        "[keys]\n\
         inter_digit_timeout_ms = 3000\n\
         [keys.map]\n\
         \"*1\" = \"beijing\"\n\
         \"*2\" = \"tianjin\"\n\
         \n\
         [destination.beijing]\n\
         name = \"北京市热线\"\n\
         name_en = \"Beijing 12345 hotline\"\n\
         area_code = \"010\"\n\
         trunk = \"beijing\"\n\
         numbers = [\"010-12345\"]\n\
         ring_timeout_secs = 4\n\
         \n\
         [trunk.beijing]\n\
         numbers = \"e164\"\n\
         identity = \"pai\"\n\
         [trunk.beijing.health_check]\n",
    );
    match health {
        Some(check) => {
            let _ = write!(
                plan,
                "enabled = true\n\
                 interval_secs = {}\n\
                 timeout_ms = {}\n\
                 failures_to_down = {}\n\
                 successes_to_up = {}\n",
                check.interval_secs,
                check.timeout_ms,
                check.failures_to_down,
                check.successes_to_up
            );
        }
        None => plan.push_str("enabled = false\n"),
    }
    for gateway in gateways {
        let _ = write!(
            plan,
            "[trunk.beijing.gateway.{}]\n\
             address = \"127.0.0.1:{}\"\n\
             priority = {}\n",
            gateway.name,
            ports.remote(gateway.remote),
            gateway.priority
        );
        if let Some(channels) = gateway.channels {
            let _ = writeln!(plan, "channels = {channels}");
        }
        if gateway.tcp {
            plan.push_str("transport = \"tcp\"\n");
        }
    }
    let _ = write!(
        plan,
        "\n\
         [destination.tianjin]\n\
         name = \"天津市热线\"\n\
         name_en = \"Tianjin 12345 hotline\"\n\
         area_code = \"022\"\n\
         trunk = \"tianjin\"\n\
         ring_timeout_secs = 4\n\
         [trunk.tianjin]\n\
         numbers = \"national\"\n\
         [trunk.tianjin.health_check]\n\
         enabled = false\n\
         [trunk.tianjin.gateway.lab]\n\
         address = \"127.0.0.1:{}\"\n",
        ports.remote(3)
    );
    plan
}

/// Runs the engine binary with `args` in `dir`, as an operator would from a shell.
pub fn hotline(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline-b2bua"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the engine binary")
}

/// Returns the fingerprint `check` prints for the configuration at `config`.
pub fn checked_fingerprint(config: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hotline-b2bua"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "check failed on {}:\n{stdout}{}",
        config.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split("fingerprint ")
        .nth(1)
        .map(|rest| rest.trim().to_owned())
        .unwrap_or_else(|| panic!("check printed no fingerprint:\n{stdout}"))
}

/// A client of the engine's control API with the test token. Each request runs on a
/// runtime of its own thread, so tests stay synchronous.
pub struct ControlClient {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

/// Maximum time one control request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl ControlClient {
    pub fn new(ports: &Ports) -> ControlClient {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a runtime for the control client");
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("build the HTTP client");
        ControlClient {
            runtime,
            client,
            base: format!("http://127.0.0.1:{}", ports.control()),
        }
    }

    /// Sends `GET path` and returns the status and the JSON body (`Null` when empty).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request)
    }

    /// Sends `POST path` with `body` as JSON, or with no body.
    pub fn post(&self, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request)
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let request = request.bearer_auth(CONTROL_TOKEN);
        self.runtime.block_on(async {
            let response = request.send().await.expect("send the control request");
            let status = response.status().as_u16();
            let text = response.text().await.expect("read the control response");
            let body = match text.trim() {
                "" => Value::Null,
                text => serde_json::from_str(text)
                    .unwrap_or_else(|error| panic!("invalid JSON ({error}): {text}")),
            };
            (status, body)
        })
    }

    /// Sends `POST /v1/reload`.
    pub fn reload(&self) -> (u16, Value) {
        self.post("/v1/reload", None)
    }

    /// Returns the active calls, from `GET /v1/calls`.
    pub fn calls(&self) -> Vec<Value> {
        let (status, body) = self.get("/v1/calls");
        assert_eq!(status, 200, "GET /v1/calls failed: {body}");
        body.as_array().cloned().unwrap_or_default()
    }

    /// Waits until `count` calls are talking and returns their A-leg Call-IDs, oldest first.
    pub fn wait_talking(&self, count: usize, limit: Duration) -> Vec<String> {
        let mut talking = Vec::new();
        let found = wait_until(limit, || {
            talking = self
                .calls()
                .iter()
                .filter(|call| call["state"] == "talking")
                .filter_map(|call| call["call"].as_str().map(str::to_owned))
                .collect();
            talking.len() >= count
        });
        assert!(
            found,
            "{count} talking calls expected, found {talking:?}: {:?}",
            self.calls()
        );
        talking
    }

    /// Sends `POST /v1/calls/{call}/transfer` with `{"destination": destination}`.
    pub fn transfer(&self, call: &str, destination: &str) -> (u16, Value) {
        let body = serde_json::json!({ "destination": destination });
        let path = format!("/v1/calls/{}/transfer", call.replace('/', "%2F"));
        self.post(&path, Some(&body))
    }

    /// Transfers `call` to `destination`, asserts 202 and waits for the transfer's final
    /// status, which it returns.
    pub fn transfer_to_end(&self, call: &str, destination: &str) -> Value {
        let (status, body) = self.transfer(call, destination);
        assert_eq!(
            status, 202,
            "transfer of {call} to {destination} not accepted: {body}"
        );
        let id = body["transfer"]
            .as_str()
            .unwrap_or_else(|| panic!("202 without a transfer id: {body}"));
        self.wait_transfer_final(id, Duration::from_secs(15))
    }

    /// Waits until transfer `id` leaves `trying` and `ringing` and `answered`, and returns
    /// its last status body.
    pub fn wait_transfer_final(&self, id: &str, limit: Duration) -> Value {
        let mut last = Value::Null;
        let done = wait_until(limit, || {
            let (status, body) = self.get(&format!("/v1/transfers/{id}"));
            assert_eq!(status, 200, "GET /v1/transfers/{id} failed: {body}");
            last = body;
            !matches!(
                last["status"].as_str(),
                Some("trying" | "ringing" | "answered")
            )
        });
        assert!(
            done,
            "transfer {id} still not final after {limit:?}: {last}"
        );
        last
    }
}

/// A UDP socket on a remote hotline's port that records every request start line sent to
/// it and sends no response, as a gateway that is down.
pub struct SilentGateway {
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    worker: Option<thread::JoinHandle<()>>,
}

impl SilentGateway {
    /// Binds `127.0.0.1:port`. Retries for a few seconds while a process that just exited
    /// still has the port bound.
    pub fn bind(port: u16) -> SilentGateway {
        let mut socket = None;
        wait_until(Duration::from_secs(5), || {
            socket = UdpSocket::bind(("127.0.0.1", port)).ok();
            socket.is_some()
        });
        let socket = socket.unwrap_or_else(|| panic!("bind the silent gateway on port {port}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a read timeout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let lines = Arc::clone(&lines);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut buffer = [0u8; 65_535];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((length, _)) = socket.recv_from(&mut buffer) {
                        let text = String::from_utf8_lossy(&buffer[..length]);
                        let line = text.lines().next().unwrap_or_default().to_owned();
                        lines.lock().expect("request list").push(line);
                    }
                }
            })
        };
        SilentGateway {
            lines,
            stop,
            worker: Some(worker),
        }
    }

    /// Returns the start lines received so far, retransmissions included.
    pub fn start_lines(&self) -> Vec<String> {
        self.lines.lock().expect("request list").clone()
    }

    /// Counts the received requests with `method`.
    pub fn count(&self, method: &str) -> usize {
        self.start_lines()
            .iter()
            .filter(|line| line.starts_with(&format!("{method} ")))
            .count()
    }
}

impl Drop for SilentGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Returns the lines of `log` that contain every one of `parts`.
pub fn log_lines<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|line| parts.iter().all(|part| line.contains(part)))
        .collect()
}

/// Overwrites the engine's `dialplan.toml` in `dir`.
pub fn write_plan(dir: &Path, plan: &str) {
    fs::write(dir.join("dialplan.toml"), plan).expect("write dialplan.toml");
}

/// A SIPp UAS named `remote<index>` on remote hotline `index`'s ports, running `scenario`.
pub fn remote_hotline(harness: &Harness, index: u16, scenario: &Path) -> SippBuilder {
    SippBuilder::agent(
        &harness.dir,
        &format!("remote{index}"),
        scenario,
        harness.ports.remote(index),
        harness.ports.remote_media(index),
    )
}

/// The transfer records the engine wrote to `transfers.jsonl`, once `count` are there.
pub fn transfer_records(harness: &Harness, count: usize) -> Vec<Value> {
    let path = harness.dir.join("transfers.jsonl");
    let mut records = Vec::new();
    let written = wait_until(Duration::from_secs(5), || {
        records = read_when_written(&path, Duration::from_millis(100))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a record is one JSON line"))
            .collect();
        records.len() >= count
    });
    assert!(
        written,
        "{count} transfer records expected, found {records:?}"
    );
    records
}
