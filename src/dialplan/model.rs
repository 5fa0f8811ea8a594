//! The compiled plan's data: destinations, trunks with their gateways, and the matter
//! catalogue. Every value here has been validated by the loader.

use std::fmt;

use serde::Serialize;

use super::number::NumberFormat;
use super::time::Schedule;
use crate::sip::uri::{Host, Uri};

/// Position of a value: file, 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Default time a transfer to a destination may ring, in seconds.
pub const DEFAULT_RING_TIMEOUT_SECS: u32 = 30;
/// Default service number of a hotline.
pub const DEFAULT_SERVICE_NUMBER: &str = "12345";

/// A hotline that calls can be transferred to.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Stable id such as `beijing` or `xiongan`: lowercase letters, digits, `-` and `_`.
    pub id: String,
    /// Chinese name shown to agents, such as `北京市热线`.
    pub name: String,
    pub name_en: String,
    /// Area code with its leading 0, such as `010`. Not unique: Baoding and Xiong'an
    /// share 0312.
    pub area_code: String,
    /// Number dialled within the area, `12345` unless set.
    pub service_number: String,
    /// Request-URI user part on trunks with [`NumberFormat::User`].
    pub user: Option<String>,
    /// Id of the trunk that carries calls to this hotline.
    pub trunk: String,
    /// Seconds a transfer to this hotline may ring before it fails back to the agent.
    pub ring_timeout_secs: u32,
    /// When the hotline takes transfers; empty means always.
    pub schedule: Schedule,
    /// Catalogue codes of the matters the hotline accepts, each with its scope text
    /// (empty for the category's own scope).
    pub accepts: Vec<(String, String)>,
    /// Catalogue codes of the matters the hotline does not accept, each with a scope
    /// text that tells the agent what to do instead (empty for the category's own scope).
    pub rejects: Vec<(String, String)>,
    /// Position of the destination's table header.
    pub origin: Origin,
}

/// Transport of a gateway (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Lowercase name, as in dialplans and the `transport` URI parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Id of a gateway: its trunk id and its own name, written `trunk/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct GatewayId(String);

impl GatewayId {
    /// Creates the id of gateway `name` of trunk `trunk`.
    pub fn new(trunk: &str, name: &str) -> Self {
        GatewayId(format!("{trunk}/{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One address of a trunk.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub id: GatewayId,
    /// Target of the requests: a `sip:` URI without user part, with host, optional port
    /// and any URI parameters the peer requires.
    pub address: Uri,
    pub transport: Transport,
    /// Gateways of the lowest priority are tried first.
    pub priority: u32,
    /// Share of calls among gateways of the same priority, relative to their sum.
    pub weight: u32,
    /// Maximum simultaneous calls; `None` means no limit is configured.
    pub channels: Option<u32>,
    /// When the gateway is used; empty means always.
    pub schedule: Schedule,
    pub origin: Origin,
}

impl Gateway {
    /// Host of the gateway address.
    pub fn host(&self) -> Option<&Host> {
        self.address.host.as_ref()
    }
}

/// Presentation of the caller's identity to the receiving hotline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityPolicy {
    /// The caller's number in From and in P-Asserted-Identity (RFC 3325 §9.1).
    Pai,
    /// The caller's number in From only, for peers that do not trust PAI from us.
    From,
    /// An anonymous From (RFC 3323 §4.1.1.3), the caller's number in P-Asserted-Identity
    /// and `Privacy: id` (RFC 3325 §9.3).
    Anonymous,
}

impl IdentityPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityPolicy::Pai => "pai",
            IdentityPolicy::From => "from",
            IdentityPolicy::Anonymous => "anonymous",
        }
    }

    /// Parses the dialplan name.
    pub fn parse(name: &str) -> Option<IdentityPolicy> {
        [
            IdentityPolicy::Pai,
            IdentityPolicy::From,
            IdentityPolicy::Anonymous,
        ]
        .into_iter()
        .find(|policy| policy.as_str() == name)
    }
}

/// A piece of transfer context that a configurable header can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextField {
    /// Catalogue code of the matter.
    Matter,
    /// The transferring hotline's work-order number.
    WorkOrder,
    /// Id of the agent who started the transfer.
    Agent,
    /// Number of the transferring hotline.
    Origin,
    /// The caller's number.
    Caller,
}

impl ContextField {
    pub const ALL: [ContextField; 5] = [
        ContextField::Matter,
        ContextField::WorkOrder,
        ContextField::Agent,
        ContextField::Origin,
        ContextField::Caller,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContextField::Matter => "matter",
            ContextField::WorkOrder => "work_order",
            ContextField::Agent => "agent",
            ContextField::Origin => "origin",
            ContextField::Caller => "caller",
        }
    }

    /// Parses the dialplan name.
    pub fn parse(name: &str) -> Option<ContextField> {
        ContextField::ALL
            .into_iter()
            .find(|field| field.as_str() == name)
    }
}

/// Headers that carry the transfer context to a trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextHeaders {
    /// Send History-Info (RFC 7044) with the transferring hotline and the new target.
    pub history_info: bool,
    /// Send Diversion (RFC 5806) naming the transferring hotline.
    pub diversion: bool,
    /// Send User-to-User (RFC 7433) with the matter, work order and agent.
    pub user_to_user: bool,
    /// Extra headers, each carrying one field, in the order written.
    pub headers: Vec<(String, ContextField)>,
}

impl Default for ContextHeaders {
    fn default() -> Self {
        ContextHeaders {
            history_info: true,
            diversion: false,
            user_to_user: true,
            headers: Vec::new(),
        }
    }
}

/// Digest credentials (RFC 3261 §22.2) for a trunk. The password is never stored in the
/// plan: it is read from the environment variable `password_env` when needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    pub username: String,
    /// Realm of the challenges to respond to; `None` responds to any realm.
    pub realm: Option<String>,
    /// Name of the environment variable that contains the password.
    pub password_env: String,
}

impl Credentials {
    /// Reads the password from the environment, `None` when the variable is unset or not
    /// UTF-8. The loader checked that it was set when the plan was loaded.
    pub fn password(&self) -> Option<String> {
        std::env::var(&self.password_env).ok()
    }
}

/// OPTIONS health checks of a trunk's gateways (RFC 3261 §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub enabled: bool,
    /// Seconds between two probes of one gateway.
    pub interval_secs: u32,
    /// Milliseconds to wait for a response to a probe.
    pub timeout_ms: u32,
    /// Consecutive failed probes that mark an up gateway down.
    pub failures_to_down: u32,
    /// Consecutive successful probes that mark a down gateway up.
    pub successes_to_up: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            enabled: true,
            interval_secs: 30,
            timeout_ms: 5_000,
            failures_to_down: 3,
            successes_to_up: 2,
        }
    }
}

/// A connection to another hotline's network: how numbers and identities are written and
/// which gateways carry the calls.
#[derive(Debug, Clone)]
pub struct Trunk {
    pub id: String,
    pub numbers: NumberFormat,
    pub identity: IdentityPolicy,
    /// Host of the From and P-Asserted-Identity URIs; `None` uses the gateway's host.
    pub domain: Option<String>,
    pub context: ContextHeaders,
    pub credentials: Option<Credentials>,
    pub health_check: HealthCheck,
    /// Gateways in the order written.
    pub gateways: Vec<Gateway>,
    pub origin: Origin,
}

/// Whether a hotline accepts a matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "acceptance", rename_all = "snake_case")]
pub enum Acceptance {
    Accepted {
        scope: String,
    },
    NotAccepted {
        scope: String,
    },
    /// The catalogue has no entry for this hotline and matter, or the matter is not in
    /// the catalogue.
    Unknown,
}

/// One category of the matter catalogue.
#[derive(Debug, Clone)]
pub struct Category {
    /// Stable code such as `social_insurance`.
    pub code: String,
    pub name: String,
    pub name_en: String,
    /// Scope text used where a destination gives none.
    pub scope: String,
    pub origin: Origin,
}
