//! SIP message costs on the per-message path: framing, normalisation and parsing of a
//! realistic INVITE, 200 OK and BYE, encoding them back to bytes, and the dispatcher's
//! work on one in-dialog request as far as the public API reaches it.
//!
//! The messages come from the parser's test corpus (`src/sip/corpus/`), so they carry
//! the headers real switches and phones send.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotline_b2bua::dialog::Dialog;
use hotline_b2bua::mailbox::{Mailbox, mailbox};
use hotline_b2bua::session::{CallEvent, LegId, ReceivedRequest, Route, SessionTable};
use hotline_b2bua::sip::{self, Branch, CallId, Headers, Message, Method, Response};
use hotline_b2bua::transport::{Protocol, Target};

const INVITE: &[u8] = include_bytes!("../src/sip/corpus/invite_sdp.sip");
const OK: &[u8] = include_bytes!("../src/sip/corpus/response_200_invite.sip");
const BYE: &[u8] = include_bytes!("../src/sip/corpus/bye.sip");

/// Calls in the session table while the per-message path runs: one Call-ID per leg.
const CALLS_UP: usize = 1_000;

fn parse_encode(c: &mut Criterion) {
    let corpus: [(&str, &[u8]); 3] = [("invite", INVITE), ("200", OK), ("bye", BYE)];

    let mut group = c.benchmark_group("sip/parse");
    for (name, bytes) in corpus {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| sip::parse(black_box(bytes), true).map(drop))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("sip/encode");
    for (name, bytes) in corpus {
        let Ok(message) = sip::parse(bytes, true) else {
            panic!("corpus message {name} does not parse");
        };
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| match black_box(&message) {
                Message::Request(request) => request.encode().len(),
                Message::Response(response) => response.encode().len(),
            })
        });
    }
    group.finish();

    c.bench_function("sip/parse invite, read via, encode", |b| {
        b.iter(|| {
            let Ok(Message::Request(request)) = sip::parse(black_box(INVITE), true) else {
                return 0;
            };
            let branch_len = request
                .top_via()
                .map(|via| via.branch().map_or(0, str::len));
            request.encode().len() + branch_len.unwrap_or(0)
        })
    });
}

/// Builds a session table with `CALLS_UP` calls, two Call-IDs each, plus the call the BYE in
/// the corpus belongs to. Returns the table and the receiver of that call's task.
fn table_with_calls() -> (SessionTable, Mailbox<CallEvent>, Dialog) {
    let table = SessionTable::new();
    let (idle_sender, _) = mailbox(1);
    for call in 0..CALLS_UP {
        let session = table.next_id();
        for (leg, suffix) in [(LegId::A, 'a'), (LegId::B, 'b')] {
            let route = Route {
                session,
                leg,
                sender: idle_sender.clone(),
            };
            table.insert(CallId::new(&format!("{call:08x}-{suffix}@bench")), route);
        }
    }

    let Ok(Message::Request(bye)) = sip::parse(BYE, true) else {
        panic!("corpus BYE does not parse");
    };
    let Ok(call_id) = bye.call_id() else {
        panic!("corpus BYE has no Call-ID");
    };
    let (sender, receiver) = mailbox(64);
    let route = Route {
        session: table.next_id(),
        leg: LegId::A,
        sender,
    };
    table.insert(call_id, route);

    let agent_uri = "sip:agent@127.0.0.1:5070"
        .parse()
        .unwrap_or_else(|_| panic!("agent URI does not parse"));
    let mut agent = Dialog::new_uac(
        CallId::new("00000000-b@bench"),
        "<sip:12345@127.0.0.1>".to_owned(),
        "<sip:agent@127.0.0.1:5070>".to_owned(),
        agent_uri,
    );
    let Ok(Message::Response(answer)) = sip::parse(OK, true) else {
        panic!("corpus 200 does not parse");
    };
    let _ = agent.on_invite_response(&answer);
    (table, receiver, agent)
}

/// One BYE from the caller through the engine: parse, top Via and branch, mandatory
/// headers, Call-ID lookup among `CALLS_UP` calls, hand-off to the call task, then the
/// call task's work: the 200 to the caller and the BYE built for the agent's leg, both
/// encoded. Socket I/O and the transaction machines are left out.
fn per_message(c: &mut Criterion) {
    let (table, mut receiver, mut agent) = table_with_calls();
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)), 5060);

    c.bench_function("engine/bye through both legs", |b| {
        b.iter(|| {
            // Dispatcher, on the receive task.
            let Ok(Message::Request(mut request)) = sip::parse(black_box(BYE), true) else {
                return 0;
            };
            let Ok(via) = request.top_via() else { return 0 };
            // The Via carries rport, so responses go to the source.
            let response_target = Target {
                addr: source,
                protocol: Protocol::Udp,
            };
            black_box(&via);
            let mandatory = request.from_header().is_ok()
                && request.to_header().is_ok()
                && request.cseq().is_ok()
                && request.max_forwards().is_ok();
            request.stamp_top_via(source);
            let Ok(call_id) = request.call_id() else {
                return 0;
            };
            let Some(route) = table.get(&call_id) else {
                return 0;
            };
            let event = CallEvent::Request(Box::new(ReceivedRequest {
                request,
                source,
                protocol: Protocol::Udp,
                response_target,
                parties: None,
            }));
            if route.sender.try_send(event).is_err() {
                return 0;
            }

            // Call task.
            let Some(CallEvent::Request(received)) = receiver.try_recv() else {
                return 0;
            };
            let request = received.request;
            let branch = request.branch().ok();
            let ok = Response::to_request(&request, 200, "", None).encode();
            let mut bye = agent.request(Method::Bye, None);
            bye.prepend_header(
                "Via",
                format!(
                    "SIP/2.0/UDP 127.0.0.1:5060;branch={};rport",
                    Branch::generate()
                ),
            );
            if let Some(reason) = request.header("Reason").map(str::to_owned) {
                bye.push_header("Reason", reason);
            }
            let sent = bye.encode();
            ok.len() + sent.len() + usize::from(mandatory) + branch.map_or(0, |b| b.as_str().len())
        })
    });

    let lookups: Arc<[CallId]> = (0..CALLS_UP)
        .map(|call| CallId::new(&format!("{call:08x}-a@bench")))
        .collect();
    let mut next = 0;
    c.bench_function("engine/call-id lookup among 1000 calls", |b| {
        b.iter(|| {
            next = (next + 1) % lookups.len();
            table
                .get(black_box(&lookups[next]))
                .map(|route| route.session)
        })
    });
}

criterion_group!(benches, parse_encode, per_message);
criterion_main!(benches);
