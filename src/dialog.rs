//! Dialog state for one leg (RFC 3261 §12): the Call-ID, both tags, the CSeq counters, the
//! route set and the remote target, and the building of requests inside the dialog.
//!
//! A dialog is plain data with no I/O. The session task owns one per leg: the A leg is the
//! UAS side of the caller's INVITE, the B leg the UAC side of the INVITE the engine sends.

use crate::sip::uri::{NameAddr, Uri};
use crate::sip::{CallId, HeaderError, Headers, Method, Request, Response, Tag, with_tag_param};

/// Which side of the dialog the engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The engine received the dialog-creating INVITE.
    Uas,
    /// The engine sent the dialog-creating INVITE.
    Uac,
}

/// RFC 3261 §12: early after a provisional response with a To tag, confirmed after 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// No response with a To tag yet (UAC before any tagged response).
    Pending,
    Early,
    Confirmed,
    Terminated,
}

/// A request inside the dialog was out of order (RFC 3261 §12.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CSeq {received} is not above the last remote CSeq {last} on dialog {call_id}")]
pub struct CSeqOutOfOrder {
    pub call_id: CallId,
    pub received: u32,
    pub last: u32,
}

/// One leg's dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub role: Role,
    pub state: DialogState,
    pub call_id: CallId,
    pub local_tag: Tag,
    pub remote_tag: Option<Tag>,
    /// The local party as written in From (UAC) or To (UAS), without the tag.
    local_party: String,
    /// The remote party as written, without the tag.
    remote_party: String,
    pub local_seq: u32,
    pub remote_seq: Option<u32>,
    /// Route set, in the order the Route header of a request lists it.
    pub route_set: Vec<String>,
    pub remote_target: Uri,
}

impl Dialog {
    /// The UAS side, created from a dialog-creating request (RFC 3261 §12.1.1).
    pub fn from_request(request: &Request, local_tag: Tag) -> Result<Dialog, HeaderError> {
        // A To that does not parse makes the dialog unusable, so fail here.
        Self::from_parts(
            request,
            request.from_header()?,
            request.to_header()?,
            local_tag,
        )
    }

    /// Creates the UAS side as [`Dialog::from_request`] does, from the request's From and
    /// To already parsed.
    pub fn from_parts(
        request: &Request,
        from: NameAddr,
        to: NameAddr,
        local_tag: Tag,
    ) -> Result<Dialog, HeaderError> {
        let remote_target = match request.contact()? {
            Some(contact) => contact.uri.clone(),
            None => from.uri.clone(),
        };
        let route_set = request
            .name_addr_list("Record-Route")?
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(Dialog {
            role: Role::Uas,
            state: DialogState::Early,
            call_id: request.call_id()?,
            local_tag,
            remote_tag: from.tag().map(Tag::new),
            local_party: party_without_tag(to),
            remote_party: party_without_tag(from),
            local_seq: 0,
            remote_seq: Some(request.cseq()?.seq),
            route_set,
            remote_target,
        })
    }

    /// The UAC side, before the INVITE is sent.
    pub fn new_uac(
        call_id: CallId,
        local_party: String,
        remote_party: String,
        remote_target: Uri,
    ) -> Dialog {
        Dialog {
            role: Role::Uac,
            state: DialogState::Pending,
            call_id,
            local_tag: Tag::generate(),
            remote_tag: None,
            local_party,
            remote_party,
            local_seq: 0,
            remote_seq: None,
            route_set: Vec::new(),
            remote_target,
        }
    }

    /// Updates a UAC dialog from a response to its INVITE (RFC 3261 §12.1.2): the To tag,
    /// the route set (Record-Route reversed) and the remote target (Contact). A 2xx
    /// confirms the dialog; a later 2xx never changes the route set again.
    pub fn on_invite_response(&mut self, response: &Response) -> Result<(), HeaderError> {
        // A 3xx-6xx ends any early dialog it names (RFC 3261 §12.3): nothing to record,
        // and a later INVITE on this Call-ID, after a challenge, must carry no To tag.
        if response.status >= 300 {
            return Ok(());
        }
        let Some(tag) = response.to_tag()? else {
            return Ok(());
        };
        if self.state == DialogState::Confirmed {
            return Ok(());
        }
        self.remote_tag = Some(tag);
        if let Some(contact) = response.contact()? {
            self.remote_target = contact.uri;
        }
        let mut route_set: Vec<String> = response
            .name_addr_list("Record-Route")?
            .iter()
            .map(ToString::to_string)
            .collect();
        route_set.reverse();
        self.route_set = route_set;
        self.state = if response.is_success() {
            DialogState::Confirmed
        } else {
            DialogState::Early
        };
        Ok(())
    }

    /// Checks and records the CSeq of a request received inside the dialog.
    pub fn accept_remote_seq(&mut self, seq: u32) -> Result<(), CSeqOutOfOrder> {
        if let Some(last) = self.remote_seq
            && seq <= last
        {
            return Err(CSeqOutOfOrder {
                call_id: self.call_id.clone(),
                received: seq,
                last,
            });
        }
        self.remote_seq = Some(seq);
        Ok(())
    }

    /// The local party as written in From (UAC) or To (UAS), without the tag.
    pub fn local_party(&self) -> &str {
        &self.local_party
    }

    /// The From header value for requests the engine sends on this dialog.
    pub fn local_header(&self) -> String {
        with_tag_param(&self.local_party, &self.local_tag)
    }

    /// The To header value for requests the engine sends on this dialog.
    pub fn remote_header(&self) -> String {
        match &self.remote_tag {
            Some(tag) => with_tag_param(&self.remote_party, tag),
            None => self.remote_party.clone(),
        }
    }

    /// Builds a request inside the dialog (RFC 3261 §12.2.1.1) with the next local CSeq,
    /// or with `seq` for ACK and CANCEL, which reuse the INVITE's number. The caller adds
    /// Via, Contact and the body.
    pub fn request(&mut self, method: Method, seq: Option<u32>) -> Request {
        let seq = match seq {
            Some(seq) => seq,
            None => {
                self.local_seq += 1;
                self.local_seq
            }
        };
        let (request_uri, routes) = self.request_target();
        let mut request = Request::new(method.clone(), request_uri);
        for route in routes {
            request.push_header("Route", route);
        }
        request.push_header("Max-Forwards", "70");
        request.push_header("From", self.local_header());
        request.push_header("To", self.remote_header());
        request.push_header("Call-ID", self.call_id.as_str());
        let mut cseq = String::with_capacity(16);
        crate::sip::uri::push_decimal(&mut cseq, u64::from(seq));
        cseq.push(' ');
        cseq.push_str(method.as_str());
        request.push_header("CSeq", cseq);
        request
    }

    /// The Request-URI and Route values for a request (RFC 3261 §12.2.1.1): the remote
    /// target with loose routing, or the first route with strict routing.
    fn request_target(&self) -> (Uri, Vec<String>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let first_uri = first
            .parse::<crate::sip::uri::NameAddr>()
            .map(|addr| addr.uri)
            .ok();
        match first_uri {
            Some(uri) if !uri.params.contains("lr") => {
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                (uri, routes)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        }
    }

    /// The URI the next request must be sent to: the first route, else the remote target.
    pub fn next_hop(&self) -> Uri {
        self.route_set
            .first()
            .and_then(|route| route.parse::<crate::sip::uri::NameAddr>().ok())
            .map(|addr| addr.uri)
            .unwrap_or_else(|| self.remote_target.clone())
    }
}

/// Writes a parsed From or To value back without its `;tag=` parameter.
fn party_without_tag(mut party: NameAddr) -> String {
    party.params.remove("tag");
    party.to_string()
}
