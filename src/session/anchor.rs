//! The media anchor of one call: the relay streams, and the SDP rewriting that points each
//! leg at them. Relay side A faces leg A (the caller), side B leg B (the agent) and side C
//! leg C (a remote hotline during a transfer).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::{Context, LegId, SessionId};
use crate::media::{
    self, EventObserver, G711, MediaError, MediaSession, PayloadMap, PortPool, RemoteEndpoint,
    Ringback, Side,
};
use crate::sdp::{self, MediaDescription, OriginState, SdpError, SessionDescription};

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("invalid sdp: {0}")]
    Sdp(#[from] SdpError),
    #[error("relay: {0}")]
    Media(#[from] MediaError),
    #[error("no sdp received from leg {0} yet")]
    NoOffer(&'static str),
}

pub(super) struct Anchor {
    pool: Arc<PortPool>,
    timeout: Option<std::time::Duration>,
    relay: Option<MediaSession>,
    /// The engine's o= line toward each leg, indexed by [`index`].
    origins: [OriginState; 3],
    /// The last SDP body received from each leg, as it arrived. It is parsed again only
    /// where it is read, because a parsed body takes several times its size on the heap.
    received: [Option<Box<[u8]>>; 3],
    /// The RTP clock rate of the agent's telephone-event payload, read for every event
    /// packet the agent sends.
    agent_event_clock: u32,
    /// The leg whose media the caller's is bridged to.
    peer: LegId,
    /// Telephone-event observer and gate prefix for the agent's side, kept for a relay
    /// created later.
    agent_events: Option<(EventObserver, u16)>,
}

fn index(leg: LegId) -> usize {
    match leg {
        LegId::A => 0,
        LegId::B => 1,
        LegId::C => 2,
    }
}

fn side(leg: LegId) -> Side {
    match leg {
        LegId::A => Side::A,
        LegId::B => Side::B,
        LegId::C => Side::C,
    }
}

impl Anchor {
    pub fn new(ctx: &Context, session: SessionId) -> Result<Anchor, AnchorError> {
        let address = ctx.media.address();
        let origin = |offset: u64| {
            let id = (session.0.wrapping_mul(4) | offset) & (u64::MAX >> 1);
            OriginState::with_session_id("-", id, address)
        };
        Ok(Anchor {
            pool: Arc::clone(&ctx.media),
            timeout: media::inactivity_timeout(&ctx.config.media),
            relay: None,
            origins: [origin(0), origin(1), origin(2)],
            received: [None, None, None],
            agent_event_clock: 8000,
            peer: LegId::B,
            agent_events: None,
        })
    }

    /// Takes an SDP that arrived on leg `from`, points that side of the relay at the
    /// endpoint it describes, and returns the SDP for leg `to`, rewritten to the relay's
    /// ports on `to`'s side.
    pub fn relay_sdp(&mut self, from: LegId, to: LegId, body: &[u8]) -> Result<Bytes, AnchorError> {
        let description = SessionDescription::parse(body)?;
        self.apply_remote(from, &description)?;
        let rewritten = self.rewrite_for(to, &description)?;
        self.keep_received(from, body, &description);
        self.update_payload_map(Some((from, &description)))?;
        Ok(rewritten)
    }

    /// Records an SDP from leg `from` without producing one for another leg, as for the
    /// answer of a remote hotline whose offer came from the engine.
    pub fn accept_sdp(&mut self, from: LegId, body: &[u8]) -> Result<(), AnchorError> {
        let description = SessionDescription::parse(body)?;
        self.apply_remote(from, &description)?;
        self.keep_received(from, body, &description);
        self.update_payload_map(Some((from, &description)))
    }

    fn keep_received(&mut self, from: LegId, body: &[u8], description: &SessionDescription) {
        self.received[index(from)] = Some(body.into());
        if from == LegId::B {
            self.agent_event_clock = event_clock(description);
        }
    }

    /// Parses the last SDP received from `leg` again.
    fn received(&self, leg: LegId) -> Option<SessionDescription> {
        let body = self.received[index(leg)].as_deref()?;
        // The body parsed when it was kept, and parsing is deterministic.
        SessionDescription::parse(body).ok()
    }

    /// An offer for leg `to` built from the caller's last SDP, pointing at `to`'s side.
    pub fn offer_from_caller(&mut self, to: LegId) -> Result<Bytes, AnchorError> {
        let description = self.received(LegId::A).ok_or(AnchorError::NoOffer("a"))?;
        self.rewrite_for(to, &description)
    }

    /// The last SDP received from `leg`, as text.
    pub fn received_body(&self, leg: LegId) -> Option<Bytes> {
        let description = self.received(leg)?;
        Some(Bytes::from(description.lines().join("\r\n") + "\r\n"))
    }

    /// An offer for the caller built from the current peer's last SDP, for a re-INVITE
    /// after a transfer to a remote with another codec.
    pub fn offer_from_peer_for_caller(&mut self) -> Result<Bytes, AnchorError> {
        let description = self
            .received(self.peer)
            .ok_or(AnchorError::NoOffer("peer"))?;
        self.rewrite_for(LegId::A, &description)
    }

    fn relay(&mut self, streams: usize) -> Result<&mut MediaSession, AnchorError> {
        if self.relay.is_none() {
            let mut relay = MediaSession::new(&self.pool, self.timeout, streams)?;
            if let Some((observer, prefix)) = &self.agent_events {
                relay.set_event_observer(Side::B, Some(observer.clone()));
                relay.arm_event_gate(Side::B, *prefix);
            }
            self.relay = Some(relay);
        }
        let relay = self.relay.as_mut().ok_or(AnchorError::NoOffer("a"))?;
        while relay.stream_count() < streams {
            relay.add_stream()?;
        }
        Ok(relay)
    }

    fn apply_remote(
        &mut self,
        from: LegId,
        description: &SessionDescription,
    ) -> Result<(), AnchorError> {
        let relay = self.relay(description.media.len())?;
        let mut held = false;
        for (stream, media) in description.media.iter().enumerate() {
            held |= description.is_hold(stream);
            if media.port == 0 {
                continue;
            }
            let Some(rtp) = description.rtp_address(stream) else {
                continue;
            };
            let remote = RemoteEndpoint {
                rtp,
                rtcp: description.rtcp_address(stream),
                rtcp_mux: media.rtcp_mux,
            };
            relay.set_remote(side(from), stream, remote)?;
        }
        relay.set_hold(held);
        Ok(())
    }

    fn rewrite_for(
        &mut self,
        to: LegId,
        description: &SessionDescription,
    ) -> Result<Bytes, AnchorError> {
        let streams = description.media.len();
        let relay = self.relay(streams)?;
        let relays: Vec<SocketAddr> = (0..streams)
            .map(|stream| relay.local_addr(side(to), stream))
            .collect::<Result<_, _>>()?;
        let rewritten = description.rewrite(&relays, &mut self.origins[index(to)])?;
        Ok(Bytes::from(rewritten))
    }

    /// Maps payload types between the caller and its current peer once both have
    /// described their media, and sends each stream's map to the relay. `fresh` is an SDP
    /// just parsed from its leg, used as it is rather than parsed again from the kept body.
    fn update_payload_map(
        &self,
        fresh: Option<(LegId, &SessionDescription)>,
    ) -> Result<(), AnchorError> {
        let peer = self.peer;
        let Some(relay) = &self.relay else {
            return Ok(());
        };
        let description = |leg: LegId| match fresh {
            Some((from, parsed)) if from == leg => Some(Cow::Borrowed(parsed)),
            _ => self.received(leg).map(Cow::Owned),
        };
        let (Some(a), Some(other)) = (description(LegId::A), description(peer)) else {
            return Ok(());
        };
        // The agent's events are still watched while the caller talks to C.
        let agent = (peer != LegId::B).then(|| description(LegId::B)).flatten();
        for (stream, (media_a, media_other)) in a.media.iter().zip(&other.media).enumerate() {
            let pairs = sdp::map_payload_types(media_a, media_other);
            let mut map = PayloadMap::from_pairs(pairs.pairs());
            if let Some(&pt) = media_a.payload_types_for("telephone-event").first() {
                map = map.with_telephone_event(Side::A, pt);
            }
            if let Some(&pt) = media_other.payload_types_for("telephone-event").first() {
                map = map.with_telephone_event(Side::B, pt);
            }
            if let Some(media_b) = agent.as_ref().and_then(|agent| agent.media.get(stream))
                && let Some(&pt) = media_b.payload_types_for("telephone-event").first()
            {
                map = map.with_telephone_event(Side::B, pt);
            }
            relay.set_payload_map(stream, map)?;
        }
        Ok(())
    }

    /// Watches the agent's telephone events and holds back those that start a feature
    /// code (`prefix`, a mask of event codes).
    pub fn watch_agent_events(&mut self, observer: EventObserver, prefix: u16) {
        if let Some(relay) = &mut self.relay {
            relay.set_event_observer(Side::B, Some(observer.clone()));
            relay.arm_event_gate(Side::B, prefix);
        }
        self.agent_events = Some((observer, prefix));
    }

    /// Lets the agent's telephone events reach the caller again.
    pub fn release_agent_events(&self) {
        if let Some(relay) = &self.relay {
            relay.release_event_gate(Side::B);
        }
    }

    /// Plays `keys` to the caller as RFC 4733 presses, when the caller negotiated
    /// telephone events. Returns whether it could.
    pub fn replay_keys_to_caller(&self, keys: &str) -> bool {
        let Some(relay) = &self.relay else {
            return false;
        };
        let payload_type = self
            .received(LegId::A)
            .and_then(|sdp| sdp.media.into_iter().next())
            .and_then(|media| media.payload_types_for("telephone-event").first().copied());
        let Some(payload_type) = payload_type else {
            return false;
        };
        let events: Vec<u8> = keys
            .chars()
            .filter_map(crate::dtmf::event_for_key)
            .collect();
        relay.send_keys_to_a(events, payload_type);
        true
    }

    /// The RTP clock rate of the agent's telephone-event payload, 8000 when unknown.
    pub fn agent_event_clock(&self) -> u32 {
        self.agent_event_clock
    }

    /// Allocates the relay side toward a transfer target and starts relaying it.
    pub fn open_side_c(&mut self) -> Result<(), AnchorError> {
        self.reserve_side_c()?;
        self.start_side_c();
        Ok(())
    }

    /// Allocates the relay side toward a transfer target, for its addresses in the offer,
    /// without waking the relay: [`Anchor::start_side_c`] hands it over once the INVITE
    /// is out.
    pub fn reserve_side_c(&mut self) -> Result<(), AnchorError> {
        // An answered call's relay already has a stream per media line of the caller's
        // SDP, so the SDP is parsed only when there is no relay yet.
        if self.relay.is_none() {
            let streams = self.received(LegId::A).map_or(1, |sdp| sdp.media.len());
            self.relay(streams)?;
        }
        if let Some(relay) = &mut self.relay {
            relay.reserve_side_c()?;
        }
        Ok(())
    }

    /// Starts relaying the side reserved by [`Anchor::reserve_side_c`].
    pub fn start_side_c(&mut self) {
        if let Some(relay) = &mut self.relay {
            relay.hand_over_side_c();
        }
    }

    /// Frees the relay side toward a transfer target.
    pub fn close_side_c(&mut self) {
        if let Some(relay) = &mut self.relay {
            relay.remove_side_c();
        }
        self.received[index(LegId::C)] = None;
    }

    /// Connects the caller's media to `peer` (B or C) both ways; the third leg's media
    /// goes nowhere.
    pub fn bridge(&mut self, peer: LegId) -> Result<(), AnchorError> {
        self.peer = peer;
        if let Some(relay) = &self.relay {
            relay.set_route(Side::A, Some(side(peer)));
            for leg in [LegId::B, LegId::C] {
                let to = (leg == peer).then_some(Side::A);
                relay.set_route(side(leg), to);
            }
        }
        self.update_payload_map(None)
    }

    /// Sends the remote's early media to the caller while the caller's own media goes
    /// nowhere yet.
    pub fn early_media(&mut self) -> Result<(), AnchorError> {
        if let Some(relay) = &self.relay {
            relay.set_route(Side::C, Some(Side::A));
            relay.set_route(Side::B, None);
            relay.set_route(Side::A, None);
        }
        self.peer = LegId::C;
        self.update_payload_map(None)
    }

    /// Cuts the caller off from the agent while a transfer starts.
    pub fn isolate_caller(&self) {
        if let Some(relay) = &self.relay {
            relay.set_route(Side::A, None);
            relay.set_route(Side::B, None);
        }
    }

    /// Plays ringback to the caller in its negotiated G.711 codec, or stops it. Returns
    /// false when the caller has no G.711 codec to play it in.
    pub fn ringback(&self, on: bool) -> bool {
        let Some(relay) = &self.relay else {
            return false;
        };
        if !on {
            relay.set_ringback(None);
            return true;
        }
        let spec = self
            .received(LegId::A)
            .and_then(|sdp| sdp.media.first().and_then(g711_of));
        relay.set_ringback(spec);
        spec.is_some()
    }

    /// Whether the caller's last SDP leaves it unable to talk to its peer: the agent put
    /// the call on hold, so the caller sends nothing or receives nothing.
    pub fn caller_on_hold(&self) -> bool {
        self.received(LegId::A)
            .and_then(|sdp| sdp.media.first().map(|media| media.direction))
            .is_some_and(|direction| direction != crate::sdp::Direction::SendRecv)
    }

    /// Whether leg `peer`'s answer uses a first codec the caller also offered.
    pub fn codec_compatible(&self, peer: LegId) -> bool {
        let (Some(a), Some(other)) = (self.received(LegId::A), self.received(peer)) else {
            return true;
        };
        let (Some(media_a), Some(media_other)) = (a.media.first(), other.media.first()) else {
            return true;
        };
        let Some(chosen) = media_other
            .payload_types()
            .next()
            .and_then(|pt| media_other.codec(pt))
        else {
            return true;
        };
        media_a
            .payload_types()
            .filter_map(|pt| media_a.codec(pt))
            .any(|codec| codec.matches(&chosen))
    }

    /// Completes when the relay saw no RTP for the inactivity timeout; never without a relay.
    pub async fn inactive(&self) {
        match &self.relay {
            Some(relay) => relay.inactive().await,
            None => std::future::pending().await,
        }
    }
}

/// Returns the RTP clock rate of the first telephone-event payload of the first media
/// section, or 8000 when there is none.
fn event_clock(description: &SessionDescription) -> u32 {
    description
        .media
        .first()
        .and_then(|media| {
            let pt = *media.payload_types_for("telephone-event").first()?;
            media.codec(pt).map(|codec| codec.clock_rate)
        })
        .unwrap_or(8000)
}

/// The G.711 codec the caller offered first, if any.
fn g711_of(media: &MediaDescription) -> Option<Ringback> {
    media.payload_types().find_map(|pt| {
        let codec = media.codec(pt)?;
        if codec.clock_rate != 8000 {
            return None;
        }
        let law = if codec.encoding.eq_ignore_ascii_case("PCMA") {
            G711::ALaw
        } else if codec.encoding.eq_ignore_ascii_case("PCMU") {
            G711::MuLaw
        } else {
            return None;
        };
        Some(Ringback {
            law,
            payload_type: pt,
        })
    })
}
