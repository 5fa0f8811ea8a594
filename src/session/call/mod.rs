//! One call: the task that owns the caller's leg (A), the agent's leg (B), their dialogs
//! and transactions, and the media anchor, and relays between them.
//!
//! ```text
//!  caller (A)                engine                    agent (B)
//!  INVITE ─────────────────▶ 100 Trying
//!                            INVITE ─────────────────▶
//!  ◀─────────── 180 (relay)  ◀──────────────────── 180
//!  ◀─────────── 200 (relay)  ◀──────────────────── 200
//!                            ACK ────────────────────▶
//!  ACK ────────────────────▶
//!  BYE ────────────────────▶ 200, BYE ───────────────▶
//! ```
//!
//! The task waits on the network only to hand a message to its socket or TCP queue. It
//! sleeps until the earliest transaction timer, ring timeout or 2xx retransmission, and
//! handles events in arrival order.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

mod requests;
mod responses;
mod send;

mod attended;
mod ended;
mod recall;
mod transfer;
mod triggers;

pub(super) use attended::SurrenderedLeg;
pub use transfer::StartError;
pub(super) use transfer::{AgentKeys, Transfer};

use super::anchor::Anchor;
use super::outbound::{self, ALLOW};
use super::routing::Router;
use super::transactions::{Purpose, Txn};
use super::{CallEvent, CallSender, Context, Failure, LegId, ReceivedRequest, Route, SessionId};
use crate::dialog::Dialog;
use crate::mailbox::{Mailbox, mailbox};
use crate::media::EventObserver;
use crate::sip::uri::{Host, Uri};
use crate::sip::{Branch, CallId, Headers, Method, Request, Tag};
use crate::transport::{Protocol, Target};

/// Events queued per call before the dispatcher starts dropping (retransmissions recover).
pub const CALL_QUEUE: usize = 64;
/// Telephone-event packets from the agent queued before the relay drops copies.
const AGENT_EVENT_QUEUE: usize = 64;

/// The stage of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The INVITE went to the agent; no final response yet.
    Proceeding,
    /// The agent answered; the 2xx was relayed and the caller's ACK is awaited or received.
    Confirmed,
    /// The caller got a final error; waiting for its ACK to end the transaction.
    Failed,
    /// BYE sent on the legs still up; waiting for their responses.
    Ending,
    /// Nothing left but transactions absorbing retransmissions.
    Done,
}

/// One leg's addressing and dialog.
#[derive(Clone)]
struct Leg {
    dialog: Dialog,
    /// The transport target of requests to this leg.
    target: Target,
    /// Whether the leg still needs a BYE to end.
    up: bool,
}

/// Leg C before a transfer: down, with a Call-ID no message carries, so that reading
/// it needs no allocation per call.
static UNUSED_C: LazyLock<Leg> = LazyLock::new(|| Leg {
    dialog: Dialog::new_uac(
        CallId::new("unused.invalid"),
        String::new(),
        String::new(),
        Uri::sip(None, Host::Domain("unused.invalid".to_owned())),
    ),
    target: Target {
        addr: SocketAddr::from(([127, 0, 0, 1], 9)),
        protocol: Protocol::Udp,
    },
    up: false,
});

/// Leg C for writing, allocated from [`UNUSED_C`] on first use.
fn c_leg(c: &mut Option<Box<Leg>>) -> &mut Leg {
    c.get_or_insert_with(|| Box::new(UNUSED_C.clone()))
}

/// A 2xx the engine retransmits until the ACK arrives (RFC 3261 §13.3.1.4).
struct Pending2xx {
    leg: LegId,
    seq: u32,
    bytes: Bytes,
    target: Target,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// A re-INVITE relayed from one leg to the other, whose ACK crosses when it arrives.
struct PendingAck {
    /// The leg the original re-INVITE came from, whose ACK triggers ours.
    from: LegId,
    from_seq: u32,
    /// The leg the ACK goes to.
    to: LegId,
    /// The ACK to send on that leg, missing only its body.
    ack: Request,
    target: Target,
}

pub(super) struct Call {
    ctx: Arc<Context>,
    session: SessionId,
    phase: Phase,
    a: Leg,
    b: Leg,
    /// The leg toward a remote hotline, allocated when the first transfer starts: most
    /// calls are never transferred.
    c: Option<Box<Leg>>,
    /// The leg the caller is bridged with: B, or C after a transfer.
    a_peer: LegId,
    /// The routing this call started with; a reload does not change it.
    router: Arc<dyn Router>,
    /// The destination a call whose Request-URI named a remote hotline was routed to.
    direct_destination: Option<String>,
    /// The channel the relay copies the agent's telephone events to.
    agent_events: EventObserver,
    transfer: Option<Box<Transfer>>,
    dtmf: AgentKeys,
    /// The caller's INVITE, kept to answer it and its retransmissions.
    a_invite: Request,
    a_invite_branch: Branch,
    #[expect(
        clippy::vec_box,
        reason = "a transaction is large, and the vector keeps its room after they end"
    )]
    txns: Vec<Box<Txn>>,
    anchor: Option<Anchor>,
    ring_deadline: Option<Instant>,
    /// The caller cancelled before the agent sent any response; CANCEL follows the first
    /// provisional (RFC 3261 §9.1).
    cancel_pending: bool,
    b_provisional_seen: bool,
    /// The agent's 2xx was handled; later copies are retransmissions.
    b_answered: bool,
    pending_2xx: Vec<Pending2xx>,
    pending_acks: Vec<PendingAck>,
    /// The last ACK sent per leg, with its CSeq, resent when the 2xx is retransmitted.
    last_acks: Vec<(LegId, u32, Bytes, Target)>,
    answered_at: Option<Instant>,
    started_at: std::time::SystemTime,
    /// After the call ended, transactions linger to absorb retransmissions until then.
    linger_until: Option<Instant>,
    shutting_down: bool,
}

/// Starts a call task for a new INVITE and registers it in the session table. Returns
/// `None` when the Call-ID was taken by a concurrent INVITE.
pub(super) fn spawn(ctx: Arc<Context>, invite: ReceivedRequest) -> Option<CallSender> {
    let a_call_id = invite.request.call_id().ok()?;
    let session = ctx.table.next_id();
    let (sender, receiver) = mailbox(CALL_QUEUE);
    let route = Route {
        session,
        leg: LegId::A,
        sender: sender.clone(),
    };
    if !ctx.table.insert(a_call_id.clone(), route) {
        return None;
    }
    ctx.metrics.calls_started.inc();
    ctx.call_started();

    let span = info_span!("call", call.id = %a_call_id, session = %session, peer = %invite.source);
    // The INVITE is boxed before the task captures it: a captured value keeps its room in
    // the task for the call's whole life.
    let first = Box::new(invite);
    tokio::spawn(run(ctx, session, first, receiver).instrument(span));
    Some(sender)
}

async fn run(
    ctx: Arc<Context>,
    session: SessionId,
    first: Box<ReceivedRequest>,
    mut receiver: Mailbox<CallEvent>,
) {
    // The box is moved into the block so that it is freed there, not when the call ends.
    let received = {
        let first = first;
        *first
    };
    let a_call_id = received.request.call_id().ok();
    let (events, mut agent_events) = mailbox(AGENT_EVENT_QUEUE);
    // Every handler runs in a future boxed for its own duration: an idle call then holds
    // only its state, not room for the deepest handler's state machine.
    let started = Box::pin(Call::start(Arc::clone(&ctx), session, received, events)).await;
    let Some(mut call) = started else {
        if let Some(call_id) = a_call_id {
            ctx.table.remove(&call_id, session);
        }
        ctx.metrics.calls_ended.inc();
        ctx.call_ended();
        return;
    };

    while !call.finished() {
        if call.settled() {
            // A task of its own, sized for what an ended call keeps: this task's room,
            // sized for a live call, is freed now.
            let ended = call.into_ended().run(receiver);
            tokio::spawn(ended.instrument(tracing::Span::current()));
            return;
        }
        let deadline = call.next_deadline();
        tokio::select! {
            event = receiver.recv() => match event {
                Some(event) => Box::pin(call.on_event(event)).await,
                None => break,
            },
            Some(packet) = agent_events.recv() => Box::pin(call.on_agent_event(packet)).await,
            () = sleep_until(deadline) => Box::pin(call.on_timers(Instant::now())).await,
            () = wait_inactive(call.anchor.as_ref()) => Box::pin(call.on_media_timeout()).await,
        }
    }
    call.cleanup();
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn wait_inactive(anchor: Option<&Anchor>) {
    match anchor {
        Some(anchor) => anchor.inactive().await,
        None => std::future::pending().await,
    }
}

impl Call {
    /// Handles the caller's INVITE: answers 100, sets up the media anchor and sends the
    /// INVITE to the agent. Returns `None` when the call ended at once (the caller got a
    /// final response already).
    async fn start(
        ctx: Arc<Context>,
        session: SessionId,
        received: ReceivedRequest,
        agent_events: EventObserver,
    ) -> Option<Box<Call>> {
        let ReceivedRequest {
            request: invite,
            source,
            protocol,
            response_target,
            parties,
        } = received;
        let a_invite_branch = invite.branch().ok()?;
        let parties = match parties {
            Some(parties) => *parties,
            None => super::Parties {
                from: invite.from_header().ok()?,
                to: invite.to_header().ok()?,
            },
        };
        let caller_name = parties.from.display_name.clone();
        let caller_user = parties.from.uri.user.clone().unwrap_or_default();
        let a_dialog =
            Dialog::from_parts(&invite, parties.from, parties.to, Tag::generate()).ok()?;
        let a_target = match outbound::resolve(&a_dialog.remote_target).await {
            Some(target) if protocol == Protocol::Udp => target,
            _ => Target {
                addr: source,
                protocol,
            },
        };

        let router = ctx.router();
        // A call whose Request-URI names a remote hotline (an agent's consultation call
        // before an attended transfer) goes to that hotline's trunk, not to an agent.
        // NOTE: such a call tries only the first gateway; transfers fail over, it does not.
        let direct = direct_route(&router, &invite);
        let agent = match &direct {
            Some(routed) => routed.gateways[0].request_uri.clone(),
            None => ctx.agent.clone(),
        };
        let b_target = match &direct {
            Some(routed) => Some(routed.gateways[0].target),
            None => outbound::resolve(&agent).await,
        };
        let b_call_id = CallId::generate(&outbound::host_port(ctx.local_addr()));
        let local_party = match &direct {
            Some(routed) => routed.from.clone(),
            None => caller_party(caller_name.as_deref(), &caller_user, ctx.local_addr()),
        };
        let b_dialog = Dialog::new_uac(
            b_call_id.clone(),
            local_party,
            format!("<{agent}>"),
            agent.clone(),
        );

        let now = Instant::now();
        let mut call = Box::new(Call {
            ctx: Arc::clone(&ctx),
            session,
            phase: Phase::Proceeding,
            a: Leg {
                dialog: a_dialog,
                target: a_target,
                up: false,
            },
            b: Leg {
                dialog: b_dialog,
                target: b_target.unwrap_or(Target {
                    addr: ctx.local_addr(),
                    protocol: Protocol::Udp,
                }),
                up: false,
            },
            c: None,
            a_peer: LegId::B,
            dtmf: AgentKeys::new(router.inter_digit_timeout(), router.key_prefixes()),
            direct_destination: direct.as_ref().map(|routed| routed.destination.clone()),
            router,
            agent_events,
            transfer: None,
            a_invite: invite,
            a_invite_branch: a_invite_branch.clone(),
            txns: Vec::new(),
            anchor: None,
            ring_deadline: None,
            cancel_pending: false,
            b_provisional_seen: false,
            b_answered: false,
            pending_2xx: Vec::new(),
            pending_acks: Vec::new(),
            last_acks: Vec::new(),
            answered_at: None,
            started_at: std::time::SystemTime::now(),
            linger_until: None,
            shutting_down: false,
        });

        // The caller's INVITE transaction answers 100 at once, so the switch stops
        // retransmitting before the agent is even reached.
        call.open_server_txn(
            LegId::A,
            &a_invite_branch,
            Method::Invite,
            response_target,
            now,
        );
        let trying = call.response_to_a(100, "");
        call.respond(LegId::A, &a_invite_branch, trying).await;

        debug!(agent = %call.b.dialog.remote_target, "call started");
        if b_target.is_none() {
            warn!(agent = %call.b.dialog.remote_target, "agent target does not resolve");
            call.fail(Failure::Transport).await;
            return Some(call);
        }

        let offer = if call.a_invite.has_sdp() {
            match call.anchor_offer() {
                Ok(body) => Some(body),
                Err(failure) => {
                    call.fail(failure).await;
                    return Some(call);
                }
            }
        } else {
            None
        };

        let extra = direct.map(|routed| routed.headers).unwrap_or_default();
        call.send_b_invite(offer, b_call_id, extra).await;
        call.publish_summary(caller_user);
        Some(call)
    }

    /// Creates the media anchor from the caller's offer and returns the offer for the agent.
    fn anchor_offer(&mut self) -> Result<Bytes, Failure> {
        let mut anchor = self.new_anchor().map_err(|error| {
            warn!(%error, "failed to anchor media");
            Failure::Internal
        })?;
        let body = anchor
            .relay_sdp(LegId::A, LegId::B, self.a_invite.body())
            .map_err(|error| {
                warn!(%error, "failed to rewrite the caller's offer");
                Failure::Internal
            })?;
        self.anchor = Some(anchor);
        Ok(body)
    }

    async fn send_b_invite(
        &mut self,
        offer: Option<Bytes>,
        b_call_id: CallId,
        extra_headers: Vec<(Cow<'static, str>, String)>,
    ) {
        let route = Route {
            session: self.session,
            leg: LegId::B,
            sender: match self.ctx.table.get(&self.a.dialog.call_id) {
                Some(route) => route.sender,
                None => return,
            },
        };
        self.ctx.table.insert(b_call_id, route);

        let mut invite = self.b.dialog.request(Method::Invite, None);
        invite.set_header(
            "Max-Forwards",
            outbound::decremented_max_forwards(&self.a_invite).to_string(),
        );
        outbound::copy_end_to_end_headers(&self.a_invite, &mut invite);
        for (name, value) in extra_headers {
            invite.set_header(name, value);
        }
        invite.push_header("Allow", ALLOW);
        invite.push_header("User-Agent", self.ctx.config.sip.user_agent.as_str());
        if let Some(offer) = offer {
            invite.set_body(offer, Some("application/sdp"));
        }

        let now = Instant::now();
        let target = self.b.target;
        self.send_request(LegId::B, &mut invite, target, Purpose::BInvite, now)
            .await;
        self.ring_deadline =
            Some(now + Duration::from_secs(self.ctx.config.agent.ring_timeout_secs));
    }

    fn finished(&self) -> bool {
        match self.phase {
            Phase::Done => {
                self.txns.is_empty()
                    || self.shutting_down
                    || self
                        .linger_until
                        .is_some_and(|until| Instant::now() >= until)
            }
            _ => false,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let txn = self.txns.iter().filter_map(|txn| txn.next_deadline()).min();
        let retransmit = self.pending_2xx.iter().map(|p| p.next.min(p.give_up)).min();
        let transfer = self
            .transfer
            .as_ref()
            .and_then(|transfer| transfer.next_deadline());
        [
            txn,
            retransmit,
            self.ring_deadline,
            self.linger_until,
            transfer,
            self.dtmf.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn on_event(&mut self, event: CallEvent) {
        match event {
            CallEvent::Request(received) => {
                let ReceivedRequest {
                    request,
                    response_target,
                    ..
                } = *received;
                self.on_request(request, response_target).await;
            }
            CallEvent::Response(response) => self.on_response(*response).await,
            CallEvent::Terminate => {
                self.shutting_down = true;
                self.abort_transfer("engine shutting down").await;
                self.hang_up(None).await;
            }
            CallEvent::Surrender { replaces, reply } => self.on_surrender(*replaces, reply).await,
            CallEvent::Transfer { order, reply } => {
                let outcome = self.on_transfer_order(*order).await;
                let _ = reply.send(outcome);
            }
        }
    }

    /// The leg a message belongs to, by its Call-ID.
    fn leg_of(&self, call_id: &CallId) -> Option<LegId> {
        if *call_id == self.a.dialog.call_id {
            Some(LegId::A)
        } else if *call_id == self.b.dialog.call_id {
            Some(LegId::B)
        } else if self
            .c
            .as_ref()
            .is_some_and(|c| *call_id == c.dialog.call_id)
        {
            Some(LegId::C)
        } else {
            None
        }
    }

    fn leg(&self, id: LegId) -> &Leg {
        match id {
            LegId::A => &self.a,
            LegId::B => &self.b,
            LegId::C => self.c.as_deref().unwrap_or_else(|| &UNUSED_C),
        }
    }

    fn leg_mut(&mut self, id: LegId) -> &mut Leg {
        match id {
            LegId::A => &mut self.a,
            LegId::B => &mut self.b,
            LegId::C => c_leg(&mut self.c),
        }
    }

    /// Replaces leg `id` with `leg` and moves the table route from the old leg's Call-ID
    /// to the new one, so that the new leg's messages reach this call.
    fn install_leg(&mut self, id: LegId, leg: Leg) {
        let old = self.leg(id).dialog.call_id.clone();
        self.ctx.table.remove(&old, self.session);
        let new = leg.dialog.call_id.clone();
        *self.leg_mut(id) = leg;
        if let Some(route) = self.ctx.table.get(&self.a.dialog.call_id) {
            let route = Route {
                session: self.session,
                leg: id,
                sender: route.sender,
            };
            self.ctx.table.reassign(new, route);
        }
    }

    /// A new Call-ID for a leg the engine starts.
    fn new_call_id(&self) -> CallId {
        CallId::generate(&outbound::host_port(self.ctx.local_addr()))
    }

    /// The leg whose requests and media a leg's are relayed to: the caller and the leg it
    /// is bridged with relay to each other; any other leg has no peer.
    fn peer(&self, leg: LegId) -> Option<LegId> {
        match leg {
            LegId::A => Some(self.a_peer),
            other if other == self.a_peer => Some(LegId::A),
            _ => None,
        }
    }
}

/// The route of a call whose Request-URI the dialplan maps to a destination, when that
/// destination has a usable gateway.
fn direct_route(router: &Arc<dyn Router>, invite: &Request) -> Option<super::routing::Routed> {
    let destination = router.resolve_refer_to(&invite.uri.to_string())?;
    let caller = invite
        .from_header()
        .ok()
        .and_then(|from| from.uri.user)
        .unwrap_or_default();
    let request = super::routing::RouteRequest {
        destination,
        matter: None,
        ticket: None,
        agent: None,
        caller,
        caller_display: None,
        history: Vec::new(),
        force: true,
        at: std::time::SystemTime::now(),
    };
    match router.route(&request) {
        Ok(routed) if !routed.gateways.is_empty() => Some(routed),
        Ok(_) => None,
        Err(error) => {
            debug!(%error, "request-uri names a destination that cannot be routed");
            None
        }
    }
}

/// The From party for the agent's leg: the caller's display name and user at the engine's
/// address, so the agent sees who calls.
fn caller_party(display_name: Option<&str>, user: &str, local: SocketAddr) -> String {
    let host = outbound::host_port(local);
    let uri = if user.is_empty() {
        format!("sip:{host}")
    } else {
        format!("sip:{user}@{host}")
    };
    match display_name {
        Some(name) => format!("\"{}\" <{uri}>", name.replace('"', "")),
        None => format!("<{uri}>"),
    }
}

impl Call {
    fn cleanup(&mut self) {
        self.anchor = None;
        self.ctx.table.remove(&self.a.dialog.call_id, self.session);
        self.ctx.table.remove(&self.b.dialog.call_id, self.session);
        if let Some(c) = &self.c {
            self.ctx.table.remove(&c.dialog.call_id, self.session);
        }
        self.ctx.calls.remove(&self.session);
        debug!("call task finished");
    }

    /// Ends the call now: BYE on every confirmed leg, CANCEL or a final response on a leg
    /// still being set up. `reason` goes into a Reason header (RFC 3326).
    pub(super) async fn hang_up(&mut self, reason: Option<&str>) {
        match self.phase {
            Phase::Proceeding => {
                self.cancel_b().await;
                self.fail(Failure::ShuttingDown).await;
            }
            Phase::Confirmed => {
                self.abort_transfer("call ended").await;
                for leg in [LegId::A, LegId::B, LegId::C] {
                    if self.leg(leg).up {
                        self.send_bye(leg, reason).await;
                    }
                }
                self.phase = Phase::Ending;
                self.stop_media();
                self.maybe_done();
            }
            Phase::Failed | Phase::Ending | Phase::Done => {}
        }
    }

    /// Copies this call's state where the control API lists calls.
    pub(super) fn publish_call(&self) {
        self.publish_summary(self.caller_user());
    }

    /// Publishes this call's state with `caller`, the user part of the caller's From.
    fn publish_summary(&self, caller: String) {
        let phase = match (self.phase, &self.transfer) {
            (Phase::Proceeding, _) => super::CallPhase::Ringing,
            (Phase::Confirmed, Some(transfer)) if transfer.is_active() => {
                super::CallPhase::Transferring
            }
            (Phase::Confirmed, _) if self.a_peer == LegId::C => super::CallPhase::Transferred,
            (Phase::Confirmed, _) => super::CallPhase::Talking,
            _ => super::CallPhase::Ending,
        };
        let legs = [LegId::A, LegId::B, LegId::C]
            .into_iter()
            .filter(|&leg| leg != LegId::C || self.leg(leg).up || self.transfer.is_some())
            .map(|leg| super::LegSummary {
                leg: leg.as_str(),
                call_id: self.leg(leg).dialog.call_id.to_string(),
                peer: self.leg(leg).target.addr,
                up: self.leg(leg).up,
            })
            .collect();
        let summary = super::CallSummary {
            session: self.session,
            call_id: self.a.dialog.call_id.to_string(),
            caller,
            phase,
            started_at: self.started_at,
            legs,
            transfer: self.transfer.as_ref().map(|transfer| transfer.status.id),
        };
        self.ctx.calls.insert(self.session, summary);
    }

    /// Returns the user part of the caller's From URI, from the published summary when
    /// there is one, so that the caller's From is not parsed again.
    fn caller_user(&self) -> String {
        if let Some(summary) = self.ctx.calls.get(&self.session) {
            return summary.caller.clone();
        }
        self.a_invite
            .from_header()
            .ok()
            .and_then(|from| from.uri.user)
            .unwrap_or_default()
    }

    /// A new media anchor that reports the agent's keys to this call.
    fn new_anchor(&self) -> Result<Anchor, super::anchor::AnchorError> {
        let mut anchor = Anchor::new(&self.ctx, self.session)?;
        let prefixes = self.router.key_prefixes();
        if prefixes != 0 {
            anchor.watch_agent_events(self.agent_events.clone(), prefixes);
        }
        Ok(anchor)
    }

    fn stop_media(&mut self) {
        if self.anchor.take().is_some() {
            debug!("media released");
        }
    }

    async fn on_media_timeout(&mut self) {
        info!("ending call after media inactivity");
        self.hang_up(Some("Q.850;cause=41;text=\"RTP inactivity timeout\""))
            .await;
        self.stop_media();
    }

    /// Moves to Done when no leg needs anything more, and starts the linger period.
    fn maybe_done(&mut self) {
        let busy = self
            .txns
            .iter()
            .any(|txn| txn.purpose == Purpose::Bye && !txn.final_seen && !txn.is_terminated());
        if self.phase == Phase::Ending && !busy {
            self.finish();
        }
    }

    fn finish(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        self.ctx.calls.remove(&self.session);
        self.phase = Phase::Done;
        self.stop_media();
        self.ring_deadline = None;
        self.pending_2xx.clear();
        self.ctx.metrics.calls_ended.inc();
        self.ctx.call_ended();
        // Server transactions keep answering retransmissions for 64*T1 (RFC 3261 §17.2).
        // Once every transaction has its final response, the call hands them to an
        // `Ended` and frees the rest of its state.
        self.linger_until = Some(Instant::now() + self.ctx.timers.transaction_timeout());
        debug!("call ended");
    }
}
