//! Normalisation of one framed SIP message into the strict header form the parser reads.
//!
//! The header split (like rsip 0.4) accepts only long header names, CRLF line ends, one line per header and a colon
//! right after the name. Real traffic uses all of RFC 3261 §7.3: compact names (§7.3.3),
//! folded lines (§7.3.1), whitespace before the colon, and some stacks end lines with a
//! bare LF. [`normalize`] rewrites the header section into the strict form and copies
//! header values and the body unchanged.

use std::borrow::Cow;

/// Extra capacity reserved when a message has to be rewritten, enough to expand about a
/// dozen compact header names without growing the buffer.
const REWRITE_HEADROOM: usize = 128;

/// Failure to normalise a message's header section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// No empty line ends the header section (RFC 3261 §7: it is required even without a
    /// body).
    #[error("header section is not terminated by an empty line ({scanned} bytes scanned)")]
    MissingHeaderEnd { scanned: usize },
    /// A line starting with whitespace directly follows the start line, so there is no
    /// header for it to continue.
    #[error("continuation line at byte {offset} follows the start line")]
    ContinuationWithoutHeader { offset: usize },
}

/// Rewrites the header section of one framed message into the strict form (RFC 3261
/// §7.3):
///
/// - folded lines (CRLF followed by SP or HT) are joined, and the line break together with
///   the whitespace around it becomes one SP (§7.3.1);
/// - compact header names are expanded to their long form (§7.3.3 and the RFCs that
///   define the other letters, see [`compact_header_name`]);
/// - whitespace between a header name and its colon is removed;
/// - bare LF line ends become CRLF.
///
/// Header values, the start line and the body are copied byte for byte. Returns
/// `Cow::Borrowed` without allocating when the message is already in that form.
///
/// # Errors
///
/// [`NormalizeError::MissingHeaderEnd`] when no empty line ends the headers and
/// [`NormalizeError::ContinuationWithoutHeader`] when the first header line is a
/// continuation.
pub fn normalize(raw: &[u8]) -> Result<Cow<'_, [u8]>, NormalizeError> {
    let layout = scan(raw)?;
    if layout.canonical {
        return Ok(Cow::Borrowed(raw));
    }
    Ok(Cow::Owned(rewrite(raw, layout.body_start)))
}

/// Returns the long form of a compact header name, matched case-insensitively.
///
/// Letters and their sources:
///
/// - RFC 3261: c Content-Type, e Content-Encoding, f From, i Call-ID, k Supported,
///   l Content-Length, m Contact, s Subject, t To, v Via.
/// - RFC 3841: a Accept-Contact, d Request-Disposition, j Reject-Contact.
/// - RFC 3892: b Referred-By. RFC 3515: r Refer-To. RFC 4028: x Session-Expires.
/// - RFC 4474: n Identity-Info. RFC 6665: o Event, u Allow-Events. RFC 8224: y Identity.
pub fn compact_header_name(letter: u8) -> Option<&'static str> {
    let name = match letter.to_ascii_lowercase() {
        b'a' => "Accept-Contact",
        b'b' => "Referred-By",
        b'c' => "Content-Type",
        b'd' => "Request-Disposition",
        b'e' => "Content-Encoding",
        b'f' => "From",
        b'i' => "Call-ID",
        b'j' => "Reject-Contact",
        b'k' => "Supported",
        b'l' => "Content-Length",
        b'm' => "Contact",
        b'n' => "Identity-Info",
        b'o' => "Event",
        b'r' => "Refer-To",
        b's' => "Subject",
        b't' => "To",
        b'u' => "Allow-Events",
        b'v' => "Via",
        b'x' => "Session-Expires",
        b'y' => "Identity",
        _ => return None,
    };
    Some(name)
}

/// Returns whether `byte` may appear in a header name (RFC 3261 §25.1 `token`).
pub(crate) fn is_token_byte(byte: u8) -> bool {
    TOKEN_BYTES[usize::from(byte)]
}

/// The bytes [`is_token_byte`] accepts, one entry per byte value. Every header name byte
/// of every message is checked, and a table lookup is one load.
const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        byte += 1;
    }
    table
};

fn is_wsp(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// One line of the header section, without its line end.
struct Line<'a> {
    content: &'a [u8],
    start: usize,
    crlf: bool,
}

/// Iterator over the lines of a message, each ended by LF or CRLF. Stops at the first
/// line without a line end.
struct Lines<'a> {
    raw: &'a [u8],
    position: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let rest = self.raw.get(self.position..)?;
        let newline = memchr::memchr(b'\n', rest)?;
        let start = self.position;
        self.position += newline + 1;

        let (content, crlf) = match rest[..newline].strip_suffix(b"\r") {
            Some(content) => (content, true),
            None => (&rest[..newline], false),
        };
        Some(Line {
            content,
            start,
            crlf,
        })
    }
}

/// Body offset of a message and whether its header section is already canonical.
struct Layout {
    body_start: usize,
    canonical: bool,
}

fn scan(raw: &[u8]) -> Result<Layout, NormalizeError> {
    let missing_end = NormalizeError::MissingHeaderEnd { scanned: raw.len() };
    let mut lines = Lines { raw, position: 0 };
    let start_line = lines.next().ok_or(missing_end.clone())?;
    let mut canonical = start_line.crlf;
    let mut first_header = true;

    for line in lines.by_ref() {
        if line.content.is_empty() {
            return Ok(Layout {
                body_start: lines.position,
                canonical: canonical && line.crlf,
            });
        }
        let continuation = is_wsp(line.content[0]);
        if continuation && first_header {
            return Err(NormalizeError::ContinuationWithoutHeader { offset: line.start });
        }
        first_header = false;
        canonical &= line.crlf && !continuation && !needs_name_rewrite(line.content);
    }
    Err(missing_end)
}

/// Splits a header line into its name and the rest starting at the colon, when the line
/// has the `name *WSP ":"` shape.
fn split_name(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let name_len = line.iter().position(|&b| !is_token_byte(b))?;
    if name_len == 0 {
        return None;
    }
    let (name, rest) = line.split_at(name_len);
    let colon = rest.iter().position(|&b| !is_wsp(b))?;
    if rest[colon] != b':' {
        return None;
    }
    Some((name, &rest[colon..]))
}

fn needs_name_rewrite(line: &[u8]) -> bool {
    let Some((name, rest)) = split_name(line) else {
        return false;
    };
    let has_space_before_colon = name.len() + rest.len() != line.len();
    let is_compact = name.len() == 1 && compact_header_name(name[0]).is_some();
    has_space_before_colon || is_compact
}

fn rewrite(raw: &[u8], body_start: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + REWRITE_HEADROOM);
    let mut lines = Lines { raw, position: 0 };

    if let Some(start_line) = lines.next() {
        out.extend_from_slice(start_line.content);
        out.extend_from_slice(b"\r\n");
    }
    for line in lines {
        if line.start >= body_start || line.content.is_empty() {
            break;
        }
        if is_wsp(line.content[0]) {
            join_continuation(&mut out, line.content);
        } else {
            write_header_line(&mut out, line.content);
        }
        out.extend_from_slice(b"\r\n");
    }

    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&raw[body_start..]);
    out
}

/// Appends a continuation line to the previous header line. The previous line's CRLF, its
/// trailing whitespace and the continuation's leading whitespace become one SP (§7.3.1).
fn join_continuation(out: &mut Vec<u8>, continuation: &[u8]) {
    out.truncate(out.len().saturating_sub(2));
    while out.last().is_some_and(|&b| is_wsp(b)) {
        out.pop();
    }
    out.push(b' ');

    let text_start = continuation
        .iter()
        .position(|&b| !is_wsp(b))
        .unwrap_or(continuation.len());
    out.extend_from_slice(&continuation[text_start..]);
}

fn write_header_line(out: &mut Vec<u8>, line: &[u8]) {
    let Some((name, rest)) = split_name(line) else {
        out.extend_from_slice(line);
        return;
    };
    let long_name = match name {
        [letter] => compact_header_name(*letter),
        _ => None,
    };
    out.extend_from_slice(long_name.map_or(name, str::as_bytes));
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsip::prelude::*;

    #[test]
    fn token_bytes_match_rfc_3261() {
        // RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" /
        // "`" / "'" / "~").
        for byte in 0..=u8::MAX {
            let expected = byte.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&byte);
            assert_eq!(is_token_byte(byte), expected, "byte {byte:#04x}");
        }
    }

    const COMPACT_INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
v: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
f: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
t: <sip:bob@biloxi.example.com>\r\n\
i: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
m: <sip:alice@192.0.2.101:5060>\r\n\
Max-Forwards: 70\r\n\
c: application/sdp\r\n\
l: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn canonical_message_is_borrowed() {
        let raw = b"BYE sip:bob@192.0.2.4 SIP/2.0\r\nCall-ID: x@y\r\nCSeq: 2 BYE\r\n\r\n";
        let normalized = normalize(raw).unwrap();
        assert!(matches!(normalized, Cow::Borrowed(_)));
        assert_eq!(&normalized[..], &raw[..]);
    }

    #[test]
    fn compact_names_are_expanded() {
        let normalized = normalize(COMPACT_INVITE).unwrap();
        let text = std::str::from_utf8(&normalized).unwrap();
        assert!(text.contains("\r\nVia: SIP/2.0/UDP pc33.atlanta.example.com:5060;"));
        assert!(text.contains("\r\nFrom: \"Alice\" <sip:alice@atlanta.example.com>;"));
        assert!(text.contains("\r\nCall-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"));
        assert!(text.contains("\r\nContent-Length: 4\r\n"));
        assert!(text.contains("\r\nContent-Type: application/sdp\r\n"));
    }

    #[test]
    fn compact_names_defeat_rsip_alone() {
        let raw = rsip::SipMessage::try_from(COMPACT_INVITE).unwrap();
        assert!(raw.via_header().is_err());
        assert!(raw.call_id_header().is_err());

        let normalized = normalize(COMPACT_INVITE).unwrap();
        let message = rsip::SipMessage::try_from(&normalized[..]).unwrap();
        assert!(message.via_header().is_ok());
        assert_eq!(
            message.call_id_header().unwrap().value(),
            "a84b4c76e66710@pc33.atlanta.example.com"
        );
        assert!(message.from_header().is_ok());
        assert!(message.to_header().is_ok());
    }

    #[test]
    fn compact_body_is_untouched() {
        let normalized = normalize(COMPACT_INVITE).unwrap();
        assert!(normalized.ends_with(b"\r\n\r\nv=0\n"));
    }

    #[test]
    fn uppercase_compact_name_is_expanded() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nI: abc\r\n\r\n";
        let normalized = normalize(raw).unwrap();
        assert_eq!(
            &normalized[..],
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: abc\r\n\r\n"
        );
    }

    #[test]
    fn every_compact_letter_expands() {
        for letter in b'a'..=b'z' {
            let Some(long_name) = compact_header_name(letter) else {
                continue;
            };
            let raw = [
                b"OPTIONS sip:a@b SIP/2.0\r\n".as_slice(),
                &[letter],
                b": 1\r\n\r\n",
            ]
            .concat();
            let normalized = normalize(&raw).unwrap();
            let expected = format!("OPTIONS sip:a@b SIP/2.0\r\n{long_name}: 1\r\n\r\n");
            assert_eq!(
                &normalized[..],
                expected.as_bytes(),
                "letter {}",
                letter as char
            );
        }
    }

    #[test]
    fn unknown_single_letter_name_is_kept() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nq: 1\r\n\r\n";
        assert!(matches!(normalize(raw).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn folded_header_is_unfolded() {
        let raw = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9\r\n\
Subject: I know you're there,\r\n   \tpull up the chair\r\n\
Call-ID: 3848276298220188511@192.0.2.1\r\n\
Route: <sip:p1.example.com;lr>,  \r\n <sip:p2.example.com;lr>\r\n\
\r\n";
        assert!(rsip::SipMessage::try_from(&raw[..]).is_err());

        let normalized = normalize(raw).unwrap();
        let text = std::str::from_utf8(&normalized).unwrap();
        assert!(text.contains("\r\nSubject: I know you're there, pull up the chair\r\n"));
        assert!(text.contains("\r\nRoute: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"));
        let message = rsip::SipMessage::try_from(&normalized[..]).unwrap();
        assert!(message.call_id_header().is_ok());
    }

    #[test]
    fn bare_lf_becomes_crlf() {
        let raw = b"BYE sip:bob@192.0.2.4 SIP/2.0\nCall-ID: x@y\nCSeq: 2 BYE\n\nbody\nline\n";
        let normalized = normalize(raw).unwrap();
        assert_eq!(
            &normalized[..],
            b"BYE sip:bob@192.0.2.4 SIP/2.0\r\nCall-ID: x@y\r\nCSeq: 2 BYE\r\n\r\nbody\nline\n"
        );
    }

    #[test]
    fn space_before_colon_is_removed() {
        let raw = b"BYE sip:bob@192.0.2.4 SIP/2.0\r\nCall-ID  : x@y\r\nCSeq\t: 2 BYE\r\n\r\n";
        let normalized = normalize(raw).unwrap();
        assert_eq!(
            &normalized[..],
            b"BYE sip:bob@192.0.2.4 SIP/2.0\r\nCall-ID: x@y\r\nCSeq: 2 BYE\r\n\r\n"
        );
    }

    #[test]
    fn header_values_are_kept_verbatim() {
        let raw = b"BYE sip:b@c SIP/2.0\nf:   <sip:a@b>;tag=X \t\n\n";
        let normalized = normalize(raw).unwrap();
        assert_eq!(
            &normalized[..],
            b"BYE sip:b@c SIP/2.0\r\nFrom:   <sip:a@b>;tag=X \t\r\n\r\n"
        );
    }

    #[test]
    fn body_lines_are_not_rewritten() {
        let raw = b"MESSAGE sip:b@c SIP/2.0\r\nv: SIP/2.0/UDP h\r\n\r\nf: not a header\r\n  x\n";
        let normalized = normalize(raw).unwrap();
        assert!(normalized.ends_with(b"\r\n\r\nf: not a header\r\n  x\n"));
    }

    #[test]
    fn missing_header_end_is_rejected() {
        let raw = b"BYE sip:bob@192.0.2.4 SIP/2.0\r\nCall-ID: x@y\r\n";
        assert_eq!(
            normalize(raw),
            Err(NormalizeError::MissingHeaderEnd { scanned: raw.len() })
        );
    }

    #[test]
    fn continuation_after_start_line_is_rejected() {
        let raw = b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n  Call-ID: x@y\r\n\r\n";
        assert_eq!(
            normalize(raw),
            Err(NormalizeError::ContinuationWithoutHeader { offset: 31 })
        );
    }
}
