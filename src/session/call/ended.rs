//! An ended call while it waits out 64·T1: the transactions that still respond to
//! retransmissions (RFC 3261 §17), the last ACK of each leg for a retransmitted 2xx, and
//! the Call-IDs and local tags that match the legs' messages. Everything else (dialogs,
//! media, transfer state, parsed requests) is freed when the call ends, because at
//! thousands of calls per second the ended calls outnumber the live ones.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::Call;
use super::transfer::StartError;
use crate::mailbox::Mailbox;
use crate::session::transactions::{Machine, Purpose, Txn};
use crate::session::{CallEvent, Context, LegId, SessionId};
use crate::sip::{Branch, CallId, Headers, Method, Request, Response, Tag};
use crate::transaction::{Action, InviteClientState, Timer};
use crate::transport::Target;

/// One leg of an ended call: what matches its messages and signs responses on it.
struct EndedLeg {
    id: LegId,
    call_id: CallId,
    local_tag: Tag,
}

/// The state an ended call keeps until its transactions end or 64·T1 has passed.
pub(super) struct Ended {
    ctx: Arc<Context>,
    session: SessionId,
    legs: Vec<EndedLeg>,
    #[expect(
        clippy::vec_box,
        reason = "the transactions move over boxed from the call, without a copy"
    )]
    txns: Vec<Box<Txn>>,
    /// The last ACK sent per leg, with its CSeq, resent when the 2xx is retransmitted.
    last_acks: Vec<(LegId, u32, Bytes, Target)>,
    linger_until: Instant,
}

impl Call {
    /// Returns whether the call has ended and every transaction has its final response,
    /// so that only retransmissions can still arrive for it.
    pub(super) fn settled(&self) -> bool {
        self.phase == super::Phase::Done
            && !self.shutting_down
            && self.txns.iter().all(|txn| txn.final_seen)
    }

    /// Keeps what the ended call needs to respond to retransmissions and frees the rest.
    pub(super) fn into_ended(self: Box<Self>) -> Ended {
        let call = *self;
        let mut legs = vec![
            EndedLeg {
                id: LegId::A,
                call_id: call.a.dialog.call_id,
                local_tag: call.a.dialog.local_tag,
            },
            EndedLeg {
                id: LegId::B,
                call_id: call.b.dialog.call_id,
                local_tag: call.b.dialog.local_tag,
            },
        ];
        if let Some(c) = call.c {
            let c = *c;
            legs.push(EndedLeg {
                id: LegId::C,
                call_id: c.dialog.call_id,
                local_tag: c.dialog.local_tag,
            });
        }
        let mut txns = call.txns;
        txns.retain(|txn| !txn.is_terminated() && still_needed(txn));
        txns.shrink_to_fit();
        // With their final responses in, the transactions need neither the parsed
        // requests they sent nor the requests they relayed.
        for txn in &mut txns {
            txn.request = None;
            txn.relay = None;
        }
        Ended {
            ctx: call.ctx,
            session: call.session,
            legs,
            txns,
            last_acks: call.last_acks,
            linger_until: call.linger_until.unwrap_or_else(Instant::now),
        }
    }
}

/// Returns whether an ended call still needs the transaction. Server transactions respond
/// to retransmitted requests, and an INVITE client that got a 3xx-6xx resends its ACK when
/// the response comes again. Other client transactions only absorb retransmitted
/// responses, which an ended call drops anyway. A retransmitted 2xx to an INVITE gets the
/// last ACK without its transaction.
fn still_needed(txn: &Txn) -> bool {
    match &txn.machine {
        Machine::InviteClient(machine) => machine.state() == InviteClientState::Completed,
        Machine::NonInviteClient(_) => false,
        Machine::InviteServer(_) | Machine::NonInviteServer(_) => true,
    }
}

impl Ended {
    /// Responds to retransmissions until the transactions end, 64·T1 has passed or the
    /// engine shuts down, then removes the call's routes from the session table.
    pub(super) async fn run(mut self, mut receiver: Mailbox<CallEvent>) {
        loop {
            self.txns.retain(|txn| !txn.is_terminated());
            if self.txns.is_empty() || Instant::now() >= self.linger_until {
                break;
            }
            let deadline = self
                .txns
                .iter()
                .filter_map(|txn| txn.next_deadline())
                .fold(self.linger_until, Instant::min);
            // The handlers are boxed for their own duration, so that a waiting call holds
            // only its state and the timer.
            tokio::select! {
                event = receiver.recv() => match event {
                    Some(CallEvent::Terminate) | None => break,
                    Some(event) => Box::pin(self.on_event(event)).await,
                },
                () = tokio::time::sleep_until(deadline) => {
                    Box::pin(self.on_timers(Instant::now())).await;
                }
            }
        }
        for leg in &self.legs {
            self.ctx.table.remove(&leg.call_id, self.session);
        }
        debug!("call task finished");
    }

    async fn on_event(&mut self, event: CallEvent) {
        match event {
            CallEvent::Request(received) => {
                let received = *received;
                self.on_request(received.request, received.response_target)
                    .await;
            }
            CallEvent::Response(response) => self.on_response(*response).await,
            CallEvent::Surrender { reply, .. } => {
                let _ = reply.send(Err(481));
            }
            CallEvent::Transfer { reply, .. } => {
                let _ = reply.send(Err(StartError::NotAnswered));
            }
            // `run` ends at once on Terminate and never passes it here.
            CallEvent::Terminate => {}
        }
    }

    fn leg_of(&self, call_id: &CallId) -> Option<&EndedLeg> {
        self.legs.iter().find(|leg| leg.call_id == *call_id)
    }

    fn find(&self, leg: LegId, branch: &Branch, method: &Method, server: bool) -> Option<usize> {
        self.txns.iter().position(|txn| {
            txn.is_server() == server
                && txn.leg == leg
                && txn.branch == *branch
                && txn.method == *method
        })
    }

    async fn on_request(&mut self, request: Request, target: Target) {
        let Some((leg, local_tag)) = request
            .call_id()
            .ok()
            .and_then(|id| self.leg_of(&id))
            .map(|leg| (leg.id, leg.local_tag.clone()))
        else {
            return;
        };
        let Ok(branch) = request.branch() else {
            return;
        };

        match request.method {
            Method::Ack => {
                // The ACK of a 3xx-6xx ends the INVITE's server transaction; the ACK of a
                // 2xx needs nothing more once the call has ended.
                if let Some(index) = self.find(leg, &branch, &Method::Invite, true) {
                    let actions = self.txns[index].on_ack(Instant::now());
                    self.run_actions(index, actions).await;
                }
            }
            Method::Cancel => {
                // RFC 3261 §9.2: 200 when the INVITE's transaction is still known, even
                // though its final response has been sent, and 481 otherwise.
                let (status, tag) = match self.find(leg, &branch, &Method::Invite, true) {
                    Some(_) => (200, Some(&local_tag)),
                    None => (481, None),
                };
                self.reply(&request, status, tag, target).await;
            }
            ref method => match self.find(leg, &branch, method, true) {
                Some(index) => {
                    let actions = self.txns[index].on_retransmission();
                    self.run_actions(index, actions).await;
                }
                None => {
                    // A new request in the ended dialog gets 481 (RFC 3261 §12.2.2), and one
                    // without a To tag gets 482 as in a live call, as merged (§8.2.2.2).
                    let status = match request.to_tag() {
                        Ok(Some(_)) => 481,
                        Ok(None) => 482,
                        Err(_) => 400,
                    };
                    self.reply(&request, status, None, target).await;
                }
            },
        }
    }

    async fn on_response(&mut self, response: Response) {
        let Some(leg) = response
            .call_id()
            .ok()
            .and_then(|id| self.leg_of(&id))
            .map(|leg| leg.id)
        else {
            return;
        };
        let (Ok(branch), Ok(cseq)) = (response.branch(), response.cseq()) else {
            return;
        };
        let Ok(method) = cseq.method.parse::<Method>() else {
            return;
        };

        if let Some(index) = self.find(leg, &branch, &method, false) {
            match self.txns[index].on_response(response.status, Instant::now()) {
                Ok(actions) => self.run_actions(index, actions).await,
                Err(error) => debug!(%error, "response rejected by its transaction"),
            }
        }
        // A retransmitted 2xx means the ACK was lost, whether or not the INVITE's
        // transaction is still there (RFC 3261 §13.2.2.4).
        if method == Method::Invite && response.is_success() {
            self.resend_ack(leg, cseq.seq).await;
        }
    }

    async fn on_timers(&mut self, now: Instant) {
        for index in 0..self.txns.len() {
            if self.txns[index].next_deadline().is_some_and(|at| at <= now) {
                let actions = self.txns[index].on_timeout(now);
                self.run_actions(index, actions).await;
            }
        }
    }

    /// Carries out a machine's actions. With every final response known, the only ones
    /// left are transmissions, timeouts and the end of the transaction.
    async fn run_actions(&mut self, index: usize, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Transmit(bytes) => {
                    queue.extend(self.txns[index].transmit(&self.ctx, bytes).await);
                }
                Action::TimedOut(Timer::H) if self.txns[index].purpose == Purpose::AInvite => {
                    warn!("no ACK from the caller for the final response");
                }
                Action::TransportError => {
                    debug!(
                        leg = self.txns[index].leg.as_str(),
                        "could not send a retransmission after the call ended"
                    );
                }
                _ => {}
            }
        }
    }

    async fn resend_ack(&self, leg: LegId, seq: u32) {
        let found = self
            .last_acks
            .iter()
            .find(|(acked_leg, acked_seq, _, _)| *acked_leg == leg && *acked_seq == seq);
        if let Some((_, _, bytes, target)) = found {
            debug!(
                leg = leg.as_str(),
                seq, "resending ack for retransmitted 2xx"
            );
            let _ = self.ctx.send(*target, bytes.clone()).await;
        }
    }

    async fn reply(&self, request: &Request, status: u16, tag: Option<&Tag>, target: Target) {
        let response = Response::to_request(request, status, "", tag);
        let _ = self.ctx.send(target, response.encode()).await;
    }
}
