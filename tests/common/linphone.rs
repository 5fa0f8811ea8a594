//! linphonec as a real agent, with the engine and SIPp, inside a network namespace that
//! the test creates. This module owns the namespace guard, the processes started in it, the
//! linphonec console driven through standard input, and the SIP messages in linphonec's log.
//!
//! Inside the namespace the only interface is its own loopback, so linphonec's SIP and RTP
//! sockets and the addresses in its Contact and SDP stay off the host's interfaces. The
//! namespace is deleted when its guard is dropped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{
    EngineSettings, Ports, SERVICE, SIPP_TIMEOUT_SECS, SIPP_WAIT, TestDir, TracedMessage,
    default_dialplan, send_signal, tail, wait_until,
};

/// How long linphonec or the engine may take to open its SIP port.
const START: Duration = Duration::from_secs(15);

static NEXT_NAMESPACE: AtomicUsize = AtomicUsize::new(0);

/// A network namespace with only its loopback interface up, deleted on drop.
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates a namespace named after the process id and brings up its loopback
    /// interface. Returns the output of `ip` when the namespace cannot be created, which
    /// is the case without CAP_SYS_ADMIN or without iproute2.
    pub fn create() -> Result<Namespace, String> {
        let name = format!(
            "hotline-{}-{}",
            std::process::id(),
            NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed)
        );
        run_ip(&["netns", "add", &name])?;
        let namespace = Namespace { name };
        run_ip(&["-n", &namespace.name, "link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// Builds a command that runs `program` inside the namespace. `ip netns exec` replaces itself
    /// with the program, so the child's pid is the program's pid.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Returns whether a process in the namespace has bound UDP `port`.
    pub fn udp_bound(&self, port: u16) -> bool {
        self.socket_listed("-Hlnu", port)
    }

    /// Returns whether a process in the namespace listens on TCP `port`.
    pub fn tcp_listening(&self, port: u16) -> bool {
        self.socket_listed("-Hlnt", port)
    }

    fn socket_listed(&self, options: &str, port: u16) -> bool {
        self.command("ss")
            .args([options, "sport", "=", &format!(":{port}")])
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|output| !output.stdout.trim_ascii().is_empty())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(error) = run_ip(&["netns", "delete", &self.name]) {
            eprintln!("network namespace {} not deleted: {error}", self.name);
        }
    }
}

fn run_ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("ip {} failed to start: {error}", args.join(" ")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {} exited with {}: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// A process started in a namespace with its output in a file of the test directory.
/// Stopped with SIGTERM by its pid on drop, then killed if it is still running after 5 s.
pub struct Process {
    name: String,
    child: Option<Child>,
    output: PathBuf,
    code: Option<Option<i32>>,
}

impl Process {
    fn spawn(name: &str, mut command: Command, dir: &TestDir) -> Process {
        let output = dir.join(&format!("{name}.out"));
        let file = fs::File::create(&output).expect("create the process output file");
        let child = command
            .current_dir(dir.path())
            .stdout(file.try_clone().expect("clone the output file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start {name}: {error}"));
        Process {
            name: name.to_owned(),
            child: Some(child),
            output,
            code: None,
        }
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Returns the exit code once the process exited, `Some(None)` when a signal ended it.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        if self.code.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.code = Some(status.code());
        }
        self.code
    }

    /// Waits up to `limit` for the process to exit and returns its exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<Option<i32>> {
        wait_until(limit, || self.exited().is_some());
        self.exited()
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            send_signal(child.id(), "TERM");
            let stopped = wait_until(Duration::from_secs(5), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !stopped {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- {} output (end):\n{}",
                self.name,
                tail(&self.output(), 40)
            );
        }
    }
}

/// Writes the engine's configuration and the default dialplan into `dir` and starts the
/// engine in `namespace`. Returns once its TCP SIP port listens.
pub fn start_engine(
    namespace: &Namespace,
    dir: &TestDir,
    ports: &Ports,
    settings: &EngineSettings,
) -> Process {
    let config = dir.join("engine.toml");
    fs::write(&config, settings.to_toml(ports)).expect("write engine.toml");
    fs::write(dir.join("dialplan.toml"), default_dialplan(ports)).expect("write dialplan.toml");

    let mut command = namespace.command(env!("CARGO_BIN_EXE_hotline-b2bua"));
    command
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .env("HOTLINE_CONTROL_TOKEN", super::CONTROL_TOKEN)
        .stdin(Stdio::null());
    let mut engine = Process::spawn("engine", command, dir);
    let ready = wait_until(START, || {
        engine.exited().is_some() || namespace.tcp_listening(ports.engine())
    });
    assert!(
        ready && engine.exited().is_none(),
        "the engine did not listen on TCP port {} within {START:?}; its output:\n{}",
        ports.engine(),
        engine.output()
    );
    engine
}

/// Stops the engine with SIGTERM and asserts that it was still running and exits with
/// status 0 within the grace period plus 5 s.
pub fn stop_engine(mut engine: Process, grace: Duration) {
    assert!(
        engine.exited().is_none(),
        "the engine exited before the end of the test; its output:\n{}",
        engine.output()
    );
    let pid = engine.child.as_ref().map(Child::id).unwrap_or_default();
    send_signal(pid, "TERM");
    let code = engine.wait(grace + Duration::from_secs(5));
    assert_eq!(
        code,
        Some(Some(0)),
        "the engine did not exit with status 0 after SIGTERM; its output:\n{}",
        tail(&engine.output(), 60)
    );
}

/// A SIPp run in a namespace, bounded like the harness's: one call,
/// `-timeout 30 -timeout_error`, messages traced into `<name>_messages.log`.
pub struct NamespaceSipp {
    process: Process,
    dir: PathBuf,
    name: String,
}

impl NamespaceSipp {
    /// Starts SIPp on `127.0.0.1:port` with `scenario` and the extra `args`. A UAC gets
    /// `remote` (the engine's address) and calls [`SERVICE`]. A UAS (`remote` is `None`)
    /// is returned once its SIP port is bound.
    pub fn start(
        namespace: &Namespace,
        dir: &TestDir,
        name: &str,
        scenario: &Path,
        (port, media): (u16, u16),
        remote: Option<u16>,
        args: &[&str],
    ) -> NamespaceSipp {
        let mut command = namespace.command("sipp");
        command
            .arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media.to_string(), "-m", "1", "-nostdin"])
            .args(["-timeout", &SIPP_TIMEOUT_SECS.to_string(), "-timeout_error"])
            .args([
                "-trace_msg",
                "-message_file",
                &format!("{name}_messages.log"),
            ])
            .args(["-trace_err", "-error_file", &format!("{name}_errors.log")])
            .args(args)
            .stdin(Stdio::null());
        if let Some(engine) = remote {
            command
                .args(["-s", SERVICE])
                .arg(format!("127.0.0.1:{engine}"));
        }
        let mut sipp = NamespaceSipp {
            process: Process::spawn(name, command, dir),
            dir: dir.path().to_owned(),
            name: name.to_owned(),
        };
        if remote.is_none() {
            let bound = wait_until(Duration::from_secs(10), || {
                sipp.process.exited().is_some() || namespace.udp_bound(port)
            });
            assert!(
                bound && sipp.process.exited().is_none(),
                "SIPp {name} did not bind UDP port {port}:\n{}",
                sipp.report()
            );
        }
        sipp
    }

    /// Waits for SIPp to exit and asserts exit code 0: every call succeeded.
    pub fn expect_success(&mut self) {
        let code = self.process.wait(SIPP_WAIT);
        assert_eq!(
            code,
            Some(Some(0)),
            "SIPp {} did not succeed:\n{}",
            self.name,
            self.report()
        );
    }

    /// Returns the messages SIPp received whose start line starts with `prefix`.
    pub fn received(&self, prefix: &str) -> Vec<TracedMessage> {
        let trace = fs::read_to_string(self.dir.join(format!("{}_messages.log", self.name)))
            .unwrap_or_default();
        super::trace_messages(&trace)
            .into_iter()
            .filter(|message| message.received && message.start_line().starts_with(prefix))
            .collect()
    }

    /// SIPp's output, errors and the end of its message trace, for assertion messages.
    pub fn report(&self) -> String {
        let read = |suffix: &str| {
            fs::read_to_string(self.dir.join(format!("{}_{suffix}.log", self.name)))
                .unwrap_or_default()
        };
        format!(
            "--- {name} output:\n{output}\n--- {name} errors:\n{errors}\n\
             --- {name} messages (end):\n{messages}",
            name = self.name,
            output = tail(&self.process.output(), 20),
            errors = tail(&read("errors"), 20),
            messages = tail(&read("messages"), 60)
        )
    }
}

/// Fails the test with a clear message when linphonec is missing.
pub fn require_linphonec() {
    let found = Command::new("linphonec")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "linphonec is not installed: run scripts/test, which installs the linphone-cli package"
    );
}

/// A running linphonec that auto-answers (`-a`), takes console commands on its standard
/// input and logs every SIP message at level 6 into `linphonec.log`.
pub struct Linphone {
    process: Process,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Linphone {
    /// Writes `linphonerc` into `linphone/` of the test directory and starts linphonec in
    /// `namespace` as the agent on `Ports::agent`, with audio RTP from `Ports::agent_media`.
    /// Returns once its UDP SIP port is bound, with sound cards replaced by files.
    ///
    /// HOME points into the test directory, because linphonec keeps a history and a ZRTP
    /// cache there. linphonec 5.1.65 starts no SIP transport when it cannot open its
    /// database (by default under `$HOME/.local/share/linphone`, which it does not create),
    /// so `[storage] uri` names one in the test directory.
    pub fn start(namespace: &Namespace, dir: &TestDir, ports: &Ports) -> Linphone {
        require_linphonec();
        let home = dir.join("linphone");
        fs::create_dir_all(&home).expect("create the linphone directory");
        // With network monitoring on, linphonec 5.1.65 declares a loopback-only namespace
        // unreachable about 5 s after it starts and closes its SIP socket.
        let config = format!(
            "[sip]\n\
             sip_port={sip}\n\
             sip_tcp_port=0\n\
             sip_tls_port=0\n\
             bind_address=127.0.0.1\n\
             default_proxy=-1\n\
             auto_net_state_mon=0\n\
             use_ipv6=0\n\
             use_rfc2833=1\n\
             use_info=0\n\
             [rtp]\n\
             audio_rtp_port={media}\n\
             [sound]\n\
             echocancellation=0\n\
             [video]\n\
             enabled=0\n\
             capture=0\n\
             display=0\n\
             [storage]\n\
             uri={database}\n",
            sip = ports.agent(),
            media = ports.agent_media(),
            database = home.join("linphone.db").display(),
        );
        let rc = home.join("linphonerc");
        fs::write(&rc, config).expect("write linphonerc");

        let log = dir.join("linphonec.log");
        let mut command = namespace.command("linphonec");
        command
            .arg("-c")
            .arg(&rc)
            .args(["-a", "-d", "6", "-l"])
            .arg(&log)
            .env("HOME", &home)
            .stdin(Stdio::piped());
        let mut process = Process::spawn("linphonec", command, dir);
        let stdin = process.child.as_mut().and_then(|child| child.stdin.take());
        let mut linphone = Linphone {
            process,
            stdin,
            log,
        };

        let port = ports.agent();
        let ready = wait_until(START, || {
            linphone.process.exited().is_some() || namespace.udp_bound(port)
        });
        assert!(
            ready && linphone.process.exited().is_none(),
            "linphonec did not bind UDP port {port} within {START:?}; its log:\n{}",
            tail(&linphone.log(), 40)
        );
        linphone.command("soundcard use files");
        linphone.expect_output("Using wav files instead of soundcard.");
        linphone
    }

    /// Sends one console command, such as `pause 1`, to linphonec.
    pub fn command(&mut self, line: &str) {
        let stdin = self
            .stdin
            .as_mut()
            .expect("linphonec's standard input is open");
        writeln!(stdin, "{line}").expect("write a command to linphonec");
        stdin.flush().expect("flush linphonec's standard input");
    }

    /// Returns what linphonec printed on its console so far.
    pub fn output(&self) -> String {
        self.process.output()
    }

    /// linphonec's log, with every SIP message it sent and received.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to 10 s for `text` on linphonec's console and fails the test otherwise.
    pub fn expect_output(&self, text: &str) {
        let printed = wait_until(Duration::from_secs(10), || self.output().contains(text));
        assert!(
            printed,
            "linphonec did not print {text:?}; its console:\n{}",
            self.output()
        );
    }

    /// Waits up to 10 s for a console line that contains every one of `parts` and fails
    /// the test otherwise.
    pub fn expect_line(&self, parts: &[&str]) {
        let printed = wait_until(Duration::from_secs(10), || {
            self.output()
                .lines()
                .any(|line| parts.iter().all(|part| line.contains(part)))
        });
        assert!(
            printed,
            "linphonec printed no line with {parts:?}; its console:\n{}",
            self.output()
        );
    }

    /// Waits for the console line that contains `marker` (such as `to sip:beijing`) and
    /// `assigned id` and returns the call id linphonec assigned.
    pub fn call_id_of(&self, marker: &str) -> u32 {
        let mut id = None;
        let found = wait_until(Duration::from_secs(10), || {
            id = self
                .output()
                .lines()
                .filter(|line| line.contains(marker))
                .find_map(|line| line.split("assigned id ").nth(1))
                .and_then(|rest| rest.trim().parse().ok());
            id.is_some()
        });
        assert!(
            found,
            "linphonec assigned no call id for {marker:?}; its console:\n{}",
            self.output()
        );
        id.unwrap_or_default()
    }

    /// Returns the SIP messages in linphonec's log, in the order it sent and received them.
    pub fn messages(&self) -> Vec<TracedMessage> {
        log_messages(&self.log())
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        // Closing the standard input ends linphonec's console; SIGTERM follows in
        // `Process::drop` if it is still running.
        self.stdin.take();
        self.process.wait(Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!("--- linphonec log (end):\n{}", tail(&self.log(), 80));
        }
    }
}

/// Splits a belle-sip log into SIP messages. Each message follows a line that ends in
/// `new bytes from [...]:` (received) or `message sent to [...], size: [...] bytes` (sent)
/// and lasts until the next line that starts with a timestamp.
fn log_messages(log: &str) -> Vec<TracedMessage> {
    let mut messages = Vec::new();
    let mut current: Option<TracedMessage> = None;
    for line in log.lines() {
        let timestamped = line.len() > 4 && line.as_bytes()[..4].iter().all(u8::is_ascii_digit);
        if !timestamped {
            if let Some(message) = current.as_mut()
                && !(message.text.is_empty() && line.trim().is_empty())
            {
                message.text.push_str(line);
                message.text.push('\n');
            }
            continue;
        }
        messages.extend(current.take());
        let received = line.contains("new bytes from [");
        if received || line.contains("message sent to [") {
            current = Some(TracedMessage {
                received,
                text: String::new(),
            });
        }
    }
    messages.extend(current);
    messages
}
