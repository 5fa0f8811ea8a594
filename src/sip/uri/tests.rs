use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;

fn uri(text: &str) -> Uri {
    text.parse().unwrap()
}

#[test]
fn dotted_user_is_user() {
    let parsed = uri("sip:first.last@example.com");
    assert_eq!(parsed.scheme, Scheme::Sip);
    assert_eq!(parsed.user.as_deref(), Some("first.last"));
    assert_eq!(parsed.host, Some(Host::Domain("example.com".to_owned())));
}

#[test]
fn rsip_misreads_dotted_user() {
    let parsed = rsip::Uri::try_from("sip:first.last@example.com").unwrap();
    assert!(parsed.auth.is_none());
    assert_eq!(parsed.host_with_port.to_string(), "first.last@example.com");
}

#[test]
fn quoted_param_is_kept() {
    let parsed = uri(r#"sip:agent@192.0.2.10:5060;x-route="a;b";transport=udp"#);
    assert_eq!(parsed.params.value("x-route"), Some(r#""a;b""#));
    assert_eq!(parsed.params.value("Transport"), Some("udp"));
    assert_eq!(parsed.host, Some(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 10))));
    assert_eq!(parsed.port, Some(5060));
}

#[test]
fn gruu_param_keeps_colons() {
    let parsed = uri("sip:alice@example.com;gr=urn:uuid:c865-1234;ob");
    assert_eq!(parsed.params.value("gr"), Some("urn:uuid:c865-1234"));
    assert!(parsed.params.contains("ob"));
    assert_eq!(parsed.params.value("ob"), None);
}

#[test]
fn rsip_truncates_param_values() {
    let text = r#"sip:a@example.com;gr=urn:uuid:c865-1234;x-route="a;b""#;
    let parsed = rsip::Uri::try_from(text).unwrap();
    assert_eq!(parsed.params.len(), 1);
    let rsip::Param::Other(name, Some(value)) = &parsed.params[0] else {
        panic!("expected gr with a value, got {:?}", parsed.params);
    };
    assert_eq!(name.value(), "gr");
    assert_eq!(value.value(), "urn");

    let ours = uri(text);
    assert_eq!(ours.params.value("gr"), Some("urn:uuid:c865-1234"));
    assert_eq!(ours.params.value("x-route"), Some(r#""a;b""#));
}

#[test]
fn uri_display_round_trips() {
    let cases = [
        "sip:first.last@example.com",
        "sips:bob:secret@[2001:db8::1]:5061;transport=tcp",
        r#"sip:agent@192.0.2.10:5060;x-route="a;b";lr"#,
        "sip:alice@example.com;gr=urn:uuid:c865-1234",
        "sip:+8610123;npdi@gw.example.net;user=phone",
        "sip:bob@example.com?Replaces=abc%40host%3Bto-tag%3D1&Subject=hi",
        "tel:010-12345",
        "tel:+861012345;phone-context=+86",
        "sip:gw.example.net",
        "urn:service:sos",
    ];
    for text in cases {
        assert_eq!(uri(text).to_string(), text);
    }
}

#[test]
fn user_may_contain_semicolon() {
    let parsed = uri("sip:+8610123;npdi;rn=+8620@gw.example.net;user=phone");
    assert_eq!(parsed.user.as_deref(), Some("+8610123;npdi;rn=+8620"));
    assert_eq!(parsed.params.value("user"), Some("phone"));
}

#[test]
fn tel_uris() {
    let local = uri("tel:010-12345");
    assert_eq!(local.scheme, Scheme::Tel);
    assert_eq!(local.user.as_deref(), Some("010-12345"));
    assert_eq!(local.host, None);

    let global = uri("TEL:+861012345;phone-context=+86");
    assert_eq!(global.scheme, Scheme::Tel);
    assert_eq!(global.user.as_deref(), Some("+861012345"));
    assert_eq!(global.params.value("phone-context"), Some("+86"));
}

#[test]
fn ipv6_host_and_port() {
    let parsed = uri("sip:bob@[2001:db8::10]:5070");
    let expected: Ipv6Addr = "2001:db8::10".parse().unwrap();
    assert_eq!(parsed.host, Some(Host::Ipv6(expected)));
    assert_eq!(parsed.port, Some(5070));
}

#[test]
fn password_is_split_off() {
    let parsed = uri("sip:bob:secret@example.com");
    assert_eq!(parsed.user.as_deref(), Some("bob"));
    assert_eq!(parsed.password.as_deref(), Some("secret"));
}

#[test]
fn uri_header_is_percent_decoded() {
    let parsed =
        uri("sip:bob@example.com?Replaces=12345%40192.0.2.1%3Bto-tag%3D12%3Bfrom-tag%3D34");
    let replaces = parsed.header("replaces").unwrap();
    assert_eq!(
        replaces.as_deref(),
        Some("12345@192.0.2.1;to-tag=12;from-tag=34")
    );
    assert_eq!(parsed.header("Subject"), Ok(None));
}

#[test]
fn push_header_encodes() {
    let mut target = uri("sip:bob@example.com");
    target.push_header("Replaces", "a@b;to-tag=1;early-only");
    assert_eq!(
        target.to_string(),
        "sip:bob@example.com?Replaces=a%40b%3Bto-tag%3D1%3Bearly-only"
    );
    assert_eq!(
        target.header("Replaces").unwrap().as_deref(),
        Some("a@b;to-tag=1;early-only")
    );
}

#[test]
fn bad_percent_encoding_is_rejected() {
    let parsed = uri("sip:bob@example.com?Replaces=abc%4");
    assert!(matches!(
        parsed.header("Replaces"),
        Err(UriError::InvalidPercentEncoding { .. })
    ));
    assert!(percent_decode("%zz").is_err());
    assert!(percent_decode("%ff").is_err());
}

#[test]
fn invalid_uris_are_rejected() {
    let cases = [
        (
            "example.com",
            UriError::MissingScheme {
                input: "example.com".into(),
            },
        ),
        (
            "1sip:a@b",
            UriError::InvalidScheme {
                scheme: "1sip".into(),
            },
        ),
        (
            "sip:@example.com",
            UriError::EmptyUser {
                input: "@example.com".into(),
            },
        ),
        (
            "sip:bob@",
            UriError::MissingHost {
                input: String::new(),
            },
        ),
        (
            "sip:bob@exa mple.com",
            UriError::InvalidHost {
                host: "exa mple.com".into(),
            },
        ),
        (
            "sip:bob@example.com:99999",
            UriError::InvalidPort {
                port: "99999".into(),
            },
        ),
        (
            "sip:bob@example.com:",
            UriError::InvalidPort {
                port: String::new(),
            },
        ),
        (
            "sip:bob@[2001:db8::1",
            UriError::InvalidHost {
                host: "[2001:db8::1".into(),
            },
        ),
        (
            "tel:;phone-context=x",
            UriError::EmptyUser {
                input: ";phone-context=x".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<Uri>(), Err(expected), "{text}");
    }
}

#[test]
fn name_addr_quoted_display_name() {
    let parsed: NameAddr = r#""Zhang, San \"Desk 3\"" <sip:first.last@example.com>;tag=8a7c"#
        .parse()
        .unwrap();
    assert_eq!(
        parsed.display_name.as_deref(),
        Some(r#"Zhang, San "Desk 3""#)
    );
    assert_eq!(parsed.uri.user.as_deref(), Some("first.last"));
    assert_eq!(parsed.tag(), Some("8a7c"));
    assert_eq!(
        parsed.to_string(),
        r#""Zhang, San \"Desk 3\"" <sip:first.last@example.com>;tag=8a7c"#
    );
}

#[test]
fn name_addr_token_display_name() {
    let parsed: NameAddr = "Alice Smith <sip:alice@example.com>".parse().unwrap();
    assert_eq!(parsed.display_name.as_deref(), Some("Alice Smith"));
    assert!(parsed.params.is_empty());
}

#[test]
fn name_addr_without_display_name() {
    let parsed: NameAddr = r#"<sip:bob@example.com;x-route="a;b">;expires=3600"#
        .parse()
        .unwrap();
    assert_eq!(parsed.display_name, None);
    assert_eq!(parsed.uri.params.value("x-route"), Some(r#""a;b""#));
    assert_eq!(parsed.params.value("expires"), Some("3600"));
}

#[test]
fn addr_spec_params_belong_to_header() {
    let parsed: NameAddr = "sip:a@example.com;tag=x1".parse().unwrap();
    assert!(parsed.uri.params.is_empty());
    assert_eq!(parsed.tag(), Some("x1"));
    assert_eq!(parsed.to_string(), "<sip:a@example.com>;tag=x1");
}

#[test]
fn name_addr_with_gt_in_quoted_param() {
    let parsed: NameAddr = r#"<sip:a@b;x="1>2">;tag=t"#.parse().unwrap();
    assert_eq!(parsed.uri.params.value("x"), Some(r#""1>2""#));
    assert_eq!(parsed.tag(), Some("t"));
}

#[test]
fn name_addr_errors() {
    assert!(matches!(
        "\"Alice <sip:a@b>".parse::<NameAddr>(),
        Err(UriError::UnterminatedQuote { .. })
    ));
    assert!(matches!(
        "Alice <sip:a@b".parse::<NameAddr>(),
        Err(UriError::UnterminatedAngleBracket { .. })
    ));
    assert!(matches!(
        "<sip:a@b> junk".parse::<NameAddr>(),
        Err(UriError::TrailingCharacters { .. })
    ));
}

#[test]
fn via_parts() {
    let via: Via = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport;received=198.51.100.7"
        .parse()
        .unwrap();
    assert_eq!(via.transport, Transport::Udp);
    assert_eq!(via.host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(via.port, Some(5060));
    assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(via.rport(), Rport::Empty);
    assert_eq!(
        via.received(),
        Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)))
    );
}

#[test]
fn via_rport_states() {
    let absent: Via = "SIP/2.0/TCP h.example;branch=z9hG4bK1".parse().unwrap();
    assert_eq!(absent.rport(), Rport::Absent);
    let filled: Via = "SIP/2.0/TCP h.example;rport=5062".parse().unwrap();
    assert_eq!(filled.rport(), Rport::Value(5062));
}

#[test]
fn via_with_spaces_around_slashes() {
    let via: Via = "SIP / 2.0 / tls  [2001:db8::1]:5061 ; branch=z9hG4bK2"
        .parse()
        .unwrap();
    assert_eq!(via.transport, Transport::Tls);
    assert_eq!(via.port, Some(5061));
    assert_eq!(via.branch(), Some("z9hG4bK2"));
    assert_eq!(
        via.to_string(),
        "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK2"
    );
}

#[test]
fn via_set_received_and_rport() {
    let mut via: Via = "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK3;rport"
        .parse()
        .unwrap();
    via.set_received(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
    via.set_rport(40001);
    assert_eq!(
        via.to_string(),
        "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK3;rport=40001;received=192.0.2.9"
    );
}

#[test]
fn via_list_parses_every_value() {
    let vias =
        Via::parse_list("SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/WSS b.example").unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1].transport, Transport::Wss);
}

#[test]
fn via_errors() {
    assert!(matches!(
        "SIP/3.0/UDP h".parse::<Via>(),
        Err(UriError::InvalidViaProtocol { .. })
    ));
    assert!(matches!(
        "SIP/2.0/UDP".parse::<Via>(),
        Err(UriError::MissingHost { .. })
    ));
    assert_eq!(
        "SIP/2.0/UDP h;rport=abc".parse::<Via>(),
        Err(UriError::InvalidViaParam {
            name: "rport",
            value: "abc".to_owned()
        })
    );
    assert!(matches!(
        "SIP/2.0/UDP h;received=host.example".parse::<Via>(),
        Err(UriError::InvalidViaParam {
            name: "received",
            ..
        })
    ));
}

#[test]
fn push_decimal_matches_display() {
    for value in [
        0,
        7,
        10,
        5060,
        65535,
        1_000_000,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let mut text = String::from("x");
        super::push_decimal(&mut text, value);
        assert_eq!(text, format!("x{value}"));
    }
}

#[test]
fn ip_text_matches_std_display() {
    let addresses: [IpAddr; 6] = [
        Ipv4Addr::new(0, 0, 0, 0).into(),
        Ipv4Addr::new(255, 255, 255, 255).into(),
        Ipv4Addr::new(10, 0, 100, 9).into(),
        Ipv4Addr::new(127, 0, 0, 1).into(),
        Ipv4Addr::new(192, 168, 19, 250).into(),
        "2001:db8::1".parse().unwrap(),
    ];
    for address in addresses {
        assert_eq!(IpText(address).to_string(), address.to_string());
        let mut pushed = String::new();
        IpText(address).push_to(&mut pushed);
        assert_eq!(pushed, address.to_string());
    }
    let host = Host::Ipv4(Ipv4Addr::new(172, 16, 5, 40));
    assert_eq!(host.to_string(), "172.16.5.40");
}

#[test]
fn find_param_reads_one_parameter() {
    let params = ";rport;branch=z9hG4bK1 ; Tag = \"a;b\";received=192.0.2.7";
    assert_eq!(
        find_param(params, "BRANCH").unwrap(),
        Some(Some("z9hG4bK1"))
    );
    assert_eq!(find_param(params, "rport").unwrap(), Some(None));
    assert_eq!(find_param(params, "tag").unwrap(), Some(Some("\"a;b\"")));
    assert_eq!(find_param(params, "maddr").unwrap(), None);
    assert_eq!(find_param("", "tag").unwrap(), None);
    assert!(find_param("tag=1", "tag").is_err());
    assert!(find_param(";=1", "tag").is_err());
}

#[test]
fn bracketed_params_skip_display_name_and_uri() {
    let cases = [
        ("\"A <b>\" <sip:a@h;tag=uri>;tag=1", Some(";tag=1")),
        ("Alice <sip:a@h>", Some("")),
        ("<sip:a@h?x=\">\">;tag=2", Some(";tag=2")),
        ("sip:a@h;tag=3", None),
    ];
    for (value, expected) in cases {
        assert_eq!(bracketed_params(value).unwrap(), expected, "{value}");
    }
    assert!(bracketed_params("\"unterminated <sip:a@h>").is_err());
    assert!(bracketed_params("<sip:a@h;tag=1").is_err());
}

#[test]
fn stamp_via_sets_received_and_rport() {
    let source: SocketAddr = "192.0.2.7:5062".parse().unwrap();
    let cases = [
        (
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5062;received=192.0.2.7",
        ),
        (
            "SIP/2.0/UDP host ;received=10.9.9.9;branch=z9hG4bK2",
            "SIP/2.0/UDP host;received=192.0.2.7;branch=z9hG4bK2",
        ),
        (
            "SIP/2.0/TCP [2001:db8::1]",
            "SIP/2.0/TCP [2001:db8::1];received=192.0.2.7",
        ),
    ];
    for (top, expected) in cases {
        assert_eq!(stamp_via(top, source).unwrap(), expected);
    }
    assert!(stamp_via("SIP/2.0/UDP h;branch=\"open", source).is_err());
}
