//! The OPTIONS request of one probe (RFC 3261 §11.1), with the headers every request
//! carries (§8.1.1).

use std::net::SocketAddr;

use crate::sip::uri::Uri;
use crate::sip::{Branch, CallId, Headers, Method, Request, Tag};
use crate::transport::Protocol;

/// Max-Forwards of a probe (RFC 3261 §8.1.1.6).
const MAX_FORWARDS: &str = "70";

/// The values of one OPTIONS request.
pub(super) struct Options<'a> {
    pub(super) uri: Uri,
    pub(super) local: SocketAddr,
    pub(super) protocol: Protocol,
    pub(super) call_id: &'a CallId,
    pub(super) branch: &'a Branch,
    pub(super) cseq: u32,
    pub(super) user_agent: &'a str,
}

impl Options<'_> {
    /// Builds the request with the headers of RFC 3261 §8.1.1 and §11.1.
    pub(super) fn build(&self) -> Request {
        let local = self.local;
        let contact = match self.protocol {
            Protocol::Udp => format!("<sip:{local}>"),
            Protocol::Tcp => format!("<sip:{local};transport=tcp>"),
        };
        let mut to = self.uri.clone();
        to.headers.clear();

        let mut request = Request::new(Method::Options, self.uri.clone());
        request.push_header(
            "Via",
            format!(
                "SIP/2.0/{} {local};branch={};rport",
                self.protocol.via_token(),
                self.branch
            ),
        );
        request.push_header("Max-Forwards", MAX_FORWARDS);
        request.push_header("From", format!("<sip:{local}>;tag={}", Tag::generate()));
        request.push_header("To", format!("<{to}>"));
        request.push_header("Call-ID", self.call_id.as_str());
        request.push_header("CSeq", format!("{} OPTIONS", self.cseq));
        request.push_header("Contact", contact);
        request.push_header("Accept", "application/sdp");
        request.push_header("User-Agent", self.user_agent);
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sip::Message;

    #[test]
    fn options_has_required_headers() {
        let call_id = CallId::new("probe-1@192.0.2.10");
        let branch = Branch::generate();
        let options = Options {
            uri: "sip:198.51.100.7:5080;transport=tcp"
                .parse()
                .expect("valid uri"),
            local: "192.0.2.10:5060".parse().expect("valid address"),
            protocol: Protocol::Tcp,
            call_id: &call_id,
            branch: &branch,
            cseq: 7,
            user_agent: "hotline-b2bua",
        };
        let encoded = options.build().encode();
        let Ok(Message::Request(request)) = crate::sip::parse(&encoded, false) else {
            panic!("probe does not parse: {encoded:?}");
        };

        assert_eq!(request.method, Method::Options);
        assert_eq!(
            request.uri.to_string(),
            "sip:198.51.100.7:5080;transport=tcp"
        );
        assert_eq!(request.max_forwards(), Ok(Some(70)));
        assert_eq!(request.call_id(), Ok(call_id));
        let cseq = request.cseq().expect("valid CSeq");
        assert_eq!((cseq.seq, cseq.method.as_str()), (7, "OPTIONS"));
        assert!(request.from_tag().expect("valid From").is_some());
        assert_eq!(request.to_tag(), Ok(None));
        assert_eq!(request.branch(), Ok(branch));
        let via = request.header("Via").expect("Via present");
        assert!(via.starts_with("SIP/2.0/TCP 192.0.2.10:5060;"), "{via}");
        assert!(via.ends_with(";rport"), "{via}");
        assert_eq!(
            request.header("Contact"),
            Some("<sip:192.0.2.10:5060;transport=tcp>")
        );
        assert_eq!(request.header("Accept"), Some("application/sdp"));
        assert_eq!(request.header("User-Agent"), Some("hotline-b2bua"));
    }
}
