//! The routing interface of the call tasks: turning a transfer trigger into a destination,
//! the gateways to try and the INVITE to send. The dialplan and trunk state implement it;
//! each call keeps the router it started with, so a reload never changes a call in flight.

use std::any::Any;
use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use crate::sip::uri::Uri;
use crate::transport::Target;

/// The request of a transfer.
#[derive(Debug, Clone)]
pub struct RouteRequest {
    /// Destination id from the dialplan, such as `beijing`.
    pub destination: String,
    pub matter: Option<String>,
    pub ticket: Option<String>,
    pub agent: Option<String>,
    /// Caller's number as the switch presented it.
    pub caller: String,
    pub caller_display: Option<String>,
    /// History-Info entries already on the caller's INVITE, one per earlier hop.
    pub history: Vec<String>,
    /// Accept a matter the destination does not take.
    pub force: bool,
    pub at: SystemTime,
}

/// One gateway to try, in order.
#[derive(Debug, Clone)]
pub struct GatewayRoute {
    pub id: String,
    pub target: Target,
    pub request_uri: Uri,
}

/// A resolved transfer: everything needed to build the INVITE toward the remote hotline.
#[derive(Debug, Clone)]
pub struct Routed {
    pub destination: String,
    /// Gateways in the order to try them; down and full ones already left out.
    pub gateways: Vec<GatewayRoute>,
    /// From value without tag, per the trunk's identity policy.
    pub from: String,
    /// Identity and context headers: P-Asserted-Identity, Privacy, History-Info,
    /// Diversion, User-to-User, with the names the trunk wants.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// How long the remote may ring before the transfer fails.
    pub ring_timeout: Duration,
    /// Digest credentials for a trunk that challenges the INVITE.
    pub credentials: Option<Credentials>,
}

/// Digest credentials for a trunk (RFC 3261 §22).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Answer only challenges of this realm; `None` answers any.
    pub realm: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Routed {
    /// A route with no gateways, for a transfer whose remote leg already exists.
    pub fn empty() -> Routed {
        Routed {
            destination: String::new(),
            gateways: Vec::new(),
            from: String::new(),
            headers: Vec::new(),
            ring_timeout: Duration::ZERO,
            credentials: None,
        }
    }
}

/// The reason a transfer cannot start. Each maps to an HTTP status and a SIP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown destination {0:?}")]
    UnknownDestination(String),
    #[error("unknown matter code {0:?}")]
    UnknownMatter(String),
    #[error("matter {matter} is not accepted by {destination}: {scope}")]
    MatterNotAccepted {
        destination: String,
        matter: String,
        scope: String,
    },
    #[error("no usable gateway for {destination}: {reason}")]
    NoGateway { destination: String, reason: String },
    #[error("the call has already passed {hops} hotlines, the limit is {limit}")]
    HopLimit { hops: usize, limit: usize },
    #[error("{0}")]
    NotAllowed(String),
}

/// How far a sequence of keys matches the dialplan's transfer keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    /// A whole sequence: the destination id.
    Complete(String),
    /// A prefix of at least one sequence.
    Partial,
    NoMatch,
}

/// A channel held on a gateway while a transfer uses it; dropping it frees the channel.
pub type ChannelSlot = Box<dyn Any + Send + Sync>;

/// Outcome of one attempt on a gateway, fed back as passive health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayOutcome {
    /// The gateway sent this status in response to the INVITE.
    Response(u16),
    /// No final response before timer B.
    Timeout,
    /// The INVITE could not be sent.
    TransportError,
}

/// The routing a call task consults.
pub trait Router: Send + Sync {
    /// Resolves a transfer request.
    fn route(&self, request: &RouteRequest) -> Result<Routed, Refusal>;

    /// Matches collected DTMF keys against the transfer keys.
    fn match_keys(&self, keys: &str) -> KeyMatch;

    /// Keys that start a transfer sequence, as a mask of RFC 4733 event codes (bit 10 for
    /// `*`, 11 for `#`), so the relay can hold them back.
    fn key_prefixes(&self) -> u16;

    /// Maximum pause between two keys of one sequence.
    fn inter_digit_timeout(&self) -> Duration;

    /// Maps a Refer-To URI to a destination id; `None` refuses it.
    fn resolve_refer_to(&self, uri: &str) -> Option<String>;

    /// Takes a channel on a gateway; `None` when the gateway is full.
    fn acquire_channel(&self, gateway: &str) -> Option<ChannelSlot>;

    /// Records how an attempt on a gateway went.
    fn report(&self, gateway: &str, outcome: GatewayOutcome);

    /// A short id of the plan, for logs and records.
    fn version(&self) -> String;
}

/// A router with no destinations: every transfer is refused.
#[derive(Debug, Default)]
pub struct NoRoutes;

impl Router for NoRoutes {
    fn route(&self, request: &RouteRequest) -> Result<Routed, Refusal> {
        Err(Refusal::UnknownDestination(request.destination.clone()))
    }

    fn match_keys(&self, _keys: &str) -> KeyMatch {
        KeyMatch::NoMatch
    }

    fn key_prefixes(&self) -> u16 {
        0
    }

    fn inter_digit_timeout(&self) -> Duration {
        Duration::from_secs(3)
    }

    fn resolve_refer_to(&self, _uri: &str) -> Option<String> {
        None
    }

    fn acquire_channel(&self, _gateway: &str) -> Option<ChannelSlot> {
        Some(Box::new(()))
    }

    fn report(&self, _gateway: &str, _outcome: GatewayOutcome) {}

    fn version(&self) -> String {
        "none".to_owned()
    }
}
