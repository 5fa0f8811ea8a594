use super::*;
use crate::sip::uri::{Host, Scheme, Uri};

#[test]
fn cseq_parse_and_display() {
    let cseq: CSeq = "314159  INVITE".parse().unwrap();
    assert_eq!(cseq.seq, 314_159);
    assert_eq!(cseq.method, "INVITE");
    assert_eq!(cseq.to_string(), "314159 INVITE");
}

#[test]
fn cseq_errors() {
    assert_eq!(
        "x1 INVITE".parse::<CSeq>(),
        Err(HeaderError::InvalidNumber {
            header: "CSeq",
            value: "x1".to_owned()
        })
    );
    assert!(matches!(
        "1".parse::<CSeq>(),
        Err(HeaderError::InvalidMethod { .. })
    ));
    assert!(matches!(
        "1 IN<VITE".parse::<CSeq>(),
        Err(HeaderError::InvalidMethod { .. })
    ));
    assert!(matches!(
        "4294967296 BYE".parse::<CSeq>(),
        Err(HeaderError::InvalidNumber { .. })
    ));
}

#[test]
fn max_forwards_range() {
    assert_eq!("70".parse::<MaxForwards>(), Ok(MaxForwards(70)));
    assert_eq!(" 0 ".parse::<MaxForwards>(), Ok(MaxForwards(0)));
    assert!("256".parse::<MaxForwards>().is_err());
    assert!("-1".parse::<MaxForwards>().is_err());
}

#[test]
fn replaces_parse() {
    let replaces: Replaces = "425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only"
        .parse()
        .unwrap();
    assert_eq!(replaces.call_id, "425928@bobster.example.org");
    assert_eq!(replaces.to_tag, "7743");
    assert_eq!(replaces.from_tag, "6472");
    assert!(replaces.early_only);
    assert_eq!(
        replaces.to_string(),
        "425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only"
    );
}

#[test]
fn replaces_requires_both_tags() {
    assert_eq!(
        "abc@host;to-tag=1".parse::<Replaces>(),
        Err(HeaderError::MissingParam {
            header: "Replaces",
            param: "from-tag"
        })
    );
    assert_eq!(
        ";to-tag=1;from-tag=2".parse::<Replaces>(),
        Err(HeaderError::Empty { header: "Replaces" })
    );
}

#[test]
fn refer_to_embedded_replaces() {
    let value = "<sip:agent2@192.0.2.20:5060?Replaces=7f3a1b%40192.0.2.20%3Bto-tag%3Dab12\
                 %3Bfrom-tag%3Dcd34>";
    let refer_to: ReferTo = value.parse().unwrap();
    assert_eq!(refer_to.target.uri.user.as_deref(), Some("agent2"));
    let replaces = refer_to.replaces().unwrap().unwrap();
    assert_eq!(replaces.call_id, "7f3a1b@192.0.2.20");
    assert_eq!(replaces.to_tag, "ab12");
    assert_eq!(replaces.from_tag, "cd34");
    assert!(!replaces.early_only);
}

#[test]
fn refer_to_build_round_trips() {
    let replaces = Replaces {
        call_id: "a1@192.0.2.5".to_owned(),
        to_tag: "t1".to_owned(),
        from_tag: "f1".to_owned(),
        early_only: false,
    };
    let uri = Uri::sip(Some("12345"), Host::Domain("hotline.example.cn".to_owned()));
    let refer_to = ReferTo::new(uri, Some(&replaces));
    let text = refer_to.to_string();
    assert_eq!(
        text,
        "<sip:12345@hotline.example.cn?Replaces=a1%40192.0.2.5%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>"
    );
    let parsed: ReferTo = text.parse().unwrap();
    assert_eq!(parsed.replaces().unwrap(), Some(replaces));
}

#[test]
fn refer_to_without_replaces() {
    let refer_to: ReferTo = "sip:12345@hotline.example.cn".parse().unwrap();
    assert_eq!(refer_to.replaces(), Ok(None));
}

#[test]
fn referred_by_cid() {
    let referred_by: ReferredBy =
        r#""Agent 7" <sip:agent7@example.com>;cid="20398823.2UWQFN309shb3@example.com""#
            .parse()
            .unwrap();
    assert_eq!(
        referred_by.referrer.display_name.as_deref(),
        Some("Agent 7")
    );
    assert_eq!(
        referred_by.cid(),
        Some("\"20398823.2UWQFN309shb3@example.com\"")
    );
}

#[test]
fn session_expires_parse() {
    let value: SessionExpires = "1800;refresher=UAS;x=1".parse().unwrap();
    assert_eq!(value.delta_seconds, 1800);
    assert_eq!(value.refresher, Some(Refresher::Uas));
    assert_eq!(value.params.value("x"), Some("1"));
    assert_eq!(value.to_string(), "1800;refresher=uas;x=1");

    let bare: SessionExpires = " 90 ".parse().unwrap();
    assert_eq!(bare.refresher, None);
    assert_eq!(bare.to_string(), "90");
}

#[test]
fn session_expires_errors() {
    assert!(matches!(
        "1800;refresher=both".parse::<SessionExpires>(),
        Err(HeaderError::InvalidParam {
            param: "refresher",
            ..
        })
    ));
    assert!(matches!(
        "soon".parse::<SessionExpires>(),
        Err(HeaderError::InvalidNumber { .. })
    ));
}

#[test]
fn min_se_parse() {
    let min_se: MinSe = "120".parse().unwrap();
    assert_eq!(min_se.delta_seconds, 120);
    assert!(min_se.delta_seconds >= MIN_SESSION_EXPIRES);
    assert_eq!(MinSe::new(90).to_string(), "90");
}

#[test]
fn p_asserted_identity_pair() {
    let value = r#""Hotline 12345" <sip:12345@gw.example.cn;user=phone>, <tel:+8610012345>"#;
    let identity: PAssertedIdentity = value.parse().unwrap();
    assert_eq!(identity.0.len(), 2);
    let sip = identity.sip().unwrap();
    assert_eq!(sip.display_name.as_deref(), Some("Hotline 12345"));
    assert_eq!(sip.uri.user.as_deref(), Some("12345"));
    let tel = identity.tel().unwrap();
    assert_eq!(tel.uri.scheme, Scheme::Tel);
    assert_eq!(tel.uri.user.as_deref(), Some("+8610012345"));
    assert_eq!(identity.to_string(), value);
}

#[test]
fn p_asserted_identity_empty() {
    assert_eq!(
        " ".parse::<PAssertedIdentity>(),
        Err(HeaderError::Empty {
            header: "P-Asserted-Identity"
        })
    );
}

#[test]
fn history_info_entries() {
    let value = "<sip:12345@hotline.example.cn>;index=1, \
                 <sip:agent3@192.0.2.30?Reason=SIP%3Bcause%3D302%3Btext%3D%22Moved%22>;index=1.1;rc=1, \
                 <sip:agent9@192.0.2.31?Reason=Q.850%3Bcause%3D16>;index=1.1.1;mp=1.1";
    let history: HistoryInfo = value.parse().unwrap();
    assert_eq!(history.0.len(), 3);

    let first = &history.0[0];
    assert_eq!(first.index, HistoryIndex(vec![1]));
    assert_eq!(first.target, None);
    assert_eq!(first.index.parent(), None);

    let second = &history.0[1];
    assert_eq!(second.index.to_string(), "1.1");
    assert_eq!(
        second.target,
        Some(HistoryTarget::Rc(HistoryIndex(vec![1])))
    );
    let reasons = second.reasons().unwrap();
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].protocol, ReasonProtocol::Sip);
    assert_eq!(reasons[0].cause, Some(302));
    assert_eq!(reasons[0].text.as_deref(), Some("Moved"));

    let third = &history.0[2];
    assert_eq!(third.index.parent(), Some(HistoryIndex(vec![1, 1])));
    assert_eq!(
        third.target,
        Some(HistoryTarget::Mp(HistoryIndex(vec![1, 1])))
    );
    assert_eq!(third.reasons().unwrap()[0].protocol, ReasonProtocol::Q850);
    assert_eq!(third.reasons().unwrap()[0].cause, Some(16));
}

#[test]
fn history_info_errors() {
    assert_eq!(
        "<sip:a@b>;mp=1".parse::<HistoryInfo>(),
        Err(HeaderError::MissingParam {
            header: "History-Info",
            param: "index"
        })
    );
    assert!(matches!(
        "<sip:a@b>;index=1..2".parse::<HistoryInfo>(),
        Err(HeaderError::InvalidIndex { .. })
    ));
    assert!(matches!(
        "<sip:a@b>;index=1.1;rc".parse::<HistoryInfo>(),
        Err(HeaderError::InvalidParam { param: "rc", .. })
    ));
}

#[test]
fn user_to_user_hex() {
    let uui: UserToUser = "56a390f3d2b7310023a2;encoding=hex;purpose=isdn-uui;content=isdn-uui"
        .parse()
        .unwrap();
    assert_eq!(
        uui.data,
        [0x56, 0xa3, 0x90, 0xf3, 0xd2, 0xb7, 0x31, 0x00, 0x23, 0xa2]
    );
    assert_eq!(uui.encoding.as_deref(), Some("hex"));
    assert_eq!(uui.purpose.as_deref(), Some("isdn-uui"));
    assert_eq!(uui.content.as_deref(), Some("isdn-uui"));
}

#[test]
fn user_to_user_without_encoding_is_hex() {
    let uui: UserToUser = "04313233".parse().unwrap();
    assert_eq!(uui.data, [0x04, b'1', b'2', b'3']);
    assert_eq!(uui.encoding, None);
}

#[test]
fn user_to_user_long_data_hex() {
    let data: Vec<u8> = (0u8..70).map(|byte| byte.wrapping_mul(37)).collect();
    let uui = UserToUser::from_bytes(&data, None, None);
    let text = uui.to_string();
    let expected: String = data.iter().map(|byte| format!("{byte:02X}")).collect();
    assert_eq!(text, format!("{expected};encoding=hex"));
    assert_eq!(text.parse::<UserToUser>().unwrap().data, data);
}

#[test]
fn user_to_user_from_bytes_round_trips() {
    let uui = UserToUser::from_bytes(b"\x04case=8842", Some("isdn-uui"), None);
    let text = uui.to_string();
    assert_eq!(text, "04636173653D38383432;encoding=hex;purpose=isdn-uui");
    assert_eq!(text.parse::<UserToUser>().unwrap(), uui);
}

#[test]
fn user_to_user_errors() {
    assert!(matches!(
        "0431323;encoding=hex".parse::<UserToUser>(),
        Err(HeaderError::InvalidHex { .. })
    ));
    assert!(matches!(
        "zz;encoding=hex".parse::<UserToUser>(),
        Err(HeaderError::InvalidHex { .. })
    ));
    assert_eq!(
        ";encoding=hex".parse::<UserToUser>(),
        Err(HeaderError::Empty {
            header: "User-to-User"
        })
    );
}

#[test]
fn reason_sip_and_q850() {
    let reasons =
        Reason::parse_list(r#"SIP ;cause=200 ;text="Call completed elsewhere", Q.850;cause=16"#)
            .unwrap();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].protocol, ReasonProtocol::Sip);
    assert_eq!(reasons[0].cause, Some(200));
    assert_eq!(reasons[0].text.as_deref(), Some("Call completed elsewhere"));
    assert_eq!(reasons[1].protocol, ReasonProtocol::Q850);
    assert_eq!(reasons[1].cause, Some(16));
    assert_eq!(reasons[1].text, None);
}

#[test]
fn reason_display() {
    let reason = Reason::new(ReasonProtocol::Q850, 17, Some("User \"busy\""));
    assert_eq!(reason.to_string(), r#"Q.850;cause=17;text="User \"busy\"""#);
    assert_eq!(reason.to_string().parse::<Reason>(), Ok(reason));
}

#[test]
fn reason_invalid_cause() {
    assert_eq!(
        "SIP;cause=abc".parse::<Reason>(),
        Err(HeaderError::InvalidParam {
            header: "Reason",
            param: "cause",
            value: "abc".to_owned()
        })
    );
}

#[test]
fn event_refer_id() {
    let event: Event = "refer;id=93809824".parse().unwrap();
    assert_eq!(event.package, "refer");
    assert_eq!(event.id.as_deref(), Some("93809824"));
    assert_eq!(event.to_string(), "refer;id=93809824");
    assert!(matches!(
        "re fer".parse::<Event>(),
        Err(HeaderError::InvalidToken { .. })
    ));
}

#[test]
fn subscription_state_values() {
    let active: SubscriptionState = "active;expires=60".parse().unwrap();
    assert_eq!(active.status, SubscriptionStatus::Active);
    assert_eq!(active.expires, Some(60));

    let terminated: SubscriptionState = "terminated;reason=noresource".parse().unwrap();
    assert_eq!(terminated.status, SubscriptionStatus::Terminated);
    assert_eq!(terminated.reason.as_deref(), Some("noresource"));
    assert_eq!(terminated.to_string(), "terminated;reason=noresource");

    assert!(matches!(
        "active;expires=soon".parse::<SubscriptionState>(),
        Err(HeaderError::InvalidParam {
            param: "expires",
            ..
        })
    ));
}

#[test]
fn sipfrag_status() {
    assert_eq!(parse_sipfrag_status(b"SIP/2.0 200 OK\r\n"), Ok(200));
    assert_eq!(parse_sipfrag_status(b"SIP/2.0 100 Trying"), Ok(100));
    assert_eq!(
        parse_sipfrag_status(b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"),
        Ok(486)
    );
    assert!(parse_sipfrag_status(b"INVITE sip:a@b SIP/2.0\r\n").is_err());
    assert!(parse_sipfrag_status(b"SIP/2.0 2000 OK").is_err());
    assert!(parse_sipfrag_status(b"").is_err());
}
