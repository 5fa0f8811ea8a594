//! `[trunk.<id>]` tables: number format, identity policy, context headers, credentials,
//! health checks and the gateways.

use std::ops::Range;

use toml::de::DeTable;

use super::{Draft, Reader, Value, path_key};
use crate::dialplan::model::{
    ContextField, ContextHeaders, Credentials, Gateway, GatewayId, HealthCheck, IdentityPolicy,
    Transport, Trunk,
};
use crate::dialplan::number::NumberFormat;
use crate::sip::uri::{Scheme, Uri};

const TRUNK_KEYS: &[&str] = &[
    "numbers",
    "identity",
    "domain",
    "context",
    "auth",
    "health_check",
    "gateway",
];
const CONTEXT_KEYS: &[&str] = &["history_info", "diversion", "user_to_user", "headers"];
const AUTH_KEYS: &[&str] = &["username", "realm", "password_env"];
const HEALTH_KEYS: &[&str] = &[
    "enabled",
    "interval_secs",
    "timeout_ms",
    "failures_to_down",
    "successes_to_up",
];
const GATEWAY_KEYS: &[&str] = &[
    "address",
    "transport",
    "priority",
    "weight",
    "channels",
    "schedule",
];

/// Headers the engine writes itself, which a context header must not replace. Compact
/// forms (RFC 3261 §7.3.3) are one letter and rejected by length.
const ENGINE_HEADERS: &[&str] = &[
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "max-forwards",
    "content-length",
    "content-type",
    "route",
    "record-route",
    "p-asserted-identity",
    "privacy",
    "history-info",
    "diversion",
    "user-to-user",
    "refer-to",
    "referred-by",
    "replaces",
    "authorization",
    "proxy-authorization",
    "allow",
    "supported",
    "require",
    "user-agent",
];

const MAX_PRIORITY: u32 = 1_000;
const MAX_WEIGHT: u32 = 1_000;
const MAX_CHANNELS: u32 = 100_000;

impl<'i> Reader<'i> {
    pub(super) fn read_trunks(&mut self, table: &DeTable<'i>, draft: &mut Draft) {
        for (key, value) in table {
            let Some(id) = self.id("trunk", key) else {
                continue;
            };
            let path = format!("trunk.{id}");
            let Some(table) = self.table(&path, value) else {
                continue;
            };
            let origin = self.origin(value.span().start);
            let mut trunk = Trunk {
                id: id.clone(),
                numbers: NumberFormat::E164,
                identity: IdentityPolicy::Pai,
                domain: None,
                context: ContextHeaders::default(),
                credentials: None,
                health_check: HealthCheck::default(),
                gateways: Vec::new(),
                origin,
            };
            self.read_trunk(&path, table, &mut trunk);
            if !table.contains_key("gateway") {
                self.missing(&path, &value.span(), "gateway");
            }
            // Kept even when a value is invalid, so that destinations using the trunk do
            // not get a second, false report. No plan is built while problems remain.
            draft.trunks.push(trunk);
        }
    }

    /// Fills `trunk` from its table; invalid values keep their defaults.
    fn read_trunk(&mut self, path: &str, table: &DeTable<'i>, trunk: &mut Trunk) {
        for (key, value) in self.entries(path, table, TRUNK_KEYS) {
            let field = format!("{path}.{key}");
            match key {
                "numbers" => {
                    let names = ["e164", "national", "user"];
                    if let Some(format) = self.choice(&field, value, &names, NumberFormat::parse) {
                        trunk.numbers = format;
                    }
                }
                "identity" => {
                    let names = ["pai", "from", "anonymous"];
                    if let Some(policy) = self.choice(&field, value, &names, IdentityPolicy::parse)
                    {
                        trunk.identity = policy;
                    }
                }
                "domain" => trunk.domain = self.domain(&field, value),
                "context" => self.context(&field, value, &mut trunk.context),
                "auth" => trunk.credentials = self.credentials(&field, value),
                "health_check" => self.health_check(&field, value, &mut trunk.health_check),
                _ => self.gateways(&field, value, trunk),
            }
        }
    }

    /// Reads a string that must be one of `names`.
    fn choice<T>(
        &mut self,
        field: &str,
        value: &Value<'i>,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let text = self.string(field, value)?;
        let parsed = parse(&text);
        if parsed.is_none() {
            let expected: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
            let message = format!(
                "{field} must be one of {}, found {text:?}",
                expected.join(", ")
            );
            self.report(value.span().start, message);
        }
        parsed
    }

    fn domain(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let domain = self.string(field, value)?;
        if domain.parse::<crate::sip::uri::Host>().is_err() {
            let message = format!("{field} must be a host name or IP address, found {domain:?}");
            self.report(value.span().start, message);
            return None;
        }
        Some(domain)
    }

    fn context(&mut self, path: &str, value: &Value<'i>, context: &mut ContextHeaders) {
        let Some(table) = self.table(path, value) else {
            return;
        };
        for (key, value) in self.entries(path, table, CONTEXT_KEYS) {
            let field = format!("{path}.{key}");
            let slot = match key {
                "history_info" => &mut context.history_info,
                "diversion" => &mut context.diversion,
                "user_to_user" => &mut context.user_to_user,
                _ => {
                    context.headers = self.context_headers(&field, value);
                    continue;
                }
            };
            if let Some(flag) = self.boolean(&field, value) {
                *slot = flag;
            }
        }
    }

    fn context_headers(&mut self, path: &str, value: &Value<'i>) -> Vec<(String, ContextField)> {
        let Some(table) = self.table(path, value) else {
            return Vec::new();
        };
        let names: Vec<&str> = ContextField::ALL
            .iter()
            .map(|field| field.as_str())
            .collect();
        let mut headers = Vec::new();
        for (key, value) in table {
            let name: &str = key.get_ref();
            let field = format!("{path}.{}", path_key(name));
            if let Err(message) = check_header_name(name) {
                self.report(key.span().start, format!("{field}: {message}"));
                continue;
            }
            if let Some(context_field) = self.choice(&field, value, &names, ContextField::parse) {
                headers.push((name.to_owned(), context_field));
            }
        }
        // Keep the order of the file, not toml's sorted order.
        headers.sort_by_key(|(name, _)| {
            table
                .iter()
                .find(|(key, _)| key.get_ref() == name)
                .map_or(0, |(key, _)| key.span().start)
        });
        headers
    }

    fn credentials(&mut self, path: &str, value: &Value<'i>) -> Option<Credentials> {
        let table = self.table(path, value)?;
        let mut username = None;
        let mut realm = None;
        let mut password_env = None;
        for (key, value) in self.entries(path, table, AUTH_KEYS) {
            let field = format!("{path}.{key}");
            match key {
                "username" => username = self.text(&field, value),
                "realm" => realm = self.text(&field, value),
                _ => password_env = self.password_env(&field, value),
            }
        }
        for key in ["username", "password_env"] {
            if !table.contains_key(key) {
                self.missing(path, &value.span(), key);
            }
        }
        Some(Credentials {
            username: username?,
            realm,
            password_env: password_env?,
        })
    }

    /// Reads the name of the environment variable holding a password, and checks that it
    /// is set, so that a missing secret is found before the first call needs it.
    fn password_env(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let name = self.string(field, value)?;
        let valid = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            let message = format!(
                "{field} must be the name of an environment variable (letters, digits and _), \
                 never the password itself"
            );
            self.report(value.span().start, message);
            return None;
        }
        if std::env::var_os(&name).is_none() {
            let message = format!(
                "{field} names the environment variable {name}, which is not set; set it to \
                 the trunk password before starting the engine"
            );
            self.report(value.span().start, message);
            return None;
        }
        Some(name)
    }

    fn health_check(&mut self, path: &str, value: &Value<'i>, check: &mut HealthCheck) {
        let Some(table) = self.table(path, value) else {
            return;
        };
        let mut timeout_offset = None;
        let mut valid = true;
        for (key, value) in self.entries(path, table, HEALTH_KEYS) {
            let field = format!("{path}.{key}");
            if key == "enabled" {
                match self.boolean(&field, value) {
                    Some(enabled) => check.enabled = enabled,
                    None => valid = false,
                }
                continue;
            }
            let (slot, min, max) = match key {
                "interval_secs" => (&mut check.interval_secs, 1, 3_600),
                "timeout_ms" => {
                    timeout_offset = Some(value.span().start);
                    (&mut check.timeout_ms, 100, 60_000)
                }
                "failures_to_down" => (&mut check.failures_to_down, 1, 100),
                _ => (&mut check.successes_to_up, 1, 100),
            };
            match self.int(&field, value, min, max) {
                Some(number) => *slot = number,
                None => valid = false,
            }
        }

        let interval_ms = u64::from(check.interval_secs) * 1000;
        if valid && u64::from(check.timeout_ms) > interval_ms {
            let message = format!(
                "{path}.timeout_ms ({}) must not be longer than interval_secs ({} s), or \
                 probes of one gateway would overlap",
                check.timeout_ms, check.interval_secs
            );
            self.report(timeout_offset.unwrap_or(value.span().start), message);
        }
    }

    fn gateways(&mut self, path: &str, value: &Value<'i>, trunk: &mut Trunk) {
        let Some(table) = self.table(path, value) else {
            return;
        };
        if table.is_empty() {
            let message = format!("{path} has no gateways, add at least one [{path}.<name>]");
            self.report(value.span().start, message);
            return;
        }
        for (key, value) in table {
            let Some(name) = self.id(path, key) else {
                continue;
            };
            let field = format!("{path}.{name}");
            let Some(table) = self.table(&field, value) else {
                continue;
            };
            let id = GatewayId::new(&trunk.id, &name);
            if let Some(gateway) = self.gateway(&field, id, table, value.span()) {
                trunk.gateways.push(gateway);
            }
        }
        trunk.gateways.sort_by(|a, b| {
            (a.origin.line, a.origin.column).cmp(&(b.origin.line, b.origin.column))
        });
    }

    fn gateway(
        &mut self,
        path: &str,
        id: GatewayId,
        table: &DeTable<'i>,
        span: Range<usize>,
    ) -> Option<Gateway> {
        let mut address = None;
        let mut transport = None;
        let mut priority = Some(1);
        let mut weight = Some(1);
        let mut channels = Some(None);
        let mut schedule = Default::default();
        let mut valid = true;
        for (key, value) in self.entries(path, table, GATEWAY_KEYS) {
            let field = format!("{path}.{key}");
            match key {
                "address" => address = self.gateway_address(&field, value),
                "transport" => {
                    let parse = |name: &str| match name {
                        "udp" => Some(Transport::Udp),
                        "tcp" => Some(Transport::Tcp),
                        _ => None,
                    };
                    match self.choice(&field, value, &["udp", "tcp"], parse) {
                        Some(parsed) => transport = Some((parsed, value.span().start)),
                        None => valid = false,
                    }
                }
                "priority" => priority = self.int(&field, value, 0, MAX_PRIORITY),
                "weight" => weight = self.int(&field, value, 1, MAX_WEIGHT),
                "channels" => channels = self.int(&field, value, 1, MAX_CHANNELS).map(Some),
                _ => schedule = self.schedule(&field, value),
            }
        }
        if !table.contains_key("address") {
            self.missing(path, &span, "address");
        }

        let (address, uri_transport) = address.filter(|_| valid)?;
        let transport = match (transport, uri_transport) {
            (Some((chosen, offset)), Some(in_uri)) if chosen != in_uri => {
                let message = format!(
                    "{path}.transport is \"{chosen}\" but the address has ;transport={in_uri}"
                );
                self.report(offset, message);
                return None;
            }
            (Some((chosen, _)), _) => chosen,
            (None, in_uri) => in_uri.unwrap_or(Transport::Udp),
        };
        Some(Gateway {
            id,
            address,
            transport,
            priority: priority?,
            weight: weight?,
            channels: channels?,
            schedule,
            origin: self.origin(span.start),
        })
    }

    /// Reads `host:port` or a `sip:` URI without user part. Returns the address as a URI
    /// and the transport named by its `transport` parameter.
    fn gateway_address(
        &mut self,
        field: &str,
        value: &Value<'i>,
    ) -> Option<(Uri, Option<Transport>)> {
        let text = self.string(field, value)?;
        match parse_gateway_address(&text) {
            Ok(parsed) => Some(parsed),
            Err(reason) => {
                let message = format!("{field} {text:?} is not a usable gateway address: {reason}");
                self.report(value.span().start, message);
                None
            }
        }
    }
}

fn parse_gateway_address(text: &str) -> Result<(Uri, Option<Transport>), String> {
    let lower = text.trim().to_ascii_lowercase();
    let is_uri = ["sip:", "sips:", "tel:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme));
    let uri_text = match is_uri {
        true => text.trim().to_owned(),
        false if text.contains(['@', ';', '?']) => {
            return Err("write host:port, or a sip: URI for parameters".to_owned());
        }
        false => format!("sip:{}", text.trim()),
    };
    let uri: Uri = uri_text.parse().map_err(|error| format!("{error}"))?;

    match uri.scheme {
        Scheme::Sip => {}
        Scheme::Sips => return Err("sips: needs TLS, which the engine does not have".to_owned()),
        _ => return Err("expected host:port or a sip: URI".to_owned()),
    }
    if uri.user.is_some() {
        return Err(
            "a user part is not allowed, the engine writes the hotline's number".to_owned(),
        );
    }
    if !uri.headers.is_empty() {
        return Err("URI headers (?...) are not allowed".to_owned());
    }
    let transport = match uri.params.value("transport") {
        None => None,
        Some(name) if name.eq_ignore_ascii_case("udp") => Some(Transport::Udp),
        Some(name) if name.eq_ignore_ascii_case("tcp") => Some(Transport::Tcp),
        Some(name) => {
            return Err(format!(
                "transport {name:?} is not supported, use udp or tcp"
            ));
        }
    };
    Ok((uri, transport))
}

fn check_header_name(name: &str) -> Result<(), String> {
    // RFC 3261 §25.1 token characters.
    let token = |ch: char| ch.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(ch);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if name.len() == 1 || ENGINE_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{name} is a header the engine writes itself, choose another name such as X-{name}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_address_forms() {
        let (uri, transport) = parse_gateway_address("127.0.0.1:5081").unwrap();
        assert_eq!(uri.to_string(), "sip:127.0.0.1:5081");
        assert_eq!(transport, None);

        let (uri, transport) = parse_gateway_address("sip:gw.example.net;transport=TCP").unwrap();
        assert_eq!(uri.to_string(), "sip:gw.example.net;transport=TCP");
        assert_eq!(transport, Some(Transport::Tcp));

        let (uri, _) = parse_gateway_address("[::1]:5090").unwrap();
        assert_eq!(uri.to_string(), "sip:[::1]:5090");
    }

    #[test]
    fn gateway_address_rejects() {
        for (text, reason) in [
            ("", "missing host"),
            ("127.0.0.1:99999", "invalid port"),
            ("sips:gw.example.net", "TLS"),
            ("tel:+861012345", "expected host:port"),
            ("sip:12345@gw.example.net", "user part"),
            ("gw@example.net", "host:port"),
            ("sip:gw.example.net;transport=sctp", "sctp"),
            ("sip:gw.example.net?Subject=x", "headers"),
        ] {
            let error = parse_gateway_address(text).unwrap_err();
            assert!(error.contains(reason), "{text:?}: {error}");
        }
    }

    #[test]
    fn header_names() {
        assert!(check_header_name("X-Work-Order").is_ok());
        assert!(check_header_name("History-Info").is_err());
        assert!(check_header_name("f").is_err());
        assert!(check_header_name("X Work").is_err());
    }
}
