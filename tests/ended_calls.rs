//! Ended calls: for 64·T1 after a call ends the engine still responds to retransmissions
//! on both legs (RFC 3261 §17), and rejects new requests in the ended dialogs with 481.
//! Both peers are plain UDP sockets, so that the test can send the exact retransmissions
//! a lossy network causes.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{EngineSettings, Harness, drain_udp};

/// How long a peer waits for a message the engine should send.
const ARRIVAL: Duration = Duration::from_secs(3);

/// A UDP peer on loopback that sends text messages to the engine and reads its replies.
struct Peer {
    socket: UdpSocket,
    engine: u16,
}

impl Peer {
    fn bind(port: u16, engine: u16) -> Peer {
        let socket = UdpSocket::bind(("127.0.0.1", port)).expect("bind a peer port");
        Peer { socket, engine }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().expect("peer address").port()
    }

    fn send(&self, message: &str) {
        self.socket
            .send_to(message.as_bytes(), ("127.0.0.1", self.engine))
            .expect("send to the engine");
    }

    /// Reads datagrams until one starts with `start`, skipping others (100 Trying, 180).
    fn expect(&self, start: &str) -> String {
        let deadline = Instant::now() + ARRIVAL;
        let mut buffer = [0u8; 8192];
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no message starting with {start:?} within {ARRIVAL:?}; skipped: {skipped:?}"
            );
            self.socket
                .set_read_timeout(Some(left))
                .expect("set a read timeout");
            let Ok(length) = self.socket.recv(&mut buffer) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
            if text.starts_with(start) {
                return text;
            }
            skipped.push(text.lines().next().unwrap_or_default().to_owned());
        }
    }

    /// Asserts that no message starting with `start` arrives within `window`.
    fn expect_none(&self, start: &str, window: Duration) {
        for (datagram, _) in drain_udp(&self.socket, window) {
            let text = String::from_utf8_lossy(&datagram);
            assert!(
                !text.starts_with(start),
                "unexpected message after the call ended:\n{text}"
            );
        }
    }
}

/// Returns the values of header `name` in `message`, in order.
fn headers<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(field, _)| field.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
        .collect()
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    headers(message, name)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no {name} header in:\n{message}"))
}

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

/// The caller's side of one dialog: what its requests carry.
struct CallerDialog {
    port: u16,
    engine: u16,
    call_id: String,
    /// The To header of the engine's final response, with the engine's tag.
    to: String,
}

impl CallerDialog {
    fn request(&self, method: &str, branch: &str, seq: u32, to: &str) -> String {
        format!(
            "{method} sip:agent@127.0.0.1:{engine} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
             From: <sip:13800000000@127.0.0.1:{port}>;tag=caller-tag\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {seq} {method}\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            engine = self.engine,
            port = self.port,
            call_id = self.call_id,
        )
    }
}

fn caller_invite(caller: &Peer, call_id: &str) -> String {
    let body = sdp(caller.port() + 2);
    format!(
        "INVITE sip:agent@127.0.0.1:{engine} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-ended-invite;rport\r\n\
         From: <sip:13800000000@127.0.0.1:{port}>;tag=caller-tag\r\n\
         To: <sip:agent@127.0.0.1:{engine}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:13800000000@127.0.0.1:{port}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {length}\r\n\r\n{body}",
        engine = caller.engine,
        port = caller.port(),
        length = body.len(),
    )
}

/// Builds the agent's response to `request`: its Via, From, Call-ID and CSeq, and its To
/// with the agent's tag.
fn agent_response(agent: &Peer, request: &str, status: &str, body: Option<&str>) -> String {
    let mut response = format!("SIP/2.0 {status}\r\n");
    for via in headers(request, "Via") {
        response.push_str(&format!("Via: {via}\r\n"));
    }
    let to = header(request, "To");
    let to = if to.contains(";tag=") {
        to.to_owned()
    } else {
        format!("{to};tag=agent-tag")
    };
    response.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        header(request, "From"),
        header(request, "Call-ID"),
        header(request, "CSeq"),
    ));
    response.push_str(&format!(
        "Contact: <sip:agent@127.0.0.1:{}>\r\n",
        agent.port()
    ));
    match body {
        Some(body) => response.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => response.push_str("Content-Length: 0\r\n\r\n"),
    }
    response
}

/// A call on its way: the engine, both peers, and the INVITE the agent received.
struct Placed {
    h: Harness,
    caller: Peer,
    agent: Peer,
    offer: String,
}

/// Starts the engine for `test`, binds both peers and sends the caller's INVITE with
/// `call_id` until it reaches the agent.
fn place_call(test: &str, call_id: &str) -> Placed {
    let h = Harness::start(test, EngineSettings::default());
    let caller = Peer::bind(h.ports.caller(), h.ports.engine());
    let agent = Peer::bind(h.ports.agent(), h.ports.engine());
    caller.send(&caller_invite(&caller, call_id));
    let offer = agent.expect("INVITE ");
    Placed {
        h,
        caller,
        agent,
        offer,
    }
}

#[test]
fn ended_call_answers_retransmissions() {
    // Set up: INVITE through both legs, 200 and ACK on both.
    let call_id = "ended-retransmissions@127.0.0.1";
    let Placed {
        h,
        caller,
        agent,
        offer,
    } = place_call("ended_call_answers_retransmissions", call_id);
    let answer = agent_response(&agent, &offer, "200 OK", Some(&sdp(agent.port() + 2)));
    agent.send(&answer);
    agent.expect("ACK ");
    let ok = caller.expect("SIP/2.0 200");
    let dialog = CallerDialog {
        port: caller.port(),
        engine: h.ports.engine(),
        call_id: call_id.to_owned(),
        to: header(&ok, "To").to_owned(),
    };
    caller.send(&dialog.request("ACK", "z9hG4bK-ended-ack", 1, &dialog.to));

    // The caller hangs up, and the agent gets its BYE and sends 200.
    let bye = dialog.request("BYE", "z9hG4bK-ended-bye", 2, &dialog.to);
    caller.send(&bye);
    let bye_ok = caller.expect("SIP/2.0 200");
    assert_eq!(header(&bye_ok, "CSeq"), "2 BYE");
    let agent_bye = agent.expect("BYE ");
    agent.send(&agent_response(&agent, &agent_bye, "200 OK", None));
    std::thread::sleep(Duration::from_millis(300));

    // The caller's BYE again, as if the 200 had been lost: the same 200 comes back.
    caller.send(&bye);
    let again = caller.expect("SIP/2.0 200");
    assert_eq!(header(&again, "CSeq"), "2 BYE");
    assert_eq!(header(&again, "To"), header(&bye_ok, "To"));

    // The agent's 200 to the INVITE again, as if the ACK had been lost: the ACK comes back.
    agent.send(&answer);
    let ack = agent.expect("ACK ");
    assert_eq!(header(&ack, "Call-ID"), header(&offer, "Call-ID"));
    assert!(header(&ack, "CSeq").ends_with(" ACK"), "{ack}");

    // A new request in the ended dialog gets 481.
    caller.send(&dialog.request("INFO", "z9hG4bK-ended-info", 3, &dialog.to));
    let no_dialog = caller.expect("SIP/2.0 481");
    assert_eq!(header(&no_dialog, "CSeq"), "3 INFO");

    // A CANCEL of the answered INVITE still finds its transaction: 200, no effect.
    let invite_to = format!("<sip:agent@127.0.0.1:{}>", h.ports.engine());
    let cancel = dialog.request("CANCEL", "z9hG4bK-ended-invite", 1, &invite_to);
    caller.send(&cancel);
    let cancelled = caller.expect("SIP/2.0 200");
    assert_eq!(header(&cancelled, "CSeq"), "1 CANCEL");

    agent.expect_none("BYE ", Duration::from_millis(300));
    h.stop();
}

#[test]
fn rejected_call_repeats_final_until_ack() {
    let call_id = "ended-rejected@127.0.0.1";
    let Placed {
        h,
        caller,
        agent,
        offer,
    } = place_call("rejected_call_repeats_final_until_ack", call_id);
    let busy = agent_response(&agent, &offer, "486 Busy Here", None);
    agent.send(&busy);
    let agent_ack = agent.expect("ACK ");
    assert_eq!(header(&agent_ack, "CSeq"), "1 ACK");

    // The caller holds back its ACK: timer G sends the 486 again (T1 = 500 ms).
    let first = caller.expect("SIP/2.0 486");
    let repeated = caller.expect("SIP/2.0 486");
    assert_eq!(header(&repeated, "To"), header(&first, "To"));

    // The agent's 486 again, as if the ACK had been lost: the same ACK comes back.
    agent.send(&busy);
    let again = agent.expect("ACK ");
    assert_eq!(header(&again, "Via"), header(&agent_ack, "Via"));

    // The ACK ends the caller's INVITE transaction: no more 486.
    let dialog = CallerDialog {
        port: caller.port(),
        engine: h.ports.engine(),
        call_id: call_id.to_owned(),
        to: header(&first, "To").to_owned(),
    };
    caller.send(&dialog.request("ACK", "z9hG4bK-ended-invite", 1, &dialog.to));
    // Anything sent before the ACK arrived is read first, then the window must stay quiet.
    drain_udp(&caller.socket, Duration::from_millis(100));
    caller.expect_none("SIP/2.0 486", Duration::from_millis(2500));
    h.stop();
}
