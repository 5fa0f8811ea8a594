//! One-key transfer inside a call: the agent's trigger (DTMF, INFO, REFER or the control
//! API) starts an INVITE toward the remote hotline on leg C; when it answers, the caller's
//! media is re-pointed to it and the agent's leg is released. A transfer that fails puts
//! the caller back with the agent, whose leg is never torn down first.
//!
//! ```text
//!  caller (A)           engine                      agent (B)        remote (C)
//!                       ◀─────────────── *1 / INFO / REFER / HTTP
//!  ◀── ringback         INVITE ─────────────────────────────────────▶
//!                       ◀──────────────────────────────────────── 180/183
//!                       ◀──────────────────────────────────────────── 200
//!  ◀══ media ═══════════ ACK ───────────────────────────────────────▶
//!                       BYE ─────────────────────▶
//! ```

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::cdr::Moment;
use tracing::{debug, info, warn};

use super::{Call, Leg, Phase};
use crate::dialog::Dialog;
use crate::session::outbound::{self, ALLOW};
use crate::session::routing::{ChannelSlot, GatewayOutcome, RouteRequest, Routed};
use crate::session::transactions::Purpose;
use crate::session::{LegId, TransferOrder, TransferState, TransferStatus};
use crate::sip::{Headers, Method, Response};

/// A transfer in progress or finished, owned by its call.
pub(in crate::session) struct Transfer {
    pub status: TransferStatus,
    pub order: TransferOrder,
    routed: Routed,
    /// Index of the gateway being tried in `routed.gateways`.
    attempt: usize,
    channel: Option<ChannelSlot>,
    ring_deadline: Option<Instant>,
    /// The REFER subscription to report progress on, with its NOTIFY CSeq source leg.
    refer: Option<LegId>,
    /// Whether the answer needs a re-INVITE toward the caller because the codec differs.
    reinvite_caller: bool,
    /// Challenges answered on the current gateway, to stop after a second refusal.
    auth_attempts: u32,
}

impl Transfer {
    /// A transfer whose remote leg already exists (attended transfer).
    pub fn adopted(status: TransferStatus, order: TransferOrder, routed: Routed) -> Transfer {
        Transfer {
            status,
            order,
            routed,
            attempt: 0,
            channel: None,
            ring_deadline: None,
            refer: None,
            reinvite_caller: false,
            auth_attempts: 0,
        }
    }

    /// Stops the ring timer and frees the gateway channel of the current attempt.
    pub fn stop_attempt(&mut self) {
        self.ring_deadline = None;
        self.channel = None;
    }

    pub fn mark_answered(&mut self) {
        self.status.milestones.answer = Some(Moment::now());
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.ring_deadline
    }

    pub fn is_active(&self) -> bool {
        matches!(
            self.status.state,
            TransferState::Trying | TransferState::Ringing | TransferState::Answered
        )
    }
}

/// The reason a transfer could not start, returned to its trigger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Refused(#[from] crate::session::routing::Refusal),
    #[error("transfer {0} is already in progress on this call")]
    Busy(u64),
    #[error("the call is not answered yet")]
    NotAnswered,
    #[error("failed to set up media toward the remote hotline: {0}")]
    Media(String),
}

impl Call {
    /// Starts a transfer to the destination in `order`. On success the INVITE to the first
    /// gateway is on its way.
    pub(in crate::session) async fn start_transfer(
        &mut self,
        order: TransferOrder,
    ) -> Result<TransferStatus, StartError> {
        if self.phase != Phase::Confirmed {
            return Err(StartError::NotAnswered);
        }
        if let Some(transfer) = self
            .transfer
            .as_ref()
            .filter(|transfer| transfer.is_active())
        {
            return Err(StartError::Busy(transfer.status.id));
        }

        let request = self.route_request(&order);
        let routed = self.router.route(&request)?;
        let anchor = self
            .anchor
            .as_mut()
            .ok_or(StartError::Media("no media".into()))?;
        anchor
            .reserve_side_c()
            .map_err(|error| StartError::Media(error.to_string()))?;

        let id = self.ctx.next_transfer_id();
        let call_id = self.a.dialog.call_id.to_string();
        let status = TransferStatus::new(id, self.session, &call_id, &order);
        let destination = routed.destination.clone();
        let kind = order.kind;
        self.transfer = Some(Box::new(Transfer {
            status: status.clone(),
            order,
            routed,
            attempt: 0,
            channel: None,
            ring_deadline: None,
            refer: None,
            reinvite_caller: false,
            auth_attempts: 0,
        }));

        self.try_next_gateway().await;
        if let Some(anchor) = &mut self.anchor {
            anchor.start_side_c();
        }
        // Blind transfer: the caller stops hearing the agent and hears ringback instead.
        // Done once the INVITE is out, unless the transfer already failed and gave the
        // caller back to the agent.
        let trying = self
            .transfer
            .as_ref()
            .is_some_and(|transfer| transfer.is_active());
        if trying && let Some(anchor) = &self.anchor {
            anchor.isolate_caller();
            anchor.ringback(true);
        }
        // Logged once the INVITE is out: a log line is a write to standard error, which
        // would otherwise count in the engine-added setup latency.
        info!(transfer = id, %destination, ?kind, "transfer started");
        self.publish_transfer();
        Ok(self
            .transfer
            .as_ref()
            .map_or(status, |transfer| transfer.status.clone()))
    }

    fn route_request(&self, order: &TransferOrder) -> RouteRequest {
        let from = self.a_invite.from_header().ok();
        let caller = self
            .a_invite
            .header("P-Asserted-Identity")
            .and_then(|value| value.parse::<crate::sip::uri::NameAddr>().ok())
            .and_then(|addr| addr.uri.user)
            .or_else(|| from.as_ref().and_then(|from| from.uri.user.clone()))
            .unwrap_or_default();
        RouteRequest {
            destination: order.destination.clone(),
            matter: order.matter.clone(),
            ticket: order.ticket.clone(),
            agent: order.agent.clone(),
            caller,
            caller_display: from.and_then(|from| from.display_name),
            history: self
                .a_invite
                .headers_named("History-Info")
                .flat_map(crate::sip::uri::split_list)
                .map(str::to_owned)
                .collect(),
            force: order.force,
            at: SystemTime::now(),
        }
    }

    /// Sends the INVITE to the next usable gateway, or fails the transfer when none is left.
    async fn try_next_gateway(&mut self) {
        loop {
            let Some(transfer) = &mut self.transfer else {
                return;
            };
            let Some(gateway) = transfer.routed.gateways.get(transfer.attempt).cloned() else {
                let cause = if transfer.attempt == 0 {
                    "no gateway available"
                } else {
                    "all gateways failed"
                };
                let status = transfer.status.sip_status.unwrap_or(503);
                return self.fail_transfer(status, cause).await;
            };
            transfer.attempt += 1;
            transfer.auth_attempts = 0;
            let Some(slot) = self.router.acquire_channel(&gateway.id) else {
                debug!(gateway = %gateway.id, "gateway full; trying the next one");
                continue;
            };
            transfer.channel = Some(slot);
            transfer.status.gateway = Some(gateway.id.clone());
            break self.send_transfer_invite(gateway).await;
        }
    }

    async fn send_transfer_invite(&mut self, gateway: crate::session::routing::GatewayRoute) {
        let Some(transfer) = &self.transfer else {
            return;
        };
        let from = transfer.routed.from.clone();
        let headers = transfer.routed.headers.clone();
        let ring_timeout = transfer.routed.ring_timeout;

        // A new leg C for every attempt: its own Call-ID, tags and CSeq.
        let remote_party = format!("<{}>", gateway.request_uri);
        let dialog = Dialog::new_uac(
            self.new_call_id(),
            from,
            remote_party,
            gateway.request_uri.clone(),
        );
        let leg = Leg {
            dialog,
            target: gateway.target,
            up: false,
        };
        self.install_leg(LegId::C, leg);

        let offer = match self
            .anchor
            .as_mut()
            .map(|anchor| anchor.offer_from_caller(LegId::C))
        {
            Some(Ok(offer)) => Some(offer),
            Some(Err(error)) => {
                warn!(%error, "failed to build the offer for the remote hotline");
                None
            }
            None => None,
        };
        let mut invite = self.leg_mut(LegId::C).dialog.request(Method::Invite, None);
        for (name, value) in headers {
            invite.push_header(name, value);
        }
        invite.push_header("Allow", ALLOW);
        invite.push_header("User-Agent", self.ctx.config.sip.user_agent.as_str());
        if let Some(offer) = offer {
            invite.set_body(offer, Some("application/sdp"));
        }

        let now = Instant::now();
        debug!(gateway = %gateway.id, target = %gateway.target.addr, uri = %gateway.request_uri, "sending transfer invite");
        let target = gateway.target;
        let (_, sent_at) = self
            .send_client_request(
                LegId::C,
                &mut invite,
                target,
                Purpose::TransferInvite,
                None,
                now,
            )
            .await;
        if let Some(transfer) = &mut self.transfer {
            let milestones = &mut transfer.status.milestones;
            milestones.invite_sent.get_or_insert(sent_at);
            transfer.ring_deadline = Some(now + ring_timeout);
        }
    }

    /// Handles a response to the INVITE on leg C.
    pub(super) async fn on_transfer_response(&mut self, response: Response) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        transfer
            .status
            .milestones
            .first_response
            .get_or_insert_with(Moment::now);
        if let Err(error) = super::c_leg(&mut self.c)
            .dialog
            .on_invite_response(&response)
        {
            debug!(%error, "remote response with invalid dialog headers");
        }
        let gateway = transfer.status.gateway.clone().unwrap_or_default();

        if response.status > 100 {
            self.router
                .report(&gateway, GatewayOutcome::Response(response.status));
        }
        match response.status {
            100 => {}
            101..=199 => self.on_transfer_ringing(&response).await,
            200..=299 => self.on_transfer_answer(response).await,
            401 | 407 if self.answer_challenge(&response).await => {}
            status => {
                let failover = matches!(status, 408 | 500 | 502 | 503 | 504);
                self.on_transfer_rejected(status, &response.reason, failover)
                    .await;
            }
        }
    }

    /// Resends the transfer INVITE with digest credentials after a 401 or 407 (RFC 3261
    /// §22.2). Returns false when there are no credentials for the challenge, or the
    /// trunk refused them already.
    async fn answer_challenge(&mut self, response: &Response) -> bool {
        let Some(transfer) = &mut self.transfer else {
            return false;
        };
        let Some(credentials) = transfer.routed.credentials.clone() else {
            return false;
        };
        if transfer.auth_attempts >= 1 {
            return false;
        }
        transfer.auth_attempts += 1;
        let (challenge_header, answer_header) = if response.status == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let Some(challenge) = response
            .header(challenge_header)
            .and_then(|value| value.parse::<crate::sip::digest::Challenge>().ok())
        else {
            return false;
        };
        if credentials
            .realm
            .as_ref()
            .is_some_and(|realm| *realm != challenge.realm)
        {
            return false;
        }
        let Some(previous) = self
            .txns
            .iter()
            .rev()
            .find(|txn| txn.leg == LegId::C && txn.purpose == Purpose::TransferInvite)
            .and_then(|txn| txn.request.clone())
        else {
            return false;
        };

        // The new INVITE is the same request with the next CSeq and its own branch.
        let uri = previous.uri.to_string();
        let cnonce = format!("{:016x}", rand::random::<u64>());
        let answer = crate::sip::digest::Answer {
            username: &credentials.username,
            password: &credentials.password,
            method: "INVITE",
            uri: &uri,
            cnonce: &cnonce,
            nonce_count: 1,
        };
        let value = match crate::sip::digest::authorization(&challenge, &answer) {
            Ok(value) => value,
            Err(error) => {
                warn!(%error, "failed to respond to the trunk's digest challenge");
                return false;
            }
        };
        let mut invite = self.leg_mut(LegId::C).dialog.request(Method::Invite, None);
        for (name, value) in previous.header_pairs() {
            let skip = [
                "Via",
                "Route",
                "Max-Forwards",
                "From",
                "To",
                "Call-ID",
                "CSeq",
                "Contact",
                "Content-Type",
                "Content-Length",
            ]
            .iter()
            .any(|local| local.eq_ignore_ascii_case(name));
            if !skip {
                invite.push_header(name.to_owned(), value);
            }
        }
        invite.push_header(answer_header, value);
        invite.set_body(previous.body().clone(), previous.content_type());
        debug!(realm = %challenge.realm, "answering the trunk's digest challenge");
        let target = self.leg(LegId::C).target;
        self.send_request(
            LegId::C,
            &mut invite,
            target,
            Purpose::TransferInvite,
            Instant::now(),
        )
        .await;
        true
    }

    async fn on_transfer_ringing(&mut self, response: &Response) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        // Only the first provisional, or one bringing early media, changes anything.
        if transfer.status.state != TransferState::Trying && !response.has_sdp() {
            return;
        }
        transfer.status.state = TransferState::Ringing;
        transfer
            .status
            .ringing_at
            .get_or_insert_with(SystemTime::now);
        if response.has_sdp()
            && let Some(anchor) = &mut self.anchor
        {
            match anchor.accept_sdp(LegId::C, response.body()) {
                Ok(()) => {
                    // Early media from the remote replaces the generated ringback.
                    anchor.ringback(false);
                    let _ = anchor.early_media();
                }
                Err(error) => warn!(%error, "invalid early media sdp from the remote hotline"),
            }
        }
        self.notify_refer(response.status, &response.reason, false)
            .await;
        self.publish_transfer();
    }

    async fn on_transfer_answer(&mut self, response: Response) {
        let seq = response.cseq().map(|cseq| cseq.seq).unwrap_or(1);
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        if transfer.status.state == TransferState::Bridged || !transfer.is_active() {
            // A retransmitted 2xx, or one that crossed our CANCEL.
            let c = super::c_leg(&mut self.c);
            if !c.up && transfer.status.state != TransferState::Bridged {
                c.up = true;
                let ack = c.dialog.request(Method::Ack, Some(seq));
                let target = c.target;
                self.send_ack(LegId::C, ack, target).await;
                self.send_bye(LegId::C, None).await;
                return;
            }
            return self.resend_ack(LegId::C, seq).await;
        }
        transfer.ring_deadline = None;
        transfer.status.state = TransferState::Answered;
        transfer.status.milestones.answer = Some(Moment::now());
        transfer.status.sip_status = Some(response.status);
        self.leg_mut(LegId::C).up = true;

        let c = self.leg(LegId::C);
        let target = outbound::next_hop_target(&c.dialog, c.target).await;
        let c = self.leg_mut(LegId::C);
        c.target = target;
        let ack = c.dialog.request(Method::Ack, Some(seq));
        self.send_ack(LegId::C, ack, target).await;

        let mut reinvite = false;
        if let Some(anchor) = &mut self.anchor {
            if response.has_sdp()
                && let Err(error) = anchor.accept_sdp(LegId::C, response.body())
            {
                warn!(%error, "invalid answer sdp from the remote hotline");
            }
            anchor.ringback(false);
            if let Err(error) = anchor.bridge(LegId::C) {
                warn!(%error, "failed to bridge media to the remote hotline");
            }
            reinvite = !anchor.codec_compatible(LegId::C) || anchor.caller_on_hold();
        }
        self.a_peer = LegId::C;
        if let Some(transfer) = &mut self.transfer {
            transfer.reinvite_caller = reinvite;
        }
        if reinvite {
            self.reinvite_caller_for_c().await;
        }
        self.complete_transfer().await;
    }

    /// Releases the agent and closes the record once the caller talks to the remote hotline.
    pub(super) async fn complete_transfer(&mut self) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        transfer.status.state = TransferState::Bridged;
        transfer.status.milestones.bridge = Some(Moment::now());
        let latency = transfer.status.milestones.latency();
        info!(
            transfer = transfer.status.id,
            destination = %transfer.status.destination,
            invite_latency_us = ?latency.invite_us,
            bridge_latency_us = ?latency.bridge_us,
            "transfer bridged"
        );
        let refer = transfer.refer;
        self.notify_refer(200, "OK", true).await;
        self.publish_transfer();
        self.record_transfer();

        // After a REFER the agent normally hangs up itself on the final NOTIFY; the engine
        // releases the leg in every case so that no agent stays on a finished call.
        let _ = refer;
        if self.b.up {
            self.send_bye(LegId::B, Some("SIP;cause=200;text=\"Call transferred\""))
                .await;
        }
        self.release_agent_keys();
    }

    async fn on_transfer_rejected(&mut self, status: u16, reason: &str, failover: bool) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        if !transfer.is_active() {
            return;
        }
        transfer.status.sip_status = Some(status);
        transfer.channel = None;
        super::c_leg(&mut self.c).up = false;
        if failover && transfer.attempt < transfer.routed.gateways.len() {
            debug!(status, "gateway failed; trying the next one");
            return self.try_next_gateway().await;
        }
        let cause = if reason.is_empty() {
            crate::sip::reason_phrase(status).to_owned()
        } else {
            reason.to_owned()
        };
        self.fail_transfer(status, &cause).await;
    }

    /// Handles an INVITE on leg C that could not be sent or timed out.
    pub(super) async fn on_transfer_timeout(&mut self, timed_out: bool) {
        let gateway = self
            .transfer
            .as_ref()
            .and_then(|transfer| transfer.status.gateway.clone())
            .unwrap_or_default();
        let outcome = if timed_out {
            GatewayOutcome::Timeout
        } else {
            GatewayOutcome::TransportError
        };
        self.router.report(&gateway, outcome);
        let status = if timed_out { 408 } else { 503 };
        self.on_transfer_rejected(status, "", true).await;
    }

    /// Cancels the remote when it has rung too long, and recalls the agent.
    pub(super) async fn on_transfer_deadline(&mut self, now: Instant) {
        let due = self
            .transfer
            .as_ref()
            .and_then(|transfer| transfer.ring_deadline)
            .is_some_and(|at| at <= now);
        if !due {
            return;
        }
        if let Some(transfer) = &mut self.transfer {
            transfer.ring_deadline = None;
        }
        debug!("remote hotline did not answer in time");
        self.cancel_leg(LegId::C).await;
        self.fail_transfer(480, "no answer").await;
    }

    /// Re-INVITEs the caller with the remote's media: when the remote chose a codec the
    /// caller's current one differs from, or when the agent had put the caller on hold
    /// before transferring (a softphone usually does), which the remote must not inherit.
    pub(super) async fn reinvite_caller_for_c(&mut self) {
        // NOTE: the caller's answer to this re-INVITE is not checked against the remote's
        // codec; a caller that rejects it keeps its codec and the relay cannot transcode.
        let Some(anchor) = &mut self.anchor else {
            return;
        };
        let Ok(offer) = anchor.offer_from_peer_for_caller() else {
            return;
        };
        let mut reinvite = self.a.dialog.request(Method::Invite, None);
        reinvite.push_header("Allow", ALLOW);
        reinvite.set_body(offer, Some("application/sdp"));
        let target = self.a.target;
        self.send_request(
            LegId::A,
            &mut reinvite,
            target,
            Purpose::CallerReinvite,
            Instant::now(),
        )
        .await;
    }

    /// CANCELs an INVITE still pending on `leg`, or BYEs the leg when it is up.
    pub(super) async fn cancel_leg(&mut self, leg: LegId) {
        if self.leg(leg).up {
            return self.send_bye(leg, None).await;
        }
        let purpose = match leg {
            LegId::C => Purpose::TransferInvite,
            LegId::B => Purpose::Callback,
            LegId::A => return,
        };
        let Some(index) = self
            .txns
            .iter()
            .position(|txn| txn.leg == leg && txn.purpose == purpose && !txn.final_seen)
        else {
            return;
        };
        self.send_cancel(index).await;
    }

    /// Stops a transfer because the call ends (the caller hung up or shutdown).
    pub(super) async fn abort_transfer(&mut self, cause: &str) {
        let active = self
            .transfer
            .as_ref()
            .is_some_and(|transfer| transfer.is_active());
        if !active {
            return;
        }
        self.cancel_leg(LegId::C).await;
        if let Some(transfer) = &mut self.transfer {
            transfer.status.state = TransferState::Cancelled;
            transfer.status.cause = Some(cause.to_owned());
            transfer.ring_deadline = None;
            transfer.channel = None;
        }
        if let Some(anchor) = &self.anchor {
            anchor.ringback(false);
        }
        self.notify_refer(487, cause, true).await;
        self.publish_transfer();
        self.record_transfer();
    }

    /// Copies the transfer's status where the control API reads it.
    pub(super) fn publish_transfer(&self) {
        if let Some(transfer) = &self.transfer {
            self.ctx.publish_transfer(transfer.status.clone());
        }
        if self.phase == Phase::Confirmed {
            self.publish_call();
        }
    }

    pub(super) fn record_transfer(&self) {
        if let Some(transfer) = &self.transfer {
            self.ctx
                .record_transfer(&transfer.status, &transfer.order, &self.a_invite);
        }
    }

    /// Sends a NOTIFY with the sipfrag status to the agent that sent REFER (RFC 3515 §2.4.5).
    pub(super) async fn notify_refer(&mut self, status: u16, reason: &str, last: bool) {
        let Some(leg) = self.transfer.as_ref().and_then(|transfer| transfer.refer) else {
            return;
        };
        if !self.leg(leg).up {
            return;
        }
        let reason = if reason.is_empty() {
            crate::sip::reason_phrase(status)
        } else {
            reason
        };
        let mut notify = self.leg_mut(leg).dialog.request(Method::Notify, None);
        notify.push_header("Event", "refer");
        let state = if last {
            "terminated;reason=noresource".to_owned()
        } else {
            "active;expires=60".to_owned()
        };
        notify.push_header("Subscription-State", state);
        let body = format!("SIP/2.0 {status} {reason}\r\n");
        notify.set_body(body.into(), Some("message/sipfrag;version=2.0"));
        let target = self.leg(leg).target;
        self.send_request(leg, &mut notify, target, Purpose::Local, Instant::now())
            .await;
        if last && let Some(transfer) = &mut self.transfer {
            transfer.refer = None;
        }
    }

    /// Marks the transfer as started by a REFER on `leg`, so progress goes out as NOTIFY.
    pub(super) fn attach_refer(&mut self, leg: LegId) {
        if let Some(transfer) = &mut self.transfer {
            transfer.refer = Some(leg);
        }
    }
}

/// The agent's keys: the RFC 4733 detector and the collector that matches them against
/// the transfer sequences.
pub(in crate::session) struct AgentKeys {
    pub(super) detector: Option<crate::dtmf::rfc4733::Rfc4733Detector>,
    pub(super) collector: crate::dtmf::collector::KeyCollector,
}

impl AgentKeys {
    pub fn new(inter_digit_timeout: Duration, prefixes: u16) -> AgentKeys {
        let prefixes = (0u8..16)
            .filter(|event| prefixes & (1 << event) != 0)
            .filter_map(crate::dtmf::key_for_event)
            .collect();
        let config = crate::dtmf::collector::CollectorConfig {
            prefixes,
            inter_digit_timeout,
            ..crate::dtmf::collector::CollectorConfig::default()
        };
        AgentKeys {
            detector: None,
            collector: crate::dtmf::collector::KeyCollector::new(config),
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let detector = self
            .detector
            .as_ref()
            .and_then(|detector| detector.next_deadline());
        [detector, self.collector.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }
}
