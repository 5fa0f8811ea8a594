//! What a transfer would do, step by step, without placing it. An explanation names the
//! rule that matches the trigger and the destination. It lists the gateways in the order
//! they would be tried and the headers that would be sent, and says whether the hotline
//! accepts the matter.
//!
//! Values only known when a real transfer starts (the transferring hotline's address,
//! the agent, the work order) appear as `${origin}`, `${agent}` and `${work_order}`.

use std::fmt;

use serde::Serialize;

use super::model::{
    Acceptance, ContextField, Destination, Gateway, GatewayId, IdentityPolicy, Origin, Transport,
    Trunk,
};
use super::{KeyMatch, Plan, Route, Timestamp, request_uri, sort_gateways};

/// Request for a transfer, by its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Trigger {
    /// DTMF keys pressed by the agent, with the terminator if one was pressed.
    Keys(String),
    /// The Refer-To value of a REFER from the agent.
    ReferTo(String),
    /// A destination id, as the HTTP control interface or an operator gives it.
    Destination(String),
    /// A destination name from the HTTP control interface.
    Name(String),
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Keys(keys) => write!(f, "keys {keys:?}"),
            Trigger::ReferTo(uri) => write!(f, "Refer-To {uri:?}"),
            Trigger::Destination(id) => write!(f, "destination {id:?}"),
            Trigger::Name(name) => write!(f, "name {name:?}"),
        }
    }
}

/// Health of a gateway as the trunk's OPTIONS probes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
    /// Not probed yet, or probes are disabled.
    Unknown,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Unknown => "unknown",
        };
        f.write_str(name)
    }
}

/// Live state of the gateways, supplied by the trunk module.
pub trait GatewayStatus {
    /// Current health of `gateway`, `None` when it is not tracked.
    fn health(&self, gateway: &GatewayId) -> Option<Health>;
    /// Channels of `gateway` not in use, `None` when they are not tracked.
    fn free_channels(&self, gateway: &GatewayId) -> Option<u32>;
}

/// Inputs of [`explain`] besides the trigger.
#[derive(Clone, Copy)]
pub struct ExplainOptions<'a> {
    /// Catalogue code of the matter being transferred.
    pub matter: Option<&'a str>,
    /// The caller's number, as the switch presented it.
    pub caller: Option<&'a str>,
    /// When the transfer would happen; schedules are judged at this instant.
    pub at: Timestamp,
    /// Live gateway state. Without it every gateway's health is unknown and its free
    /// channels equal its limit.
    pub status: Option<&'a dyn GatewayStatus>,
}

/// The rule that matched the trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    /// Such as `keys.map "*1"` or `numbers "022-12345"`.
    pub rule: String,
    pub origin: Origin,
}

/// The destination as shown in an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationSummary {
    pub id: String,
    pub name: String,
    pub name_en: String,
    pub area_code: String,
    pub trunk: String,
    pub ring_timeout_secs: u32,
    /// The schedule rules, or `always`.
    pub schedule: Vec<String>,
    /// Whether the schedule allows a transfer at the explained instant.
    pub active: bool,
}

/// One gateway in the order it would be tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayPlan {
    pub id: GatewayId,
    pub address: String,
    pub transport: Transport,
    pub priority: u32,
    pub weight: u32,
    pub health: Health,
    /// Configured channel limit, `None` for no limit.
    pub channels: Option<u32>,
    /// Free channels, `None` for no limit.
    pub free_channels: Option<u32>,
    pub request_uri: String,
    /// Reason the gateway would be skipped, `None` when it would be tried.
    pub skipped: Option<String>,
}

/// One header as it would be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderPreview {
    pub name: String,
    pub value: String,
}

/// The catalogue's word on the matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatterCheck {
    pub code: String,
    /// `None` when the code is not in the catalogue.
    pub name: Option<String>,
    pub name_en: Option<String>,
    #[serde(flatten)]
    pub acceptance: Acceptance,
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Routed {
        destination: String,
        gateway: GatewayId,
        request_uri: String,
    },
    Refused {
        reason: String,
    },
}

/// The whole explanation. `Display` writes it for people, `Serialize` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub fingerprint: String,
    pub catalogue_version: Option<String>,
    pub at: Timestamp,
    pub trigger: Trigger,
    pub rule: Option<RuleMatch>,
    pub destination: Option<DestinationSummary>,
    pub gateways: Vec<GatewayPlan>,
    /// Headers of the INVITE to the first gateway that would be tried.
    pub headers: Vec<HeaderPreview>,
    pub matter: Option<MatterCheck>,
    pub decision: Decision,
}

impl Explanation {
    pub fn is_routed(&self) -> bool {
        matches!(self.decision, Decision::Routed { .. })
    }
}

/// Explains what `trigger` would do under `plan`. Pure: the instant and any live state
/// come from `options`.
pub fn explain(plan: &Plan, trigger: Trigger, options: ExplainOptions<'_>) -> Explanation {
    let mut refusals = Vec::new();
    let (rule, destination) = match find_rule(plan, &trigger) {
        Ok((rule, destination)) => (Some(rule), Some(destination)),
        Err(reason) => {
            refusals.push(reason);
            (None, None)
        }
    };

    let matter = options.matter.map(|code| {
        let category = plan.matter(code);
        MatterCheck {
            code: code.to_owned(),
            name: category.map(|category| category.name.clone()),
            name_en: category.map(|category| category.name_en.clone()),
            acceptance: destination.map_or(Acceptance::Unknown, |destination| {
                plan.accepts(&destination.id, code)
            }),
        }
    });

    let mut explanation = Explanation {
        fingerprint: plan.fingerprint().to_owned(),
        catalogue_version: plan.catalogue_version().map(str::to_owned),
        at: options.at,
        trigger,
        rule,
        destination: None,
        gateways: Vec::new(),
        headers: Vec::new(),
        matter,
        decision: Decision::Refused {
            reason: String::new(),
        },
    };
    let routed = destination.and_then(|destination| {
        let trunk = plan.trunk(&destination.trunk)?;
        Some(explain_destination(
            &mut explanation,
            &mut refusals,
            destination,
            trunk,
            &options,
        ))
    });

    if let Some(check) = &explanation.matter {
        refusals.extend(matter_refusal(plan, check, destination));
    }
    explanation.decision = match (refusals.into_iter().next(), routed.flatten()) {
        (None, Some(decision)) => decision,
        (Some(reason), _) => Decision::Refused { reason },
        (None, None) => Decision::Refused {
            reason: "no gateway can take the call".to_owned(),
        },
    };
    explanation
}

/// Finds the rule and destination of `trigger`, or the reason there is none.
fn find_rule<'p>(
    plan: &'p Plan,
    trigger: &Trigger,
) -> Result<(RuleMatch, &'p Destination), String> {
    let route_match = |route: &Route| {
        let rule = RuleMatch {
            rule: route.rule.clone(),
            origin: route.origin.clone(),
        };
        (rule, &plan.destinations[route.destination])
    };
    match trigger {
        Trigger::Keys(keys) => match plan.match_keys(keys) {
            KeyMatch::Complete(id) => {
                let sequence = keys.to_ascii_uppercase();
                let body = plan
                    .keys()
                    .settings
                    .terminator
                    .and_then(|terminator| sequence.strip_suffix(terminator))
                    .unwrap_or(&sequence);
                let binding = plan.keys().binding(body);
                let destination = plan.destination(id);
                match (binding, destination) {
                    (Some(binding), Some(destination)) => Ok((
                        RuleMatch {
                            rule: format!("keys.map {:?}", binding.sequence),
                            origin: binding.origin.clone(),
                        },
                        destination,
                    )),
                    _ => Err(format!("keys {keys:?} match no transfer key")),
                }
            }
            KeyMatch::Partial => Err(format!(
                "keys {keys:?} are the start of a longer transfer key, more keys are needed"
            )),
            KeyMatch::NoMatch => Err(format!("keys {keys:?} match no transfer key")),
        },
        Trigger::ReferTo(uri) => plan.route_refer_to(uri).map(route_match).ok_or_else(|| {
            format!(
                "Refer-To {uri:?} names no destination of the plan, and only listed \
                 destinations may be called"
            )
        }),
        Trigger::Destination(id) => plan
            .destination(id)
            .map(|destination| {
                let rule = RuleMatch {
                    rule: format!("destination.{id}"),
                    origin: destination.origin.clone(),
                };
                (rule, destination)
            })
            .ok_or_else(|| format!("no destination has the id {id:?}")),
        Trigger::Name(name) => {
            let route = plan.route(super::AliasKind::Name, &super::reader::name_key(name));
            route
                .map(route_match)
                .ok_or_else(|| format!("no destination is named {name:?}"))
        }
    }
}

/// Fills the destination, gateways and headers; returns the routed decision when a
/// gateway can take the call.
fn explain_destination(
    explanation: &mut Explanation,
    refusals: &mut Vec<String>,
    destination: &Destination,
    trunk: &Trunk,
    options: &ExplainOptions<'_>,
) -> Option<Decision> {
    let active = destination.schedule.is_active(options.at);
    let schedule = match destination.schedule.rules.is_empty() {
        true => vec!["always".to_owned()],
        false => destination
            .schedule
            .rules
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    explanation.destination = Some(DestinationSummary {
        id: destination.id.clone(),
        name: destination.name.clone(),
        name_en: destination.name_en.clone(),
        area_code: destination.area_code.clone(),
        trunk: trunk.id.clone(),
        ring_timeout_secs: destination.ring_timeout_secs,
        schedule,
        active,
    });
    if !active {
        refusals.push(format!(
            "destination {} takes no transfers at {} under its schedule",
            destination.id, options.at
        ));
    }

    let mut gateways: Vec<&Gateway> = trunk.gateways.iter().collect();
    sort_gateways(&mut gateways);
    explanation.gateways = gateways
        .iter()
        .map(|gateway| plan_gateway(trunk, destination, gateway, options))
        .collect();

    let chosen = explanation
        .gateways
        .iter()
        .position(|gateway| gateway.skipped.is_none());
    let preview = gateways.get(chosen.unwrap_or(0))?;
    explanation.headers = headers(trunk, destination, preview, options);

    let Some(index) = chosen else {
        refusals.push(format!(
            "no gateway of trunk {} can take the call, see the reasons above",
            trunk.id
        ));
        return None;
    };
    let gateway = &explanation.gateways[index];
    Some(Decision::Routed {
        destination: destination.id.clone(),
        gateway: gateway.id.clone(),
        request_uri: gateway.request_uri.clone(),
    })
}

fn plan_gateway(
    trunk: &Trunk,
    destination: &Destination,
    gateway: &Gateway,
    options: &ExplainOptions<'_>,
) -> GatewayPlan {
    let health = options
        .status
        .and_then(|status| status.health(&gateway.id))
        .unwrap_or(Health::Unknown);
    let free_channels = options
        .status
        .and_then(|status| status.free_channels(&gateway.id))
        .or(gateway.channels);

    let skipped = if !gateway.schedule.is_active(options.at) {
        Some(format!("not scheduled at {}", options.at))
    } else if health == Health::Down {
        Some("marked down by its health checks".to_owned())
    } else if free_channels == Some(0) {
        Some("no free channels".to_owned())
    } else {
        None
    };
    GatewayPlan {
        id: gateway.id.clone(),
        address: gateway.address.to_string(),
        transport: gateway.transport,
        priority: gateway.priority,
        weight: gateway.weight,
        health,
        channels: gateway.channels,
        free_channels,
        request_uri: request_uri(trunk.numbers, destination, gateway).to_string(),
        skipped,
    }
}

/// Builds the identity and context headers of the INVITE to `gateway`.
fn headers(
    trunk: &Trunk,
    destination: &Destination,
    gateway: &Gateway,
    options: &ExplainOptions<'_>,
) -> Vec<HeaderPreview> {
    let target = request_uri(trunk.numbers, destination, gateway).to_string();
    let caller = options.caller.map_or_else(
        || "${caller}".to_owned(),
        |caller| trunk.numbers.caller_number(caller),
    );
    let domain = trunk.domain.clone().unwrap_or_else(|| {
        gateway
            .host()
            .map_or_else(|| "invalid".to_owned(), ToString::to_string)
    });
    let caller_uri = format!("<sip:{caller}@{domain}>");

    let mut headers = Vec::new();
    let mut add = |name: &str, value: String| {
        headers.push(HeaderPreview {
            name: name.to_owned(),
            value,
        });
    };
    add("To", format!("<{target}>"));
    match trunk.identity {
        IdentityPolicy::Pai => {
            add("From", caller_uri.clone());
            add("P-Asserted-Identity", caller_uri);
        }
        IdentityPolicy::From => add("From", caller_uri),
        IdentityPolicy::Anonymous => {
            add(
                "From",
                "\"Anonymous\" <sip:anonymous@anonymous.invalid>".to_owned(),
            );
            add("P-Asserted-Identity", caller_uri);
            add("Privacy", "id".to_owned());
        }
    }

    let context = &trunk.context;
    if context.history_info {
        add(
            "History-Info",
            format!("<${{origin}}>;index=1,<{target}>;index=1.1"),
        );
    }
    if context.diversion {
        add("Diversion", "<${origin}>;reason=deflection".to_owned());
    }
    let matter = options.matter.unwrap_or("${matter}");
    if context.user_to_user {
        // The same fields, in the same order, as the engine sends (empty ones are left out).
        let payload =
            format!("matter={matter}&ticket=${{work_order}}&origin=${{origin}}&agent=${{agent}}");
        add(
            "User-to-User",
            format!("hex({payload});encoding=hex;purpose=hotline-transfer"),
        );
    }
    for (name, field) in &context.headers {
        let value = match field {
            ContextField::Matter => matter.to_owned(),
            ContextField::Caller => caller.clone(),
            ContextField::WorkOrder => "${work_order}".to_owned(),
            ContextField::Agent => "${agent}".to_owned(),
            ContextField::Origin => "${origin}".to_owned(),
        };
        add(name, value);
    }
    headers
}

fn matter_refusal(
    plan: &Plan,
    check: &MatterCheck,
    destination: Option<&Destination>,
) -> Option<String> {
    if check.name.is_none() {
        let version = plan.catalogue_version().unwrap_or("without version");
        return Some(format!(
            "matter {:?} is not in the catalogue (version {version})",
            check.code
        ));
    }
    let destination = destination?;
    match &check.acceptance {
        Acceptance::NotAccepted { scope } => Some(format!(
            "destination {} does not accept matter {} ({}): {scope}",
            destination.id,
            check.code,
            check.name.as_deref().unwrap_or_default()
        )),
        _ => None,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.catalogue_version.as_deref().unwrap_or("none");
        writeln!(
            f,
            "plan {} (catalogue {version}) at {}",
            self.fingerprint, self.at
        )?;
        writeln!(f, "1. trigger: {}", self.trigger)?;
        match &self.rule {
            Some(rule) => writeln!(f, "2. rule: {} at {}", rule.rule, rule.origin)?,
            None => writeln!(f, "2. rule: none matches")?,
        }
        if let Some(destination) = &self.destination {
            self.fmt_destination(f, destination)?;
        }
        if let Some(matter) = &self.matter {
            fmt_matter(f, matter)?;
        }
        match &self.decision {
            Decision::Routed {
                destination,
                gateway,
                request_uri,
            } => writeln!(
                f,
                "result: routed to {destination} through {gateway}: INVITE {request_uri}"
            ),
            Decision::Refused { reason } => writeln!(f, "result: refused: {reason}"),
        }
    }
}

impl Explanation {
    fn fmt_destination(
        &self,
        f: &mut fmt::Formatter<'_>,
        destination: &DestinationSummary,
    ) -> fmt::Result {
        writeln!(
            f,
            "3. destination: {} {} ({}), area code {}, trunk {}, rings up to {} s",
            destination.id,
            destination.name,
            destination.name_en,
            destination.area_code,
            destination.trunk,
            destination.ring_timeout_secs
        )?;
        let state = if destination.active {
            "active"
        } else {
            "inactive"
        };
        writeln!(
            f,
            "4. schedule: {} ({state} at {})",
            destination.schedule.join("; "),
            self.at
        )?;
        writeln!(f, "5. gateways in the order tried:")?;
        for (index, gateway) in self.gateways.iter().enumerate() {
            let channels = match (gateway.free_channels, gateway.channels) {
                (Some(free), Some(limit)) => format!("{free} of {limit} channels free"),
                (Some(free), None) => format!("{free} channels free"),
                (None, _) => "no channel limit".to_owned(),
            };
            writeln!(
                f,
                "   {}. {} {} {}, priority {}, weight {}, health {}, {channels}",
                index + 1,
                gateway.id,
                gateway.address,
                gateway.transport,
                gateway.priority,
                gateway.weight,
                gateway.health
            )?;
            match &gateway.skipped {
                Some(reason) => writeln!(f, "      skipped: {reason}")?,
                None => writeln!(f, "      INVITE {}", gateway.request_uri)?,
            }
        }
        writeln!(f, "6. headers:")?;
        for header in &self.headers {
            writeln!(f, "   {}: {}", header.name, header.value)?;
        }
        Ok(())
    }
}

fn fmt_matter(f: &mut fmt::Formatter<'_>, matter: &MatterCheck) -> fmt::Result {
    let name = match (&matter.name, &matter.name_en) {
        (Some(name), Some(name_en)) => format!(" {name} ({name_en})"),
        _ => " (not in the catalogue)".to_owned(),
    };
    let verdict = match &matter.acceptance {
        Acceptance::Accepted { scope } => format!("accepted, scope: {scope}"),
        Acceptance::NotAccepted { scope } => format!("not accepted, scope: {scope}"),
        Acceptance::Unknown => "unknown, the catalogue does not say".to_owned(),
    };
    writeln!(f, "7. matter: {}{name}: {verdict}", matter.code)
}
