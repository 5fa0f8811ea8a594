//! Content-Length framing of raw SIP bytes, before normalisation and parsing.
//!
//! [`frame_datagram`] cuts one UDP datagram to the message it carries (RFC 3261 §18.3) and
//! [`StreamFramer`] splits a TCP or TLS byte stream into messages and RFC 5626
//! keep-alive pings. Both read only the header names `Content-Length` and `l`,
//! case-insensitively, and never allocate for a well-formed message.

use bytes::{Bytes, BytesMut};

use super::normalize::is_token_byte;

/// Default maximum size of one message on a stream, headers and body, in bytes.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Default maximum size of a message's header section on a stream, in bytes, including the
/// empty line that ends it.
pub const MAX_HEADER_SIZE: usize = 16 * 1024;

/// Size limits a [`StreamFramer`] enforces, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingLimits {
    /// Maximum size of one message, headers and body.
    pub max_message_size: usize,
    /// Maximum size of the header section including its terminating empty line.
    pub max_header_size: usize,
}

impl Default for FramingLimits {
    fn default() -> Self {
        Self {
            max_message_size: MAX_MESSAGE_SIZE,
            max_header_size: MAX_HEADER_SIZE,
        }
    }
}

/// Failure to frame a message. On a stream every error is fatal for the connection, because
/// the position of the next message is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No empty line ends the header section of a datagram.
    #[error("header section is not terminated by an empty line ({size} bytes received)")]
    MissingHeaderEnd { size: usize },
    /// A Content-Length value is not a decimal number of bytes.
    #[error("invalid Content-Length value {value:?}")]
    InvalidContentLength { value: String },
    /// Two Content-Length headers disagree.
    #[error("conflicting Content-Length values {first} and {second}")]
    ConflictingContentLength { first: usize, second: usize },
    /// A stream message has no Content-Length (RFC 3261 §18.3 requires it on streams).
    #[error("missing Content-Length on a stream transport")]
    MissingContentLength,
    /// The body is shorter than Content-Length declares.
    #[error("body shorter than Content-Length: declared {declared} bytes, received {actual}")]
    BodyTooShort { declared: usize, actual: usize },
    /// The header section grew past the limit without ending.
    #[error("header section exceeds the limit of {limit} bytes")]
    HeaderTooLarge { limit: usize },
    /// Header section and declared body together exceed the limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { size: usize, limit: usize },
}

/// Content of one UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// One message, cut to its header section plus Content-Length bytes of body.
    Message(&'a [u8]),
    /// Only CR and LF bytes, or nothing: a keep-alive that needs no response.
    KeepAlive,
}

/// Frames the message in one UDP datagram (RFC 3261 §18.3).
///
/// CR and LF bytes before the start line are skipped (§7.5). Without Content-Length the body
/// is the rest of the datagram; bytes beyond Content-Length are cut off.
///
/// # Errors
///
/// [`FrameError::BodyTooShort`] when fewer body bytes arrived than Content-Length declares
/// (the request gets a 400), [`FrameError::MissingHeaderEnd`] and the Content-Length value
/// errors.
pub fn frame_datagram(datagram: &[u8]) -> Result<Datagram<'_>, FrameError> {
    let message = skip_line_ends(datagram);
    if message.is_empty() {
        return Ok(Datagram::KeepAlive);
    }

    let header_end = find_header_end(message, 0)
        .ok_or(FrameError::MissingHeaderEnd {
            size: message.len(),
        })?
        .end;
    let actual = message.len() - header_end;
    let Some(declared) = content_length(&message[..header_end])? else {
        return Ok(Datagram::Message(message));
    };
    if actual < declared {
        return Err(FrameError::BodyTooShort { declared, actual });
    }
    Ok(Datagram::Message(&message[..header_end + declared]))
}

/// Item a [`StreamFramer`] extracted from the buffered bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// One complete message, headers and body.
    Message(Bytes),
    /// An RFC 5626 §3.5.1 keep-alive ping (CRLF CRLF). The transport responds with a
    /// single CRLF pong.
    Ping,
}

/// Splits a SIP byte stream into messages by Content-Length (RFC 3261 §18.3).
///
/// Feed received bytes with [`StreamFramer::extend`] or read straight into
/// [`StreamFramer::buffer_mut`], then call [`StreamFramer::next_item`] until it returns
/// `Ok(None)`. After an error the stream is out of sync and the connection should be
/// closed.
#[derive(Debug)]
pub struct StreamFramer {
    buffer: BytesMut,
    limits: FramingLimits,
    /// Header scan progress for the message at the start of `buffer`, kept so that a message
    /// arriving in many small reads is scanned once.
    scan: ScanState,
}

/// Result of [`StreamFramer::skip_keep_alives`] at the start of the buffer.
enum KeepAlive {
    Ping,
    /// The buffer is empty or contains the first bytes of a possible ping.
    Incomplete,
    /// A start line begins.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    /// Looking for the end of the header section; lines before this offset are known not
    /// to be empty.
    Headers { line_start: usize },
    /// Headers are complete and the whole message is this many bytes long.
    Body { total: usize },
}

impl Default for StreamFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamFramer {
    /// Creates a framer with the default [`FramingLimits`].
    pub fn new() -> Self {
        Self::with_limits(FramingLimits::default())
    }

    /// Creates a framer enforcing `limits`.
    pub fn with_limits(limits: FramingLimits) -> Self {
        Self {
            buffer: BytesMut::with_capacity(4096),
            limits,
            scan: ScanState::Headers { line_start: 0 },
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Returns the receive buffer, for reading from a socket without an extra copy
    /// (`AsyncReadExt::read_buf`). Only append to it.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// Returns the number of buffered bytes not yet returned as a message.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// Returns the next complete message or ping, or `Ok(None)` when more bytes are needed.
    ///
    /// A single CRLF before a start line is skipped (RFC 3261 §7.5, and RFC 5626 pongs).
    ///
    /// # Errors
    ///
    /// [`FrameError::MissingContentLength`], [`FrameError::HeaderTooLarge`],
    /// [`FrameError::MessageTooLarge`] and the Content-Length value errors.
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, FrameError> {
        if let ScanState::Headers { line_start: 0 } = self.scan {
            match self.skip_keep_alives() {
                KeepAlive::Ping => return Ok(Some(StreamItem::Ping)),
                // NOTE: a lone CRLF pong at the end of the buffer stays there until more
                // bytes arrive, because it may be the first half of a ping.
                KeepAlive::Incomplete => return Ok(None),
                KeepAlive::None => {}
            }
        }

        let total = match self.scan {
            ScanState::Body { total } => total,
            ScanState::Headers { line_start } => match self.scan_headers(line_start)? {
                Some(total) => total,
                None => return Ok(None),
            },
        };
        if self.buffer.len() < total {
            return Ok(None);
        }

        self.scan = ScanState::Headers { line_start: 0 };
        let message = self.buffer.split_to(total).freeze();
        Ok(Some(StreamItem::Message(message)))
    }

    /// Consumes CR and LF bytes before a start line, stopping at a double CRLF ping.
    fn skip_keep_alives(&mut self) -> KeepAlive {
        const PING: &[u8] = b"\r\n\r\n";
        loop {
            if self.buffer.starts_with(PING) {
                let _ = self.buffer.split_to(PING.len());
                return KeepAlive::Ping;
            }
            if PING.starts_with(&self.buffer) {
                return KeepAlive::Incomplete;
            }
            // The buffer is not empty, because an empty buffer is a prefix of PING.
            if !matches!(self.buffer[0], b'\r' | b'\n') {
                return KeepAlive::None;
            }
            let _ = self.buffer.split_to(1);
        }
    }

    /// Looks for the end of the header section and computes the message length. Returns
    /// `Ok(None)` when the header section is still incomplete.
    fn scan_headers(&mut self, line_start: usize) -> Result<Option<usize>, FrameError> {
        let limit = self.limits.max_header_size;
        let Some(end) = find_header_end(&self.buffer, line_start) else {
            let line_start = last_line_start(&self.buffer, line_start);
            if self.buffer.len() > limit {
                return Err(FrameError::HeaderTooLarge { limit });
            }
            self.scan = ScanState::Headers { line_start };
            return Ok(None);
        };
        if end.end > limit {
            return Err(FrameError::HeaderTooLarge { limit });
        }

        let declared =
            content_length(&self.buffer[..end.end])?.ok_or(FrameError::MissingContentLength)?;
        let total = end.end.saturating_add(declared);
        if total > self.limits.max_message_size {
            return Err(FrameError::MessageTooLarge {
                size: total,
                limit: self.limits.max_message_size,
            });
        }
        self.scan = ScanState::Body { total };
        Ok(Some(total))
    }
}

fn skip_line_ends(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// End of a header section: the offset just past its terminating empty line.
struct HeaderEnd {
    end: usize,
}

/// Finds the empty line that ends the header section, accepting CRLF and bare LF line
/// ends. The search starts at `line_start`, which must be the start of a line after the
/// start line or 0.
fn find_header_end(bytes: &[u8], mut line_start: usize) -> Option<HeaderEnd> {
    while let Some(offset) = memchr::memchr(b'\n', bytes.get(line_start..)?) {
        let newline = line_start + offset;
        let line = &bytes[line_start..newline];
        if line_start > 0 && (line.is_empty() || line == b"\r") {
            return Some(HeaderEnd { end: newline + 1 });
        }
        line_start = newline + 1;
    }
    None
}

/// Returns the start of the last (incomplete) line at or after `line_start`.
fn last_line_start(bytes: &[u8], line_start: usize) -> usize {
    match bytes[line_start..].iter().rposition(|&b| b == b'\n') {
        Some(offset) => line_start + offset + 1,
        None => line_start,
    }
}

/// Reads the Content-Length of a header section (`Content-Length` or compact `l`, any
/// case). Returns `Ok(None)` when there is none.
fn content_length(headers: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found: Option<usize> = None;
    let mut line_start = 0;
    for newline in memchr::memchr_iter(b'\n', headers) {
        let line = &headers[line_start..newline];
        let first_line = line_start == 0;
        line_start = newline + 1;
        // Only a line starting with `C` or `l` (any case) can be Content-Length.
        if first_line || !matches!(line.first(), Some(b'C' | b'c' | b'L' | b'l')) {
            continue;
        }
        let Some(value) = content_length_value(line) else {
            continue;
        };
        let length = parse_length(value)?;
        match found {
            Some(first) if first != length => {
                return Err(FrameError::ConflictingContentLength {
                    first,
                    second: length,
                });
            }
            _ => found = Some(length),
        }
    }
    Ok(found)
}

/// Returns the value of a Content-Length header line, or `None` for any other line.
fn content_length_value(line: &[u8]) -> Option<&[u8]> {
    let name_len = line.iter().position(|&b| !is_token_byte(b))?;
    let name = &line[..name_len];
    if !name.eq_ignore_ascii_case(b"Content-Length") && !name.eq_ignore_ascii_case(b"l") {
        return None;
    }
    let rest = line[name_len..].trim_ascii_start();
    rest.strip_prefix(b":").map(<[u8]>::trim_ascii)
}

fn parse_length(value: &[u8]) -> Result<usize, FrameError> {
    let invalid = || FrameError::InvalidContentLength {
        value: String::from_utf8_lossy(value).into_owned(),
    };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    value.iter().try_fold(0usize, |length, &digit| {
        length
            .checked_mul(10)
            .and_then(|length| length.checked_add(usize::from(digit - b'0')))
            .ok_or_else(invalid)
    })
}

#[cfg(test)]
#[path = "corpus/tests.rs"]
mod corpus_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &[u8] = b"INFO sip:bob@192.0.2.4 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776\r\n\
Call-ID: 8c7f2@192.0.2.1\r\n\
CSeq: 3 INFO\r\n\
Content-Type: application/dtmf-relay\r\n\
Content-Length: 24\r\n\
\r\n\
Signal=5\r\nDuration=160\r\n";

    fn message(datagram: &[u8]) -> &[u8] {
        match frame_datagram(datagram).unwrap() {
            Datagram::Message(message) => message,
            Datagram::KeepAlive => panic!("expected a message"),
        }
    }

    #[test]
    fn datagram_exact_length() {
        assert_eq!(message(INFO), INFO);
    }

    #[test]
    fn datagram_trailing_bytes_are_cut() {
        let datagram = [INFO, b"\0\0garbage after the body"].concat();
        assert_eq!(message(&datagram), INFO);
    }

    #[test]
    fn rsip_keeps_bytes_past_content_length() {
        let datagram = [INFO, b"garbage"].concat();
        let parsed = rsip::SipMessage::try_from(&datagram[..]).unwrap();
        assert!(parsed.body().ends_with(b"garbage"));

        let framed = rsip::SipMessage::try_from(message(&datagram)).unwrap();
        assert_eq!(framed.body(), b"Signal=5\r\nDuration=160\r\n");
    }

    #[test]
    fn datagram_short_body_is_rejected() {
        let datagram = &INFO[..INFO.len() - 6];
        assert_eq!(
            frame_datagram(datagram),
            Err(FrameError::BodyTooShort {
                declared: 24,
                actual: 18
            })
        );
        let reason = frame_datagram(datagram).unwrap_err().to_string();
        assert_eq!(
            reason,
            "body shorter than Content-Length: declared 24 bytes, received 18"
        );
    }

    #[test]
    fn datagram_without_content_length() {
        let datagram = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\nrest";
        assert_eq!(message(datagram), datagram);
    }

    #[test]
    fn datagram_compact_content_length() {
        let datagram = b"MESSAGE sip:a@b SIP/2.0\r\nL :2\r\n\r\nhi there";
        assert_eq!(
            message(datagram),
            b"MESSAGE sip:a@b SIP/2.0\r\nL :2\r\n\r\nhi"
        );
    }

    #[test]
    fn datagram_bare_lf_headers() {
        let datagram = b"MESSAGE sip:a@b SIP/2.0\ncontent-length: 2\n\nhi\n";
        assert_eq!(
            message(datagram),
            b"MESSAGE sip:a@b SIP/2.0\ncontent-length: 2\n\nhi"
        );
    }

    #[test]
    fn datagram_leading_crlf_is_skipped() {
        let datagram = [b"\r\n".as_slice(), INFO].concat();
        assert_eq!(message(&datagram), INFO);
    }

    #[test]
    fn datagram_keep_alives() {
        assert_eq!(frame_datagram(b"\r\n\r\n"), Ok(Datagram::KeepAlive));
        assert_eq!(frame_datagram(b"\r\n"), Ok(Datagram::KeepAlive));
        assert_eq!(frame_datagram(b""), Ok(Datagram::KeepAlive));
    }

    #[test]
    fn datagram_invalid_content_length() {
        let datagram = b"BYE sip:a@b SIP/2.0\r\nContent-Length: 12a\r\n\r\n";
        assert_eq!(
            frame_datagram(datagram),
            Err(FrameError::InvalidContentLength {
                value: "12a".to_owned()
            })
        );
        let overflow = b"BYE sip:a@b SIP/2.0\r\nl: 99999999999999999999999\r\n\r\n";
        assert!(matches!(
            frame_datagram(overflow),
            Err(FrameError::InvalidContentLength { .. })
        ));
    }

    #[test]
    fn datagram_conflicting_content_length() {
        let datagram = b"BYE sip:a@b SIP/2.0\r\nContent-Length: 0\r\nl: 4\r\n\r\nbody";
        assert_eq!(
            frame_datagram(datagram),
            Err(FrameError::ConflictingContentLength {
                first: 0,
                second: 4
            })
        );
    }

    #[test]
    fn datagram_missing_header_end() {
        let datagram = b"BYE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n";
        assert_eq!(
            frame_datagram(datagram),
            Err(FrameError::MissingHeaderEnd { size: 33 })
        );
    }

    #[test]
    fn stream_two_messages_in_one_read() {
        let mut framer = StreamFramer::new();
        framer.extend(&[INFO, INFO].concat());
        assert_eq!(
            framer.next_item(),
            Ok(Some(StreamItem::Message(Bytes::from_static(INFO))))
        );
        assert_eq!(
            framer.next_item(),
            Ok(Some(StreamItem::Message(Bytes::from_static(INFO))))
        );
        assert_eq!(framer.next_item(), Ok(None));
        assert_eq!(framer.buffered_len(), 0);
    }

    #[test]
    fn stream_message_byte_by_byte() {
        let mut framer = StreamFramer::new();
        for (index, byte) in INFO.iter().enumerate() {
            assert_eq!(framer.next_item(), Ok(None), "byte {index}");
            framer.extend(&[*byte]);
        }
        assert_eq!(
            framer.next_item(),
            Ok(Some(StreamItem::Message(Bytes::from_static(INFO))))
        );
    }

    #[test]
    fn stream_ping_and_pong() {
        let mut framer = StreamFramer::new();
        framer.extend(b"\r\n\r\n");
        assert_eq!(framer.next_item(), Ok(Some(StreamItem::Ping)));
        assert_eq!(framer.next_item(), Ok(None));

        framer.extend(b"\r\n");
        framer.extend(INFO);
        assert_eq!(
            framer.next_item(),
            Ok(Some(StreamItem::Message(Bytes::from_static(INFO))))
        );
    }

    #[test]
    fn stream_split_ping() {
        let mut framer = StreamFramer::new();
        framer.extend(b"\r\n");
        assert_eq!(framer.next_item(), Ok(None));
        framer.extend(b"\r\n");
        assert_eq!(framer.next_item(), Ok(Some(StreamItem::Ping)));
    }

    #[test]
    fn stream_requires_content_length() {
        let mut framer = StreamFramer::new();
        framer.extend(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n");
        assert_eq!(framer.next_item(), Err(FrameError::MissingContentLength));
    }

    #[test]
    fn stream_message_too_large() {
        let mut framer = StreamFramer::new();
        framer.extend(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n");
        assert_eq!(
            framer.next_item(),
            Err(FrameError::MessageTooLarge {
                size: 70_050,
                limit: MAX_MESSAGE_SIZE
            })
        );
    }

    #[test]
    fn stream_header_too_large() {
        let limits = FramingLimits {
            max_message_size: 1024,
            max_header_size: 64,
        };
        let mut framer = StreamFramer::with_limits(limits);
        framer.extend(b"OPTIONS sip:a@b SIP/2.0\r\n");
        assert_eq!(framer.next_item(), Ok(None));
        framer.extend(&[b'X'; 60]);
        assert_eq!(
            framer.next_item(),
            Err(FrameError::HeaderTooLarge { limit: 64 })
        );
    }

    #[test]
    fn stream_header_end_split_across_reads() {
        let mut framer = StreamFramer::new();
        let (head, tail) = INFO.split_at(INFO.iter().position(|&b| b == b'S').unwrap() - 2);
        framer.extend(&head[..head.len() - 1]);
        assert_eq!(framer.next_item(), Ok(None));
        framer.extend(&head[head.len() - 1..]);
        assert_eq!(framer.next_item(), Ok(None));
        framer.extend(tail);
        assert_eq!(
            framer.next_item(),
            Ok(Some(StreamItem::Message(Bytes::from_static(INFO))))
        );
    }
}
