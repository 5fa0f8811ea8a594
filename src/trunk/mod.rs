//! Runtime state of the gateways that reach other cities' 12345 hotlines: their health,
//! their channel counts, the order to try them in, and the OPTIONS pings that keep the
//! health current.
//!
//! The module takes plain [`GatewaySpec`] values and does not depend on the dial plan
//! that produces them. It owns:
//!
//! - [`health`]: the Unknown/Up/Down machine of one gateway, free of I/O and of the clock.
//! - [`limits`]: lock-free channel counting with a guard that releases on drop.
//! - [`select`]: the order to try a trunk's gateways in (priority, then weighted random),
//!   with the reason each skipped gateway was left out.
//! - [`registry`]: every gateway's state keyed by [`GatewayId`], updated on reload without
//!   losing the health and channel counts of gateways that did not change.
//! - [`probe`]: the out-of-dialog OPTIONS pinger (RFC 3261 §11) that feeds the health
//!   machines.

pub mod health;
pub mod limits;
pub mod probe;
pub mod registry;
pub mod select;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::sip::uri::{Host, Scheme, Uri, UriError};
use crate::transport::{Protocol, Target};

pub use health::{FailureCause, Health, HealthState, Signal, Thresholds, Transition};
pub use limits::{ChannelCounter, ChannelGuard, Channels};
pub use probe::Prober;
pub use registry::{AcquireError, Gateway, TrunkRegistry, UpdateSummary};
pub use select::{Candidate, Selection, SkipReason, Skipped};

/// Default SIP port (RFC 3261 §19.1.2), used for a target URI without a port.
const SIP_PORT: u16 = 5060;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(value: &str) -> Self {
                $name(Arc::from(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The configured name of one gateway, unique across all trunks. Cloning is cheap.
    GatewayId
);
string_id!(
    /// The configured name of a trunk: the group of gateways that reach one city.
    TrunkId
);

/// The address of a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayTarget {
    /// A `sip:` URI: `sip:host[:port][;transport=tcp]`. A domain name is resolved through
    /// the system resolver before every probe.
    Uri(Uri),
    /// A socket address and protocol, used as is.
    Socket(Target),
}

impl GatewayTarget {
    /// Returns the Request-URI for requests to the gateway: the configured URI, or
    /// `sip:addr:port` with `;transport=tcp` for a TCP socket target.
    pub fn request_uri(&self) -> Uri {
        match self {
            GatewayTarget::Uri(uri) => uri.clone(),
            GatewayTarget::Socket(target) => {
                let host = match target.addr.ip() {
                    IpAddr::V4(ip) => Host::Ipv4(ip),
                    IpAddr::V6(ip) => Host::Ipv6(ip),
                };
                let mut uri = Uri::sip(None, host);
                uri.port = Some(target.addr.port());
                if target.protocol == Protocol::Tcp {
                    uri.params.set("transport", Some("tcp".to_owned()));
                }
                uri
            }
        }
    }

    /// Returns the transport protocol: TCP when the URI has `transport=tcp`.
    pub fn protocol(&self) -> Protocol {
        match self {
            GatewayTarget::Uri(uri) => match uri.params.value("transport") {
                Some(value) if value.eq_ignore_ascii_case("tcp") => Protocol::Tcp,
                _ => Protocol::Udp,
            },
            GatewayTarget::Socket(target) => target.protocol,
        }
    }

    /// Resolves the target to a socket address: an IP literal directly, a domain name
    /// through the system resolver (A/AAAA), on the URI's port or 5060.
    ///
    /// NOTE: RFC 3263 NAPTR and SRV lookups are not done, so a domain without a port is
    /// tried on 5060 even when its SRV records name another port.
    ///
    /// # Errors
    ///
    /// [`ResolveError`] when the URI has no host or the name does not resolve.
    pub async fn resolve(&self) -> Result<Target, ResolveError> {
        let uri = match self {
            GatewayTarget::Socket(target) => return Ok(*target),
            GatewayTarget::Uri(uri) => uri,
        };
        let protocol = self.protocol();
        let port = uri.port.unwrap_or(SIP_PORT);
        let ip = match &uri.host {
            Some(Host::Ipv4(ip)) => IpAddr::V4(*ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(*ip),
            Some(Host::Domain(name)) => lookup(name, port).await?,
            None => {
                return Err(ResolveError::MissingHost {
                    uri: uri.to_string(),
                });
            }
        };
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            protocol,
        })
    }

    fn check(&self) -> Result<(), TargetError> {
        let GatewayTarget::Uri(uri) = self else {
            return Ok(());
        };
        if uri.scheme != Scheme::Sip || uri.host.is_none() {
            return Err(TargetError::NotSip {
                uri: uri.to_string(),
            });
        }
        match uri.params.value("transport") {
            None => Ok(()),
            Some(value) if ["udp", "tcp"].iter().any(|t| value.eq_ignore_ascii_case(t)) => Ok(()),
            Some(value) => Err(TargetError::UnsupportedTransport {
                transport: value.to_owned(),
            }),
        }
    }
}

impl FromStr for GatewayTarget {
    type Err = TargetError;

    /// Parses a `sip:` URI, or a bare socket address (`192.0.2.1:5060`) reached over UDP.
    fn from_str(input: &str) -> Result<Self, TargetError> {
        let input = input.trim();
        if let Ok(addr) = input.parse::<SocketAddr>() {
            return Ok(GatewayTarget::Socket(Target {
                addr,
                protocol: Protocol::Udp,
            }));
        }
        let uri: Uri = input.parse()?;
        let target = GatewayTarget::Uri(uri);
        target.check()?;
        Ok(target)
    }
}

impl fmt::Display for GatewayTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayTarget::Uri(uri) => uri.fmt(f),
            GatewayTarget::Socket(target) => {
                write!(f, "{}/{}", target.addr, target.protocol.via_token())
            }
        }
    }
}

async fn lookup(name: &str, port: u16) -> Result<IpAddr, ResolveError> {
    let mut addrs = tokio::net::lookup_host((name, port))
        .await
        .map_err(|source| ResolveError::Lookup {
            host: name.to_owned(),
            source,
        })?;
    match addrs.next() {
        Some(addr) => Ok(addr.ip()),
        None => Err(ResolveError::NoAddress {
            host: name.to_owned(),
        }),
    }
}

/// The OPTIONS probe settings of a gateway, and the thresholds that move its health. The
/// thresholds apply to passive signals from calls too, even when probing is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSpec {
    /// Whether OPTIONS probes are sent at all.
    pub enabled: bool,
    /// Time from the start of one probe to the start of the next.
    pub interval: Duration,
    /// Time a probe waits for a final response before it counts as failed. Timer F
    /// (64*T1) ends a probe earlier when it is shorter.
    pub timeout: Duration,
    /// Consecutive failures that mark the gateway Down.
    pub down_after: u32,
    /// Consecutive successes that bring a Down gateway back Up.
    pub up_after: u32,
}

impl Default for ProbeSpec {
    /// Probing every 30 s with a 5 s timeout, Down after 3 failures, Up after 2 successes.
    fn default() -> Self {
        ProbeSpec {
            enabled: true,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            down_after: 3,
            up_after: 2,
        }
    }
}

/// One gateway as the dial plan configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    pub id: GatewayId,
    /// The trunk the gateway belongs to.
    pub trunk: TrunkId,
    pub target: GatewayTarget,
    /// Lower values are tried first.
    pub priority: u32,
    /// Relative share among gateways of the same priority; 0 means "only when every
    /// weighted gateway of the priority was tried".
    pub weight: u32,
    /// Maximum concurrent calls through the gateway; `None` for no limit.
    pub channel_limit: Option<u32>,
    pub probe: ProbeSpec,
}

impl GatewaySpec {
    /// Checks the values that would make the gateway unusable.
    ///
    /// # Errors
    ///
    /// [`SpecError`] naming the gateway and the invalid value.
    pub fn validate(&self) -> Result<(), SpecError> {
        let id = self.id.clone();
        self.target.check().map_err(|source| SpecError::Target {
            id: id.clone(),
            source,
        })?;
        if self.probe.down_after == 0 {
            return Err(SpecError::ZeroThreshold {
                id,
                name: "down_after",
            });
        }
        if self.probe.up_after == 0 {
            return Err(SpecError::ZeroThreshold {
                id,
                name: "up_after",
            });
        }
        if self.probe.enabled && self.probe.interval.is_zero() {
            return Err(SpecError::ZeroDuration {
                id,
                name: "interval",
            });
        }
        if self.probe.enabled && self.probe.timeout.is_zero() {
            return Err(SpecError::ZeroDuration {
                id,
                name: "timeout",
            });
        }
        Ok(())
    }
}

/// An invalid gateway target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Uri(#[from] UriError),
    #[error("invalid gateway target {uri:?}: expected a sip: URI with a host")]
    NotSip { uri: String },
    #[error("unsupported transport {transport:?}: expected udp or tcp")]
    UnsupportedTransport { transport: String },
}

/// An invalid set of gateway specifications.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("gateway {id} is defined more than once")]
    DuplicateGateway { id: GatewayId },
    #[error("gateway {id}: {source}")]
    Target { id: GatewayId, source: TargetError },
    #[error("gateway {id}: {name} must be at least 1")]
    ZeroThreshold { id: GatewayId, name: &'static str },
    #[error("gateway {id}: probe {name} must be greater than zero")]
    ZeroDuration { id: GatewayId, name: &'static str },
}

/// Failure to turn a gateway target into a socket address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("gateway URI {uri:?} has no host")]
    MissingHost { uri: String },
    #[error("failed to resolve {host}: {source}")]
    Lookup {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} resolved to no address")]
    NoAddress { host: String },
}

#[cfg(test)]
mod tests;
