use crate::dtmf::Digit;
use crate::dtmf::info::{
    ACCEPTED_CONTENT_TYPES, InfoDtmfError, parse_dtmf, parse_info_body, parse_signal,
};

const RELAY: &str = "application/dtmf-relay";
const DTMF: &str = "application/dtmf";

fn digit(key: char, duration_ms: Option<u32>) -> Digit {
    Digit { key, duration_ms }
}

#[test]
fn relay_body_with_duration() {
    let body = b"Signal=1\r\nDuration=160\r\n";
    assert_eq!(parse_info_body(RELAY, body), Ok(digit('1', Some(160))));
}

#[test]
fn relay_body_variants() {
    let cases: [(&[u8], Digit); 10] = [
        (b"Signal= *\r\nDuration= 250\r\n", digit('*', Some(250))),
        (b"signal=#\r\nduration=100\r\n", digit('#', Some(100))),
        (b"SIGNAL = 5\nDURATION = 80\n", digit('5', Some(80))),
        (b"Signal=10\r\nDuration=160\r\n", digit('*', Some(160))),
        (b"Signal=11\r\nDuration=160\r\n", digit('#', Some(160))),
        (b"Signal=12\r\n", digit('A', None)),
        (b"Signal=d\r\n", digit('D', None)),
        (b"Signal=7", digit('7', None)),
        (b"Signal=9\r\nDuration=\r\n", digit('9', None)),
        (
            b"Foo=bar\r\nSignal=0\r\nnoise\r\nDuration=40\r\n",
            digit('0', Some(40)),
        ),
    ];
    for (body, expected) in cases {
        let text = String::from_utf8_lossy(body);
        assert_eq!(parse_info_body(RELAY, body), Ok(expected), "body {text:?}");
    }
}

#[test]
fn relay_first_signal_counts() {
    let body = b"Signal=2\r\nSignal=3\r\n";
    assert_eq!(parse_info_body(RELAY, body), Ok(digit('2', None)));
}

#[test]
fn content_type_parameters_and_case() {
    let body = b"Signal=4\r\n";
    let types = [
        "Application/DTMF-Relay",
        "application/dtmf-relay; charset=utf-8",
        " application/dtmf-relay ",
    ];
    for content_type in types {
        assert_eq!(
            parse_info_body(content_type, body),
            Ok(digit('4', None)),
            "type {content_type:?}"
        );
    }
}

#[test]
fn dtmf_body_variants() {
    let cases: [(&[u8], char); 7] = [
        (b"5", '5'),
        (b"*", '*'),
        (b"#\r\n", '#'),
        (b" 0 ", '0'),
        (b"10", '*'),
        (b"11", '#'),
        (b"b", 'B'),
    ];
    for (body, key) in cases {
        let text = String::from_utf8_lossy(body);
        assert_eq!(
            parse_info_body(DTMF, body),
            Ok(digit(key, None)),
            "body {text:?}"
        );
    }
    assert_eq!(
        parse_info_body("APPLICATION/DTMF", b"3"),
        Ok(digit('3', None))
    );
}

#[test]
fn unsupported_content_type_is_415() {
    for content_type in [
        "application/sdp",
        "text/plain",
        "",
        "application/dtmf-relayx",
    ] {
        let error = parse_info_body(content_type, b"Signal=1").unwrap_err();
        assert_eq!(
            error,
            InfoDtmfError::UnsupportedContentType(content_type.to_owned())
        );
        assert_eq!(error.status_code(), 415);
    }
    assert_eq!(
        ACCEPTED_CONTENT_TYPES,
        "application/dtmf-relay, application/dtmf"
    );
}

#[test]
fn missing_signal_is_400() {
    let cases: [(&str, &[u8]); 4] = [
        (RELAY, b""),
        (RELAY, b"Duration=160\r\n"),
        (RELAY, b"Signal 1\r\n"),
        (DTMF, b" \r\n"),
    ];
    for (content_type, body) in cases {
        let error = parse_info_body(content_type, body).unwrap_err();
        assert_eq!(error, InfoDtmfError::MissingSignal, "body {body:?}");
        assert_eq!(error.status_code(), 400);
    }
}

#[test]
fn invalid_signal_is_400() {
    let cases: [(&str, &[u8], &str); 6] = [
        (RELAY, b"Signal=\r\n", ""),
        (RELAY, b"Signal=16\r\n", "16"),
        (RELAY, b"Signal=E\r\n", "E"),
        (RELAY, b"Signal=12a\r\n", "12a"),
        (DTMF, b"55", "55"),
        (DTMF, b"-1", "-1"),
    ];
    for (content_type, body, value) in cases {
        let error = parse_info_body(content_type, body).unwrap_err();
        assert_eq!(error, InfoDtmfError::InvalidSignal(value.to_owned()));
        assert_eq!(error.status_code(), 400);
    }
}

#[test]
fn invalid_duration_is_400() {
    for value in ["abc", "-5", "1.5", "99999999999"] {
        let body = format!("Signal=1\r\nDuration={value}\r\n");
        let error = parse_info_body(RELAY, body.as_bytes()).unwrap_err();
        assert_eq!(error, InfoDtmfError::InvalidDuration(value.to_owned()));
        assert_eq!(error.status_code(), 400);
    }
}

#[test]
fn body_not_utf8_is_400() {
    let error = parse_info_body(RELAY, b"Signal=\xff\r\n").unwrap_err();
    assert_eq!(error, InfoDtmfError::NotUtf8);
    assert_eq!(error.status_code(), 400);
}

#[test]
fn signal_values() {
    assert_eq!(parse_signal("15"), Some('D'));
    assert_eq!(parse_signal("09"), Some('9'));
    assert_eq!(parse_signal("+1"), None);
    assert_eq!(parse_signal(""), None);
    assert_eq!(parse_dtmf("c"), Ok(digit('C', None)));
}
