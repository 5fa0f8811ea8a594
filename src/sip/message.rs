//! The message model: requests and responses whose headers are kept as received
//! ([`HeaderFields`]). Start lines, framing, URIs and the headers the engine relies on are
//! parsed by this module's own code, and the encoder writes headers back as they arrived.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};

use super::fields::HeaderFields;
use super::framing::{self, FrameError};
use super::headers::CSeq;
use super::ids::{Branch, CallId, Tag};
use super::method::Method;
use super::normalize::{self, NormalizeError};
use super::uri::{NameAddr, Uri, Via};

/// The reason a message could not be read. The display text is short enough for a reason phrase.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Normalize(#[from] NormalizeError),
    #[error("Bad start line")]
    StartLine,
    #[error("Unsupported SIP version")]
    Version,
    #[error("Bad Request-URI")]
    RequestUri,
    #[error("Bad header section")]
    Headers,
    #[error("Missing {0} header")]
    Missing(&'static str),
    #[error("Bad {0} header")]
    Invalid(&'static str),
}

/// A fault in one header that the engine needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("Missing {0} header")]
    Missing(&'static str),
    #[error("Bad {0} header")]
    Invalid(&'static str),
}

/// A SIP request (RFC 3261 §7.1).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    headers: HeaderFields,
    body: Bytes,
}

/// A SIP response (RFC 3261 §7.2).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    headers: HeaderFields,
    body: Bytes,
}

/// Either kind of message.
#[derive(Debug, Clone)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Frames, normalises and parses one message.
///
/// `datagram` selects UDP framing (a body longer than Content-Length is cut, a shorter one
/// is an error); stream messages arrive already framed by the transport.
pub fn parse(data: &[u8], datagram: bool) -> Result<Message, ParseError> {
    let framed = if datagram {
        match framing::frame_datagram(data)? {
            framing::Datagram::Message(framed) => framed,
            framing::Datagram::KeepAlive => return Err(ParseError::StartLine),
        }
    } else {
        data
    };
    let normalized = normalize::normalize(framed)?;
    parse_normalized(&normalized)
}

fn parse_normalized(data: &[u8]) -> Result<Message, ParseError> {
    let head_end = find(data, b"\r\n\r\n").ok_or(ParseError::Headers)?;
    let line_end = find(data, b"\r\n").ok_or(ParseError::StartLine)?;
    let start = std::str::from_utf8(&data[..line_end]).map_err(|_| ParseError::StartLine)?;
    let body = Bytes::copy_from_slice(&data[head_end + 4..]);
    let headers = parse_headers(&data[line_end + 2..head_end + 4])?;

    if let Some(rest) = start.strip_prefix("SIP/") {
        let mut parts = rest.splitn(3, ' ');
        if parts.next() != Some("2.0") {
            return Err(ParseError::Version);
        }
        let status = parts
            .next()
            .and_then(|code| code.parse::<u16>().ok())
            .filter(|code| (100..700).contains(code))
            .ok_or(ParseError::StartLine)?;
        let reason = parts.next().unwrap_or("").to_owned();
        return Ok(Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }));
    }

    let mut parts = start.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine);
    };
    if version != "SIP/2.0" {
        return Err(ParseError::Version);
    }
    let method = Method::from_str(method).map_err(|_| ParseError::StartLine)?;
    let uri = Uri::from_str(uri).map_err(|_| ParseError::RequestUri)?;
    Ok(Message::Request(Request {
        method,
        uri,
        headers,
        body,
    }))
}

/// Splits the normalised header section into fields, one `name: value` line each.
///
/// rsip's own tokeniser spent about half of every parse (callgrind, see
/// docs/performance.md) re-reading what normalisation already guarantees: unfolded lines
/// and full header names. Each line is therefore split at its first colon, and the
/// value is kept exactly as it arrived.
fn parse_headers(section: &[u8]) -> Result<HeaderFields, ParseError> {
    let text = std::str::from_utf8(section).map_err(|_| ParseError::Headers)?;
    HeaderFields::parse(text).map_err(|_| ParseError::Headers)
}

/// Reads the `tag` parameter of a From or To value. The name-addr form is read without
/// parsing its URI, because the tag is all the caller needs.
fn header_tag(value: &str) -> Result<Option<Tag>, super::uri::UriError> {
    match super::uri::bracketed_params(value)? {
        Some(params) => Ok(super::uri::find_param(params, "tag")?
            .flatten()
            .map(Tag::new)),
        None => Ok(value.parse::<NameAddr>()?.tag().map(Tag::new)),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Read and write access to headers, shared by requests and responses.
pub trait Headers {
    #[doc(hidden)]
    fn header_list(&self) -> &HeaderFields;
    #[doc(hidden)]
    fn header_list_mut(&mut self) -> &mut HeaderFields;
    fn body(&self) -> &Bytes;
    fn body_mut(&mut self) -> &mut Bytes;

    /// The first value of the header `name` (full name, case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.header_list().iter().find_map(|(header_name, value)| {
            header_name.eq_ignore_ascii_case(name).then_some(value)
        })
    }

    /// Every value of the header `name`, in message order.
    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.header_list()
            .iter()
            .filter_map(move |(header_name, value)| {
                header_name.eq_ignore_ascii_case(name).then_some(value)
            })
    }

    /// Every header as a name and value pair, in message order.
    fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.header_list().iter()
    }

    fn call_id(&self) -> Result<CallId, HeaderError> {
        let value = self
            .header("Call-ID")
            .ok_or(HeaderError::Missing("Call-ID"))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(HeaderError::Invalid("Call-ID"));
        }
        Ok(CallId::new(value))
    }

    fn cseq(&self) -> Result<CSeq, HeaderError> {
        let value = self.header("CSeq").ok_or(HeaderError::Missing("CSeq"))?;
        value.parse().map_err(|_| HeaderError::Invalid("CSeq"))
    }

    // `From` is the SIP header's name here, not a conversion.
    #[allow(clippy::wrong_self_convention)]
    fn from_header(&self) -> Result<NameAddr, HeaderError> {
        let value = self.header("From").ok_or(HeaderError::Missing("From"))?;
        value.parse().map_err(|_| HeaderError::Invalid("From"))
    }

    fn to_header(&self) -> Result<NameAddr, HeaderError> {
        let value = self.header("To").ok_or(HeaderError::Missing("To"))?;
        value.parse().map_err(|_| HeaderError::Invalid("To"))
    }

    #[allow(clippy::wrong_self_convention)]
    fn from_tag(&self) -> Result<Option<Tag>, HeaderError> {
        let value = self.header("From").ok_or(HeaderError::Missing("From"))?;
        header_tag(value).map_err(|_| HeaderError::Invalid("From"))
    }

    fn to_tag(&self) -> Result<Option<Tag>, HeaderError> {
        let value = self.header("To").ok_or(HeaderError::Missing("To"))?;
        header_tag(value).map_err(|_| HeaderError::Invalid("To"))
    }

    /// Every Via entry, top first, with comma-separated values split.
    fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let mut vias = Vec::new();
        for value in self.headers_named("Via") {
            for item in super::uri::split_list(value) {
                vias.push(item.parse().map_err(|_| HeaderError::Invalid("Via"))?);
            }
        }
        if vias.is_empty() {
            return Err(HeaderError::Missing("Via"));
        }
        Ok(vias)
    }

    fn top_via(&self) -> Result<Via, HeaderError> {
        let value = self.header("Via").ok_or(HeaderError::Missing("Via"))?;
        let first = super::uri::split_list(value)
            .next()
            .ok_or(HeaderError::Invalid("Via"))?;
        first.parse().map_err(|_| HeaderError::Invalid("Via"))
    }

    /// Returns the top Via's `branch` without parsing the sent-by. The dispatcher parses
    /// the whole top Via of every request, and a response needs only its branch.
    fn branch(&self) -> Result<Branch, HeaderError> {
        let invalid = HeaderError::Invalid("Via");
        let value = self.header("Via").ok_or(HeaderError::Missing("Via"))?;
        let top = super::uri::split_list(value)
            .next()
            .ok_or(invalid.clone())?;
        match super::uri::find_param(super::uri::via_params(top), "branch") {
            Ok(Some(Some(branch))) => Ok(Branch::new(branch)),
            _ => Err(invalid),
        }
    }

    /// The first Contact, if any.
    fn contact(&self) -> Result<Option<NameAddr>, HeaderError> {
        let Some(value) = self.header("Contact") else {
            return Ok(None);
        };
        let first = super::uri::split_list(value)
            .next()
            .ok_or(HeaderError::Invalid("Contact"))?;
        first
            .parse()
            .map(Some)
            .map_err(|_| HeaderError::Invalid("Contact"))
    }

    /// Every entry of the header `name` that holds a list of name-addrs (Route,
    /// Record-Route), in message order.
    fn name_addr_list(&self, name: &'static str) -> Result<Vec<NameAddr>, HeaderError> {
        let mut entries = Vec::new();
        for value in self.headers_named(name) {
            for item in super::uri::split_list(value) {
                entries.push(item.parse().map_err(|_| HeaderError::Invalid(name))?);
            }
        }
        Ok(entries)
    }

    fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        match self.header("Max-Forwards") {
            None => Ok(None),
            Some(value) => value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| HeaderError::Invalid("Max-Forwards")),
        }
    }

    fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// Whether the body is an SDP session description.
    fn has_sdp(&self) -> bool {
        !self.body().is_empty()
            && self.content_type().is_some_and(|value| {
                let media = value.split(';').next().unwrap_or("").trim();
                media.eq_ignore_ascii_case("application/sdp")
            })
    }

    /// Appends a header after the existing ones. A `&'static str` name is stored
    /// without a copy.
    fn push_header(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        self.header_list_mut().push(name.into(), value.into());
    }

    /// Inserts a header before all others (used for Via).
    fn prepend_header(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        self.header_list_mut().insert(0, name.into(), value.into());
    }

    /// Removes every header named `name`.
    fn remove_header(&mut self, name: &str) {
        self.header_list_mut().remove(name);
    }

    /// Replaces every header named `name` with one value, keeping the position of the
    /// first one.
    fn set_header(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        self.header_list_mut().set(name.into(), value.into());
    }

    /// Replaces the value of the first header named `name`, keeping every other one.
    fn replace_first(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let name = name.into();
        let list = self.header_list_mut();
        match list.position(&name) {
            Some(index) => list.replace(index, value.into()),
            None => list.push(name, value.into()),
        }
    }

    /// Sets the body and its Content-Type; an empty body removes Content-Type.
    fn set_body(&mut self, body: Bytes, content_type: Option<&str>) {
        match content_type {
            Some(value) if !body.is_empty() => self.set_header("Content-Type", value),
            _ => self.remove_header("Content-Type"),
        }
        *self.body_mut() = body;
    }
}

macro_rules! impl_headers {
    ($type:ty) => {
        impl Headers for $type {
            fn header_list(&self) -> &HeaderFields {
                &self.headers
            }
            fn header_list_mut(&mut self) -> &mut HeaderFields {
                &mut self.headers
            }
            fn body(&self) -> &Bytes {
                &self.body
            }
            fn body_mut(&mut self) -> &mut Bytes {
                &mut self.body
            }
        }
    };
}

impl_headers!(Request);
impl_headers!(Response);

impl Request {
    /// Sets `received` and fills a present `rport` on the top Via with `source` (RFC 3261
    /// §18.2.1, RFC 3581 §4), so that every response built from the request goes back
    /// where it came from. The other Via values and parameters are kept as received. A
    /// top Via whose parameters cannot be read is left as it is.
    pub fn stamp_top_via(&mut self, source: SocketAddr) {
        let Some(value) = self.header("Via") else {
            return;
        };
        let Some(top) = super::uri::split_list(value).next() else {
            return;
        };
        // The first item starts at the value's first character that is not white space.
        let Some(start) = value.find(top) else {
            return;
        };
        let Ok(stamped) = super::uri::stamp_via(top, source) else {
            return;
        };
        let rest = &value[start + top.len()..];
        let mut stamped_value = String::with_capacity(start + stamped.len() + rest.len());
        stamped_value.push_str(&value[..start]);
        stamped_value.push_str(&stamped);
        stamped_value.push_str(rest);
        self.replace_first("Via", stamped_value);
    }

    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            headers: HeaderFields::default(),
            body: Bytes::new(),
        }
    }

    /// Writes the request line, the headers as stored, a fresh Content-Length and the body.
    pub fn encode(&self) -> Bytes {
        let mut start = String::with_capacity(64);
        let _ = write!(start, "{} {} SIP/2.0\r\n", self.method, self.uri);
        encode_message(&start, &self.headers, &self.body)
    }
}

impl Response {
    /// A response with no headers and no body. An empty `reason` takes the standard phrase.
    pub fn new(status: u16, reason: &str) -> Self {
        let reason = if reason.is_empty() {
            super::status::reason_phrase(status).to_owned()
        } else {
            reason.to_owned()
        };
        Response {
            status,
            reason,
            headers: HeaderFields::default(),
            body: Bytes::new(),
        }
    }

    /// Builds a response to `request` per RFC 3261 §8.2.6.2: Via, From, Call-ID and CSeq
    /// copied, To copied with `to_tag` added when the request's To has none.
    pub fn to_request(request: &Request, status: u16, reason: &str, to_tag: Option<&Tag>) -> Self {
        let mut response = Response::new(status, reason);
        // The copied values stay ranges of the request's received text.
        response.headers = HeaderFields::sharing(&request.headers);
        for (index, (name, value)) in request.header_pairs().enumerate() {
            let copied = ["Via", "From", "Call-ID", "CSeq"]
                .into_iter()
                .find(|wanted| name.eq_ignore_ascii_case(wanted));
            if let Some(copied) = copied {
                response
                    .headers
                    .push_copied(copied, &request.headers, index);
            } else if name.eq_ignore_ascii_case("To") {
                match to_tag {
                    Some(tag) if !has_tag_param(value) => {
                        response.push_header("To", with_tag_param(value, tag));
                    }
                    _ => response.headers.push_copied("To", &request.headers, index),
                }
            }
        }
        response
    }

    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn encode(&self) -> Bytes {
        let mut start = String::with_capacity(48);
        let _ = write!(start, "SIP/2.0 {} {}\r\n", self.status, self.reason);
        encode_message(&start, &self.headers, &self.body)
    }
}

impl Message {
    pub fn call_id(&self) -> Result<CallId, HeaderError> {
        match self {
            Message::Request(request) => request.call_id(),
            Message::Response(response) => response.call_id(),
        }
    }
}

/// Returns a From or To value with `;tag=<tag>` appended, built without `format!`
/// because every request and many responses the engine sends carry such values.
pub fn with_tag_param(value: &str, tag: &Tag) -> String {
    let mut tagged = String::with_capacity(value.len() + 5 + tag.as_str().len());
    tagged.push_str(value);
    tagged.push_str(";tag=");
    tagged.push_str(tag.as_str());
    tagged
}

fn has_tag_param(value: &str) -> bool {
    header_tag(value).is_ok_and(|tag| tag.is_some())
}

fn encode_message(start: &str, headers: &HeaderFields, body: &[u8]) -> Bytes {
    // Content-Length is written last, from the body, in place of any the headers carry.
    let written = || {
        headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("Content-Length"))
    };
    // The exact length is summed first: the bytes of a sent message often live on in a
    // transaction or a call for retransmission, so spare room would be held for as long.
    let digits = body
        .len()
        .checked_ilog10()
        .map_or(1, |log| log as usize + 1);
    let mut length = start.len() + CONTENT_LENGTH_LINE.len() + digits + 4 + body.len();
    for (name, value) in written() {
        length += name.len() + 2 + value.len() + 2;
    }
    let mut out = BytesMut::with_capacity(length);
    out.put_slice(start.as_bytes());
    for (name, value) in written() {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(CONTENT_LENGTH_LINE);
    let _ = write!(out, "{}\r\n\r\n", body.len());
    out.put_slice(body);
    out.freeze()
}

/// The start of the Content-Length line that [`encode_message`] writes last.
const CONTENT_LENGTH_LINE: &[u8] = b"Content-Length: ";
