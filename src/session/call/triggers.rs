//! The agent's transfer triggers that arrive inside the call: RFC 4733 keys seen by the
//! relay, SIP INFO with a DTMF body, REFER, and transfer orders from the control API.

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{AgentKeys, Call, Phase};
use crate::dtmf::collector::{KeyAction, KeyMatch};
use crate::dtmf::rfc4733::{DetectorEvent, EventPacket};
use crate::media::TelephoneEventPacket;
use crate::session::LegId;
use crate::session::routing::KeyMatch as RouteMatch;
use crate::session::{TransferOrder, TransferStatus, TriggerKind};
use crate::sip::headers::ReferTo;
use crate::sip::{Branch, Headers, Request};

impl Call {
    /// A telephone-event packet the agent sent, copied by the relay.
    pub(super) async fn on_agent_event(&mut self, packet: Box<TelephoneEventPacket>) {
        let now = Instant::now();
        let clock = self
            .anchor
            .as_ref()
            .map_or(8000, |anchor| anchor.agent_event_clock());
        for detected in self.dtmf.detect(clock, EventPacket::from(&*packet), now) {
            if let DetectorEvent::DigitStart(start) = detected {
                self.on_agent_key(start.key, TriggerKind::Dtmf, now).await;
            }
        }
    }

    /// One key from the agent, by RFC 4733 or INFO. Returns whether the key is an
    /// ordinary one that should reach the caller.
    async fn on_agent_key(&mut self, key: char, kind: TriggerKind, now: Instant) -> bool {
        let router = std::sync::Arc::clone(&self.router);
        let collected = self
            .dtmf
            .collector
            .push(key, now, |keys| match router.match_keys(keys) {
                RouteMatch::Complete(destination) => KeyMatch::Complete(destination),
                RouteMatch::Partial => KeyMatch::Partial,
                RouteMatch::NoMatch => KeyMatch::NoMatch,
            });
        if !collected.released.is_empty() {
            self.replay_released(&collected.released, kind);
        }
        match collected.action {
            KeyAction::Relay => return true,
            KeyAction::Hold => {}
            KeyAction::Fire { sequence, target } => {
                info!(keys = %sequence, destination = %target, "transfer keys pressed");
                let order = TransferOrder::to(kind, &target);
                if let Err(error) = self.start_transfer(order).await {
                    warn!(%error, destination = %target, "transfer not started");
                    self.release_agent_keys();
                }
            }
        }
        false
    }

    /// Fires the inter-digit timeout of held keys.
    pub(super) async fn on_key_timeout(&mut self, now: Instant) {
        if let Some(released) = self.dtmf.collector.poll(now)
            && !released.is_empty()
        {
            debug!(keys = %released, "transfer keys timed out");
            self.replay_released(&released, TriggerKind::Dtmf);
        }
        self.dtmf.poll_detector(now);
    }

    /// Keys held back that turned out to be no transfer code reach the caller late: as
    /// RFC 4733 presses when they came in the media, so their timing and duration differ
    /// from the agent's.
    fn replay_released(&self, keys: &str, kind: TriggerKind) {
        debug!(keys, "held keys were no transfer code; passing them on");
        self.release_agent_keys();
        let replayed = kind == TriggerKind::Dtmf
            && self
                .anchor
                .as_ref()
                .is_some_and(|anchor| anchor.replay_keys_to_caller(keys));
        // NOTE: keys held from INFO requests were already answered and are not sent on to
        // the caller as INFO; only keys from the media are replayed.
        if kind == TriggerKind::Dtmf && !replayed {
            debug!(
                keys,
                "the caller has no telephone-event payload; keys dropped"
            );
        }
    }

    /// Lets the agent's keys reach the caller again.
    pub(super) fn release_agent_keys(&self) {
        if let Some(anchor) = &self.anchor {
            anchor.release_agent_events();
        }
    }

    /// INFO with `application/dtmf-relay` or `application/dtmf` from the agent (RFC 2976
    /// carries them; the bodies are the de facto formats of phones and gateways). A key
    /// that is no part of a transfer code is relayed to the caller like any INFO.
    pub(super) async fn on_agent_info(&mut self, branch: &Branch, request: Request) {
        let content_type = request.content_type().unwrap_or_default().to_owned();
        let key = match crate::dtmf::info::parse_info_body(&content_type, request.body()) {
            Ok(digit) => digit.key,
            Err(error) => {
                debug!(%error, "invalid dtmf info from the agent");
                let status = error.status_code();
                let mut response = self.response_to(LegId::B, &request, status, "");
                if status == 415 {
                    response.push_header("Accept", crate::dtmf::info::ACCEPTED_CONTENT_TYPES);
                }
                return self.respond(LegId::B, branch, response).await;
            }
        };
        let ordinary = self
            .on_agent_key(key, TriggerKind::Info, Instant::now())
            .await;
        let transferring = self
            .transfer
            .as_ref()
            .is_some_and(|transfer| transfer.is_active());
        if ordinary && !transferring {
            return self.forward_request(LegId::B, branch, request).await;
        }
        let response = self.response_to(LegId::B, &request, 200, "");
        self.respond(LegId::B, branch, response).await;
    }

    /// REFER from the agent's phone (RFC 3515): a blind transfer to a destination the
    /// dialplan maps the Refer-To to. Anything else is refused with 403, which keeps the
    /// engine from calling arbitrary numbers for an agent (toll fraud).
    pub(super) async fn on_agent_refer(&mut self, branch: &Branch, request: Request) {
        let refer_to = request
            .header("Refer-To")
            .and_then(|value| value.parse::<ReferTo>().ok());
        let Some(refer_to) = refer_to else {
            let response = self.response_to(LegId::B, &request, 400, "Missing Or Invalid Refer-To");
            return self.respond(LegId::B, branch, response).await;
        };
        match refer_to.replaces() {
            Ok(None) => {}
            Ok(Some(replaces)) => return self.on_attended_refer(branch, request, replaces).await,
            Err(_) => {
                let response = self.response_to(LegId::B, &request, 400, "Invalid Replaces");
                return self.respond(LegId::B, branch, response).await;
            }
        }
        let mut target_uri = refer_to.target.uri.clone();
        target_uri.headers.clear();
        let Some(destination) = self.router.resolve_refer_to(&target_uri.to_string()) else {
            info!(refer_to = %target_uri, "refer to an unlisted target refused");
            let response = self.response_to(LegId::B, &request, 403, "Refer-To Not Allowed");
            return self.respond(LegId::B, branch, response).await;
        };
        if self.phase != Phase::Confirmed {
            let response = self.response_to(LegId::B, &request, 481, "");
            return self.respond(LegId::B, branch, response).await;
        }

        let order = TransferOrder::to(TriggerKind::Refer, &destination);
        match self.start_transfer(order).await {
            Ok(_) => {
                let response = self.response_to(LegId::B, &request, 202, "");
                self.respond(LegId::B, branch, response).await;
                self.attach_refer(LegId::B);
                // RFC 3515 §2.4.4: the first NOTIFY follows the 202 at once.
                self.notify_refer(100, "Trying", false).await;
            }
            Err(error) => {
                info!(%error, destination, "refer refused");
                let status = match error {
                    super::transfer::StartError::Busy(_) => 491,
                    super::transfer::StartError::NotAnswered => 481,
                    _ => 403,
                };
                let response = self.response_to(LegId::B, &request, status, "");
                self.respond(LegId::B, branch, response).await;
            }
        }
    }

    /// A transfer ordered through the control API.
    pub(super) async fn on_transfer_order(
        &mut self,
        order: TransferOrder,
    ) -> Result<TransferStatus, super::transfer::StartError> {
        self.start_transfer(order).await
    }
}

impl AgentKeys {
    /// Feeds an RFC 4733 packet to the detector, created on the first packet with the
    /// negotiated clock rate.
    fn detect(&mut self, clock: u32, packet: EventPacket<'_>, now: Instant) -> Vec<DetectorEvent> {
        let detector = match &mut self.detector {
            Some(detector) => detector,
            None => match crate::dtmf::rfc4733::Rfc4733Detector::new(clock) {
                Ok(detector) => self.detector.insert(detector),
                Err(error) => {
                    warn!(%error, clock, "cannot detect dtmf at this clock rate");
                    return Vec::new();
                }
            },
        };
        detector.receive(packet, now)
    }

    fn poll_detector(&mut self, now: Instant) {
        if let Some(detector) = &mut self.detector {
            let _ = detector.poll(now);
        }
    }
}
