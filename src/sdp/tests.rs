use std::net::{IpAddr, SocketAddr};

use super::*;

fn crlf(lines: &[&str]) -> String {
    let mut body = lines.join("\r\n");
    body.push_str("\r\n");
    body
}

fn asterisk_offer() -> String {
    crlf(&[
        "v=0",
        "o=- 1718283914 1718283914 IN IP4 192.0.2.10",
        "s=Asterisk",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 17562 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=maxptime:150",
        "a=sendrecv",
    ])
}

fn freeswitch_answer() -> String {
    crlf(&[
        "v=0",
        "o=FreeSWITCH 1718270000 1718270001 IN IP4 198.51.100.20",
        "s=FreeSWITCH",
        "c=IN IP4 198.51.100.20",
        "t=0 0",
        "m=audio 24050 RTP/AVP 8 96",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:96 telephone-event/8000",
        "a=fmtp:96 0-16",
        "a=ptime:20",
        "a=rtcp:24051 IN IP4 198.51.100.20",
    ])
}

fn relay(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn origin() -> OriginState {
    OriginState::with_session_id("-", 4242, IpAddr::from([127, 0, 0, 1]))
}

#[test]
fn parse_asterisk_offer() {
    let sdp: SessionDescription = asterisk_offer().parse().unwrap();

    assert_eq!(sdp.origin.session_id, "1718283914");
    assert_eq!(sdp.origin.address, "192.0.2.10");
    assert_eq!(sdp.media.len(), 1);
    let audio = &sdp.media[0];
    assert_eq!(audio.kind, "audio");
    assert_eq!(audio.port, 17562);
    assert_eq!(audio.proto, "RTP/AVP");
    assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0, 8, 101]);
    assert_eq!(audio.rtpmaps.len(), 3);
    assert_eq!(audio.fmtp(101), Some("0-16"));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(!audio.rtcp_mux);
    assert_eq!(
        sdp.rtp_address(0),
        Some("192.0.2.10:17562".parse().unwrap())
    );
    assert_eq!(
        sdp.rtcp_address(0),
        Some("192.0.2.10:17563".parse().unwrap())
    );
}

#[test]
fn parse_accepts_bare_lf() {
    let body = asterisk_offer().replace("\r\n", "\n");
    let sdp = SessionDescription::parse(body.as_bytes()).unwrap();
    assert_eq!(sdp.lines().len(), 13);
}

#[test]
fn parse_rtcp_attribute_with_address() {
    let sdp: SessionDescription = freeswitch_answer().parse().unwrap();
    let rtcp = sdp.media[0].rtcp.as_ref().unwrap();
    assert_eq!(rtcp.port, 24051);
    assert_eq!(rtcp.connection.as_ref().unwrap().address, "198.51.100.20");
    assert_eq!(
        sdp.rtcp_address(0),
        Some("198.51.100.20:24051".parse().unwrap())
    );
}

#[test]
fn parse_cisco_session_level_direction() {
    let body = crlf(&[
        "v=0",
        "o=CiscoSystemsSIP-GW-UserAgent 7417 2143 IN IP4 203.0.113.5",
        "s=SIP Call",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "a=sendonly",
        "m=audio 16434 RTP/AVP 18 101 19",
        "c=IN IP4 203.0.113.5",
        "a=rtpmap:18 G729/8000",
        "a=fmtp:18 annexb=no",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=rtpmap:19 CN/8000",
        "a=ptime:20",
    ]);
    let sdp: SessionDescription = body.parse().unwrap();

    assert_eq!(sdp.direction, Some(Direction::SendOnly));
    assert_eq!(sdp.media[0].direction, Direction::SendOnly);
    assert!(sdp.is_hold(0));
    assert_eq!(sdp.media[0].fmtp(18), Some("annexb=no"));
}

#[test]
fn parse_media_direction_overrides_session() {
    let body = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "a=inactive",
        "m=audio 4000 RTP/AVP 0",
        "a=recvonly",
        "m=video 4002 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
    ]);
    let sdp: SessionDescription = body.parse().unwrap();

    assert_eq!(sdp.media[0].direction, Direction::RecvOnly);
    assert_eq!(sdp.media[1].direction, Direction::Inactive);
    assert!(!sdp.is_hold(0));
    assert!(sdp.is_hold(1));
}

#[test]
fn parse_rfc2543_hold_address() {
    let body = asterisk_offer().replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
    let sdp: SessionDescription = body.parse().unwrap();
    assert!(sdp.is_hold(0));
}

#[test]
fn parse_ipv6_media_connection() {
    let body = crlf(&[
        "v=0",
        "o=- 20518 0 IN IP6 2001:db8::1",
        "s=-",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "c=IN IP6 2001:db8::2",
    ]);
    let sdp: SessionDescription = body.parse().unwrap();

    assert_eq!(
        sdp.media[0].connection.as_ref().unwrap().address_type,
        "IP6"
    );
    assert_eq!(
        sdp.rtp_address(0),
        Some("[2001:db8::2]:49170".parse().unwrap())
    );
}

#[test]
fn parse_disabled_stream_without_connection() {
    let body = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "c=IN IP4 192.0.2.1",
        "m=video 0 RTP/AVP 31",
    ]);
    let sdp: SessionDescription = body.parse().unwrap();

    assert_eq!(sdp.media[1].port, 0);
    assert_eq!(sdp.rtp_address(1), None);
}

#[test]
fn parse_port_count() {
    let body = asterisk_offer().replace("m=audio 17562 ", "m=audio 17562/2 ");
    let sdp: SessionDescription = body.parse().unwrap();
    assert_eq!(sdp.media[0].port, 17562);
    assert_eq!(sdp.media[0].port_count, Some(2));
}

#[test]
fn parse_errors_name_the_line() {
    let cases: &[(&str, SdpError)] = &[
        (
            "v=1\r\n",
            SdpError::UnsupportedVersion {
                line: 1,
                text: "v=1".into(),
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4\r\n",
            SdpError::InvalidField {
                line: 2,
                field: "o=",
                text: "o=- 1 1 IN IP4".into(),
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IPX 1.2.3.4\r\n",
            SdpError::InvalidField {
                line: 3,
                field: "c=",
                text: "c=IN IPX 1.2.3.4".into(),
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio x RTP/AVP 0\r\n",
            SdpError::InvalidField {
                line: 4,
                field: "m=",
                text: "m=audio x RTP/AVP 0".into(),
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 1 RTP/AVP 96\r\n\
             a=rtpmap:96 opus\r\n",
            SdpError::InvalidField {
                line: 5,
                field: "a=rtpmap",
                text: "a=rtpmap:96 opus".into(),
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 1 RTP/AVP 0\r\n\
             a=rtcp:70000\r\n",
            SdpError::InvalidField {
                line: 5,
                field: "a=rtcp",
                text: "a=rtcp:70000".into(),
            },
        ),
        ("v=0\r\ns=-\r\n", SdpError::MissingOrigin),
        (
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 1 RTP/AVP 0\r\n",
            SdpError::MissingConnection { line: 3 },
        ),
        (
            "v=0\r\nthis is not sdp\r\n",
            SdpError::MalformedLine {
                line: 2,
                text: "this is not sdp".into(),
            },
        ),
        ("\r\n\r\n", SdpError::Empty),
    ];
    for (body, expected) in cases {
        assert_eq!(
            body.parse::<SessionDescription>().as_ref(),
            Err(expected),
            "{body:?}"
        );
    }
}

#[test]
fn parse_rejects_invalid_utf8() {
    let error = SessionDescription::parse(b"v=0\r\no=\xff").unwrap_err();
    assert_eq!(error, SdpError::NotUtf8 { valid_up_to: 7 });
}

#[test]
fn parse_never_panics_on_truncations() {
    let body = webrtc_offer();
    for end in 0..body.len() {
        if body.is_char_boundary(end) {
            let _ = body[..end].parse::<SessionDescription>();
        }
    }
}

#[test]
fn rewrite_points_at_relay_and_keeps_lines() {
    let sdp: SessionDescription = asterisk_offer().parse().unwrap();
    let body = sdp.rewrite(&[relay(20000)], &mut origin()).unwrap();

    let expected = crlf(&[
        "v=0",
        "o=- 4242 1 IN IP4 127.0.0.1",
        "s=Asterisk",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=maxptime:150",
        "a=sendrecv",
    ]);
    assert_eq!(body, expected);
}

#[test]
fn rewrite_rtcp_attribute() {
    let sdp: SessionDescription = freeswitch_answer().parse().unwrap();
    let body = sdp.rewrite(&[relay(20010)], &mut origin()).unwrap();

    assert!(body.contains("\r\nm=audio 20010 RTP/AVP 8 96\r\n"));
    assert!(body.contains("\r\na=rtcp:20011 IN IP4 127.0.0.1\r\n"));
    assert!(!body.contains("198.51.100.20"));
}

fn webrtc_offer() -> String {
    crlf(&[
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS",
        "m=audio 51372 UDP/TLS/RTP/SAVPF 111 9 0 8 110 126",
        "c=IN IP4 203.0.113.77",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:842163049 1 udp 1677729535 203.0.113.77 51372 typ srflx raddr 10.0.0.5 rport 51372 generation 0",
        "a=candidate:1 1 udp 2122260223 10.0.0.5 51372 typ host generation 0",
        "a=end-of-candidates",
        "a=ice-ufrag:Fz3v",
        "a=ice-pwd:Pq1Jc5ymRXbkfOYWzc1Szvs4",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F",
        "a=setup:actpass",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6",
    ])
}

#[test]
fn parse_webrtc_offer() {
    let sdp: SessionDescription = webrtc_offer().parse().unwrap();
    let audio = &sdp.media[0];

    assert!(audio.rtcp_mux);
    assert_eq!(audio.codec(111).unwrap().channels, 2);
    assert_eq!(audio.payload_types_for("telephone-event"), [110, 126]);
    assert_eq!(sdp.rtcp_address(0), sdp.rtp_address(0));
}

#[test]
fn rewrite_drops_ice_and_keeps_rest() {
    let sdp: SessionDescription = webrtc_offer().parse().unwrap();
    let body = sdp.rewrite(&[relay(20020)], &mut origin()).unwrap();

    assert!(!body.contains("a=candidate"));
    assert!(!body.contains("a=ice-"));
    assert!(!body.contains("a=end-of-candidates"));
    assert!(!body.contains("203.0.113.77"));
    // With rtcp-mux the RTCP port is the RTP port.
    assert!(body.contains("\r\na=rtcp:20020 IN IP4 127.0.0.1\r\n"));
    assert!(body.contains("\r\nc=IN IP4 127.0.0.1\r\n"));

    let kept: Vec<&str> = sdp
        .lines()
        .iter()
        .map(String::as_str)
        .filter(|line| {
            !line.starts_with("a=candidate")
                && !line.starts_with("a=ice-")
                && !line.starts_with("a=end-of-candidates")
                && !line.starts_with("o=")
                && !line.starts_with("c=")
                && !line.starts_with("m=")
                && !line.starts_with("a=rtcp:")
        })
        .collect();
    let output: Vec<&str> = body
        .split("\r\n")
        .filter(|line| kept.contains(line))
        .collect();
    assert_eq!(output, kept);
}

#[test]
fn rewrite_ipv6_relay() {
    let sdp: SessionDescription = asterisk_offer().parse().unwrap();
    let relay: SocketAddr = "[::1]:20030".parse().unwrap();
    let mut origin = OriginState::with_session_id("hotline", 7, "::1".parse().unwrap());
    let body = sdp.rewrite(&[relay], &mut origin).unwrap();

    assert!(body.contains("\r\no=hotline 7 1 IN IP6 ::1\r\n"));
    assert!(body.contains("\r\nc=IN IP6 ::1\r\n"));
    assert!(!body.contains("IP4"));
}

#[test]
fn rewrite_audio_video_and_disabled_stream() {
    let body = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "c=IN IP4 192.0.2.1",
        "m=video 4002 RTP/AVP 96",
        "c=IN IP4 192.0.2.2",
        "a=rtpmap:96 VP8/90000",
        "m=image 0 udptl t38",
        "c=IN IP4 192.0.2.1",
    ]);
    let sdp: SessionDescription = body.parse().unwrap();
    let relays = [relay(20000), relay(20004), relay(20008)];
    let rewritten = sdp.rewrite(&relays, &mut origin()).unwrap();

    let lines: Vec<&str> = rewritten.lines().collect();
    assert_eq!(lines[4], "m=audio 20000 RTP/AVP 0");
    assert_eq!(lines[5], "c=IN IP4 127.0.0.1");
    assert_eq!(lines[6], "m=video 20004 RTP/AVP 96");
    assert_eq!(lines[7], "c=IN IP4 127.0.0.1");
    assert_eq!(lines[8], "a=rtpmap:96 VP8/90000");
    assert_eq!(lines[9], "m=image 0 udptl t38");
    assert_eq!(lines.len(), 11);
}

#[test]
fn rewrite_keeps_hold_direction() {
    let body = asterisk_offer().replace("a=sendrecv", "a=sendonly");
    let sdp: SessionDescription = body.parse().unwrap();
    let rewritten = sdp.rewrite(&[relay(20000)], &mut origin()).unwrap();
    assert!(rewritten.ends_with("a=sendonly\r\n"));
}

#[test]
fn rewrite_rejects_wrong_relay_count() {
    let sdp: SessionDescription = asterisk_offer().parse().unwrap();
    let error = sdp.rewrite(&[], &mut origin()).unwrap_err();
    assert_eq!(
        error,
        SdpError::RelayCountMismatch {
            media: 1,
            relays: 0
        }
    );
}

#[test]
fn origin_version_bumps_only_on_change() {
    let mut origin = origin();
    let offer: SessionDescription = asterisk_offer().parse().unwrap();
    let hold: SessionDescription = asterisk_offer()
        .replace("a=sendrecv", "a=sendonly")
        .parse()
        .unwrap();

    let first = offer.rewrite(&[relay(20000)], &mut origin).unwrap();
    assert!(first.contains("o=- 4242 1 IN IP4"));

    let refresh = offer.rewrite(&[relay(20000)], &mut origin).unwrap();
    assert_eq!(refresh, first);

    let held = hold.rewrite(&[relay(20000)], &mut origin).unwrap();
    assert!(held.contains("o=- 4242 2 IN IP4"));

    let resumed = offer.rewrite(&[relay(20000)], &mut origin).unwrap();
    assert!(resumed.contains("o=- 4242 3 IN IP4"));
    assert_eq!(origin.version(), 3);
}

#[test]
fn origin_ignores_remote_version_change() {
    // A refreshed offer whose only change is the remote o= version is the same body for
    // the other leg.
    let mut origin = origin();
    let offer: SessionDescription = asterisk_offer().parse().unwrap();
    let refreshed: SessionDescription = asterisk_offer()
        .replace("1718283914 1718283914", "1718283914 1718283915")
        .parse()
        .unwrap();

    offer.rewrite(&[relay(20000)], &mut origin).unwrap();
    refreshed.rewrite(&[relay(20000)], &mut origin).unwrap();
    assert_eq!(origin.version(), 1);
}

#[test]
fn origin_rejects_username_with_space() {
    let origin = OriginState::with_session_id("my user", 1, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(origin.line(), "o=- 1 1 IN IP4 127.0.0.1");
}

#[test]
fn origin_random_session_id_fits_i64() {
    let origin = OriginState::new("-", IpAddr::from([127, 0, 0, 1]));
    assert!(origin.session_id() <= i64::MAX as u64);
}

#[test]
fn map_dynamic_telephone_event() {
    let caller: SessionDescription = asterisk_offer().parse().unwrap();
    let agent: SessionDescription = freeswitch_answer().parse().unwrap();
    let map = map_payload_types(&caller.media[0], &agent.media[0]);

    assert_eq!(map.pairs(), [(8, 8), (101, 96)]);
    assert_eq!(map.a_to_b(101), Some(96));
    assert_eq!(map.b_to_a(96), Some(101));
    assert_eq!(map.a_to_b(0), None);
    assert!(!map.is_identity());
}

#[test]
fn map_static_types_without_rtpmap() {
    let caller = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 18 0 8 9 13",
    ]);
    let caller: SessionDescription = caller.parse().unwrap();
    let map = map_payload_types(&caller.media[0], &caller.media[0]);

    assert_eq!(map.pairs(), [(18, 18), (0, 0), (8, 8), (9, 9), (13, 13)]);
    assert!(map.is_identity());
    assert_eq!(caller.media[0].codec(9).unwrap().clock_rate, 8000);
    assert_eq!(caller.media[0].codec(96), None);
}

#[test]
fn map_by_clock_rate_and_channels() {
    let webrtc: SessionDescription = webrtc_offer().parse().unwrap();
    let agent = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 96 0 101 102 97",
        "a=rtpmap:96 OPUS/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=rtpmap:102 telephone-event/48000",
        "a=rtpmap:97 opus/48000",
    ]);
    let agent: SessionDescription = agent.parse().unwrap();
    let map = map_payload_types(&webrtc.media[0], &agent.media[0]);

    // opus/48000/2 must not pair with the mono opus/48000 at 97.
    assert_eq!(map.a_to_b(111), Some(96));
    assert_eq!(map.a_to_b(110), Some(102));
    assert_eq!(map.a_to_b(126), Some(101));
    assert_eq!(map.a_to_b(0), Some(0));
    assert_eq!(map.a_to_b(9), None);
    assert_eq!(map.b_to_a(97), None);
}

#[test]
fn map_prefers_same_number() {
    let body = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 100 101",
        "a=rtpmap:100 telephone-event/8000",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    let sdp: SessionDescription = body.parse().unwrap();
    let map = map_payload_types(&sdp.media[0], &sdp.media[0]);
    assert_eq!(map.pairs(), [(100, 100), (101, 101)]);
}

#[test]
fn rewrite_drops_session_level_ice() {
    let body = crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "a=ice-lite",
        "a=ice-ufrag:8hhY",
        "a=ice-pwd:asd88fgpdd777uzjYhagZg",
        "m=audio 4000 RTP/AVP 0",
        "a=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host",
    ]);
    let sdp: SessionDescription = body.parse().unwrap();
    let rewritten = sdp.rewrite(&[relay(20000)], &mut origin()).unwrap();

    assert!(!rewritten.contains("ice-"));
    assert!(!rewritten.contains("candidate"));
    assert!(rewritten.ends_with("t=0 0\r\nm=audio 20000 RTP/AVP 0\r\n"));
}
