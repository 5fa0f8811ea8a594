//! The dispatcher: the first code to handle every message after the transport. It parses,
//! rejects what must be rejected before a call exists, and routes the rest.

use std::sync::Arc;

use tracing::{debug, warn};

use super::outbound::{self, ALLOW};
use super::{CallEvent, Context, Parties, ReceivedRequest, call};
use crate::sip::{self, Headers, Message, Method, Request, Response};
use crate::transport::{Handler, Inbound, Protocol, Target};

/// Routes inbound messages to call tasks. Installed as the transport's [`Handler`].
pub struct Dispatcher {
    ctx: Arc<Context>,
}

impl Dispatcher {
    pub fn new(ctx: Arc<Context>) -> Arc<Dispatcher> {
        Arc::new(Dispatcher { ctx })
    }
}

impl Handler for Dispatcher {
    fn on_inbound(&self, inbound: Inbound) {
        if inbound
            .data
            .iter()
            .all(|byte| matches!(byte, b'\r' | b'\n'))
        {
            return;
        }
        let message = match sip::parse(&inbound.data, inbound.protocol == Protocol::Udp) {
            Ok(message) => message,
            Err(error) => return self.on_malformed(&inbound, &error.to_string()),
        };
        self.ctx.metrics.messages_received.inc();
        match message {
            Message::Request(request) => self.on_request(request, &inbound),
            Message::Response(response) => self.on_response(response),
        }
    }
}

impl Dispatcher {
    /// Answers 400 when the bytes look like a request with a Via, otherwise drops them.
    fn on_malformed(&self, inbound: &Inbound, reason: &str) {
        match sip::reply_to_raw(&inbound.data, 400, reason) {
            Some(reply) => {
                self.ctx.metrics.requests_malformed.inc();
                warn!(peer = %inbound.source, reason, "malformed request");
                self.send(reply_target(inbound), reply);
            }
            None => {
                self.ctx.metrics.messages_dropped.inc();
                debug!(peer = %inbound.source, reason, "dropped unparsable message");
            }
        }
    }

    fn on_request(&self, mut request: Request, inbound: &Inbound) {
        let via = match request.top_via() {
            Ok(via) => via,
            Err(error) => return self.on_malformed(inbound, &error.to_string()),
        };
        let target = outbound::response_target(&via, inbound.source, inbound.protocol);
        let parties = match check_mandatory(&request) {
            Ok(parties) => parties,
            Err(reason) => {
                self.ctx.metrics.requests_malformed.inc();
                warn!(peer = %inbound.source, %reason, "malformed request");
                return self.reply(&request, 400, &reason, target);
            }
        };
        request.stamp_top_via(inbound.source);

        let is_ack = request.method == Method::Ack;
        if !self.ctx.trusted.contains(inbound.source.ip()) {
            self.ctx.metrics.requests_untrusted.inc();
            debug!(peer = %inbound.source, method = %request.method, "request from untrusted address");
            if !is_ack {
                self.reply(&request, 403, "", target);
            }
            return;
        }
        if request.max_forwards().ok().flatten() == Some(0) && !is_ack {
            return self.reply(&request, 483, "", target);
        }

        // Checked above by check_mandatory.
        let Ok(call_id) = request.call_id() else {
            return;
        };
        if let Some(route) = self.ctx.table.get(&call_id) {
            return self.route_request(route, request, inbound, target);
        }
        self.on_new_request(request, inbound, target, parties);
    }

    fn route_request(
        &self,
        route: super::Route,
        request: Request,
        inbound: &Inbound,
        target: Target,
    ) {
        let local = self.ctx.local_addr();
        let looped = route.leg == super::LegId::B
            && request.to_tag().ok().flatten().is_none()
            && request.vias().is_ok_and(|vias| {
                vias.iter()
                    .skip(1)
                    .any(|via| outbound::is_own_via(via, local))
                    || vias.len() == 1 && outbound::is_own_via(&vias[0], local)
            });
        if looped {
            // The INVITE the engine sent came back to it.
            return self.reply(&request, 482, "", target);
        }
        let event = CallEvent::Request(Box::new(ReceivedRequest {
            request,
            source: inbound.source,
            protocol: inbound.protocol,
            response_target: target,
            parties: None,
        }));
        if route.sender.try_send(event).is_err() {
            self.ctx.metrics.messages_dropped.inc();
            debug!(session = %route.session, "call queue full; message dropped");
        }
    }

    fn on_new_request(
        &self,
        request: Request,
        inbound: &Inbound,
        target: Target,
        parties: Parties,
    ) {
        let in_dialog = request.to_tag().ok().flatten().is_some();
        match request.method {
            Method::Invite if !in_dialog => {
                if self.ctx.is_draining() {
                    self.ctx.metrics.calls_refused_draining.inc();
                    let mut response = Response::to_request(&request, 503, "", None);
                    response.push_header(
                        "Retry-After",
                        self.ctx.config.shutdown.retry_after_secs.to_string(),
                    );
                    return self.send(target, response.encode());
                }
                let received = ReceivedRequest {
                    request,
                    source: inbound.source,
                    protocol: inbound.protocol,
                    response_target: target,
                    parties: Some(Box::new(parties)),
                };
                if call::spawn(Arc::clone(&self.ctx), received).is_none() {
                    debug!("concurrent invite with the same call-id");
                }
            }
            Method::Options if !in_dialog => {
                let mut response = Response::to_request(&request, 200, "", None);
                response.push_header("Allow", ALLOW);
                response.push_header("Accept", "application/sdp");
                response.push_header("Server", self.ctx.config.sip.user_agent.as_str());
                self.send(target, response.encode());
            }
            Method::Ack => {}
            Method::Register | Method::Publish | Method::Subscribe if !in_dialog => {
                let mut response = Response::to_request(&request, 405, "", None);
                response.push_header("Allow", ALLOW);
                self.send(target, response.encode());
            }
            _ => self.reply(&request, 481, "", target),
        }
    }

    fn on_response(&self, response: Response) {
        let Ok(call_id) = response.call_id() else {
            self.ctx.metrics.messages_dropped.inc();
            return;
        };
        match self.ctx.table.get(&call_id) {
            Some(route) => {
                let event = CallEvent::Response(Box::new(response));
                if route.sender.try_send(event).is_err() {
                    self.ctx.metrics.messages_dropped.inc();
                }
            }
            None => {
                // Responses to the gateway OPTIONS probes carry Call-IDs of no call.
                let probed = self
                    .ctx
                    .probes()
                    .is_some_and(|probes| probes.on_response(&response));
                if !probed {
                    debug!(%call_id, status = response.status, "response for no call");
                }
            }
        }
    }

    fn reply(&self, request: &Request, status: u16, reason: &str, target: Target) {
        let mut response = Response::to_request(request, status, reason, None);
        response.push_header("Server", self.ctx.config.sip.user_agent.as_str());
        self.send(target, response.encode());
    }

    fn send(&self, target: Target, data: bytes::Bytes) {
        let ctx = Arc::clone(&self.ctx);
        tokio::spawn(async move {
            ctx.send(target, data).await;
        });
    }
}

/// Returns the source of unparsable bytes, where a reply to them goes.
fn reply_target(inbound: &Inbound) -> Target {
    Target {
        addr: inbound.source,
        protocol: inbound.protocol,
    }
}

/// Checks the headers every request carries (RFC 3261 §8.1.1) and CSeq naming the
/// request's method. Returns the parsed From and To, or the reason phrase for a 400.
fn check_mandatory(request: &Request) -> Result<Parties, String> {
    request.call_id().map_err(|error| error.to_string())?;
    let from = request.from_header().map_err(|error| error.to_string())?;
    let to = request.to_header().map_err(|error| error.to_string())?;
    let cseq = request.cseq().map_err(|error| error.to_string())?;
    if cseq.method != request.method.as_str() {
        return Err("CSeq Method Does Not Match".to_owned());
    }
    request.max_forwards().map_err(|error| error.to_string())?;
    Ok(Parties { from, to })
}
