//! Failure recall (首接负责): a transfer that fails never drops the caller. The caller is
//! re-bridged with the agent when the agent's leg is still up, and the agent is called
//! back when it already hung up.

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Call, Leg};
use crate::dialog::Dialog;
use crate::session::outbound::{self, ALLOW};
use crate::session::transactions::Purpose;
use crate::session::{LegId, TransferState};
use crate::sip::{Headers, Method, Response};

impl Call {
    /// Ends the transfer as failed and gives the caller back to the agent (首接负责).
    pub(super) async fn fail_transfer(&mut self, status: u16, cause: &str) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        transfer.stop_attempt();
        transfer.status.sip_status = Some(status);
        transfer.status.cause = Some(cause.to_owned());
        transfer.status.state = TransferState::Failed;
        info!(
            transfer = transfer.status.id,
            status, cause, "transfer failed; recalling the agent"
        );

        if let Some(anchor) = &mut self.anchor {
            anchor.ringback(false);
            anchor.close_side_c();
        }
        self.notify_refer(status, cause, true).await;
        let agent_on_line = self.recall_agent().await;
        self.publish_transfer();
        // A call-back is recorded once the agent answers it or refuses it.
        if agent_on_line {
            self.record_transfer();
        }
    }

    /// Puts the caller back with the agent: re-bridged when the agent's leg is up (the
    /// transfer stays `Failed`), otherwise by calling the agent back (it becomes
    /// `Recalled` once the agent answers). Returns whether the agent was still on the line.
    async fn recall_agent(&mut self) -> bool {
        self.a_peer = LegId::B;
        if self.b.up {
            if let Some(anchor) = &mut self.anchor
                && let Err(error) = anchor.bridge(LegId::B)
            {
                warn!(%error, "failed to re-bridge the caller with the agent");
            }
            self.release_agent_keys();
            return true;
        }
        self.call_agent_back().await;
        false
    }

    /// The agent's leg is gone: call the agent again with the caller's media.
    async fn call_agent_back(&mut self) {
        // NOTE: the agent is called back at the configured agent target, which reaches
        // the same agent only where that target is the agent's own address.
        let agent = self.ctx.agent.clone();
        let Some(target) = outbound::resolve(&agent).await else {
            warn!("agent target does not resolve; the caller stays alone");
            return;
        };
        let offer = self
            .anchor
            .as_mut()
            .and_then(|anchor| anchor.offer_from_caller(LegId::B).ok());
        let local_party = self.b.dialog.local_party().to_owned();
        let dialog = Dialog::new_uac(self.new_call_id(), local_party, format!("<{agent}>"), agent);
        let leg = Leg {
            dialog,
            target,
            up: false,
        };
        self.install_leg(LegId::B, leg);
        let mut invite = self.b.dialog.request(Method::Invite, None);
        invite.push_header("Allow", ALLOW);
        invite.push_header("User-Agent", self.ctx.config.sip.user_agent.as_str());
        if let Some(offer) = offer {
            invite.set_body(offer, Some("application/sdp"));
        }
        self.b_answered = false;
        info!("calling the agent back");
        self.send_request(
            LegId::B,
            &mut invite,
            target,
            Purpose::Callback,
            Instant::now(),
        )
        .await;
    }

    /// Handles the answer to a call-back INVITE toward the agent.
    pub(super) async fn on_callback_response(&mut self, response: Response) {
        if let Err(error) = self.b.dialog.on_invite_response(&response) {
            debug!(%error, "agent response with invalid dialog headers");
        }
        if !response.is_success() {
            if response.status >= 300 {
                warn!(
                    status = response.status,
                    "the agent did not take the call back"
                );
                self.record_transfer();
            }
            return;
        }
        let seq = response.cseq().map(|cseq| cseq.seq).unwrap_or(1);
        if self.b_answered {
            return self.resend_ack(LegId::B, seq).await;
        }
        self.b_answered = true;
        self.b.up = true;
        let ack = self.b.dialog.request(Method::Ack, Some(seq));
        let target = self.b.target;
        self.send_ack(LegId::B, ack, target).await;
        if let Some(anchor) = &mut self.anchor {
            if response.has_sdp()
                && let Err(error) = anchor.accept_sdp(LegId::B, response.body())
            {
                warn!(%error, "invalid sdp from the agent");
            }
            let _ = anchor.bridge(LegId::B);
        }
        if let Some(transfer) = &mut self.transfer {
            transfer.status.state = TransferState::Recalled;
        }
        self.publish_transfer();
        self.record_transfer();
    }
}
