//! The router the call tasks use for transfers: the loaded dialplan for what may go where
//! and how the INVITE looks, and the trunk registry for which gateways are up, which have
//! free channels and in which order to try them.
//!
//! One [`PlanRouter`] wraps one plan. A reload builds a new one; calls that started with
//! the old plan keep it until they end.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use crate::dialplan::{
    Acceptance, ContextField, Destination, Gateway, IdentityPolicy, KeyMatch as PlanMatch, Plan,
    Timestamp, Transport as PlanTransport, Trunk,
};
use crate::session::routing::{
    ChannelSlot, GatewayOutcome, GatewayRoute, KeyMatch, Refusal, RouteRequest, Routed, Router,
};
use crate::sip::headers::UserToUser;
use crate::sip::uri::{Host, Uri};
use crate::transport::{Protocol, Target};
use crate::trunk::health::{FailureCause, Signal};
use crate::trunk::{GatewayId, GatewaySpec, GatewayTarget, ProbeSpec, TrunkId, TrunkRegistry};

/// This engine's own hotline, as the remote hotlines see it in History-Info, Diversion and
/// User-to-User.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The transferring hotline's number, such as `0311-12345`.
    pub number: String,
    /// Most hotlines a call may pass through before a transfer is refused.
    pub hop_limit: usize,
}

/// A [`Router`] over one dialplan and the shared trunk state.
pub struct PlanRouter {
    plan: Arc<Plan>,
    registry: Arc<TrunkRegistry>,
    origin: Origin,
    prefixes: u16,
    /// Each destination's gateways whose address is an IP literal, with their
    /// Request-URI: built once per plan, not per transfer.
    literal_routes: HashMap<String, Vec<GatewayRoute>>,
}

impl PlanRouter {
    pub fn new(plan: Arc<Plan>, registry: Arc<TrunkRegistry>, origin: Origin) -> PlanRouter {
        let prefixes = plan
            .keys()
            .bindings
            .iter()
            .filter_map(|binding| binding.sequence.chars().next())
            .filter_map(crate::dtmf::event_for_key)
            .fold(0u16, |mask, event| mask | (1 << event));
        let mut literal_routes: HashMap<String, Vec<GatewayRoute>> = HashMap::new();
        for destination in plan.destinations() {
            let Some(trunk) = plan.trunk(&destination.trunk) else {
                continue;
            };
            let routes = trunk
                .gateways
                .iter()
                .filter(|gateway| !matches!(gateway.address.host, Some(Host::Domain(_))))
                .filter_map(|gateway| build_gateway_route(&plan, destination, gateway))
                .collect();
            literal_routes.insert(destination.id.clone(), routes);
        }
        PlanRouter {
            plan,
            registry,
            origin,
            prefixes,
            literal_routes,
        }
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    fn routed_gateway(&self, destination: &Destination, gateway: &Gateway) -> Option<GatewayRoute> {
        let built = self
            .literal_routes
            .get(&destination.id)
            .and_then(|routes| routes.iter().find(|route| route.id == gateway.id.as_str()));
        match built {
            Some(route) => Some(route.clone()),
            None => build_gateway_route(&self.plan, destination, gateway),
        }
    }

    /// From and the identity and context headers per the trunk's policy.
    fn headers(
        &self,
        trunk: &Trunk,
        gateway: &Gateway,
        request: &RouteRequest,
        request_uri: &Uri,
    ) -> (String, Vec<(Cow<'static, str>, String)>) {
        let caller = trunk.numbers.caller_number(&request.caller);
        let domain = trunk
            .domain
            .clone()
            .or_else(|| gateway.host().map(ToString::to_string))
            .unwrap_or_else(|| "invalid".to_owned());
        let caller_uri = format!("<sip:{caller}@{domain}>");
        let display = request
            .caller_display
            .as_deref()
            .map(|name| format!("\"{}\" ", name.replace(['"', '\\'], "")))
            .unwrap_or_default();
        let origin = trunk.numbers.caller_number(&self.origin.number);
        let origin_uri = format!("sip:{origin}@{domain}");

        let mut headers = Vec::new();
        let from = match trunk.identity {
            IdentityPolicy::Pai => {
                headers.push((Cow::Borrowed("P-Asserted-Identity"), caller_uri.clone()));
                format!("{display}{caller_uri}")
            }
            IdentityPolicy::From => format!("{display}{caller_uri}"),
            IdentityPolicy::Anonymous => {
                headers.push((Cow::Borrowed("P-Asserted-Identity"), caller_uri));
                headers.push((Cow::Borrowed("Privacy"), "id".to_owned()));
                "\"Anonymous\" <sip:anonymous@anonymous.invalid>".to_owned()
            }
        };

        let context = &trunk.context;
        if context.history_info {
            headers.push((
                Cow::Borrowed("History-Info"),
                history_info(request, &origin_uri, request_uri),
            ));
        }
        if context.diversion {
            // RFC 5806: the transferring hotline diverted the call.
            headers.push((
                Cow::Borrowed("Diversion"),
                format!("<{origin_uri}>;reason=deflection"),
            ));
        }
        if context.user_to_user {
            let payload = context_payload(request, &origin);
            let uui = UserToUser::from_bytes(payload.as_bytes(), Some("hotline-transfer"), None);
            headers.push((Cow::Borrowed("User-to-User"), uui.to_string()));
        }
        for (name, field) in &context.headers {
            let value = match field {
                ContextField::Matter => request.matter.clone(),
                ContextField::WorkOrder => request.ticket.clone(),
                ContextField::Agent => request.agent.clone(),
                ContextField::Origin => Some(origin.clone()),
                ContextField::Caller => Some(caller.clone()),
            };
            if let Some(value) = value.filter(|value| !value.is_empty()) {
                headers.push((Cow::Owned(name.clone()), value));
            }
        }
        (from, headers)
    }
}

impl Router for PlanRouter {
    fn route(&self, request: &RouteRequest) -> Result<Routed, Refusal> {
        let destination = self
            .plan
            .destination(&request.destination)
            .ok_or_else(|| Refusal::UnknownDestination(request.destination.clone()))?;
        if request.history.len() >= self.origin.hop_limit {
            return Err(Refusal::HopLimit {
                hops: request.history.len(),
                limit: self.origin.hop_limit,
            });
        }
        if let Some(code) = &request.matter {
            if self.plan.matter(code).is_none() {
                return Err(Refusal::UnknownMatter(code.clone()));
            }
            if let Acceptance::NotAccepted { scope } = self.plan.accepts(&destination.id, code)
                && !request.force
            {
                return Err(Refusal::MatterNotAccepted {
                    destination: destination.id.clone(),
                    matter: code.clone(),
                    scope,
                });
            }
        }
        let trunk = self
            .plan
            .trunk(&destination.trunk)
            .ok_or_else(|| no_gateway(destination, "its trunk is missing"))?;

        let active = self.plan.active_gateways(&destination.id, Timestamp::now());
        if active.is_empty() {
            return Err(no_gateway(
                destination,
                "no gateway is in service at this time",
            ));
        }
        let ids: Vec<GatewayId> = active
            .iter()
            .map(|gateway| GatewayId::new(gateway.id.as_str()))
            .collect();
        let selection = self.registry.select(&ids, &mut rand::rng());
        if selection.order.is_empty() {
            let mut reason = String::new();
            for skipped in &selection.skipped {
                let _ = write!(reason, "{} {}; ", skipped.id, skipped.reason);
            }
            return Err(no_gateway(destination, reason.trim_end_matches("; ")));
        }

        let gateways: Vec<GatewayRoute> = selection
            .order
            .iter()
            .filter_map(|id| {
                active
                    .iter()
                    .find(|gateway| gateway.id.as_str() == id.as_str())
            })
            .filter_map(|gateway| self.routed_gateway(destination, gateway))
            .collect();
        let Some(first) = gateways.first() else {
            return Err(no_gateway(destination, "no gateway address resolves"));
        };
        let first_gateway = active
            .iter()
            .find(|gateway| gateway.id.as_str() == first.id)
            .copied();
        let (from, headers) = match first_gateway {
            Some(gateway) => self.headers(trunk, gateway, request, &first.request_uri),
            None => (String::new(), Vec::new()),
        };
        Ok(Routed {
            destination: destination.id.clone(),
            gateways,
            from,
            headers,
            ring_timeout: Duration::from_secs(u64::from(destination.ring_timeout_secs)),
            credentials: trunk.credentials.as_ref().and_then(|credentials| {
                Some(crate::session::routing::Credentials {
                    username: credentials.username.clone(),
                    password: credentials.password()?,
                    realm: credentials.realm.clone(),
                })
            }),
        })
    }

    fn match_keys(&self, keys: &str) -> KeyMatch {
        match self.plan.match_keys(keys) {
            PlanMatch::Complete(destination) => KeyMatch::Complete(destination.to_owned()),
            PlanMatch::Partial => KeyMatch::Partial,
            PlanMatch::NoMatch => KeyMatch::NoMatch,
        }
    }

    fn key_prefixes(&self) -> u16 {
        self.prefixes
    }

    fn inter_digit_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.plan.keys().settings.inter_digit_timeout_ms))
    }

    fn resolve_refer_to(&self, uri: &str) -> Option<String> {
        self.plan.resolve_refer_to(uri).map(str::to_owned)
    }

    fn acquire_channel(&self, gateway: &str) -> Option<ChannelSlot> {
        match self.registry.try_acquire(&GatewayId::new(gateway)) {
            Ok(guard) => Some(Box::new(guard)),
            // A gateway the registry does not track has no limit to enforce.
            Err(crate::trunk::registry::AcquireError::UnknownGateway { .. }) => Some(Box::new(())),
            Err(_) => None,
        }
    }

    fn report(&self, gateway: &str, outcome: GatewayOutcome) {
        let id = GatewayId::new(gateway);
        let _ = match outcome {
            GatewayOutcome::Response(status) => self.registry.record_invite_response(&id, status),
            GatewayOutcome::Timeout => self
                .registry
                .record(&id, Signal::Failure(FailureCause::Timeout)),
            GatewayOutcome::TransportError => self
                .registry
                .record(&id, Signal::Failure(FailureCause::TransportError)),
        };
    }

    fn version(&self) -> String {
        self.plan.fingerprint().to_owned()
    }
}

fn no_gateway(destination: &Destination, reason: &str) -> Refusal {
    Refusal::NoGateway {
        destination: destination.id.clone(),
        reason: reason.to_owned(),
    }
}

/// History-Info (RFC 7044): the entries the call arrived with, then the transferring
/// hotline and the new target as its child.
fn history_info(request: &RouteRequest, origin_uri: &str, target: &Uri) -> String {
    let mut entries: Vec<String> = request.history.clone();
    let base = entries.len() + 1;
    entries.push(format!("<{origin_uri}>;index={base}"));
    entries.push(format!("<{target}>;index={base}.1"));
    entries.join(",")
}

/// The transfer context carried in User-to-User (RFC 7433), as form-encoded pairs.
fn context_payload(request: &RouteRequest, origin: &str) -> String {
    let mut payload = String::new();
    let mut add = |name: &str, value: Option<&str>| {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            if !payload.is_empty() {
                payload.push('&');
            }
            let _ = write!(payload, "{name}={}", form_encode(value));
        }
    };
    add("matter", request.matter.as_deref());
    add("ticket", request.ticket.as_deref());
    add("origin", Some(origin));
    add("agent", request.agent.as_deref());
    payload
}

fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// Builds the Request-URI and transport target of a transfer to `destination` through
/// `gateway`; `None` when the URI is invalid or the address does not resolve.
fn build_gateway_route(
    plan: &Plan,
    destination: &Destination,
    gateway: &Gateway,
) -> Option<GatewayRoute> {
    let request_uri: Uri = plan.request_uri(destination, gateway).parse().ok()?;
    let target = resolve_now(&gateway.address, gateway.transport)?;
    Some(GatewayRoute {
        id: gateway.id.as_str().to_owned(),
        target,
        request_uri,
    })
}

/// Resolves a gateway address now. IP literals need no lookup.
///
/// NOTE: a host name is looked up with the blocking system resolver on the call's task,
/// and only A/AAAA records are used (no RFC 3263 NAPTR or SRV).
fn resolve_now(address: &Uri, transport: PlanTransport) -> Option<Target> {
    let protocol = match transport {
        PlanTransport::Tcp => Protocol::Tcp,
        PlanTransport::Udp => Protocol::Udp,
    };
    let port = address.port.unwrap_or(5060);
    let ip = match address.host.as_ref()? {
        Host::Ipv4(ip) => IpAddr::V4(*ip),
        Host::Ipv6(ip) => IpAddr::V6(*ip),
        Host::Domain(name) => {
            let found = (name.as_str(), port).to_socket_addrs().ok()?.next();
            found?.ip()
        }
    };
    Some(Target {
        addr: SocketAddr::new(ip, port),
        protocol,
    })
}

/// The gateways of a plan as the trunk registry tracks them.
pub fn gateway_specs(plan: &Plan) -> Vec<GatewaySpec> {
    let mut specs = Vec::new();
    for trunk in plan.trunks() {
        let check = &trunk.health_check;
        let probe = ProbeSpec {
            enabled: check.enabled,
            interval: Duration::from_secs(u64::from(check.interval_secs.max(1))),
            timeout: Duration::from_millis(u64::from(check.timeout_ms.max(1))),
            down_after: check.failures_to_down.max(1),
            up_after: check.successes_to_up.max(1),
        };
        for gateway in &trunk.gateways {
            let mut uri = gateway.address.clone();
            if gateway.transport == PlanTransport::Tcp {
                uri.params.set("transport", Some("tcp".to_owned()));
            }
            specs.push(GatewaySpec {
                id: GatewayId::new(gateway.id.as_str()),
                trunk: TrunkId::new(&trunk.id),
                target: GatewayTarget::Uri(uri),
                priority: gateway.priority,
                weight: gateway.weight,
                channel_limit: gateway.channels,
                probe,
            });
        }
    }
    debug!(gateways = specs.len(), "gateways from the dialplan");
    specs
}
