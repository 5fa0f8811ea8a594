//! Shared helpers for the integration tests: port blocks, temporary directories, the
//! engine binary under test, SIPp processes and a pcap reader.
//!
//! Every process a test starts is bounded in calls and time and is stopped by its pid
//! when its guard is dropped. A test's directory (configuration, logs, SIPp message
//! traces) is removed when the test passes and kept, with its path printed, when it
//! fails.

#![allow(dead_code)]

pub mod baresip;
pub mod linphone;
pub mod pcap;
pub mod plans;
pub mod transfer;

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Seconds after which SIPp gives up with an error (`-timeout N -timeout_error`).
pub const SIPP_TIMEOUT_SECS: u64 = 30;
/// How long a test waits for a SIPp process: its own timeout plus a margin.
pub const SIPP_WAIT: Duration = Duration::from_secs(SIPP_TIMEOUT_SECS + 10);
/// How long the engine may take to open its SIP port.
const ENGINE_START: Duration = Duration::from_secs(15);
/// The user part of the Request-URI that callers dial.
pub const SERVICE: &str = "12345";

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Port blocks live below Linux's default ephemeral range (32768-60999), so that no
/// socket another process opens with port 0 lands inside a test's block.
const BLOCK_FIRST_PORT: u16 = 20_000;
const BLOCK_COUNT: usize = 132;
const BLOCK_SIZE: u16 = 96;

static NEXT_BLOCK: AtomicUsize = AtomicUsize::new(0);
static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A block of 96 loopback ports that were free for UDP and TCP when the test took it.
/// Tests in one binary never share a block, and the start of the search depends on the
/// process id, so concurrent test binaries rarely probe the same blocks.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    base: u16,
}

impl Ports {
    pub fn allocate() -> Ports {
        let offset = std::process::id() as usize * 7;
        for _ in 0..BLOCK_COUNT {
            let index = (offset + NEXT_BLOCK.fetch_add(1, Ordering::Relaxed)) % BLOCK_COUNT;
            let base = BLOCK_FIRST_PORT + index as u16 * BLOCK_SIZE;
            if (base..base + BLOCK_SIZE).all(port_is_free) {
                return Ports { base };
            }
        }
        panic!("no free block of {BLOCK_SIZE} loopback ports above {BLOCK_FIRST_PORT}");
    }

    /// The engine's SIP port, UDP and TCP.
    pub fn engine(&self) -> u16 {
        self.base
    }
    /// The agent's SIP port.
    pub fn agent(&self) -> u16 {
        self.base + 2
    }
    /// The first caller's SIP port.
    pub fn caller(&self) -> u16 {
        self.base + 4
    }
    /// A second caller's SIP port.
    pub fn second_caller(&self) -> u16 {
        self.base + 6
    }
    /// A port nothing listens on.
    pub fn unused(&self) -> u16 {
        self.base + 8
    }
    /// SIPp media port of the agent; `-rtp_echo` also takes the port + 2.
    pub fn agent_media(&self) -> u16 {
        self.base + 10
    }
    /// SIPp media port of the first caller.
    pub fn caller_media(&self) -> u16 {
        self.base + 16
    }
    /// SIPp media port of the second caller.
    pub fn second_caller_media(&self) -> u16 {
        self.base + 22
    }
    /// A port for an RTP socket owned by the test.
    pub fn rtp_peer(&self) -> u16 {
        self.base + 28
    }
    /// The control port of a baresip agent (its `ctrl_tcp` module). baresip also binds
    /// the agent port + 1 for TLS, so that port stays free.
    pub fn agent_control(&self) -> u16 {
        self.base + 30
    }
    /// The engine's control API (HTTP).
    pub fn control(&self) -> u16 {
        self.base + 29
    }
    /// The SIP port of remote hotline `index` (0-3), a transfer target.
    pub fn remote(&self, index: u16) -> u16 {
        self.base + 32 + index * 8
    }
    /// SIPp media port of remote hotline `index`; `-rtp_echo` also takes the port + 2.
    pub fn remote_media(&self, index: u16) -> u16 {
        self.base + 36 + index * 8
    }
    /// The engine's relay range, `media.port_min..=media.port_max`.
    pub fn relay_min(&self) -> u16 {
        self.base + 64
    }
    pub fn relay_max(&self) -> u16 {
        self.base + BLOCK_SIZE - 1
    }
}

fn port_is_free(port: u16) -> bool {
    UdpSocket::bind((LOOPBACK, port)).is_ok() && TcpListener::bind((LOOPBACK, port)).is_ok()
}

/// Reports whether some process has a UDP socket bound to `port`.
///
/// Reads the kernel's socket tables instead of binding the port. A test that binds to
/// check races the process it waits for, which then fails with "address already in use".
pub fn udp_port_taken(port: u16) -> bool {
    socket_table_has(&["/proc/net/udp", "/proc/net/udp6"], port, None)
}

/// Reports whether some process listens on TCP `port`, from the kernel's socket tables.
pub fn tcp_port_taken(port: u16) -> bool {
    /// The state column's value for LISTEN in `/proc/net/tcp`.
    const LISTEN: &str = "0A";
    socket_table_has(&["/proc/net/tcp", "/proc/net/tcp6"], port, Some(LISTEN))
}

/// Reports whether a `/proc/net` table row has local port `port` and, if given, `state`.
/// Rows read `sl local_address rem_address st ...`, the address as hex `ADDR:PORT`.
fn socket_table_has(tables: &[&str], port: u16, state: Option<&str>) -> bool {
    let suffix = format!(":{port:04X}");
    tables.iter().any(|table| {
        let text = fs::read_to_string(table).unwrap_or_default();
        text.lines().skip(1).any(|row| {
            let mut columns = row.split_whitespace().skip(1);
            let local = columns.next().unwrap_or_default();
            let row_state = columns.nth(1).unwrap_or_default();
            local.ends_with(&suffix) && state.is_none_or(|state| row_state == state)
        })
    })
}

/// Polls `condition` every 20 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A per-test directory under the system temporary directory, with a `pcap` link to
/// SIPp's capture directory so that `play_pcap_audio="pcap/..."` works.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(test: &str) -> TestDir {
        let unique = format!(
            "{test}-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir()
            .join("hotline-b2bua-tests")
            .join(unique);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create the test directory");
        std::os::unix::fs::symlink("/usr/share/sip-tester", path.join("pcap"))
            .expect("link pcap to /usr/share/sip-tester");
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Engine settings that tests change; everything else is the engine's default.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub trusted: Vec<String>,
    /// `None` sends calls to the agent SIPp at `Ports::agent`.
    pub agent_target: Option<String>,
    /// Adds `;transport=tcp` to the default agent target.
    pub agent_over_tcp: bool,
    pub ring_timeout_secs: u64,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    pub inactivity_timeout_secs: u64,
    pub grace_period_secs: u64,
    pub retry_after_secs: u32,
    /// `sip.udp_max_bytes`; `None` leaves the engine's default.
    pub udp_max_bytes: Option<usize>,
    /// `log.format = "json"` instead of `"plain"`.
    pub log_json: bool,
    /// Dialplan TOML written to `dialplan.toml` beside the configuration; `None` uses
    /// [`default_dialplan`].
    pub dialplan: Option<String>,
}

/// Token of the control API in tests, set as `HOTLINE_CONTROL_TOKEN` for the engine.
pub const CONTROL_TOKEN: &str = "test-control-token";

/// A small plan for tests: Beijing (`*1`) on remote hotline 0 and Tianjin (`*2`) on
/// remote hotline 1, UDP, no health checks, a two-category catalogue.
pub fn default_dialplan(ports: &Ports) -> String {
    format!(
        "[keys]\n\
         inter_digit_timeout_ms = 3000\n\
         [keys.map]\n\
         \"*1\" = \"beijing\"\n\
         \"*2\" = \"tianjin\"\n\
         \n\
         [catalogue]\n\
         version = \"test\"\n\
         [category.social_insurance]\n\
         name = \"社保医保\"\n\
         name_en = \"Social and medical insurance\"\n\
         scope = \"pensions and medical insurance\"\n\
         [category.housing]\n\
         name = \"住房\"\n\
         name_en = \"Housing\"\n\
         scope = \"housing\"\n\
         \n\
         [destination.beijing]\n\
         name = \"北京市热线\"\n\
         name_en = \"Beijing 12345 hotline\"\n\
         area_code = \"010\"\n\
         trunk = \"beijing\"\n\
         numbers = [\"010-12345\"]\n\
         ring_timeout_secs = 4\n\
         accepts = {{ social_insurance = \"\" }}\n\
         rejects = {{ housing = \"Beijing takes no housing matters from other cities\" }}\n\
         [trunk.beijing]\n\
         numbers = \"e164\"\n\
         identity = \"pai\"\n\
         [trunk.beijing.health_check]\n\
         enabled = false\n\
         [trunk.beijing.gateway.lab]\n\
         address = \"127.0.0.1:{beijing}\"\n\
         \n\
         [destination.tianjin]\n\
         name = \"天津市热线\"\n\
         name_en = \"Tianjin 12345 hotline\"\n\
         area_code = \"022\"\n\
         trunk = \"tianjin\"\n\
         numbers = [\"022-12345\"]\n\
         ring_timeout_secs = 4\n\
         [trunk.tianjin]\n\
         numbers = \"national\"\n\
         identity = \"pai\"\n\
         [trunk.tianjin.health_check]\n\
         enabled = false\n\
         [trunk.tianjin.gateway.lab]\n\
         address = \"127.0.0.1:{tianjin}\"\n",
        beijing = ports.remote(0),
        tianjin = ports.remote(1),
    )
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            trusted: vec!["127.0.0.0/8".to_owned()],
            agent_target: None,
            agent_over_tcp: false,
            ring_timeout_secs: 20,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            inactivity_timeout_secs: 0,
            grace_period_secs: 1,
            retry_after_secs: 60,
            udp_max_bytes: None,
            log_json: false,
            dialplan: None,
        }
    }
}

impl EngineSettings {
    pub fn to_toml(&self, ports: &Ports) -> String {
        let transport = if self.agent_over_tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let target = self
            .agent_target
            .clone()
            .unwrap_or_else(|| format!("sip:agent@127.0.0.1:{}{transport}", ports.agent()));
        let trusted: Vec<String> = self.trusted.iter().map(|t| format!("{t:?}")).collect();
        let udp_max_bytes = self
            .udp_max_bytes
            .map(|bytes| format!("udp_max_bytes = {bytes}\n"))
            .unwrap_or_default();
        let log_format = if self.log_json { "json" } else { "plain" };
        format!(
            "[sip]\n\
             listen = \"127.0.0.1:{engine}\"\n\
             trusted = [{trusted}]\n\
             {udp_max_bytes}\
             \n\
             [agent]\n\
             target = {target:?}\n\
             ring_timeout_secs = {ring}\n\
             \n\
             [timers]\n\
             t1_ms = {t1}\n\
             t2_ms = {t2}\n\
             t4_ms = {t4}\n\
             \n\
             [media]\n\
             address = \"127.0.0.1\"\n\
             port_min = {relay_min}\n\
             port_max = {relay_max}\n\
             inactivity_timeout_secs = {inactivity}\n\
             \n\
             [shutdown]\n\
             grace_period_secs = {grace}\n\
             retry_after_secs = {retry}\n\
             \n\
             [log]\n\
             format = \"{log_format}\"\n\
             level = \"debug\"\n\
             \n\
             [dialplan]\n\
             paths = [\"dialplan.toml\"]\n\
             \n\
             [control]\n\
             listen = \"127.0.0.1:{control}\"\n\
             \n\
             [cdr]\n\
             path = \"transfers.jsonl\"\n",
            control = ports.control(),
            engine = ports.engine(),
            trusted = trusted.join(", "),
            ring = self.ring_timeout_secs,
            t1 = self.t1_ms,
            t2 = self.t2_ms,
            t4 = self.t4_ms,
            relay_min = ports.relay_min(),
            relay_max = ports.relay_max(),
            inactivity = self.inactivity_timeout_secs,
            grace = self.grace_period_secs,
            retry = self.retry_after_secs,
        )
    }
}

/// The engine binary under test, started with `run --config` on a written
/// configuration. Killed on drop unless it already exited.
pub struct Engine {
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Engine {
    /// Writes `settings` to `engine.toml`, starts the engine and waits until its TCP SIP
    /// port accepts connections.
    pub fn start(dir: &TestDir, ports: &Ports, settings: &EngineSettings) -> Engine {
        let config = dir.join("engine.toml");
        fs::write(&config, settings.to_toml(ports)).expect("write engine.toml");
        let plan = settings
            .dialplan
            .clone()
            .unwrap_or_else(|| default_dialplan(ports));
        fs::write(dir.join("dialplan.toml"), plan).expect("write dialplan.toml");
        Engine::launch(dir, ports)
    }

    /// Starts the engine on the `engine.toml` and `dialplan.toml` already written in `dir`
    /// and waits until its TCP SIP port accepts connections. When the configuration has a
    /// control API, it also waits for that listener, which the engine binds after loading
    /// the dialplan.
    pub fn launch(dir: &TestDir, ports: &Ports) -> Engine {
        let config = dir.join("engine.toml");
        let log = dir.join("engine.log");
        let output = fs::File::create(&log).expect("create engine.log");
        let child = Command::new(env!("CARGO_BIN_EXE_hotline-b2bua"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env_remove("RUST_LOG")
            .env("HOTLINE_CONTROL_TOKEN", CONTROL_TOKEN)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone engine.log handle"))
            .stderr(output)
            .spawn()
            .expect("start the engine binary");
        let mut engine = Engine {
            child,
            log,
            status: None,
        };

        let address = SocketAddr::from((LOOPBACK, ports.engine()));
        let control = fs::read_to_string(&config).is_ok_and(|text| text.contains("[control]"));
        let ready = wait_until(ENGINE_START, || {
            engine.exited().is_some()
                || TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
                    && (!control || tcp_port_taken(ports.control()))
        });
        if let Some(status) = engine.exited() {
            panic!(
                "the engine exited during startup with {status}; its log:\n{}",
                engine.log()
            );
        }
        assert!(
            ready,
            "the engine did not accept TCP on {address} (or open its control API) within {ENGINE_START:?}; its log:\n{}",
            engine.log()
        );
        // NOTE: only the TCP listener is probed, because a UDP probe needs a response from
        // the engine. If UDP is bound later, SIPp retransmits the first INVITE.
        engine
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status if the engine has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("poll the engine process");
        }
        self.status
    }

    /// Sends `signal` (a name such as `TERM` or `INT`) to the engine's pid.
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// Waits up to `limit` for the engine to exit.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_until(limit, || self.exited().is_some());
        self.exited()
    }

    /// Asserts that the engine is still running, then stops it with SIGTERM and asserts a
    /// clean exit (status 0) within the grace period plus `margin`.
    pub fn stop(mut self, grace: Duration, margin: Duration) {
        if let Some(status) = self.exited() {
            panic!(
                "the engine exited before the end of the test with {status}; its log:\n{}",
                self.log()
            );
        }
        self.signal("TERM");
        let status = self.wait(grace + margin);
        match status {
            Some(status) => assert!(
                status.success(),
                "the engine exited with {status} after SIGTERM; its log:\n{}",
                self.log()
            ),
            None => panic!(
                "the engine did not exit within {:?} of SIGTERM; its log:\n{}",
                grace + margin,
                self.log()
            ),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("engine log:\n{}", tail(&self.log(), 80));
        }
    }
}

/// Sends a signal by pid with kill(1), which keeps the tests free of unsafe code.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg("-s")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -s {signal} {pid} failed: {status}");
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Path of a scenario shipped in `tests/scenarios`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
}

/// Copies a shipped scenario into `dir`, replacing each `(from, to)` text, and returns the
/// copy's path. Panics when a `from` text is missing, so a renamed line cannot go unseen.
pub fn render_scenario(dir: &TestDir, name: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = fs::read_to_string(scenario(name)).expect("read the scenario");
    for (from, to) in replacements {
        assert!(text.contains(from), "{name} does not contain {from:?}");
        text = text.replace(from, to);
    }
    let path = dir.join(&format!("rendered_{name}"));
    fs::write(&path, text).expect("write the rendered scenario");
    path
}

/// `caller_rejected.xml` made to accept exactly the final `statuses` (any one of them).
pub fn caller_rejected(dir: &TestDir, statuses: &[u16]) -> PathBuf {
    let (last, others) = statuses.split_last().expect("at least one status");
    let mut lines = String::new();
    for status in others {
        lines.push_str(&format!(
            "<recv response=\"{status}\" optional=\"true\" response_txn=\"invite\" next=\"final\"/>\n  "
        ));
    }
    lines.push_str(&format!(
        "<recv response=\"{last}\" response_txn=\"invite\"/>"
    ));
    render_scenario(
        dir,
        "caller_rejected.xml",
        &[(
            "<!-- FINAL_RESPONSES -->\n  <recv response=\"486\" response_txn=\"invite\"/>",
            &lines,
        )],
    )
}

/// `agent_reject.xml` made to answer with `status_line`, such as `603 Decline`.
pub fn agent_reject(dir: &TestDir, status_line: &str) -> PathBuf {
    render_scenario(
        dir,
        "agent_reject.xml",
        &[("SIP/2.0 486 Busy Here", &format!("SIP/2.0 {status_line}"))],
    )
}

/// Fails the test with a clear message when SIPp is missing.
pub fn require_sipp() {
    let found = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "sipp is not installed: run scripts/test, which installs the sip-tester package"
    );
}

/// A SIPp process to be configured and started. Every run is bounded with
/// `-m 1 -timeout 30 -timeout_error -nostdin` and traces its messages and errors into the
/// test directory as `<name>_messages.log` and `<name>_errors.log`.
pub struct SippBuilder {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    remote: Option<String>,
    wait_port: Option<(u16, bool)>,
}

impl SippBuilder {
    /// A UAS on `127.0.0.1:port` that runs `scenario`.
    pub fn agent(dir: &TestDir, name: &str, scenario: &Path, port: u16, media: u16) -> Self {
        let mut builder = SippBuilder::new(dir, name, scenario, port, media);
        builder.wait_port = Some((port, false));
        builder
    }

    /// A UAC on `127.0.0.1:port` that calls `12345` at the engine.
    pub fn caller(
        dir: &TestDir,
        name: &str,
        scenario: &Path,
        port: u16,
        media: u16,
        engine: u16,
    ) -> Self {
        let mut builder = SippBuilder::new(dir, name, scenario, port, media);
        builder.args.extend(["-s".to_owned(), SERVICE.to_owned()]);
        builder.remote = Some(format!("127.0.0.1:{engine}"));
        builder
    }

    fn new(dir: &TestDir, name: &str, scenario: &Path, port: u16, media: u16) -> Self {
        let args = [
            "-sf",
            &scenario.display().to_string(),
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-mp",
            &media.to_string(),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            &SIPP_TIMEOUT_SECS.to_string(),
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            &format!("{name}_messages.log"),
            "-trace_err",
            "-error_file",
            &format!("{name}_errors.log"),
        ]
        .map(str::to_owned)
        .to_vec();
        SippBuilder {
            name: name.to_owned(),
            dir: dir.path().to_owned(),
            args,
            remote: None,
            wait_port: None,
        }
    }

    /// Adds SIPp options.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|arg| (*arg).to_owned()));
        self
    }

    /// Uses TCP with one connection (`-t t1`).
    pub fn tcp(mut self) -> Self {
        self.args.extend(["-t".to_owned(), "t1".to_owned()]);
        if let Some((port, _)) = self.wait_port {
            self.wait_port = Some((port, true));
        }
        self
    }

    /// Binds SIPp to another loopback address than 127.0.0.1.
    pub fn local_ip(mut self, ip: &str) -> Self {
        if let Some(position) = self.args.iter().position(|arg| arg == "-i") {
            self.args[position + 1] = ip.to_owned();
        }
        self
    }

    /// Starts SIPp in the test directory. An agent is returned once its SIP port is bound.
    pub fn start(self) -> Sipp {
        let output = fs::File::create(self.dir.join(format!("{}.out", self.name)))
            .expect("create the SIPp output file");
        let mut command = Command::new("sipp");
        command
            .args(&self.args)
            .args(&self.remote)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the SIPp output handle"))
            .stderr(output);
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start sipp: {error}"));
        let mut sipp = Sipp {
            name: self.name,
            dir: self.dir,
            child,
            status: None,
            started: Instant::now(),
        };

        if let Some((port, tcp)) = self.wait_port {
            let bound = wait_until(Duration::from_secs(10), || {
                sipp.exited().is_some()
                    || if tcp {
                        tcp_port_taken(port)
                    } else {
                        udp_port_taken(port)
                    }
            });
            assert!(
                bound && sipp.exited().is_none(),
                "SIPp {} did not start listening on port {port}:\n{}",
                sipp.name,
                sipp.report()
            );
        }
        sipp
    }
}

/// A running SIPp process, killed on drop if it has not exited.
pub struct Sipp {
    name: String,
    dir: PathBuf,
    child: Child,
    status: Option<ExitStatus>,
    started: Instant,
}

impl Sipp {
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("poll the SIPp process");
        }
        self.status
    }

    /// Waits for SIPp to exit and returns its exit code and how long it ran. Panics if it
    /// is still running after [`SIPP_WAIT`].
    pub fn finish(&mut self) -> (Option<i32>, Duration) {
        let exited = wait_until(SIPP_WAIT, || self.exited().is_some());
        assert!(
            exited,
            "SIPp {} still runs after {SIPP_WAIT:?}:\n{}",
            self.name,
            self.report()
        );
        let code = self.status.and_then(|status| status.code());
        (code, self.started.elapsed())
    }

    /// Asserts that every call of the scenario succeeded (SIPp exit code 0).
    pub fn expect_success(&mut self) -> Duration {
        let (code, elapsed) = self.finish();
        assert_eq!(
            code,
            Some(0),
            "SIPp {} failed:\n{}",
            self.name,
            self.report()
        );
        elapsed
    }

    /// Every SIP message SIPp sent and received, as written with `-trace_msg`.
    pub fn messages(&self) -> String {
        fs::read_to_string(self.dir.join(format!("{}_messages.log", self.name))).unwrap_or_default()
    }

    pub fn errors(&self) -> String {
        fs::read_to_string(self.dir.join(format!("{}_errors.log", self.name))).unwrap_or_default()
    }

    /// The errors SIPp logged and the end of its message trace, for assertion messages.
    pub fn report(&self) -> String {
        format!(
            "--- {name} errors:\n{errors}\n--- {name} messages (end):\n{messages}",
            name = self.name,
            errors = tail(&self.errors(), 20),
            messages = tail(&self.messages(), 60)
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The SIP messages in a SIPp `-trace_msg` log, each as its text from the start line to
/// the end of its body.
pub fn trace_messages(trace: &str) -> Vec<TracedMessage> {
    let mut messages = Vec::new();
    let mut current: Option<TracedMessage> = None;
    for line in trace.lines() {
        let received = line.contains("message received");
        let sent = line.contains("message sent");
        if received || sent {
            messages.extend(current.take());
            current = Some(TracedMessage {
                received,
                text: String::new(),
            });
        } else if line.starts_with("-----------------------------------------------") {
            messages.extend(current.take());
        } else if let Some(message) = current.as_mut()
            && !(message.text.is_empty() && line.trim().is_empty())
        {
            message.text.push_str(line);
            message.text.push('\n');
        }
    }
    messages.extend(current);
    messages
}

/// One message from a SIPp trace.
#[derive(Debug, Clone)]
pub struct TracedMessage {
    pub received: bool,
    pub text: String,
}

impl TracedMessage {
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.text
            .lines()
            .skip(1)
            .take_while(|line| !line.trim().is_empty())
            .find_map(|line| {
                let (header, value) = line.split_once(':')?;
                header
                    .trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
    }

    /// The port of the first `m=audio` line of the SDP body.
    pub fn audio_port(&self) -> Option<u16> {
        self.text
            .lines()
            .find_map(|line| line.strip_prefix("m=audio "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
    }
}

/// The first received message whose start line starts with `prefix`.
pub fn first_received(sipp: &Sipp, prefix: &str) -> Option<TracedMessage> {
    trace_messages(&sipp.messages())
        .into_iter()
        .find(|message| message.received && message.start_line().starts_with(prefix))
}

/// Reads every datagram that arrives on `socket` within `window`.
pub fn drain_udp(socket: &UdpSocket, window: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + window;
    let mut datagrams = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return datagrams;
        }
        socket
            .set_read_timeout(Some(left))
            .expect("set a read timeout");
        match socket.recv_from(&mut buffer) {
            Ok((length, from)) => datagrams.push((buffer[..length].to_vec(), from)),
            Err(_) => return datagrams,
        }
    }
}

/// Reads a file that another process creates, once it exists and is not empty.
pub fn read_when_written(path: &Path, limit: Duration) -> Option<String> {
    let mut content = None;
    wait_until(limit, || {
        let mut text = String::new();
        let read = fs::File::open(path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .is_ok();
        if read && !text.trim().is_empty() {
            content = Some(text);
        }
        content.is_some()
    });
    content
}

/// One call-flow test: its directory, ports and the engine running on them.
pub struct Harness {
    pub engine: Engine,
    pub settings: EngineSettings,
    pub ports: Ports,
    pub dir: TestDir,
}

impl Harness {
    /// Starts the engine for `test` with `settings`.
    pub fn start(test: &str, settings: EngineSettings) -> Harness {
        require_sipp();
        let dir = TestDir::new(test);
        let ports = Ports::allocate();
        let engine = Engine::start(&dir, &ports, &settings);
        Harness {
            engine,
            settings,
            ports,
            dir,
        }
    }

    /// Starts the engine for `test` with settings that depend on the test's ports, such as
    /// an agent target that points back at the engine.
    pub fn start_with(test: &str, settings: impl FnOnce(&Ports) -> EngineSettings) -> Harness {
        require_sipp();
        let dir = TestDir::new(test);
        let ports = Ports::allocate();
        let settings = settings(&ports);
        let engine = Engine::start(&dir, &ports, &settings);
        Harness {
            engine,
            settings,
            ports,
            dir,
        }
    }

    /// A SIPp agent named `agent` on the agent port.
    pub fn agent(&self, scenario: &Path) -> SippBuilder {
        SippBuilder::agent(
            &self.dir,
            "agent",
            scenario,
            self.ports.agent(),
            self.ports.agent_media(),
        )
    }

    /// A SIPp caller named `caller` that calls the engine.
    pub fn caller(&self, scenario: &Path) -> SippBuilder {
        SippBuilder::caller(
            &self.dir,
            "caller",
            scenario,
            self.ports.caller(),
            self.ports.caller_media(),
            self.ports.engine(),
        )
    }

    /// Another SIPp caller, named `second_caller`, with its own ports.
    pub fn second_caller(&self, scenario: &Path) -> SippBuilder {
        SippBuilder::caller(
            &self.dir,
            "second_caller",
            scenario,
            self.ports.second_caller(),
            self.ports.second_caller_media(),
            self.ports.engine(),
        )
    }

    /// Asserts that the engine still runs, stops it with SIGTERM and asserts exit status 0.
    pub fn stop(self) {
        let grace = Duration::from_secs(self.settings.grace_period_secs);
        let Harness { engine, dir, .. } = self;
        engine.stop(grace, Duration::from_secs(5));
        drop(dir);
    }

    /// Asserts that the SDP the caller got and the SDP the agent got both point at the
    /// engine's relay (127.0.0.1 and a port in the relay range), so media is anchored.
    pub fn assert_media_anchored(&self, caller: &Sipp, agent: &Sipp) {
        let relay = self.ports.relay_min()..=self.ports.relay_max();
        let answer = first_received(caller, "SIP/2.0 200").expect("the caller received a 200");
        let offer = first_received(agent, "INVITE").expect("the agent received an INVITE");
        for (side, message) in [("caller", &answer), ("agent", &offer)] {
            let port = message.audio_port();
            assert!(
                port.is_some_and(|port| relay.contains(&port)),
                "the SDP the {side} received has m=audio port {port:?}, not in the relay \
                 range {relay:?}:\n{}",
                message.text
            );
            assert!(
                message.text.contains("c=IN IP4 127.0.0.1"),
                "the SDP the {side} received does not point at 127.0.0.1:\n{}",
                message.text
            );
        }
        assert_ne!(
            answer.audio_port(),
            offer.audio_port(),
            "both legs got the same relay port"
        );
    }
}
