//! Status codes: the standard reason phrases (RFC 3261 §21 and extensions) and the best
//! effort reply to bytes that could not be parsed.

use std::fmt::Write as _;

use bytes::Bytes;

/// The reason phrase RFC 3261 §21 (and RFC 3515, 3891, 4028, 6665) gives for `status`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirection",
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
    }
}

/// Builds a response to a request that failed to parse, copying Via, From, To, Call-ID and
/// CSeq textually from its header lines (RFC 3261 §8.2.6.2). Returns `None` when the bytes
/// are not a request or carry no Via, because the response would have nowhere to go.
pub fn reply_to_raw(raw: &[u8], status: u16, reason: &str) -> Option<Bytes> {
    let head_len = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_len]);
    let mut lines = head.split("\r\n");
    let start = lines.next()?;
    if start.starts_with("SIP/") || !start.ends_with("SIP/2.0") {
        return None;
    }

    let mut copied = String::new();
    let mut has_via = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let Some(full) = copied_name(name.trim()) else {
            continue;
        };
        has_via |= full == "Via";
        let _ = write!(copied, "{full}: {}\r\n", value.trim());
    }
    if !has_via {
        return None;
    }

    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    let text = format!("SIP/2.0 {status} {reason}\r\n{copied}Content-Length: 0\r\n\r\n");
    Some(Bytes::from(text))
}

/// The full name of a header that a response copies, accepting compact forms.
fn copied_name(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "via" | "v" => Some("Via"),
        "from" | "f" => Some("From"),
        "to" | "t" => Some("To"),
        "call-id" | "i" => Some("Call-ID"),
        "cseq" => Some("CSeq"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_copies_transaction_headers() {
        let raw = b"INVITE sip:a@h SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
            f: <sip:c@h>;tag=1\r\nt: <sip:a@h>\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\nv=0";
        let reply = reply_to_raw(raw, 400, "Body Shorter Than Content-Length").unwrap();
        let text = std::str::from_utf8(&reply).unwrap();
        assert!(text.starts_with("SIP/2.0 400 Body Shorter Than Content-Length\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"));
        assert!(text.contains("From: <sip:c@h>;tag=1\r\n"));
        assert!(text.contains("CSeq: 1 INVITE\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn no_reply_without_via() {
        assert!(
            reply_to_raw(
                b"INVITE sip:a@h SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n",
                400,
                "x"
            )
            .is_none()
        );
    }

    #[test]
    fn no_reply_to_response() {
        assert!(reply_to_raw(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", 400, "x").is_none());
    }

    #[test]
    fn no_reply_to_garbage() {
        assert!(reply_to_raw(b"\x16\x03\x01\x02\x00", 400, "x").is_none());
    }
}
