//! Corpus tests: real-world messages run through framing, normalisation, rsip and the
//! module's own URI and header parsers.
//!
//! Every `*.sip` file in this directory is a raw datagram with CRLF line ends, as phones,
//! PBXs, proxies, gateways and carrier trunks send them. When a message from the field is
//! parsed wrongly, add it here as a new file with a test for the fault. The common tests
//! pick up new files by themselves.

use std::fs;
use std::path::PathBuf;

use rsip::prelude::*;

use super::{Datagram, FrameError, StreamFramer, StreamItem, frame_datagram};
use crate::sip::headers::{
    CSeq, Event, HistoryInfo, HistoryTarget, MaxForwards, MinSe, PAssertedIdentity, Reason,
    ReasonProtocol, ReferTo, ReferredBy, Refresher, SessionExpires, SubscriptionState,
    SubscriptionStatus, UserToUser, parse_sipfrag_status,
};
use crate::sip::normalize::normalize;
use crate::sip::uri::{Host, NameAddr, Rport, Scheme, Transport, Uri, Via};

/// Files whose framing must fail, with the expected error.
const BROKEN: &[(&str, FrameError)] = &[(
    "datagram_short_body.sip",
    FrameError::BodyTooShort {
        declared: 257,
        actual: 217,
    },
)];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/sip/corpus")
}

fn corpus_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sip"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn raw(name: &str) -> Vec<u8> {
    fs::read(corpus_dir().join(name)).unwrap()
}

/// Frames, normalises and parses one corpus file.
fn parse(name: &str) -> rsip::SipMessage {
    let datagram = raw(name);
    let Datagram::Message(framed) = frame_datagram(&datagram).unwrap() else {
        panic!("{name}: keep-alive");
    };
    let normalized = normalize(framed).unwrap();
    rsip::SipMessage::try_from(&normalized[..]).unwrap()
}

/// Returns the values of every header named `name`, in order.
fn header_values(message: &rsip::SipMessage, name: &str) -> Vec<String> {
    message
        .headers()
        .iter()
        .filter_map(|header| {
            let line = header.to_string();
            let (header_name, value) = line.split_once(':')?;
            header_name
                .trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .collect()
}

fn header_value(message: &rsip::SipMessage, name: &str) -> String {
    let values = header_values(message, name);
    assert_eq!(values.len(), 1, "one {name} header expected");
    values.into_iter().next().unwrap()
}

#[test]
fn corpus_is_not_empty() {
    assert!(corpus_files().len() >= 20);
}

#[test]
fn corpus_messages_parse() {
    for (name, datagram) in corpus_files() {
        if let Some((_, expected)) = BROKEN.iter().find(|(broken, _)| *broken == name) {
            assert_eq!(frame_datagram(&datagram).as_ref(), Err(expected), "{name}");
            continue;
        }
        let Ok(Datagram::Message(framed)) = frame_datagram(&datagram) else {
            panic!("{name}: framing failed");
        };
        let normalized = normalize(framed).unwrap_or_else(|e| panic!("{name}: {e}"));
        let message = rsip::SipMessage::try_from(&normalized[..])
            .unwrap_or_else(|e| panic!("{name}: rsip failed: {e}"));

        assert!(message.via_header().is_ok(), "{name}: Via");
        assert!(message.call_id_header().is_ok(), "{name}: Call-ID");
        assert!(message.from_header().is_ok(), "{name}: From");
        assert!(message.to_header().is_ok(), "{name}: To");
        assert!(message.cseq_header().is_ok(), "{name}: CSeq");

        for via in header_values(&message, "Via") {
            Via::parse_list(&via).unwrap_or_else(|e| panic!("{name}: Via {via:?}: {e}"));
        }
        for header in ["From", "To", "Contact"] {
            for value in header_values(&message, header) {
                value
                    .parse::<NameAddr>()
                    .unwrap_or_else(|e| panic!("{name}: {header} {value:?}: {e}"));
            }
        }
        header_value(&message, "CSeq")
            .parse::<CSeq>()
            .unwrap_or_else(|e| panic!("{name}: CSeq: {e}"));
    }
}

#[test]
fn corpus_bodies_match_content_length() {
    for (name, datagram) in corpus_files() {
        let Ok(Datagram::Message(framed)) = frame_datagram(&datagram) else {
            continue;
        };
        let message = rsip::SipMessage::try_from(&normalize(framed).unwrap()[..]).unwrap();
        let declared = header_value(&message, "Content-Length");
        assert_eq!(message.body().len().to_string(), declared, "{name}");
    }
}

#[test]
fn corpus_frames_on_streams() {
    for (name, datagram) in corpus_files() {
        let Ok(Datagram::Message(framed)) = frame_datagram(&datagram) else {
            continue;
        };
        let mut framer = StreamFramer::new();
        framer.extend(b"\r\n\r\n");
        framer.extend(framed);
        framer.extend(framed);
        assert_eq!(framer.next_item(), Ok(Some(StreamItem::Ping)), "{name}");
        for _ in 0..2 {
            let Ok(Some(StreamItem::Message(message))) = framer.next_item() else {
                panic!("{name}: stream framing failed");
            };
            assert_eq!(&message[..], framed, "{name}");
        }
        assert_eq!(framer.next_item(), Ok(None), "{name}");
    }
}

#[test]
fn invite_sdp_timer_headers() {
    let message = parse("invite_sdp.sip");
    let expires: SessionExpires = header_value(&message, "Session-Expires").parse().unwrap();
    assert_eq!(expires.delta_seconds, 1800);
    assert_eq!(expires.refresher, None);
    let min_se: MinSe = header_value(&message, "Min-SE").parse().unwrap();
    assert_eq!(min_se.delta_seconds, 90);
    let max_forwards: MaxForwards = header_value(&message, "Max-Forwards").parse().unwrap();
    assert_eq!(max_forwards, MaxForwards(70));
    assert!(message.body().starts_with(b"v=0\r\n"));
    assert!(message.body().ends_with(b"a=sendrecv\r\n"));
}

#[test]
fn invite_compact_headers_expand() {
    let datagram = raw("invite_compact.sip");
    let unnormalized = rsip::SipMessage::try_from(&datagram[..]).unwrap();
    assert!(unnormalized.via_header().is_err());
    assert!(unnormalized.call_id_header().is_err());

    let message = parse("invite_compact.sip");
    let via: Via = header_value(&message, "Via").parse().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK.Vq3xNwDkP"));
    assert_eq!(via.rport(), Rport::Empty);
    assert_eq!(header_value(&message, "Call-ID"), "hQ2Lz7n9Fm");
    assert_eq!(
        header_value(&message, "Supported"),
        "replaces, outbound, gruu"
    );

    let to: NameAddr = header_value(&message, "To").parse().unwrap();
    assert_eq!(to.uri.user.as_deref(), Some("8002"));
    let contact: NameAddr = header_value(&message, "Contact").parse().unwrap();
    assert_eq!(
        contact.params.value("+sip.instance"),
        Some("\"<urn:uuid:9a7c1d3e-0b2f-4e6a-8c5d-1f2e3d4c5b6a>\"")
    );
    assert_eq!(message.body().len(), 148);
}

#[test]
fn invite_folded_headers_join() {
    let datagram = raw("invite_folded.sip");
    assert!(rsip::SipMessage::try_from(&datagram[..]).is_err());

    let message = parse("invite_folded.sip");
    let from: NameAddr = header_value(&message, "From").parse().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("Call Centre"));
    assert_eq!(from.tag(), Some("a73kszlfl"));
    assert_eq!(
        header_value(&message, "Subject"),
        "Callback request for case 8842, citizen waiting"
    );
    assert_eq!(
        header_value(&message, "Allow"),
        "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY"
    );
}

#[test]
fn invite_tel_uris_and_identity() {
    let message = parse("invite_tel_pai.sip");
    let rsip::SipMessage::Request(request) = &message else {
        panic!("expected a request");
    };
    let request_uri: Uri = request.uri.to_string().parse().unwrap();
    assert_eq!(request_uri.user.as_deref(), Some("010-12345"));
    assert_eq!(request_uri.params.value("user"), Some("phone"));

    let to: NameAddr = header_value(&message, "To").parse().unwrap();
    assert_eq!(to.uri.scheme, Scheme::Tel);
    assert_eq!(to.uri.user.as_deref(), Some("010-12345"));
    assert_eq!(to.uri.params.value("phone-context"), Some("+86"));

    let identity: PAssertedIdentity = header_value(&message, "P-Asserted-Identity")
        .parse()
        .unwrap();
    assert_eq!(identity.0.len(), 2);
    assert_eq!(
        identity.tel().unwrap().uri.user.as_deref(),
        Some("+8613800138000")
    );
    assert_eq!(
        identity.sip().unwrap().uri.params.value("user"),
        Some("phone")
    );

    let expires: SessionExpires = header_value(&message, "Session-Expires").parse().unwrap();
    assert_eq!(expires.refresher, Some(Refresher::Uac));
}

/// NOTE: rsip 0.4 reads `tel:010-12345` in a request line as host `tel` with port
/// `010-12345` and rejects the message. Normalisation keeps the start line as received, so
/// a request with a tel Request-URI cannot go through rsip; only our parser reads it.
#[test]
fn rsip_rejects_tel_request_uri() {
    let datagram = raw("invite_tel_pai.sip");
    let text = String::from_utf8(datagram).unwrap();
    let tel_request = text.replacen("sip:010-12345@192.0.2.10;user=phone", "tel:010-12345", 1);
    assert!(rsip::SipMessage::try_from(tel_request.as_str()).is_err());

    let request_uri = tel_request.split(' ').nth(1).unwrap();
    let parsed: Uri = request_uri.parse().unwrap();
    assert_eq!(parsed.scheme, Scheme::Tel);
    assert_eq!(parsed.user.as_deref(), Some("010-12345"));
}

#[test]
fn invite_dotted_user_is_user() {
    let message = parse("invite_dotted_user.sip");
    let from = message.from_header().unwrap().typed().unwrap();
    assert!(from.uri.auth.is_none());

    let from: NameAddr = header_value(&message, "From").parse().unwrap();
    assert_eq!(from.uri.user.as_deref(), Some("li.na"));
    assert_eq!(
        from.uri.host,
        Some(Host::Domain("switch.example.com".to_owned()))
    );
    let to: NameAddr = header_value(&message, "To").parse().unwrap();
    assert_eq!(to.uri.user.as_deref(), Some("zhang.wei"));
    let via: Via = header_value(&message, "Via").parse().unwrap();
    assert_eq!(via.transport, Transport::Tcp);
}

#[test]
fn invite_quoted_params_survive() {
    let message = parse("invite_quoted_params.sip");
    let record_route: NameAddr = header_value(&message, "Record-Route").parse().unwrap();
    assert_eq!(record_route.uri.params.value("x-route"), Some("\"a;b\""));
    assert!(record_route.uri.params.contains("lr"));
    assert_eq!(
        record_route.to_string(),
        "<sip:192.0.2.1;lr;ftag=b2c3d4;x-route=\"a;b\">"
    );

    let contact: NameAddr = header_value(&message, "Contact").parse().unwrap();
    assert_eq!(contact.uri.params.value("gr"), Some("urn:uuid:c865-1234"));

    // rsip cannot type this Contact: the quoted +sip.instance value stops its tokenizer.
    assert!(message.contact_header().unwrap().typed().is_err());

    let vias = header_values(&message, "Via");
    assert_eq!(vias.len(), 2);
    let second: Via = vias[1].parse().unwrap();
    assert_eq!(second.rport(), Rport::Value(5060));
    assert_eq!(second.received(), Some("198.51.100.77".parse().unwrap()));
}

#[test]
fn refer_carries_replaces() {
    let message = parse("refer_replaces.sip");
    let refer_to: ReferTo = header_value(&message, "Refer-To").parse().unwrap();
    assert_eq!(refer_to.target.uri.user.as_deref(), Some("8009"));
    assert_eq!(refer_to.target.uri.port, Some(5060));
    let replaces = refer_to.replaces().unwrap().unwrap();
    assert_eq!(replaces.call_id, "425928@192.0.2.21");
    assert_eq!(replaces.to_tag, "7743");
    assert_eq!(replaces.from_tag, "6472");

    let referred_by: ReferredBy = header_value(&message, "Referred-By").parse().unwrap();
    assert_eq!(referred_by.referrer.uri.user.as_deref(), Some("8001"));
    let cseq: CSeq = header_value(&message, "CSeq").parse().unwrap();
    assert_eq!(cseq, CSeq::new(93_809_824, "REFER"));
}

#[test]
fn notify_sipfrag_progress() {
    let message = parse("notify_sipfrag.sip");
    let event: Event = header_value(&message, "Event").parse().unwrap();
    assert_eq!(event.package, "refer");
    assert_eq!(event.id.as_deref(), Some("93809824"));
    let state: SubscriptionState = header_value(&message, "Subscription-State")
        .parse()
        .unwrap();
    assert_eq!(state.status, SubscriptionStatus::Terminated);
    assert_eq!(state.reason.as_deref(), Some("noresource"));
    assert_eq!(parse_sipfrag_status(message.body()), Ok(200));
}

#[test]
fn info_dtmf_body() {
    let message = parse("info_dtmf.sip");
    assert_eq!(message.body(), b"Signal=5\r\nDuration=160\r\n");
    assert_eq!(
        header_value(&message, "Content-Type"),
        "application/dtmf-relay"
    );
}

#[test]
fn reinvite_hold_is_sendonly() {
    let message = parse("reinvite_hold.sip");
    let body = std::str::from_utf8(message.body()).unwrap();
    assert!(body.lines().any(|line| line == "a=sendonly"));
    let cseq: CSeq = header_value(&message, "CSeq").parse().unwrap();
    assert_eq!(cseq, CSeq::new(3, "INVITE"));
}

#[test]
fn responses_parse() {
    for (name, code) in [
        ("response_180.sip", 180),
        ("response_183.sip", 183),
        ("response_200_invite.sip", 200),
        ("response_486.sip", 486),
    ] {
        let rsip::SipMessage::Response(response) = parse(name) else {
            panic!("{name}: expected a response");
        };
        assert_eq!(response.status_code.code(), code, "{name}");
    }

    let ok = parse("response_200_invite.sip");
    let expires: SessionExpires = header_value(&ok, "Session-Expires").parse().unwrap();
    assert_eq!(expires.refresher, Some(Refresher::Uas));
    let via: Via = header_value(&ok, "Via").parse().unwrap();
    assert_eq!(via.received(), Some("192.0.2.10".parse().unwrap()));

    let busy = parse("response_486.sip");
    let reason: Reason = header_value(&busy, "Reason").parse().unwrap();
    assert_eq!(reason.protocol, ReasonProtocol::Q850);
    assert_eq!(reason.cause, Some(17));
    assert_eq!(reason.text.as_deref(), Some("User busy"));
}

#[test]
fn bye_and_cancel_reasons() {
    let bye = parse("bye.sip");
    let reason: Reason = header_value(&bye, "Reason").parse().unwrap();
    assert_eq!(reason.cause, Some(16));

    let cancel = parse("cancel.sip");
    let reasons = Reason::parse_list(&header_value(&cancel, "Reason")).unwrap();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].protocol, ReasonProtocol::Sip);
    assert_eq!(reasons[0].text.as_deref(), Some("Call completed elsewhere"));
    assert_eq!(reasons[1].protocol, ReasonProtocol::Q850);
    assert_eq!(reasons[1].cause, Some(26));
}

#[test]
fn options_without_user() {
    let message = parse("options.sip");
    let from: NameAddr = header_value(&message, "From").parse().unwrap();
    assert_eq!(from.uri.user, None);
    assert_eq!(
        from.uri.host,
        Some(Host::Ipv4("203.0.113.9".parse().unwrap()))
    );
}

#[test]
fn trailing_garbage_is_cut() {
    let datagram = raw("datagram_trailing_garbage.sip");
    let unframed = rsip::SipMessage::try_from(&datagram[..]).unwrap();
    assert!(
        unframed
            .body()
            .ends_with(b"stale bytes from a reused buffer")
    );

    let message = parse("datagram_trailing_garbage.sip");
    assert_eq!(message.body(), b"Case 8842 assigned to you\r\n");
}

#[test]
fn short_body_names_lengths() {
    let error = frame_datagram(&raw("datagram_short_body.sip")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "body shorter than Content-Length: declared 257 bytes, received 217"
    );
}

#[test]
fn history_info_and_uui() {
    let message = parse("invite_history_uui.sip");
    let lines = header_values(&message, "History-Info");
    assert_eq!(lines.len(), 2);
    let history: HistoryInfo = lines.join(", ").parse().unwrap();
    assert_eq!(history.0.len(), 3);
    assert_eq!(history.0[1].index.to_string(), "1.1");
    assert!(matches!(history.0[1].target, Some(HistoryTarget::Rc(_))));
    let reasons = history.0[1].reasons().unwrap();
    assert_eq!(reasons[0].cause, Some(486));
    assert_eq!(reasons[0].text.as_deref(), Some("Busy Here"));
    assert_eq!(history.0[2].index.to_string(), "1.2");
    assert!(matches!(history.0[2].target, Some(HistoryTarget::Mp(_))));

    let uui: UserToUser = header_value(&message, "User-to-User").parse().unwrap();
    assert_eq!(uui.data, b"\x04123456");
    assert_eq!(uui.purpose.as_deref(), Some("isdn-uui"));
}

#[test]
fn truncated_inputs_do_not_panic() {
    for (_, datagram) in corpus_files() {
        for end in 0..datagram.len() {
            let prefix = &datagram[..end];
            let _ = frame_datagram(prefix);
            let _ = normalize(prefix);
            let mut framer = StreamFramer::new();
            framer.extend(prefix);
            while let Ok(Some(_)) = framer.next_item() {}

            let text = String::from_utf8_lossy(prefix);
            let Some(line) = text.lines().last() else {
                continue;
            };
            let value = line.split_once(':').map_or(line, |(_, value)| value);
            let _ = value.parse::<Uri>();
            let _ = value.parse::<NameAddr>();
            let _ = Via::parse_list(value);
            let _ = value.parse::<CSeq>();
            let _ = value.parse::<HistoryInfo>();
            let _ = value.parse::<ReferTo>();
            let _ = value.parse::<UserToUser>();
            let _ = Reason::parse_list(value);
            let _ = value.parse::<SubscriptionState>();
        }
    }
}

/// The accessors that read one parameter without a full parse give what the full parse
/// gives, and stamping the top Via by text gives what parsing and setting would.
#[test]
fn quick_reads_match_full_parses() {
    use crate::sip::{Headers, Message, Tag, parse};

    let source: std::net::SocketAddr = "192.0.2.7:5062".parse().unwrap();
    let mut checked = 0;
    for (name, data) in corpus_files() {
        let Ok(message) = parse(&data, true) else {
            continue;
        };
        let headers: &dyn HeaderReads = match &message {
            Message::Request(request) => request,
            Message::Response(response) => response,
        };
        let full_tag = |value: Option<&str>| {
            value
                .and_then(|value| value.parse::<NameAddr>().ok())
                .map(|addr| addr.tag().map(Tag::new))
        };
        assert_eq!(
            headers.quick_from_tag(),
            full_tag(headers.value("From")),
            "{name}: From tag"
        );
        assert_eq!(
            headers.quick_to_tag(),
            full_tag(headers.value("To")),
            "{name}: To tag"
        );
        let Some(top) = headers
            .value("Via")
            .and_then(|value| crate::sip::uri::split_list(value).next())
        else {
            continue;
        };
        let Ok(mut via) = top.parse::<Via>() else {
            continue;
        };
        assert_eq!(
            headers.quick_branch().as_deref(),
            via.branch(),
            "{name}: branch"
        );
        via.set_received(source.ip());
        if via.rport() != Rport::Absent {
            via.set_rport(source.port());
        }
        let stamped: Via = crate::sip::uri::stamp_via(top, source)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(stamped, via, "{name}: stamped Via");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} corpus messages checked");

    /// The reads under test, over requests and responses alike.
    trait HeaderReads {
        fn value(&self, name: &str) -> Option<&str>;
        fn quick_from_tag(&self) -> Option<Option<Tag>>;
        fn quick_to_tag(&self) -> Option<Option<Tag>>;
        fn quick_branch(&self) -> Option<String>;
    }
    impl<T: Headers> HeaderReads for T {
        fn value(&self, name: &str) -> Option<&str> {
            self.header(name)
        }
        fn quick_from_tag(&self) -> Option<Option<Tag>> {
            self.from_tag().ok()
        }
        fn quick_to_tag(&self) -> Option<Option<Tag>> {
            self.to_tag().ok()
        }
        fn quick_branch(&self) -> Option<String> {
            self.branch().ok().map(|branch| branch.as_str().to_owned())
        }
    }
}

#[test]
fn stamp_top_via_keeps_other_values() {
    use crate::sip::{Headers, Message, parse};

    let data = b"BYE sip:a@192.0.2.4 SIP/2.0\r\n\
Via:  SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport , SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK0\r\n\
Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKx\r\n\
Call-ID: c1\r\nCSeq: 2 BYE\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\n\
Content-Length: 0\r\n\r\n";
    let Ok(Message::Request(mut request)) = parse(data, true) else {
        panic!("the BYE does not parse");
    };
    request.stamp_top_via("192.0.2.7:5062".parse().unwrap());

    let vias: Vec<&str> = request.headers_named("Via").collect();
    assert_eq!(
        vias[0],
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5062;received=192.0.2.7 , \
         SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK0"
    );
    assert_eq!(vias[1], "SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKx");
}
