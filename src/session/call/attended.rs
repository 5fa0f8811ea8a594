//! Attended transfer (RFC 3891 Replaces in a REFER, RFC 3515): the agent has called the
//! remote hotline through the engine (a consultation call, which is a call of its own)
//! and sends REFER on the caller's call with a Refer-To whose Replaces names the
//! consultation dialog. The consultation call hands its leg toward the remote over to the
//! caller's call, which re-INVITEs the remote toward its own relay, bridges it with the
//! caller and releases both agent legs.

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Call, Leg, Phase};
use crate::dialog::Dialog;
use crate::session::outbound::ALLOW;
use crate::session::routing::Routed;
use crate::session::transactions::Purpose;
use crate::session::{CallEvent, LegId, TransferOrder, TransferState, TriggerKind};
use crate::sip::headers::Replaces;
use crate::sip::{Branch, CallId, Headers, Method, Request, Response};
use crate::transport::Target;

/// The leg toward the remote hotline, taken out of a consultation call.
#[derive(Debug)]
pub struct SurrenderedLeg {
    pub dialog: Dialog,
    pub target: Target,
    /// The remote's last SDP, to keep its codec.
    pub remote_sdp: Option<Bytes>,
    /// The destination id the consultation call was routed to.
    pub destination: String,
}

impl Call {
    /// REFER whose Refer-To carries Replaces: join the caller with the far end of the
    /// consultation call that Replaces names.
    pub(super) async fn on_attended_refer(
        &mut self,
        branch: &Branch,
        request: Request,
        replaces: Replaces,
    ) {
        let consult_id = CallId::new(&replaces.call_id);
        let route = self.ctx.table.get(&consult_id);
        let status = match &route {
            None => Some((481, "Replaced Dialog Not Found")),
            Some(route) if route.session == self.session => {
                Some((403, "Cannot Replace Own Dialog"))
            }
            Some(route) if route.leg != LegId::A => Some((481, "Replaced Dialog Not Found")),
            _ => None,
        };
        if let Some((status, reason)) = status {
            info!(call_id = %consult_id, status, "refer with replaces rejected");
            let response = self.response_to(LegId::B, &request, status, reason);
            return self.respond(LegId::B, branch, response).await;
        }
        let Some(route) = route else {
            return;
        };
        if self
            .transfer
            .as_ref()
            .is_some_and(|transfer| transfer.is_active())
            || self.phase != Phase::Confirmed
        {
            let response = self.response_to(LegId::B, &request, 491, "");
            return self.respond(LegId::B, branch, response).await;
        }

        let (reply, answer) = oneshot::channel();
        let asked = route
            .sender
            .send(CallEvent::Surrender {
                replaces: Box::new(replaces),
                reply,
            })
            .await;
        let surrendered = match asked {
            Ok(()) => answer.await.unwrap_or(Err(481)),
            Err(_) => Err(481),
        };
        let leg = match surrendered {
            Ok(leg) => leg,
            Err(status) => {
                let response = self.response_to(LegId::B, &request, status, "");
                return self.respond(LegId::B, branch, response).await;
            }
        };

        let response = self.response_to(LegId::B, &request, 202, "");
        self.respond(LegId::B, branch, response).await;
        self.adopt_leg(leg).await;
        self.attach_refer(LegId::B);
        self.notify_refer(100, "Trying", false).await;
    }

    /// Takes over the remote's leg: route its Call-ID here, point it at side C with a
    /// re-INVITE, and wait for the answer to bridge.
    async fn adopt_leg(&mut self, leg: SurrenderedLeg) {
        let order = TransferOrder::to(TriggerKind::ReferReplaces, &leg.destination);
        let id = self.ctx.next_transfer_id();
        let call_id = self.a.dialog.call_id.to_string();
        let mut status = crate::session::TransferStatus::new(id, self.session, &call_id, &order);
        status.state = TransferState::Answered;
        info!(transfer = id, call_id = %leg.dialog.call_id, "attended transfer: adopting the remote leg");
        self.transfer = Some(Box::new(super::Transfer::adopted(
            status,
            order,
            Routed::empty(),
        )));

        let adopted = Leg {
            dialog: leg.dialog,
            target: leg.target,
            up: true,
        };
        self.install_leg(LegId::C, adopted);

        let offer = match &mut self.anchor {
            Some(anchor) => {
                if let Err(error) = anchor.open_side_c() {
                    warn!(%error, "failed to open media toward the remote");
                }
                if let Some(sdp) = &leg.remote_sdp
                    && let Err(error) = anchor.accept_sdp(LegId::C, sdp)
                {
                    debug!(%error, "remote sdp from the consultation call not usable");
                }
                anchor.offer_from_caller(LegId::C).ok()
            }
            None => None,
        };
        let mut reinvite = self.leg_mut(LegId::C).dialog.request(Method::Invite, None);
        reinvite.push_header("Allow", ALLOW);
        if let Some(offer) = offer {
            reinvite.set_body(offer, Some("application/sdp"));
        }
        let target = self.leg(LegId::C).target;
        let (_, sent_at) = self
            .send_client_request(
                LegId::C,
                &mut reinvite,
                target,
                Purpose::Adopt,
                None,
                Instant::now(),
            )
            .await;
        if let Some(transfer) = &mut self.transfer {
            transfer.status.milestones.invite_sent = Some(sent_at);
        }
    }

    /// The remote answered the re-INVITE toward the caller's relay.
    pub(super) async fn on_adopt_response(&mut self, response: Response) {
        if response.is_provisional() {
            return;
        }
        let seq = response.cseq().map(|cseq| cseq.seq).unwrap_or(0);
        if !response.is_success() {
            warn!(
                status = response.status,
                "remote refused the re-INVITE of an attended transfer"
            );
            return self
                .fail_transfer(response.status, "remote refused the re-INVITE")
                .await;
        }
        if self
            .last_acks
            .iter()
            .any(|(leg, acked, _, _)| *leg == LegId::C && *acked == seq)
        {
            return self.resend_ack(LegId::C, seq).await;
        }
        let ack = self
            .leg_mut(LegId::C)
            .dialog
            .request(Method::Ack, Some(seq));
        let target = self.leg(LegId::C).target;
        self.send_ack(LegId::C, ack, target).await;
        if let Some(anchor) = &mut self.anchor {
            if response.has_sdp()
                && let Err(error) = anchor.accept_sdp(LegId::C, response.body())
            {
                warn!(%error, "invalid sdp from the remote");
            }
            if let Err(error) = anchor.bridge(LegId::C) {
                warn!(%error, "failed to bridge media to the remote");
            }
        }
        self.a_peer = LegId::C;
        if let Some(transfer) = &mut self.transfer {
            transfer.mark_answered();
        }
        let reinvite = self
            .anchor
            .as_ref()
            .is_some_and(|anchor| anchor.caller_on_hold() || !anchor.codec_compatible(LegId::C));
        if reinvite {
            self.reinvite_caller_for_c().await;
        }
        self.complete_transfer().await;
    }

    /// Another call asks for this call's leg toward the remote (this is the consultation
    /// call of an attended transfer). Hands it over and ends the agent's consultation leg.
    pub(super) async fn on_surrender(
        &mut self,
        replaces: Replaces,
        reply: oneshot::Sender<Result<SurrenderedLeg, u16>>,
    ) {
        let local = self.a.dialog.local_tag.as_str();
        let remote = self.a.dialog.remote_tag.as_ref().map(|tag| tag.as_str());
        // RFC 3891 §3: to-tag is the recipient's local tag and from-tag the remote one;
        // the swapped order, which some phones send, is accepted too.
        let matches = (replaces.to_tag == local && Some(replaces.from_tag.as_str()) == remote)
            || (replaces.from_tag == local && Some(replaces.to_tag.as_str()) == remote);
        if !matches || self.phase != Phase::Confirmed || !self.b.up {
            let _ = reply.send(Err(481));
            return;
        }
        let leg = SurrenderedLeg {
            dialog: self.b.dialog.clone(),
            target: self.b.target,
            remote_sdp: self
                .anchor
                .as_ref()
                .and_then(|anchor| anchor.received_body(LegId::B)),
            destination: self.direct_destination.clone().unwrap_or_default(),
        };
        if reply.send(Ok(leg)).is_err() {
            return;
        }
        debug!("consultation leg handed over");
        // The remote's leg now belongs to the other call: forget it without a BYE.
        self.b.up = false;
        self.send_bye(LegId::A, Some("SIP;cause=200;text=\"Call transferred\""))
            .await;
        self.phase = Phase::Ending;
        self.stop_media();
        self.maybe_done();
    }
}
