//! The RTP/RTCP relay that anchors each call's media, in the manner of rtpengine.
//!
//! - [`PortPool`] hands out even RTP ports with RTCP on the next port from the configured
//!   range, shared by all calls.
//! - [`MediaSession`] is one call's media: one relay stream per `m=` line, each with a
//!   socket pair on side A (the caller) and side B (the agent). It forwards RTP and RTCP
//!   between the sides, latches onto the source address actually seen (symmetric RTP),
//!   rewrites payload types through a [`PayloadMap`], counts what it relays and drops, and
//!   signals inactivity.
//!
//! The relay works on addresses, ports and payload types only. It does not import the SIP or
//! SDP modules: the session core reads the SDP and passes the results in.

mod packet;
mod payload;
mod ports;
mod session;
mod stream;
mod tone;

#[cfg(test)]
mod tests;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::MediaConfig;
use crate::mailbox::MailboxSender;

pub use payload::{PayloadMap, TelephoneEventPacket};
pub use ports::{PAIR_REST, PREBOUND, PortPair, PortPool};
pub use session::MediaSession;
pub use stream::{RELATCH_SILENCE, RelayCounters};
pub use tone::{G711, Ringback};

/// The sending end of the queue a relay copies a side's telephone-event packets to.
pub type EventObserver = MailboxSender<Box<TelephoneEventPacket>>;

/// Errors of the relay.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(
        "invalid relay port range {min}-{max}: it must contain at least one even port pair above 0"
    )]
    InvalidPortRange { min: u16, max: u16 },
    #[error("no free relay port pair on {address} in {min}-{max}")]
    PortsExhausted { address: IpAddr, min: u16, max: u16 },
    #[error("failed to bind relay socket {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("relay sockets need a running tokio runtime with I/O enabled")]
    NoRuntime,
    #[error("media stream {stream} does not exist; the session has {count} streams")]
    NoSuchStream { stream: usize, count: usize },
    #[error("relay side {side:?} has no sockets")]
    NoSuchSide { side: Side },
}

/// One side of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The leg facing the caller (the switch).
    A,
    /// The leg facing the agent.
    B,
    /// The leg facing a remote hotline during a transfer; allocated on demand.
    C,
}

impl Side {
    /// Returns the side that packets from this side are relayed to by default: A and B
    /// to each other, C to A.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B | Side::C => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
            Side::C => 2,
        }
    }

    /// The side whose payload numbering applies: C stands where B stood once bridged.
    fn map_side(self) -> Side {
        match self {
            Side::C => Side::B,
            side => side,
        }
    }
}

/// The addresses where a side's endpoint wants media, taken from its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteEndpoint {
    /// RTP address from `c=` and `m=`.
    pub rtp: SocketAddr,
    /// RTCP address from `a=rtcp` (RFC 3605); `None` means the RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    /// `a=rtcp-mux` was negotiated: RTCP goes to and comes from the RTP port (RFC 5761).
    pub rtcp_mux: bool,
}

impl RemoteEndpoint {
    /// Returns where RTCP for this endpoint goes when it is not multiplexed.
    fn rtcp_address(&self) -> SocketAddr {
        self.rtcp
            .unwrap_or_else(|| SocketAddr::new(self.rtp.ip(), self.rtp.port().wrapping_add(1)))
    }
}

/// Returns the configured inactivity timeout, or `None` when it is disabled (0 seconds).
pub fn inactivity_timeout(config: &MediaConfig) -> Option<Duration> {
    let seconds = config.inactivity_timeout_secs;
    (seconds > 0).then(|| Duration::from_secs(seconds))
}
