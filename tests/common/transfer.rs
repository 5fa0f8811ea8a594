//! Helpers for the three-party transfer tests (caller, agent, remote hotline): SIPp remote
//! hotlines, the transfer records the engine writes, a minimal HTTP/1.1 client for the
//! control API, and RTP counts from a loopback capture.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::pcap::{Capture, Datagram};
use super::{
    CONTROL_TOKEN, Harness, Sipp, SippBuilder, TestDir, TracedMessage, trace_messages, wait_until,
};

/// RTP telephone-event payload type of the RFC 4733 captures and the scenarios' SDP.
pub const TELEPHONE_EVENT: u8 = 101;

/// Copies a shipped scenario into the test directory without the lines from
/// `<!-- begin NAME` to `<!-- end NAME -->`, and returns the copy's path.
pub fn render_without_block(dir: &TestDir, scenario: &str, name: &str) -> PathBuf {
    let text = fs::read_to_string(super::scenario(scenario)).expect("read the scenario");
    let begin = format!("  <!-- begin {name}");
    let end = format!("  <!-- end {name} -->\n");
    let start = text
        .find(&begin)
        .unwrap_or_else(|| panic!("{scenario} has no {begin:?}"));
    let stop = text[start..]
        .find(&end)
        .map(|offset| start + offset + end.len())
        .unwrap_or_else(|| panic!("{scenario} has no {end:?}"));
    let path = dir.join(&format!("without_{name}_{scenario}"));
    fs::write(&path, format!("{}{}", &text[..start], &text[stop..]))
        .expect("write the rendered scenario");
    path
}

impl Harness {
    /// Builds a SIPp remote hotline named `remote<index>` on `Ports::remote(index)`.
    pub fn remote(&self, index: u16, scenario: &Path) -> SippBuilder {
        SippBuilder::agent(
            &self.dir,
            &format!("remote{index}"),
            scenario,
            self.ports.remote(index),
            self.ports.remote_media(index),
        )
    }

    /// Waits until the caller scenario has created `call_up` (its ACK went out).
    pub fn wait_call_up(&self, caller: &Sipp) {
        let call_up = self.dir.join("call_up");
        let up = wait_until(Duration::from_secs(15), || call_up.exists());
        assert!(up, "the call was not answered:\n{}", caller.report());
    }

    /// Waits up to 10 s until `transfers.jsonl` contains `count` records and returns them.
    pub fn transfer_records(&self, count: usize) -> Vec<Value> {
        let path = self.dir.join("transfers.jsonl");
        let mut records = Vec::new();
        wait_until(Duration::from_secs(10), || {
            records = read_records(&path);
            records.len() >= count
        });
        assert_eq!(
            records.len(),
            count,
            "expected {count} transfer records in {}, found {records:#?}",
            path.display()
        );
        records
    }

    /// Reads the transfer records written so far, without waiting.
    pub fn transfer_records_now(&self) -> Vec<Value> {
        read_records(&self.dir.join("transfers.jsonl"))
    }

    /// Sends one request to the control API with the test token and returns the status
    /// and the JSON body (`Value::Null` when the body is empty or not JSON).
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        http_request(self.ports.control(), method, path, body)
    }

    /// Polls `GET /v1/transfers/{id}` until its status is `status`, for up to `limit`.
    /// Returns the last body seen.
    pub fn wait_transfer_status(&self, id: &str, status: &str, limit: Duration) -> Value {
        let mut last = Value::Null;
        let reached = wait_until(limit, || {
            let (code, body) = self.control("GET", &format!("/v1/transfers/{id}"), None);
            let done = code == 200 && body["status"] == status;
            last = body;
            done
        });
        assert!(
            reached,
            "transfer {id} did not reach {status} within {limit:?}; last seen: {last}"
        );
        last
    }
}

fn read_records(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("a transfer record is not JSON ({error}): {line}"))
        })
        .collect()
}

/// Sends one HTTP/1.1 request over a new connection, closed after the response. Panics
/// on I/O errors, which are test failures.
pub fn http_request(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|error| panic!("connect to the control API on port {port}: {error}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };

    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: Bearer {CONTROL_TOKEN}\r\n{content_type}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .expect("send the HTTP request");

    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("read the HTTP response");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    // A chunked body is not expected from the API; reading JSON from the raw body is
    // enough for Content-Length bodies.
    let json = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    (status, json)
}

/// Returns the messages a SIPp instance received whose start line starts with `prefix`.
pub fn all_received(sipp: &Sipp, prefix: &str) -> Vec<TracedMessage> {
    trace_messages(&sipp.messages())
        .into_iter()
        .filter(|message| message.received && message.start_line().starts_with(prefix))
        .collect()
}

/// Returns the body of a traced message: the text after the first blank line.
pub fn body(message: &TracedMessage) -> &str {
    message
        .text
        .split_once("\n\n")
        .map_or("", |(_, body)| body.trim())
}

/// Returns every value of the headers called `name` (case-insensitive), one per header line.
pub fn header_values(message: &TracedMessage, name: &str) -> Vec<String> {
    message
        .text
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let (header, value) = line.split_once(':')?;
            header
                .trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .collect()
}

/// Returns whether `datagram` is RTP (not RTCP, whose packet types 200-204 read as payload types
/// 72-76, RFC 5761 §4) from port `from` to port `to`.
pub fn is_rtp(datagram: &Datagram, from: u16, to: u16) -> bool {
    datagram.source_port == from
        && datagram.destination_port == to
        && datagram
            .rtp_payload_type()
            .is_some_and(|payload_type| !(72..=76).contains(&payload_type))
}

/// Counts RTP datagrams from `from` to `to` in `datagrams`.
pub fn count_rtp(datagrams: &[Datagram], from: u16, to: u16) -> usize {
    datagrams
        .iter()
        .filter(|datagram| is_rtp(datagram, from, to))
        .count()
}

/// Returns the SDP `m=audio` port in the first message a SIPp instance received that starts with
/// `prefix`, such as `INVITE` or `SIP/2.0 200`.
pub fn received_audio_port(sipp: &Sipp, prefix: &str) -> u16 {
    super::first_received(sipp, prefix)
        .and_then(|message| message.audio_port())
        .unwrap_or_else(|| panic!("no {prefix} with an m=audio port:\n{}", sipp.report()))
}

/// Returns the index of the last datagram in `datagrams` that matches `matches`.
pub fn last_index(datagrams: &[Datagram], matches: impl Fn(&Datagram) -> bool) -> Option<usize> {
    datagrams.iter().rposition(matches)
}

/// Returns the index of the first datagram in `datagrams` that matches `matches`.
pub fn first_index(datagrams: &[Datagram], matches: impl Fn(&Datagram) -> bool) -> Option<usize> {
    datagrams.iter().position(matches)
}

/// Returns whether `datagram` is a SIP message from port `from` whose start line starts with
/// `prefix`, such as `SIP/2.0 486` or `CANCEL`.
pub fn is_sip(datagram: &Datagram, from: u16, prefix: &str) -> bool {
    datagram.source_port == from && datagram.payload.starts_with(prefix.as_bytes())
}

/// Returns the RTP payload of a datagram, without its 12-byte fixed header.
fn rtp_body(datagram: &Datagram) -> &[u8] {
    datagram.payload.get(12..).unwrap_or_default()
}

/// Counts the RTP packets that the relay port `caller_relay` sent to the caller's
/// `caller_media` after index `after` and whose payload is one the caller itself sent:
/// audio that came back through an echoing peer, and neither ringback nor silence.
pub fn echoed_to_caller(
    datagrams: &[Datagram],
    caller_media: u16,
    caller_relay: u16,
    after: usize,
) -> usize {
    let sent: std::collections::HashSet<&[u8]> = datagrams
        .iter()
        .filter(|datagram| is_rtp(datagram, caller_media, caller_relay))
        .map(rtp_body)
        .filter(|body| body.len() > 4)
        .collect();
    datagrams
        .iter()
        .skip(after + 1)
        .filter(|datagram| is_rtp(datagram, caller_relay, caller_media))
        .filter(|datagram| sent.contains(rtp_body(datagram)))
        .count()
}

/// RTP packets that both directions of a bridge must carry at least, counted after the
/// bridge: about 1.5 s of `g711a.pcap`, which contains 236 packets over 7 s.
pub const MIN_BRIDGED_PACKETS: usize = 50;

/// Asserts that after index `after` the caller's audio reached `peer_media` through the
/// relay port `peer_relay`, and that the peer's echo of it came back to the caller.
pub fn assert_caller_talks_to(
    datagrams: &[Datagram],
    peer: &str,
    (caller_media, caller_relay): (u16, u16),
    (peer_media, peer_relay): (u16, u16),
    after: usize,
) {
    let to_peer = datagrams
        .iter()
        .skip(after + 1)
        .filter(|datagram| is_rtp(datagram, peer_relay, peer_media))
        .count();
    let from_peer = datagrams
        .iter()
        .skip(after + 1)
        .filter(|datagram| is_rtp(datagram, peer_media, peer_relay))
        .count();
    let echoed = echoed_to_caller(datagrams, caller_media, caller_relay, after);
    let counts = format!(
        "after datagram {after}: relay -> {peer} {to_peer}, {peer} -> relay {from_peer}, \
         {peer}'s echo -> caller {echoed}"
    );
    assert!(to_peer >= MIN_BRIDGED_PACKETS, "{counts}");
    assert!(from_peer >= MIN_BRIDGED_PACKETS, "{counts}");
    assert!(echoed >= MIN_BRIDGED_PACKETS, "{counts}");
}

/// Asserts that a transfer record has each `(field, value)`, naming the field that differs.
pub fn assert_record(record: &Value, expected: &[(&str, Value)]) {
    for (field, value) in expected {
        assert_eq!(
            &record[*field], value,
            "transfer record field {field} differs in {record:#}"
        );
    }
}

/// Asserts what every bridged transfer leaves behind in the SIP traces: the agent got
/// exactly one BYE (the engine's, with the Reason of a transfer), the caller none, and the
/// remote hotline one when the caller hung up.
pub fn assert_bridged_ladder(caller: &Sipp, agent: &Sipp, remote: &Sipp) {
    let agent_byes = all_received(agent, "BYE");
    assert_eq!(
        agent_byes.len(),
        1,
        "the agent should get one BYE:\n{}",
        agent.report()
    );
    let reason = agent_byes[0].header("Reason").unwrap_or_default();
    assert!(
        reason.contains("cause=200"),
        "the agent's BYE has no Reason of a completed transfer:\n{}",
        agent_byes[0].text
    );
    assert!(
        all_received(caller, "BYE").is_empty(),
        "the caller was hung up on:\n{}",
        caller.report()
    );
    assert_eq!(
        all_received(remote, "BYE").len(),
        1,
        "the remote hotline should get the caller's BYE:\n{}",
        remote.report()
    );
}

impl Harness {
    /// Starts a capture of every UDP port of the test's block (SIP and RTP), or prints
    /// why it cannot and returns `None`.
    pub fn capture(&self, test: &str) -> Option<Capture> {
        match Capture::start(&self.dir, self.ports.engine(), self.ports.relay_max()) {
            Ok(capture) => Some(capture),
            Err(reason) => {
                eprintln!("RTP is not checked in {test}: {reason}");
                None
            }
        }
    }

    /// Asserts that the caller talks to remote hotline `index` once the relay started
    /// sending to it, at the port of the first INVITE the remote received.
    pub fn assert_caller_talks_to_remote(
        &self,
        datagrams: &[Datagram],
        caller: &Sipp,
        remote: &Sipp,
        index: u16,
    ) {
        let remote_relay = received_audio_port(remote, "INVITE");
        self.assert_caller_talks_to_remote_at(datagrams, caller, index, remote_relay);
    }

    /// Asserts that the caller talks to remote hotline `index` through relay port
    /// `remote_relay` once the relay started sending to it.
    pub fn assert_caller_talks_to_remote_at(
        &self,
        datagrams: &[Datagram],
        caller: &Sipp,
        index: u16,
        remote_relay: u16,
    ) {
        let caller_relay = received_audio_port(caller, "SIP/2.0 200");
        let remote_media = self.ports.remote_media(index);
        let bridged = first_index(datagrams, |datagram| {
            is_rtp(datagram, remote_relay, remote_media)
        })
        .unwrap_or_else(|| panic!("the relay sent no RTP to the remote hotline {index}"));
        assert_caller_talks_to(
            datagrams,
            "remote",
            (self.ports.caller_media(), caller_relay),
            (remote_media, remote_relay),
            bridged,
        );
    }

    /// Asserts that after datagram `after` the caller and the echoing agent hear each
    /// other again.
    pub fn assert_caller_back_with_agent(
        &self,
        datagrams: &[Datagram],
        caller: &Sipp,
        agent: &Sipp,
        after: usize,
    ) {
        let caller_relay = received_audio_port(caller, "SIP/2.0 200");
        let agent_relay = received_audio_port(agent, "INVITE");
        assert_caller_talks_to(
            datagrams,
            "agent",
            (self.ports.caller_media(), caller_relay),
            (self.ports.agent_media(), agent_relay),
            after,
        );
    }
}

/// Reads the datagrams already waiting on `socket` within 50 ms.
pub fn drain_udp_now(socket: &std::net::UdpSocket) -> Vec<Vec<u8>> {
    super::drain_udp(socket, Duration::from_millis(50))
        .into_iter()
        .map(|(datagram, _)| datagram)
        .collect()
}
