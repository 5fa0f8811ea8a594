//! Responses arriving on either leg: to the agent's INVITE, to relayed requests, to the
//! engine's own BYE and CANCEL.

use bytes::Bytes;
use tokio::time::Instant;
use tracing::debug;

use super::{Call, PendingAck, Phase};
use crate::session::outbound;
use crate::session::transactions::Purpose;
use crate::session::{Failure, LegId};
use crate::sip::{Headers, Method, Request, Response};
use crate::transaction::Action;
use crate::transport::Target;

impl Call {
    pub(super) async fn on_response(&mut self, response: Response) {
        let Some(leg) = response.call_id().ok().and_then(|id| self.leg_of(&id)) else {
            return;
        };
        let (Ok(branch), Ok(cseq)) = (response.branch(), response.cseq()) else {
            return;
        };
        let Ok(method) = cseq.method.parse::<Method>() else {
            return;
        };
        let Some(index) = self.find_client(leg, &branch, &method) else {
            // A 2xx retransmitted after the INVITE transaction ended: the ACK was lost.
            if method == Method::Invite && response.is_success() {
                self.resend_ack(leg, cseq.seq).await;
            }
            return;
        };

        let actions = match self.txns[index].on_response(response.status, Instant::now()) {
            Ok(actions) => actions,
            Err(error) => {
                debug!(%error, "response rejected by its transaction");
                return;
            }
        };
        let pass_up = actions.contains(&Action::PassToTu);
        self.run_actions(index, actions, Some(&response)).await;
        if !pass_up {
            return;
        }

        match self.txns[index].purpose {
            Purpose::BInvite => self.on_b_invite_response(response).await,
            Purpose::TransferInvite => self.on_transfer_response(response).await,
            Purpose::Callback => self.on_callback_response(response).await,
            Purpose::Adopt => self.on_adopt_response(response).await,
            Purpose::CallerReinvite => self.on_caller_reinvite_response(response).await,
            Purpose::Relay => self.relay_response(index, leg, response).await,
            Purpose::Bye if response.status >= 200 => {
                self.txns.retain(|txn| !txn.is_terminated());
                self.maybe_done();
            }
            _ => {}
        }
    }

    async fn on_b_invite_response(&mut self, response: Response) {
        if response.status >= 101 || response.status == 100 {
            self.b_provisional_seen = true;
        }
        if let Err(error) = self.b.dialog.on_invite_response(&response) {
            debug!(%error, "agent response with invalid dialog headers");
        }
        if self.cancel_pending && response.is_provisional() {
            self.cancel_b().await;
            return;
        }

        match response.status {
            100 => {}
            101..=199 => self.relay_provisional(response).await,
            200..=299 => self.on_b_answer(response).await,
            status => {
                if self.phase == Phase::Proceeding {
                    debug!(status, "agent rejected the call");
                    self.fail(Failure::Rejected(status)).await;
                }
            }
        }
    }

    async fn relay_provisional(&mut self, response: Response) {
        if self.phase != Phase::Proceeding {
            return;
        }
        let mut relayed = self.response_to_a(response.status, &response.reason);
        outbound::copy_end_to_end_headers(&response, &mut relayed);
        if response.has_sdp()
            && let Some(body) = self.rewrite_sdp(LegId::B, LegId::A, response.body())
        {
            relayed.set_body(body, Some("application/sdp"));
        }
        let branch = self.a_invite_branch.clone();
        self.respond(LegId::A, &branch, relayed).await;
    }

    async fn on_b_answer(&mut self, response: Response) {
        let seq = response.cseq().map(|cseq| cseq.seq).unwrap_or(1);
        if self.b_answered {
            self.resend_ack(LegId::B, seq).await;
            return;
        }
        self.b_answered = true;
        self.b.up = true;
        self.b.target = outbound::next_hop_target(&self.b.dialog, self.b.target).await;

        if self.phase != Phase::Proceeding {
            // The answer crossed a CANCEL or the ring timeout: confirm and end it at once.
            debug!("answer after the call ended; acknowledging and hanging up");
            let ack = self.b.dialog.request(Method::Ack, Some(seq));
            let target = self.b.target;
            self.send_ack(LegId::B, ack, target).await;
            self.send_bye(LegId::B, None).await;
            return;
        }

        let body = if response.has_sdp() {
            self.rewrite_sdp(LegId::B, LegId::A, response.body())
        } else {
            None
        };
        let ack = self.b.dialog.request(Method::Ack, Some(seq));
        let target = self.b.target;
        if self.a_invite.has_sdp() {
            self.send_ack(LegId::B, ack, target).await;
        } else {
            // Offerless INVITE: the agent's 2xx carried the offer, so the caller's ACK
            // carries the answer that the agent's ACK must carry too.
            let from_seq = self.a_invite.cseq().map(|cseq| cseq.seq).unwrap_or(1);
            self.pending_acks.reserve_exact(1);
            self.pending_acks.push(PendingAck {
                from: LegId::A,
                from_seq,
                to: LegId::B,
                ack,
                target,
            });
        }

        let mut answer = self.response_to_a(response.status, &response.reason);
        outbound::copy_end_to_end_headers(&response, &mut answer);
        if let Some(body) = body {
            answer.set_body(body, Some("application/sdp"));
        }
        self.phase = Phase::Confirmed;
        self.ring_deadline = None;
        self.a.up = true;
        self.answered_at = Some(Instant::now());
        self.ctx.metrics.calls_answered.inc();
        debug!("call answered");
        self.publish_call();
        let branch = self.a_invite_branch.clone();
        self.send_2xx(LegId::A, &branch, answer).await;
    }

    /// Relays the response to a relayed request back to the leg it came from.
    async fn relay_response(&mut self, index: usize, leg: LegId, response: Response) {
        let Some(link) = self.txns[index].relay.clone() else {
            return;
        };
        let method = link.original.method.clone();
        let mut relayed =
            self.response_to(link.from, &link.original, response.status, &response.reason);
        outbound::copy_end_to_end_headers(&response, &mut relayed);
        if response.has_sdp() {
            match self.rewrite_sdp(leg, link.from, response.body()) {
                Some(body) => relayed.set_body(body, Some("application/sdp")),
                None => relayed = self.response_to(link.from, &link.original, 488, ""),
            }
        } else if !response.body().is_empty() {
            relayed.set_body(response.body().clone(), response.content_type());
        }
        if matches!(method, Method::Invite | Method::Update) && (101..300).contains(&relayed.status)
        {
            let protocol = self.leg(link.from).target.protocol;
            relayed.set_header(
                "Contact",
                outbound::contact_value(self.ctx.local_addr(), protocol),
            );
        }

        if method == Method::Invite && response.is_success() {
            let seq = response.cseq().map(|cseq| cseq.seq).unwrap_or(0);
            let repeated = self
                .last_acks
                .iter()
                .any(|(l, s, _, _)| *l == leg && *s == seq)
                || self
                    .pending_acks
                    .iter()
                    .any(|p| p.ack.cseq().is_ok_and(|c| c.seq == seq));
            if repeated {
                return self.resend_ack(leg, seq).await;
            }
            let ack = self.leg_mut(leg).dialog.request(Method::Ack, Some(seq));
            let target = self.leg(leg).target;
            let from_seq = link.original.cseq().map(|cseq| cseq.seq).unwrap_or(0);
            if link.original.has_sdp() {
                self.send_ack(leg, ack, target).await;
            } else {
                self.pending_acks.reserve_exact(1);
                self.pending_acks.push(PendingAck {
                    from: link.from,
                    from_seq,
                    to: leg,
                    ack,
                    target,
                });
            }
            self.send_2xx(link.from, &link.server_branch, relayed).await;
            return;
        }
        self.respond(link.from, &link.server_branch, relayed).await;
    }

    /// The caller answered the engine's re-INVITE: take its SDP and acknowledge.
    async fn on_caller_reinvite_response(&mut self, response: Response) {
        if !response.is_success() {
            if response.status >= 300 {
                debug!(
                    status = response.status,
                    "caller refused the engine's re-INVITE"
                );
            }
            return;
        }
        let seq = response.cseq().map(|cseq| cseq.seq).unwrap_or(0);
        if self
            .last_acks
            .iter()
            .any(|(leg, acked, _, _)| *leg == LegId::A && *acked == seq)
        {
            return self.resend_ack(LegId::A, seq).await;
        }
        if response.has_sdp()
            && let Some(anchor) = &mut self.anchor
            && let Err(error) = anchor.accept_sdp(LegId::A, response.body())
        {
            debug!(%error, "invalid sdp from the caller");
        }
        let ack = self.a.dialog.request(Method::Ack, Some(seq));
        let target = self.a.target;
        self.send_ack(LegId::A, ack, target).await;
    }

    /// Sends an ACK for a 2xx; it is its own transaction (RFC 3261 §17.1.1.3), so it is
    /// kept to answer retransmitted 2xx responses.
    pub(super) async fn send_ack(&mut self, leg: LegId, mut ack: Request, target: Target) {
        let branch = crate::sip::Branch::generate();
        let local = self.ctx.local_addr();
        ack.prepend_header(
            "Via",
            outbound::via_value(local, target.protocol, branch.as_str()),
        );
        // Contact in an ACK is optional; some user agents take the next request's target
        // from the last message received, so it is sent as other B2BUAs do.
        ack.set_header("Contact", outbound::contact_value(local, target.protocol));
        let seq = ack.cseq().map(|cseq| cseq.seq).unwrap_or(0);
        let bytes = ack.encode();
        self.last_acks
            .retain(|(acked_leg, _, _, _)| *acked_leg != leg);
        // Grows by one entry only, because the ACKs are kept for the call's whole life.
        self.last_acks.reserve_exact(1);
        self.last_acks.push((leg, seq, bytes.clone(), target));
        let _ = self.ctx.send(target, bytes).await;
    }

    pub(super) async fn resend_ack(&mut self, leg: LegId, seq: u32) {
        let found: Option<(Bytes, Target)> = self
            .last_acks
            .iter()
            .find(|(acked_leg, acked_seq, _, _)| *acked_leg == leg && *acked_seq == seq)
            .map(|(_, _, bytes, target)| (bytes.clone(), *target));
        if let Some((bytes, target)) = found {
            debug!(
                leg = leg.as_str(),
                seq, "resending ack for retransmitted 2xx"
            );
            let _ = self.ctx.send(target, bytes).await;
        }
    }
}
