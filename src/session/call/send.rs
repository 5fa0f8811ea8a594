//! Sending from a call: requests through client transactions, responses through server
//! transactions, and the actions the machines return.

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Call, Pending2xx, Phase};
use crate::cdr::Moment;
use crate::session::outbound::{self, ALLOW};
use crate::session::transactions::{Purpose, RelayLink, Txn};
use crate::session::{Failure, LegId};
use crate::sip::{Branch, Headers, Method, Request, Response};
use crate::transaction::{Action, Timer};
use crate::transport::Target;

impl Call {
    /// Registers a server transaction for a request just received.
    pub(super) fn open_server_txn(
        &mut self,
        leg: LegId,
        branch: &Branch,
        method: Method,
        target: Target,
        now: Instant,
    ) {
        let purpose =
            if leg == LegId::A && method == Method::Invite && self.phase == Phase::Proceeding {
                Purpose::AInvite
            } else {
                Purpose::Incoming
            };
        let txn = Txn::server(
            leg,
            branch.clone(),
            method,
            purpose,
            target,
            &self.ctx.timers,
            now,
        );
        self.txns.push(Box::new(txn));
    }

    pub(super) fn find_server(
        &self,
        leg: LegId,
        branch: &Branch,
        method: &Method,
    ) -> Option<usize> {
        self.txns.iter().position(|txn| {
            txn.is_server() && txn.leg == leg && txn.branch == *branch && txn.method == *method
        })
    }

    pub(super) fn find_client(
        &self,
        leg: LegId,
        branch: &Branch,
        method: &Method,
    ) -> Option<usize> {
        self.txns.iter().position(|txn| {
            !txn.is_server() && txn.leg == leg && txn.branch == *branch && txn.method == *method
        })
    }

    /// Sends a response through the server transaction `branch` on `leg`.
    pub(super) async fn respond(&mut self, leg: LegId, branch: &Branch, response: Response) {
        self.respond_encoded(leg, branch, response).await;
    }

    /// Sends a response as [`Call::respond`] does and returns its encoded bytes, or `None`
    /// when no server transaction took it.
    pub(super) async fn respond_encoded(
        &mut self,
        leg: LegId,
        branch: &Branch,
        mut response: Response,
    ) -> Option<Bytes> {
        let method = response
            .cseq()
            .ok()
            .and_then(|cseq| cseq.method.parse::<Method>().ok())?;
        let Some(index) = self.find_server(leg, branch, &method) else {
            debug!(
                status = response.status,
                "no server transaction for response"
            );
            return None;
        };
        if response.header("Server").is_none() {
            response.push_header("Server", self.ctx.config.sip.user_agent.as_str());
        }
        let bytes = response.encode();
        let status = response.status;
        let now = Instant::now();
        match self.txns[index].send_response(status, bytes.clone(), now) {
            Ok(actions) => self.run_actions(index, actions, None).await,
            Err(error) => debug!(%error, "response discarded by its transaction"),
        }
        Some(bytes)
    }

    /// Adds Via (and Contact on dialog-forming and target-refresh requests), starts a client
    /// transaction and sends the request. Returns the branch.
    pub(super) async fn send_request(
        &mut self,
        leg: LegId,
        request: &mut Request,
        target: Target,
        purpose: Purpose,
        now: Instant,
    ) -> Branch {
        self.send_client_request(leg, request, target, purpose, None, now)
            .await
            .0
    }

    /// Sends a request like [`Call::send_request`], with `relay` linking its transaction
    /// to the request it relays. Returns the branch and the moment the transport took the
    /// bytes, which a transfer record counts as the INVITE sent.
    pub(super) async fn send_client_request(
        &mut self,
        leg: LegId,
        request: &mut Request,
        target: Target,
        purpose: Purpose,
        relay: Option<RelayLink>,
        now: Instant,
    ) -> (Branch, Moment) {
        let branch = Branch::generate();
        let local = self.ctx.local_addr();
        let protocol = self.ctx.protocol_for(target, request.body().len() + 600);
        request.prepend_header("Via", outbound::via_value(local, protocol, branch.as_str()));
        if matches!(
            request.method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Refer
        ) {
            request.set_header("Contact", outbound::contact_value(local, protocol));
        }
        let target = Target { protocol, ..target };
        let bytes = request.encode();
        // The request leaves before its transaction is set up, so that the bookkeeping
        // adds nothing to the time the peer waits for it.
        let sent = self.ctx.send(target, bytes.clone()).await;
        let sent_at = Moment::now();
        let (mut txn, actions) = Txn::client(
            leg,
            branch.clone(),
            request.clone(),
            bytes,
            purpose,
            target,
            &self.ctx.timers,
            now,
        );
        txn.relay = relay.map(Box::new);
        self.txns.push(Box::new(txn));
        let index = self.txns.len() - 1;
        // A new client machine's only action is the first transmission, made above.
        let mut actions: Vec<Action> = actions
            .into_iter()
            .filter(|action| !matches!(action, Action::Transmit(_)))
            .collect();
        if !sent {
            actions.extend(self.txns[index].on_transport_error());
        }
        self.run_actions(index, actions, None).await;
        (branch, sent_at)
    }

    /// Carries out a machine's actions. `response` is the response just handed in, used to
    /// build the ACK for a 3xx-6xx.
    pub(super) async fn run_actions(
        &mut self,
        index: usize,
        actions: Vec<Action>,
        response: Option<&Response>,
    ) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Transmit(bytes) => {
                    queue.extend(self.txns[index].transmit(&self.ctx, bytes).await);
                }
                Action::BuildAck => {
                    let Some(ack) = response.and_then(|response| self.non_2xx_ack(index, response))
                    else {
                        continue;
                    };
                    queue.extend(self.txns[index].set_ack(ack));
                }
                Action::BuildTrying => {
                    let branch = self.txns[index].branch.clone();
                    let leg = self.txns[index].leg;
                    if leg == LegId::A && self.txns[index].purpose == Purpose::AInvite {
                        let trying = self.response_to_a(100, "");
                        Box::pin(self.respond(leg, &branch, trying)).await;
                    }
                }
                Action::TimedOut(timer) => self.on_txn_failed(index, Some(timer)).await,
                Action::TransportError => self.on_txn_failed(index, None).await,
                Action::PassToTu | Action::Terminated => {}
            }
        }
    }

    /// A client transaction got no answer (timer B or F, `timer` set) or could not send.
    async fn on_txn_failed(&mut self, index: usize, timer: Option<Timer>) {
        let purpose = self.txns[index].purpose;
        debug!(
            ?timer,
            ?purpose,
            leg = self.txns[index].leg.as_str(),
            "transaction failed"
        );
        match purpose {
            Purpose::BInvite if self.phase == Phase::Proceeding => {
                let failure = if timer.is_some() {
                    Failure::Timeout
                } else {
                    Failure::Transport
                };
                Box::pin(self.fail(failure)).await;
            }
            Purpose::TransferInvite if !self.txns[index].final_seen => {
                Box::pin(self.on_transfer_timeout(timer.is_some())).await;
            }
            Purpose::Callback => warn!("calling the agent back failed"),
            Purpose::Relay => {
                if let Some(link) = self.txns[index].relay.clone() {
                    let status = if timer.is_some() { 408 } else { 503 };
                    let response = Response::to_request(
                        &link.original,
                        status,
                        "",
                        Some(&self.leg(link.from).dialog.local_tag),
                    );
                    Box::pin(self.respond(link.from, &link.server_branch, response)).await;
                }
            }
            Purpose::Bye => {
                let leg = self.txns[index].leg;
                self.leg_mut(leg).up = false;
            }
            Purpose::AInvite if timer == Some(Timer::H) => {
                warn!("no ACK from the caller for the final response");
            }
            _ => {}
        }
    }

    /// The ACK for a 3xx-6xx response to a client INVITE (RFC 3261 §17.1.1.3).
    fn non_2xx_ack(&self, index: usize, response: &Response) -> Option<Bytes> {
        let invite = self.txns[index].request.as_ref()?;
        let mut ack = Request::new(Method::Ack, invite.uri.clone());
        ack.push_header("Via", invite.header("Via")?);
        for route in invite.headers_named("Route") {
            ack.push_header("Route", route);
        }
        ack.push_header("Max-Forwards", "70");
        ack.push_header("From", invite.header("From")?);
        ack.push_header("To", response.header("To")?);
        ack.push_header("Call-ID", invite.header("Call-ID")?);
        ack.push_header("CSeq", format!("{} ACK", invite.cseq().ok()?.seq));
        Some(ack.encode())
    }

    /// A response to the caller's INVITE, with the A-leg To tag and the engine's Contact.
    pub(super) fn response_to_a(&self, status: u16, reason: &str) -> Response {
        let tag = (status > 100).then_some(&self.a.dialog.local_tag);
        let mut response = Response::to_request(&self.a_invite, status, reason, tag);
        if (101..300).contains(&status) {
            let protocol = self.a.target.protocol;
            response.push_header(
                "Contact",
                outbound::contact_value(self.ctx.local_addr(), protocol),
            );
        }
        if (200..300).contains(&status) {
            response.push_header("Allow", ALLOW);
        }
        response
    }

    /// Gives the caller a final error, releases media and cancels nothing: the caller of
    /// this method has already dealt with the agent's leg.
    pub(super) async fn fail(&mut self, failure: Failure) {
        if self.phase != Phase::Proceeding {
            return;
        }
        let (status, reason) = failure.caller_status();
        debug!(?failure, status, "call failed");
        self.phase = Phase::Failed;
        self.ring_deadline = None;
        self.stop_media();
        let response = self.response_to_a(status, reason);
        let branch = self.a_invite_branch.clone();
        self.respond(LegId::A, &branch, response).await;
        self.finish();
    }

    /// Sends CANCEL for the agent's INVITE, or remembers to once it sends a provisional.
    pub(super) async fn cancel_b(&mut self) {
        if !self.b_provisional_seen {
            self.cancel_pending = true;
            return;
        }
        self.cancel_pending = false;
        let Some(index) = self
            .txns
            .iter()
            .position(|txn| txn.purpose == Purpose::BInvite)
        else {
            return;
        };
        self.send_cancel(index).await;
    }

    /// Sends CANCEL for the client INVITE transaction at `index`.
    pub(super) async fn send_cancel(&mut self, index: usize) {
        let Some(invite) = self.txns[index].request.clone() else {
            return;
        };
        let leg = self.txns[index].leg;

        // RFC 3261 §9.1: same Request-URI, Call-ID, From, To, Route and top Via as the
        // INVITE, CSeq number with method CANCEL.
        let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
        for (name, value) in invite.header_pairs() {
            let copied = ["Via", "Route", "From", "To", "Call-ID"]
                .into_iter()
                .find(|wanted| wanted.eq_ignore_ascii_case(name));
            if let Some(copied) = copied
                && !(copied == "Via" && cancel.header("Via").is_some())
            {
                cancel.push_header(copied, value);
            }
        }
        cancel.push_header("Max-Forwards", "70");
        if let Ok(cseq) = invite.cseq() {
            cancel.push_header("CSeq", format!("{} CANCEL", cseq.seq));
        }
        let branch = self.txns[index].branch.clone();
        let target = self.txns[index].target;
        let bytes = cancel.encode();
        let now = Instant::now();
        let (txn, actions) = Txn::client(
            leg,
            branch,
            cancel,
            bytes,
            Purpose::Cancel,
            target,
            &self.ctx.timers,
            now,
        );
        self.txns.push(Box::new(txn));
        let index = self.txns.len() - 1;
        self.run_actions(index, actions, None).await;
    }

    /// Sends BYE on a confirmed leg.
    pub(super) async fn send_bye(&mut self, leg: LegId, reason: Option<&str>) {
        let mut bye = self.leg_mut(leg).dialog.request(Method::Bye, None);
        if let Some(reason) = reason {
            bye.push_header("Reason", reason);
        }
        bye.push_header("User-Agent", self.ctx.config.sip.user_agent.as_str());
        let target = self.leg(leg).target;
        self.leg_mut(leg).up = false;
        self.send_request(leg, &mut bye, target, Purpose::Bye, Instant::now())
            .await;
    }

    /// Fires the timers that are due: transaction timers, 2xx retransmissions, the ring
    /// timeout, and the end of the linger period.
    pub(super) async fn on_timers(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.txns.len() {
            if self.txns[index].next_deadline().is_some_and(|at| at <= now) {
                let actions = self.txns[index].on_timeout(now);
                self.run_actions(index, actions, None).await;
            }
            index += 1;
        }
        self.txns.retain(|txn| !txn.is_terminated());
        self.maybe_done();

        self.retransmit_2xx(now).await;
        self.on_transfer_deadline(now).await;
        self.on_key_timeout(now).await;

        if self.ring_deadline.is_some_and(|at| at <= now) {
            self.ring_deadline = None;
            if self.phase == Phase::Proceeding {
                debug!("agent did not answer within the ring timeout");
                self.cancel_b().await;
                self.fail(Failure::NoAnswer).await;
            }
        }
    }

    /// RFC 3261 §13.3.1.4: a UAS retransmits its 2xx with T1 doubling up to T2 until the
    /// ACK arrives, and gives up (and ends the call) after 64*T1.
    async fn retransmit_2xx(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let t2 = self.ctx.timers.t2();
        for pending in &mut self.pending_2xx {
            if pending.give_up <= now {
                expired.push(pending.leg);
                continue;
            }
            if pending.next <= now {
                pending.interval = (pending.interval * 2).min(t2);
                pending.next = now + pending.interval;
                let _ = self.ctx.send(pending.target, pending.bytes.clone()).await;
            }
        }
        self.pending_2xx.retain(|pending| pending.give_up > now);
        if !expired.is_empty() {
            self.pending_2xx.shrink_to_fit();
        }
        for leg in expired {
            warn!(leg = leg.as_str(), "no ACK for 2xx; ending the call");
            self.hang_up(None).await;
        }
    }

    /// Sends a 2xx to an INVITE on `leg` and keeps retransmitting it until the ACK.
    pub(super) async fn send_2xx(&mut self, leg: LegId, branch: &Branch, response: Response) {
        let seq = response.cseq().map(|cseq| cseq.seq).unwrap_or(0);
        let target = self
            .txns
            .iter()
            .find(|txn| txn.is_server() && txn.leg == leg && txn.branch == *branch)
            .map(|txn| txn.target);
        // The retransmissions repeat exactly the bytes the transaction sent.
        let Some(bytes) = self.respond_encoded(leg, branch, response).await else {
            return;
        };
        let Some(target) = target else {
            return;
        };
        // Over TCP nothing is retransmitted, but the ACK is still awaited until give_up.
        let now = Instant::now();
        let t1 = self.ctx.timers.t1();
        self.pending_2xx.retain(|pending| pending.leg != leg);
        // Grows by one entry only, because the vector lives as long as the call.
        self.pending_2xx.reserve_exact(1);
        self.pending_2xx.push(Pending2xx {
            leg,
            seq,
            bytes,
            target,
            next: if target.protocol.is_reliable() {
                now + self.ctx.timers.transaction_timeout()
            } else {
                now + t1
            },
            interval: t1,
            give_up: now + self.ctx.timers.transaction_timeout(),
        });
    }
}
