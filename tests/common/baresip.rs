//! baresip as a real agent: a generated configuration directory, the process, and its
//! `ctrl_tcp` control socket (netstrings that carry JSON commands).
//!
//! The agent answers every call by itself (`answermode=auto`), sends a 440 Hz sine from
//! `ausine` encoded as G.711 and plays what it receives into an `aubridge` device that
//! nothing reads, so it needs no sound card.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Ports, TestDir, send_signal, tail, tcp_port_taken, wait_until};

/// How long baresip may take to load its modules and open its control port.
const START: Duration = Duration::from_secs(10);

/// Fails the test with a clear message when baresip is missing.
pub fn require_baresip() {
    let found = Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "baresip is not installed: run scripts/test, which installs the baresip package"
    );
}

/// A running baresip, stopped with SIGTERM by its pid on drop.
pub struct Baresip {
    child: Option<Child>,
    log: PathBuf,
    control: u16,
}

impl Baresip {
    /// Writes a configuration into `baresip/` of the test directory and starts baresip as
    /// `sip:agent@127.0.0.1:<Ports::agent>`, with RTP on `Ports::agent_media` and the next
    /// three ports and its control socket on `Ports::agent_control`. Returns once the
    /// control socket accepts connections.
    pub fn start(dir: &TestDir, ports: &Ports) -> Baresip {
        require_baresip();
        let config_dir = dir.join("baresip");
        fs::create_dir_all(&config_dir).expect("create the baresip directory");
        let media = ports.agent_media();
        // ausine only produces 48 kHz stereo; baresip resamples it for G.711.
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip}\n\
             net_interface 127.0.0.1\n\
             rtp_ports {media}-{media_last}\n\
             audio_source ausine,440\n\
             audio_player aubridge,nowhere\n\
             audio_alert aubridge,alerts\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module ausine.so\n\
             module aubridge.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{control}\n",
            sip = ports.agent(),
            media_last = media + 3,
            control = ports.agent_control(),
        );
        fs::write(config_dir.join("config"), config).expect("write the baresip config");
        let account = format!(
            "<sip:agent@127.0.0.1:{}>;regint=0;answermode=auto;audio_codecs=PCMA,PCMU\n",
            ports.agent()
        );
        fs::write(config_dir.join("accounts"), account).expect("write the baresip accounts");

        let log = dir.join("baresip.log");
        let output = fs::File::create(&log).expect("create baresip.log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&config_dir)
            .arg("-v")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the baresip.log handle"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start baresip: {error}"));
        let mut baresip = Baresip {
            child: Some(child),
            log,
            control: ports.agent_control(),
        };
        let control = ports.agent_control();
        let ready = wait_until(START, || baresip.exited() || tcp_port_taken(control));
        assert!(
            ready && !baresip.exited(),
            "baresip did not open its control port {control}; its log:\n{}",
            baresip.log()
        );
        baresip
    }

    fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_some(),
            None => true,
        }
    }

    /// Everything baresip printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs one command through `ctrl_tcp`, such as `hangup` or `listcalls`, and returns
    /// the `data` of the response. Panics when baresip answers with `ok: false`.
    pub fn command(&self, command: &str, params: &str) -> String {
        let request = serde_json::json!({
            "command": command,
            "params": params,
            "token": "test",
        })
        .to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.control))
            .unwrap_or_else(|error| panic!("connect to baresip's control port: {error}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set a read timeout");
        stream
            .write_all(format!("{}:{request},", request.len()).as_bytes())
            .expect("send the command to baresip");

        // Responses and events arrive as netstrings, "<length>:<JSON>,". Events about
        // calls may come before the response.
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        let response = loop {
            if let Some((json, rest)) = netstring(&received) {
                let message: serde_json::Value =
                    serde_json::from_slice(json).unwrap_or_else(|error| {
                        panic!("baresip sent a message that is not JSON: {error}")
                    });
                received = rest.to_vec();
                if message["response"] == true {
                    break message;
                }
                continue;
            }
            let length = stream
                .read(&mut buffer)
                .unwrap_or_else(|error| panic!("read baresip's response to {command}: {error}"));
            assert!(length > 0, "baresip closed the control connection");
            received.extend_from_slice(&buffer[..length]);
        };
        assert_eq!(
            response["ok"], true,
            "baresip refused {command}: {response}"
        );
        response["data"].as_str().unwrap_or_default().to_owned()
    }

    /// Returns the number of calls in baresip's "Active calls (N)" listing.
    pub fn active_calls(&self) -> usize {
        let listing = self.command("listcalls", "");
        listing
            .split("Active calls (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("unexpected listcalls output: {listing:?}"))
    }

    /// Waits up to `limit` for `text` to appear in baresip's log.
    pub fn wait_for_log(&self, text: &str, limit: Duration) -> bool {
        wait_until(limit, || self.log().contains(text))
    }
}

/// Splits a complete netstring at the start of `data` into its payload and what follows.
fn netstring(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = data.iter().position(|byte| *byte == b':')?;
    let length: usize = std::str::from_utf8(&data[..colon]).ok()?.parse().ok()?;
    let payload = data.get(colon + 1..colon + 1 + length)?;
    let rest = data.get(colon + 1 + length..)?.strip_prefix(b",")?;
    Some((payload, rest))
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
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
        if std::thread::panicking() {
            eprintln!("baresip log:\n{}", tail(&self.log(), 60));
        }
    }
}
