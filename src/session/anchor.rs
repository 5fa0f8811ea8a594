//! The media anchor of one call: the relay streams, and the SDP rewriting that points each
//! leg at them. Side A of the relay faces leg A (the caller), side B faces leg B.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::{Context, LegId, SessionId};
use crate::media::{self, MediaError, MediaSession, PayloadMap, PortPool, RemoteEndpoint, Side};
use crate::sdp::{self, OriginState, SdpError, SessionDescription};

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("invalid sdp: {0}")]
    Sdp(#[from] SdpError),
    #[error("relay: {0}")]
    Media(#[from] MediaError),
}

pub(super) struct Anchor {
    pool: Arc<PortPool>,
    timeout: Option<std::time::Duration>,
    relay: Option<MediaSession>,
    /// The engine's o= line toward each leg, indexed by [`index`].
    origins: [OriginState; 2],
    /// The last SDP received from each leg.
    received: [Option<SessionDescription>; 2],
}

fn index(leg: LegId) -> usize {
    match leg {
        LegId::A => 0,
        LegId::B => 1,
    }
}

fn side(leg: LegId) -> Side {
    match leg {
        LegId::A => Side::A,
        LegId::B => Side::B,
    }
}

impl Anchor {
    pub fn new(ctx: &Context, session: SessionId) -> Result<Anchor, AnchorError> {
        let address = ctx.media.address();
        let origin = |offset: u64| {
            OriginState::with_session_id("-", (session.0 << 1 | offset) & (u64::MAX >> 1), address)
        };
        Ok(Anchor {
            pool: Arc::clone(&ctx.media),
            timeout: media::inactivity_timeout(&ctx.config.media),
            relay: None,
            origins: [origin(0), origin(1)],
            received: [None, None],
        })
    }

    /// Takes an SDP that arrived on leg `from`, points that side of the relay at the
    /// endpoint it describes, and returns the SDP for the other leg, rewritten to the
    /// relay's ports on the other side.
    pub fn relay_sdp(&mut self, from: LegId, body: &[u8]) -> Result<Bytes, AnchorError> {
        let description = SessionDescription::parse(body)?;
        let streams = description.media.len();
        let relay = match &mut self.relay {
            Some(relay) => relay,
            None => self
                .relay
                .insert(MediaSession::new(&self.pool, self.timeout, streams)?),
        };
        while relay.stream_count() < streams {
            relay.add_stream()?;
        }

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

        let to = from.other();
        let relays: Vec<SocketAddr> = (0..streams)
            .map(|stream| relay.local_addr(side(to), stream))
            .collect::<Result<_, _>>()?;
        let rewritten = description.rewrite(&relays, &mut self.origins[index(to)])?;
        self.received[index(from)] = Some(description);
        self.update_payload_maps()?;
        Ok(Bytes::from(rewritten))
    }

    /// Maps payload types between the legs once both have described their media.
    fn update_payload_maps(&self) -> Result<(), AnchorError> {
        let (Some(a), Some(b), Some(relay)) = (&self.received[0], &self.received[1], &self.relay)
        else {
            return Ok(());
        };
        for (stream, (media_a, media_b)) in a.media.iter().zip(&b.media).enumerate() {
            let pairs = sdp::map_payload_types(media_a, media_b);
            let mut map = PayloadMap::from_pairs(pairs.pairs());
            if let Some(&pt) = media_a.payload_types_for("telephone-event").first() {
                map = map.with_telephone_event(Side::A, pt);
            }
            if let Some(&pt) = media_b.payload_types_for("telephone-event").first() {
                map = map.with_telephone_event(Side::B, pt);
            }
            relay.set_payload_map(stream, map)?;
        }
        Ok(())
    }

    /// Completes when the relay saw no RTP for the inactivity timeout; never without a relay.
    pub async fn inactive(&self) {
        match &self.relay {
            Some(relay) => relay.inactive().await,
            None => std::future::pending().await,
        }
    }
}
