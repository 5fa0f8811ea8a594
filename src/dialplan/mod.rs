//! Dialplans: where a transfer may go and how it gets there.
//!
//! Network engineers describe in TOML files under `dialplans/` the other cities' 12345
//! hotlines (destinations) and the trunks and gateways that reach them. The files also
//! list the keys agents press, the Refer-To URIs and HTTP names that select a hotline, and
//! the catalogue of matters each hotline accepts. [`Plan::load`] reads and validates all of them into one immutable
//! [`Plan`], meant to be shared as `Arc<Plan>` and replaced whole on reload. [`explain`]
//! shows what a transfer would do before it happens.
//!
//! The module is pure: no sockets, no tasks, no clock except where a caller passes a
//! [`Timestamp`]. Anything the plan does not list is rejected, which makes the plan the
//! guard against transfers to arbitrary numbers (toll fraud).

mod compile;
mod explain;
mod keys;
mod model;
mod number;
mod reader;
mod time;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use explain::{
    Decision, DestinationSummary, ExplainOptions, Explanation, GatewayPlan, GatewayStatus,
    HeaderPreview, Health, MatterCheck, RuleMatch, Trigger, explain,
};
pub use keys::{KeyBinding, KeyError, KeyMap, KeyMatch, KeySettings};
pub use model::{
    Acceptance, Category, ContextField, ContextHeaders, Credentials, Destination, Gateway,
    GatewayId, HealthCheck, IdentityPolicy, Origin, Transport, Trunk,
};
pub use number::{NumberError, NumberFormat, canonical_number};
pub use time::{Date, LocalTime, Schedule, TimeError, TimeRule, Timestamp, Weekday};

use crate::config::Problem;
use crate::sip::uri::{NameAddr, Scheme, Uri};
use reader::AliasKind;

/// A compiled dialplan: every file loaded, validated and indexed. Immutable.
#[derive(Debug)]
pub struct Plan {
    destinations: Vec<Destination>,
    destination_index: HashMap<String, usize>,
    trunks: Vec<Trunk>,
    trunk_index: HashMap<String, usize>,
    categories: Vec<Category>,
    category_index: HashMap<String, usize>,
    catalogue_version: Option<String>,
    keys: KeyMap,
    /// Numbers (canonical), SIP users and names (lowercase) to destinations.
    routes: HashMap<(AliasKind, String), Route>,
    files: Vec<String>,
    fingerprint: String,
}

/// The alias that leads to a destination, and where it is written.
#[derive(Debug, Clone)]
struct Route {
    /// Index into `Plan::destinations`.
    destination: usize,
    /// Such as `numbers "010-12345"`.
    rule: String,
    origin: Origin,
}

impl Plan {
    /// Loads the dialplan files named by `paths`: each a `.toml` file, or a directory whose
    /// `*.toml` files are read in name order (not recursively). A file named twice is read
    /// once.
    ///
    /// # Errors
    ///
    /// Every problem found in all files, ordered by file and position, including files
    /// and directories that cannot be read. Each is displayed as
    /// `file:line:column: message`.
    pub fn load(paths: &[PathBuf]) -> Result<Plan, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut files: Vec<PathBuf> = Vec::new();
        for path in paths {
            match expand_path(path) {
                Ok(found) => {
                    for file in found {
                        if !files.contains(&file) {
                            files.push(file);
                        }
                    }
                }
                Err(message) => problems.push(file_problem(path, message)),
            }
        }

        let mut sources = Vec::new();
        for file in &files {
            match std::fs::read(file) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => sources.push((file.display().to_string(), text)),
                    Err(error) => {
                        let valid = error.utf8_error().valid_up_to();
                        let text = String::from_utf8_lossy(&error.as_bytes()[..valid]);
                        let (line, column) = crate::config::line_column(&text, text.len());
                        problems.push(Problem {
                            file: file.display().to_string(),
                            line,
                            column,
                            message: "invalid UTF-8, the file must be UTF-8 text".to_owned(),
                        });
                    }
                },
                Err(error) => problems.push(file_problem(file, format!("failed to read: {error}"))),
            }
        }

        match Plan::from_sources(&sources) {
            Ok(plan) if problems.is_empty() => Ok(plan),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }

    /// Compiles a plan from `(file name, text)` pairs, as [`Plan::load`] does after
    /// reading the files. The names only appear in problems and explanations.
    ///
    /// # Errors
    ///
    /// Every problem found, ordered by source and position.
    pub fn from_sources<N: AsRef<str>, T: AsRef<str>>(
        sources: &[(N, T)],
    ) -> Result<Plan, Vec<Problem>> {
        let sources: Vec<(&str, &str)> = sources
            .iter()
            .map(|(name, text)| (name.as_ref(), text.as_ref()))
            .collect();
        compile::compile(&sources)
    }

    /// Returns a 16-digit hexadecimal hash of the loaded files' contents, for logs on
    /// reload. Equal fingerprints mean equal plans.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The version of the matter catalogue, such as `2024-12`.
    pub fn catalogue_version(&self) -> Option<&str> {
        self.catalogue_version.as_deref()
    }

    /// Names of the files the plan was compiled from, in load order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Returns all destinations, in file order.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    pub fn destination(&self, id: &str) -> Option<&Destination> {
        let index = self.destination_index.get(id)?;
        self.destinations.get(*index)
    }

    /// Returns all trunks, in file order.
    pub fn trunks(&self) -> &[Trunk] {
        &self.trunks
    }

    pub fn trunk(&self, id: &str) -> Option<&Trunk> {
        let index = self.trunk_index.get(id)?;
        self.trunks.get(*index)
    }

    /// Returns the gateway with `id`, found through the trunk named in the id.
    pub fn gateway(&self, id: &GatewayId) -> Option<&Gateway> {
        let trunk = self.trunk(id.trunk())?;
        trunk.gateways.iter().find(|gateway| gateway.id == *id)
    }

    /// Returns the transfer keys and the collector settings.
    pub fn keys(&self) -> &KeyMap {
        &self.keys
    }

    /// Matches DTMF keys collected so far; see [`KeyMap::match_keys`] for the terminator
    /// rules. On the inter-digit timeout, call it again with the terminator appended when
    /// one is configured; without one, a [`KeyMatch::Partial`] at timeout is no match.
    pub fn match_keys(&self, keys: &str) -> KeyMatch<'_> {
        self.keys.match_keys(keys)
    }

    /// Returns the destination id named by a Refer-To value (RFC 3515 §2.1), with or
    /// without angle brackets, or `None` when the plan does not list it.
    ///
    /// `tel:` numbers and numeric `sip:` users match the destinations' `numbers` after
    /// removing visual separators and converting `+86` to national form. A `tel:` local
    /// number takes a global `phone-context` as prefix (RFC 3966 §5.1.5). Other `sip:`
    /// users match destination ids and `sip_users`, ignoring ASCII case. The host is
    /// ignored: a transfer always leaves through the destination's trunk, never towards
    /// the host named in the URI.
    pub fn resolve_refer_to(&self, uri: &str) -> Option<&str> {
        let route = self.route_refer_to(uri)?;
        Some(&self.destinations[route.destination].id)
    }

    /// Returns the destination id for an HTTP name: a destination id, its `name` (such as
    /// `北京市热线`), `name_en` or one of its `names`, trimmed and compared ignoring ASCII
    /// case.
    pub fn resolve_name(&self, name: &str) -> Option<&str> {
        let route = self.route(AliasKind::Name, &reader::name_key(name))?;
        Some(&self.destinations[route.destination].id)
    }

    /// Returns all categories of the matter catalogue, in file order.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// Returns the catalogue category with `code`.
    pub fn matter(&self, code: &str) -> Option<&Category> {
        let index = self.category_index.get(code)?;
        self.categories.get(*index)
    }

    /// Returns whether `destination` accepts matter `code`, with the scope text that
    /// applies: [`Acceptance::Unknown`] when the catalogue has no entry or no such code.
    pub fn accepts(&self, destination: &str, code: &str) -> Acceptance {
        let (Some(category), Some(destination)) =
            (self.matter(code), self.destination(destination))
        else {
            return Acceptance::Unknown;
        };
        let scope_of = |entries: &[(String, String)]| {
            let (_, scope) = entries.iter().find(|(entry, _)| entry == code)?;
            let scope = if scope.is_empty() {
                &category.scope
            } else {
                scope
            };
            Some(scope.clone())
        };
        if let Some(scope) = scope_of(&destination.rejects) {
            return Acceptance::NotAccepted { scope };
        }
        match scope_of(&destination.accepts) {
            Some(scope) => Acceptance::Accepted { scope },
            None => Acceptance::Unknown,
        }
    }

    /// Returns the gateways a transfer to `destination` at `at` may use, in the order to try:
    /// lowest priority first, higher weight first within a priority. Empty when the
    /// destination is unknown or its schedule excludes `at`; gateways whose schedule
    /// excludes `at` are left out. Health and free channels are up to the caller.
    pub fn active_gateways(&self, destination: &str, at: Timestamp) -> Vec<&Gateway> {
        let Some(destination) = self.destination(destination) else {
            return Vec::new();
        };
        let Some(trunk) = self.trunk(&destination.trunk) else {
            return Vec::new();
        };
        if !destination.schedule.is_active(at) {
            return Vec::new();
        }
        let mut gateways: Vec<&Gateway> = trunk
            .gateways
            .iter()
            .filter(|gateway| gateway.schedule.is_active(at))
            .collect();
        sort_gateways(&mut gateways);
        gateways
    }

    /// Returns the Request-URI of a transfer to `destination` through `gateway`: the hotline's
    /// number in the format of the gateway's trunk, at the gateway's address, with
    /// `;transport=tcp` for TCP gateways (RFC 3261 §19.1.1). A gateway that is not part of
    /// this plan is treated as an E.164 trunk.
    pub fn request_uri(&self, destination: &Destination, gateway: &Gateway) -> String {
        let format = self
            .trunk(gateway.id.trunk())
            .map_or(NumberFormat::E164, |trunk| trunk.numbers);
        request_uri(format, destination, gateway).to_string()
    }

    fn route(&self, kind: AliasKind, key: &str) -> Option<&Route> {
        self.routes.get(&(kind, key.to_owned()))
    }

    fn route_refer_to(&self, text: &str) -> Option<&Route> {
        let text = text.trim();
        let uri = match text.contains('<') {
            true => NameAddr::from_str(text).ok()?.uri,
            false => Uri::from_str(text).ok()?,
        };
        match uri.scheme {
            Scheme::Tel => {
                let number = uri.decoded_user().ok()??;
                let context = uri.params.value("phone-context").unwrap_or("");
                let number = match (number.starts_with('+'), context.starts_with('+')) {
                    (false, true) => format!("{context}{number}"),
                    _ => number,
                };
                self.route(AliasKind::Number, &canonical_number(&number).ok()?)
            }
            Scheme::Sip | Scheme::Sips => {
                let user = uri.decoded_user().ok()??;
                match canonical_number(&user) {
                    Ok(number) => self.route(AliasKind::Number, &number),
                    Err(_) => self.route(AliasKind::SipUser, &user.to_ascii_lowercase()),
                }
            }
            Scheme::Other(_) => None,
        }
    }
}

/// Orders gateways lowest priority first, then higher weight first, then as written.
fn sort_gateways(gateways: &mut [&Gateway]) {
    gateways.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then((a.origin.line, a.origin.column).cmp(&(b.origin.line, b.origin.column)))
    });
}

fn request_uri(format: NumberFormat, destination: &Destination, gateway: &Gateway) -> Uri {
    let user = number::hotline_user(
        format,
        &destination.area_code,
        &destination.service_number,
        destination.user.as_deref(),
    );
    let mut uri = gateway.address.clone();
    uri.user = Some(user);
    if gateway.transport == Transport::Tcp && !uri.params.contains("transport") {
        uri.params.set("transport", Some("tcp".to_owned()));
    }
    uri
}

impl GatewayId {
    /// Returns the id of the trunk the gateway belongs to.
    pub fn trunk(&self) -> &str {
        let id = self.as_str();
        id.split_once('/').map_or(id, |(trunk, _)| trunk)
    }
}

/// Lists the dialplan files of one configured path.
fn expand_path(path: &Path) -> Result<Vec<PathBuf>, String> {
    let metadata = std::fs::metadata(path).map_err(|error| format!("failed to read: {error}"))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path).map_err(|error| format!("failed to list: {error}"))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| format!("failed to list: {error}"))?;
        let file = entry.path();
        let is_toml = file
            .extension()
            .is_some_and(|extension| extension == "toml");
        if is_toml && file.is_file() {
            files.push(file);
        }
    }
    if files.is_empty() {
        return Err("the directory contains no *.toml dialplan files".to_owned());
    }
    files.sort();
    Ok(files)
}

/// Creates a problem with a whole file, reported at its start.
fn file_problem(path: &Path, message: String) -> Problem {
    Problem {
        file: path.display().to_string(),
        line: 1,
        column: 1,
        message,
    }
}
