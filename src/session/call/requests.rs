//! Requests arriving on either leg of a call: retransmissions, CANCEL, ACK, BYE and the
//! in-dialog requests relayed to the other leg.

use tokio::time::Instant;
use tracing::debug;

use super::{Call, PendingAck, Phase};
use crate::session::outbound;
use crate::session::transactions::{Purpose, RelayLink};
use crate::session::{Failure, LegId};
use crate::sip::{Branch, Headers, Method, Request, Response};
use crate::transport::Target;

impl Call {
    pub(super) async fn on_request(&mut self, request: Request, target: Target) {
        let Some(leg) = request.call_id().ok().and_then(|id| self.leg_of(&id)) else {
            return;
        };
        let Ok(branch) = request.branch() else {
            return;
        };
        let now = Instant::now();

        match request.method {
            Method::Ack => return self.on_ack(leg, &branch, request).await,
            Method::Cancel => return self.on_cancel(leg, &branch, request, target).await,
            _ => {}
        }

        if let Some(index) = self.find_server(leg, &branch, &request.method) {
            let actions = self.txns[index].on_retransmission();
            self.run_actions(index, actions, None).await;
            return;
        }

        let local_tag = self.leg(leg).dialog.local_tag.clone();
        match request.to_tag() {
            // A second INVITE without To tag and with a new branch: a merged request
            // (RFC 3261 §8.2.2.2), as happens when the request looped or forked.
            Ok(None) => return self.reply_stateless(&request, 482, target).await,
            Ok(Some(tag)) if tag != local_tag => {
                return self.reply_stateless(&request, 481, target).await;
            }
            Err(_) => return self.reply_stateless(&request, 400, target).await,
            Ok(Some(_)) => {}
        }

        self.open_server_txn(leg, &branch, request.method.clone(), target, now);
        let seq = request.cseq().map(|cseq| cseq.seq).unwrap_or(0);
        if self.leg_mut(leg).dialog.accept_remote_seq(seq).is_err() {
            let response = self.response_to(leg, &request, 500, "CSeq Out Of Order");
            return self.respond(leg, &branch, response).await;
        }

        match request.method {
            Method::Bye => self.on_bye(leg, &branch, request).await,
            _ => self.relay_request(leg, &branch, request).await,
        }
    }

    /// A response to `request` on `leg`, with that leg's local tag.
    pub(super) fn response_to(
        &self,
        leg: LegId,
        request: &Request,
        status: u16,
        reason: &str,
    ) -> Response {
        let tag = &self.leg(leg).dialog.local_tag;
        Response::to_request(request, status, reason, Some(tag))
    }

    async fn reply_stateless(&self, request: &Request, status: u16, target: Target) {
        let response = Response::to_request(request, status, "", None);
        let _ = self.ctx.send(target, response.encode()).await;
    }

    async fn on_cancel(&mut self, leg: LegId, branch: &Branch, request: Request, target: Target) {
        let invite = self
            .txns
            .iter()
            .any(|txn| txn.leg == leg && txn.purpose == Purpose::AInvite && txn.branch == *branch);
        if !invite {
            return self.reply_stateless(&request, 481, target).await;
        }
        let now = Instant::now();
        if self.find_server(leg, branch, &Method::Cancel).is_none() {
            self.open_server_txn(leg, branch, Method::Cancel, target, now);
        }
        let ok = Response::to_request(&request, 200, "", Some(&self.a.dialog.local_tag));
        self.respond(leg, branch, ok).await;

        if self.phase == Phase::Proceeding {
            debug!("caller cancelled");
            self.cancel_b().await;
            self.fail(Failure::Cancelled).await;
        }
    }

    async fn on_ack(&mut self, leg: LegId, branch: &Branch, request: Request) {
        // The ACK of a 3xx-6xx shares the INVITE's branch and ends its server transaction.
        if let Some(index) = self.find_server(leg, branch, &Method::Invite) {
            let actions = self.txns[index].on_ack(Instant::now());
            self.run_actions(index, actions, None).await;
        }
        let Ok(seq) = request.cseq().map(|cseq| cseq.seq) else {
            return;
        };
        let before = self.pending_2xx.len();
        self.pending_2xx
            .retain(|pending| !(pending.leg == leg && pending.seq == seq));
        if self.pending_2xx.len() != before {
            debug!(leg = leg.as_str(), seq, "2xx acknowledged");
            self.pending_2xx.shrink_to_fit();
        }

        let Some(position) = self
            .pending_acks
            .iter()
            .position(|pending| pending.from == leg && pending.from_seq == seq)
        else {
            return;
        };
        let PendingAck {
            mut ack,
            target,
            to,
            ..
        } = self.pending_acks.remove(position);
        self.pending_acks.shrink_to_fit();
        if request.has_sdp()
            && let Some(body) = self.rewrite_sdp(leg, to, request.body())
        {
            ack.set_body(body, Some("application/sdp"));
        }
        self.send_ack(to, ack, target).await;
    }

    async fn on_bye(&mut self, leg: LegId, branch: &Branch, request: Request) {
        let ok = self.response_to(leg, &request, 200, "");
        self.respond(leg, branch, ok).await;
        self.leg_mut(leg).up = false;
        debug!(leg = leg.as_str(), "bye received");

        let transferring = self
            .transfer
            .as_ref()
            .is_some_and(|transfer| transfer.is_active());
        match self.phase {
            Phase::Proceeding if leg == LegId::A => {
                // RFC 3261 §15: a caller may end an early dialog with BYE.
                self.cancel_b().await;
                self.fail(Failure::Cancelled).await;
            }
            // The agent hangs up while the remote rings: the transfer goes on, and a
            // failure will call the agent back.
            Phase::Confirmed if leg == LegId::B && transferring => {
                debug!("agent left during the transfer");
            }
            Phase::Confirmed if leg == LegId::A || self.peer(leg) == Some(LegId::A) => {
                if leg == LegId::A {
                    self.abort_transfer("caller hung up").await;
                }
                let reason = request.header("Reason").map(str::to_owned);
                for other in [LegId::A, LegId::B, LegId::C] {
                    if other != leg && self.leg(other).up {
                        self.send_bye(other, reason.as_deref()).await;
                    }
                }
                self.phase = Phase::Ending;
                self.stop_media();
                self.maybe_done();
            }
            _ => {}
        }
    }

    /// Relays an in-dialog request (re-INVITE, UPDATE, INFO, NOTIFY, ...) to the leg
    /// bridged with `leg`. The agent's INFO DTMF and REFER are triggers, not relayed.
    async fn relay_request(&mut self, leg: LegId, branch: &Branch, request: Request) {
        if leg == LegId::B && self.phase == Phase::Confirmed {
            match request.method {
                Method::Info if is_dtmf_info(&request) => {
                    return self.on_agent_info(branch, request).await;
                }
                Method::Refer => return self.on_agent_refer(branch, request).await,
                _ => {}
            }
        }
        self.forward_request(leg, branch, request).await;
    }

    /// Relays a request to the leg bridged with `leg`, with its SDP rewritten.
    pub(super) async fn forward_request(&mut self, leg: LegId, branch: &Branch, request: Request) {
        let Some(other) = self.peer(leg) else {
            let response = self.response_to(leg, &request, 481, "");
            return self.respond(leg, branch, response).await;
        };
        if !self.leg(other).up || self.phase != Phase::Confirmed {
            let response = self.response_to(leg, &request, 481, "");
            return self.respond(leg, branch, response).await;
        }
        if request.method == Method::Invite && self.invite_in_progress(leg, branch) {
            // RFC 3261 §14.2: one INVITE at a time per dialog.
            let mut response = self.response_to(leg, &request, 491, "");
            response.push_header("Retry-After", "1");
            return self.respond(leg, branch, response).await;
        }

        let mut relayed = self
            .leg_mut(other)
            .dialog
            .request(request.method.clone(), None);
        relayed.set_header(
            "Max-Forwards",
            outbound::decremented_max_forwards(&request).to_string(),
        );
        outbound::copy_end_to_end_headers(&request, &mut relayed);
        if request.has_sdp() {
            let Some(body) = self.rewrite_sdp(leg, other, request.body()) else {
                let response = self.response_to(leg, &request, 488, "");
                return self.respond(leg, branch, response).await;
            };
            relayed.set_body(body, Some("application/sdp"));
        } else if !request.body().is_empty() {
            relayed.set_body(request.body().clone(), request.content_type());
        }

        let link = RelayLink {
            from: leg,
            server_branch: branch.clone(),
            original: request,
        };
        let target = self.leg(other).target;
        self.send_client_request(
            other,
            &mut relayed,
            target,
            Purpose::Relay,
            Some(link),
            Instant::now(),
        )
        .await;
    }

    fn invite_in_progress(&self, leg: LegId, branch: &Branch) -> bool {
        self.txns.iter().any(|txn| {
            txn.method == Method::Invite
                && !txn.final_seen
                && !txn.is_terminated()
                && (txn.leg != leg || txn.branch != *branch)
                && (txn.purpose == Purpose::Relay || txn.purpose == Purpose::Incoming)
        }) || !self.pending_acks.is_empty()
    }

    /// Rewrites an SDP body that arrived on `from` for the other leg. `None` when the SDP
    /// is invalid or the call has no media anchor.
    pub(super) fn rewrite_sdp(
        &mut self,
        from: LegId,
        to: LegId,
        body: &[u8],
    ) -> Option<bytes::Bytes> {
        if self.anchor.is_none() {
            match self.new_anchor() {
                Ok(anchor) => self.anchor = Some(anchor),
                Err(error) => {
                    tracing::warn!(%error, "failed to anchor media");
                    return None;
                }
            }
        }
        let anchor = self.anchor.as_mut()?;
        match anchor.relay_sdp(from, to, body) {
            Ok(body) => Some(body),
            Err(error) => {
                tracing::warn!(%error, leg = from.as_str(), "failed to rewrite sdp");
                None
            }
        }
    }
}

/// Whether an INFO carries DTMF (RFC 2976 bodies used by phones and gateways).
fn is_dtmf_info(request: &Request) -> bool {
    request.content_type().is_some_and(|value| {
        let media = value.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/dtmf-relay")
            || media.eq_ignore_ascii_case("application/dtmf")
    })
}
