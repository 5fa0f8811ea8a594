//! `[destination.<id>]` tables: the hotlines calls can be transferred to, and the numbers,
//! SIP users and names that refer to them.

use toml::de::DeTable;

use super::{Alias, AliasKind, Draft, DraftDestination, Reader, Value, path_key};
use crate::dialplan::model::{DEFAULT_RING_TIMEOUT_SECS, DEFAULT_SERVICE_NUMBER, Destination};
use crate::dialplan::number::{canonical_number, is_area_code};
use crate::dialplan::time::Schedule;

const DESTINATION_KEYS: &[&str] = &[
    "name",
    "name_en",
    "area_code",
    "service_number",
    "trunk",
    "user",
    "numbers",
    "sip_users",
    "names",
    "ring_timeout_secs",
    "schedule",
    "accepts",
    "rejects",
];
const MAX_RING_TIMEOUT_SECS: u32 = 600;

/// Fields of a destination table as read, before the required ones are checked.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    name_en: Option<String>,
    area_code: Option<String>,
    service_number: Option<String>,
    trunk: Option<(String, usize)>,
    user: Option<String>,
    ring_timeout_secs: Option<u32>,
    schedule: Schedule,
    accepts: Vec<(String, String, usize)>,
    rejects: Vec<(String, String, usize)>,
}

impl<'i> Reader<'i> {
    pub(super) fn read_destinations(&mut self, table: &DeTable<'i>, draft: &mut Draft) {
        for (key, value) in table {
            let Some(id) = self.id("destination", key) else {
                continue;
            };
            let path = format!("destination.{id}");
            let Some(table) = self.table(&path, value) else {
                continue;
            };
            let origin = self.origin(value.span().start);
            draft.declared_destinations.push((id.clone(), origin));
            self.read_destination(&id, &path, table, value, draft);
        }
    }

    fn read_destination(
        &mut self,
        id: &str,
        path: &str,
        table: &DeTable<'i>,
        value: &Value<'i>,
        draft: &mut Draft,
    ) {
        let mut fields = Fields::default();
        let mut aliases = Vec::new();
        for (key, value) in self.entries(path, table, DESTINATION_KEYS) {
            let field = format!("{path}.{key}");
            match key {
                "name" => fields.name = self.text(&field, value),
                "name_en" => fields.name_en = self.text(&field, value),
                "area_code" => fields.area_code = self.area_code(&field, value),
                "service_number" => fields.service_number = self.service_number(&field, value),
                "trunk" => {
                    let offset = value.span().start;
                    fields.trunk = self.string(&field, value).map(|trunk| (trunk, offset));
                }
                "user" => fields.user = self.sip_user(&field, value),
                "numbers" => self.numbers(id, &field, value, &mut aliases),
                "sip_users" => self.sip_users(id, &field, value, &mut aliases),
                "names" => self.names(id, &field, value, &mut aliases),
                "ring_timeout_secs" => {
                    fields.ring_timeout_secs = self.int(&field, value, 1, MAX_RING_TIMEOUT_SECS);
                }
                "schedule" => fields.schedule = self.schedule(&field, value),
                "accepts" => fields.accepts = self.matters(&field, value),
                _ => fields.rejects = self.matters(&field, value),
            }
        }

        let span = value.span();
        for (key, present) in [
            ("name", table.contains_key("name")),
            ("name_en", table.contains_key("name_en")),
            ("area_code", table.contains_key("area_code")),
            ("trunk", table.contains_key("trunk")),
        ] {
            if !present {
                self.missing(path, &span, key);
            }
        }
        let (Some(name), Some(name_en), Some(area_code), Some((trunk, trunk_offset))) =
            (fields.name, fields.name_en, fields.area_code, fields.trunk)
        else {
            return;
        };

        for (code, _, offset) in &fields.rejects {
            if fields
                .accepts
                .iter()
                .any(|(accepted, _, _)| accepted == code)
            {
                let message =
                    format!("{path}: category `{code}` is listed in both accepts and rejects");
                self.report(*offset, message);
            }
        }
        let matter_origins = fields
            .accepts
            .iter()
            .chain(&fields.rejects)
            .map(|(_, _, offset)| self.origin(*offset))
            .collect();
        let strip = |entries: Vec<(String, String, usize)>| {
            entries
                .into_iter()
                .map(|(code, scope, _)| (code, scope))
                .collect()
        };

        let origin = self.origin(span.start);
        draft.aliases.extend(aliases);
        draft.destinations.push(DraftDestination {
            destination: Destination {
                id: id.to_owned(),
                name,
                name_en,
                area_code,
                service_number: fields
                    .service_number
                    .unwrap_or_else(|| DEFAULT_SERVICE_NUMBER.to_owned()),
                user: fields.user,
                trunk,
                ring_timeout_secs: fields
                    .ring_timeout_secs
                    .unwrap_or(DEFAULT_RING_TIMEOUT_SECS),
                schedule: fields.schedule,
                accepts: strip(fields.accepts),
                rejects: strip(fields.rejects),
                origin,
            },
            trunk_origin: self.origin(trunk_offset),
            matter_origins,
        });
    }

    /// Reads a table of category code to scope text, in file order, with the offset of
    /// each code.
    fn matters(&mut self, path: &str, value: &Value<'i>) -> Vec<(String, String, usize)> {
        let Some(table) = self.table(path, value) else {
            return Vec::new();
        };
        let mut matters = Vec::new();
        for (key, value) in table {
            let code: &str = key.get_ref();
            let field = format!("{path}.{}", path_key(code));
            if let Some(scope) = self.string(&field, value) {
                matters.push((code.to_owned(), scope, key.span().start));
            }
        }
        matters.sort_by_key(|(_, _, offset)| *offset);
        matters
    }

    fn area_code(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let code = self.string(field, value)?;
        if !is_area_code(&code) {
            let message = format!(
                "{field} must be 0 followed by 2 or 3 digits, such as \"010\" or \"0311\", \
                 found {code:?}"
            );
            self.report(value.span().start, message);
            return None;
        }
        Some(code)
    }

    fn service_number(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let number = self.string(field, value)?;
        let digits = (3..=8).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit());
        if !digits {
            let message = format!("{field} must be 3 to 8 digits, found {number:?}");
            self.report(value.span().start, message);
            return None;
        }
        Some(number)
    }

    /// Reads a SIP user part that names a destination: RFC 3261 §25.1 unreserved
    /// characters only, so that it compares without percent-decoding.
    fn sip_user(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let user = self.string(field, value)?;
        if let Err(message) = check_sip_user(&user) {
            self.report(value.span().start, format!("{field} {message}"));
            return None;
        }
        Some(user)
    }

    fn numbers(&mut self, id: &str, field: &str, value: &Value<'i>, aliases: &mut Vec<Alias>) {
        let Some(entries) = self.strings(field, value) else {
            return;
        };
        for (index, (text, offset)) in entries.into_iter().enumerate() {
            match canonical_number(&text) {
                Ok(key) => aliases.push(Alias {
                    kind: AliasKind::Number,
                    key,
                    field: "numbers",
                    written: text.clone(),
                    destination: id.to_owned(),
                    origin: self.origin(offset),
                }),
                Err(error) => self.report(offset, format!("{field}[{index}]: {error}")),
            }
        }
    }

    fn sip_users(&mut self, id: &str, field: &str, value: &Value<'i>, aliases: &mut Vec<Alias>) {
        let Some(entries) = self.strings(field, value) else {
            return;
        };
        for (index, (user, offset)) in entries.into_iter().enumerate() {
            if let Err(message) = check_sip_user(&user) {
                self.report(offset, format!("{field}[{index}] {message}"));
                continue;
            }
            if canonical_number(&user).is_ok() {
                let message = format!(
                    "{field}[{index}] {user:?} is a telephone number, list it in numbers so that \
                     tel: URIs and other ways of writing it match too"
                );
                self.report(offset, message);
                continue;
            }
            aliases.push(Alias {
                kind: AliasKind::SipUser,
                key: user.to_ascii_lowercase(),
                field: "sip_users",
                written: user.clone(),
                destination: id.to_owned(),
                origin: self.origin(offset),
            });
        }
    }

    fn names(&mut self, id: &str, field: &str, value: &Value<'i>, aliases: &mut Vec<Alias>) {
        let Some(entries) = self.strings(field, value) else {
            return;
        };
        for (index, (name, offset)) in entries.into_iter().enumerate() {
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                let message =
                    format!("{field}[{index}] must be visible text without control characters");
                self.report(offset, message);
                continue;
            }
            aliases.push(Alias {
                kind: AliasKind::Name,
                key: name_key(&name),
                field: "names",
                written: name.clone(),
                destination: id.to_owned(),
                origin: self.origin(offset),
            });
        }
    }
}

/// Returns the compared form of an HTTP name: trimmed, ASCII letters in lowercase.
pub(crate) fn name_key(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

fn check_sip_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let unreserved = |ch: char| ch.is_ascii_alphanumeric() || "-_.!~*'()+".contains(ch);
    if let Some(found) = user.chars().find(|ch| !unreserved(*ch)) {
        return Err(format!(
            "{user:?} contains {found:?}, expected letters, digits and - _ . ! ~ * ' ( ) +"
        ));
    }
    Ok(())
}
