//! Reads one dialplan file from toml's spanned document into a [`Draft`]: every value
//! checked on its own, every problem reported with its position. Checks that span files
//! (unique ids, references, key ambiguity) are left to the compiler.

mod catalogue;
mod destination;

pub(super) use destination::name_key;
mod trunk;

use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::keys::KeyBinding;
use super::model::{Category, Destination, Origin, Trunk};
use super::time::{Date, Schedule, TimeRule};
use crate::config::{Problem, line_column};

type Value<'i> = Spanned<DeValue<'i>>;

const SECTIONS: &[&str] = &["destination", "trunk", "keys", "catalogue", "category"];
const SCHEDULE_KEYS: &[&str] = &["days", "hours", "dates"];
/// Maximum length of the id of a destination, trunk, gateway or category.
const MAX_ID_LEN: usize = 32;

/// Everything one file contributes to the plan, with the positions the compiler needs.
#[derive(Debug, Default)]
pub(super) struct Draft {
    /// Ids of every destination table, complete or not, so that a destination with an
    /// invalid value does not also show up as an unknown reference.
    pub declared_destinations: Vec<(String, Origin)>,
    pub destinations: Vec<DraftDestination>,
    pub trunks: Vec<Trunk>,
    pub inter_digit_timeout_ms: Option<(u32, Origin)>,
    pub terminator: Option<(char, Origin)>,
    pub bindings: Vec<DraftBinding>,
    pub catalogue_version: Option<(String, Origin)>,
    /// Codes of every category table, complete or not.
    pub declared_categories: Vec<(String, Origin)>,
    pub categories: Vec<Category>,
    pub aliases: Vec<Alias>,
}

#[derive(Debug)]
pub(super) struct DraftDestination {
    pub destination: Destination,
    /// Position of the `trunk` value.
    pub trunk_origin: Origin,
    /// Positions of the category codes in `accepts` and `rejects`, in that order.
    pub matter_origins: Vec<Origin>,
}

#[derive(Debug)]
pub(super) struct DraftBinding {
    pub binding: KeyBinding,
    /// Position of the destination id the sequence is bound to.
    pub destination_origin: Origin,
}

/// Ways a Refer-To URI or an HTTP request names a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum AliasKind {
    /// A telephone number, in canonical national form.
    Number,
    /// A SIP user part that is not a number, compared in ASCII lowercase.
    SipUser,
    /// An HTTP name, compared in ASCII lowercase.
    Name,
}

impl AliasKind {
    pub fn noun(self) -> &'static str {
        match self {
            AliasKind::Number => "number",
            AliasKind::SipUser => "SIP user",
            AliasKind::Name => "name",
        }
    }
}

/// One name of a destination.
#[derive(Debug, Clone)]
pub(super) struct Alias {
    pub kind: AliasKind,
    /// The compared form.
    pub key: String,
    /// The key that defines the alias: `numbers`, `sip_users`, `names`, `id`, `name` or
    /// `name_en`.
    pub field: &'static str,
    /// The value as written.
    pub written: String,
    pub destination: String,
    pub origin: Origin,
}

impl Alias {
    /// Returns the entry that defines the alias, such as `numbers "010-12345"`.
    pub fn rule(&self) -> String {
        format!("{} {:?}", self.field, self.written)
    }
}

/// Reads `text` (the file `file`) and returns what it defines with the problems found.
pub(super) fn read_file(file: &str, text: &str) -> (Draft, Vec<Problem>) {
    let mut reader = Reader {
        file,
        text,
        problems: Vec::new(),
    };
    let mut draft = Draft::default();

    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in errors {
            let offset = error.span().map_or(0, |span| span.start);
            reader.report(offset, syntax_message(error.message()));
        }
        return (draft, reader.problems);
    }

    for (key, value) in root.get_ref() {
        let name: &str = key.get_ref();
        if !SECTIONS.contains(&name) {
            let message = format!(
                "unknown section `{name}`, expected one of: {}",
                SECTIONS.join(", ")
            );
            // A [section] header starts before its key, `key = value` at its key.
            reader.report(key.span().start.min(value.span().start), message);
            continue;
        }
        let Some(table) = reader.table(name, value) else {
            continue;
        };
        match name {
            "destination" => reader.read_destinations(table, &mut draft),
            "trunk" => reader.read_trunks(table, &mut draft),
            "keys" => reader.read_keys(table, &mut draft),
            "catalogue" => reader.read_catalogue(table, value.span(), &mut draft),
            _ => reader.read_categories(table, &mut draft),
        }
    }
    (draft, reader.problems)
}

/// Turns toml's message (possibly over several lines) into one line.
fn syntax_message(message: &str) -> String {
    let text = message.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("invalid TOML: {text}")
}

/// Writes one element of a dotted path, quoting keys that are not bare TOML keys.
pub(super) fn path_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match bare {
        true => key.to_owned(),
        false => format!("{key:?}"),
    }
}

struct Reader<'i> {
    file: &'i str,
    text: &'i str,
    problems: Vec<Problem>,
}

impl<'i> Reader<'i> {
    fn origin(&self, offset: usize) -> Origin {
        let (line, column) = line_column(self.text, offset);
        Origin {
            file: self.file.to_owned(),
            line,
            column,
        }
    }

    fn report(&mut self, offset: usize, message: String) {
        let origin = self.origin(offset);
        self.problems.push(Problem {
            file: origin.file,
            line: origin.line,
            column: origin.column,
            message,
        });
    }

    fn table<'a>(&mut self, path: &str, value: &'a Value<'i>) -> Option<&'a DeTable<'i>> {
        let table = value.get_ref().as_table();
        if table.is_none() {
            let found = value.get_ref().type_str();
            self.report(
                value.span().start,
                format!("{path} must be a table, found {found}"),
            );
        }
        table
    }

    /// Reports keys of `table` not in `known` and returns the known entries.
    fn entries<'a>(
        &mut self,
        path: &str,
        table: &'a DeTable<'i>,
        known: &[&str],
    ) -> Vec<(&'a str, &'a Value<'i>)> {
        let mut entries = Vec::new();
        for (key, value) in table {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                entries.push((name, value));
                continue;
            }
            let message = format!(
                "unknown key `{name}` in [{path}], expected one of: {}",
                known.join(", ")
            );
            self.report(key.span().start, message);
        }
        entries
    }

    /// Reads an id used as a table key: lowercase ASCII letters, digits, `-` and `_`.
    fn id(&mut self, path: &str, key: &Spanned<std::borrow::Cow<'i, str>>) -> Option<String> {
        let id: &str = key.get_ref();
        let valid = id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && id.len() <= MAX_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            let message = format!(
                "{path} id {id:?} is invalid, expected at most {MAX_ID_LEN} lowercase letters, \
                 digits, - or _, starting with a letter or digit"
            );
            self.report(key.span().start, message);
            return None;
        }
        Some(id.to_owned())
    }

    fn string(&mut self, path: &str, value: &Value<'i>) -> Option<String> {
        let text = value.get_ref().as_str();
        if text.is_none() {
            let found = value.get_ref().type_str();
            self.report(
                value.span().start,
                format!("{path} must be a string, found {found}"),
            );
        }
        text.map(str::to_owned)
    }

    /// Reads a string that must contain visible text and no control characters.
    fn text(&mut self, path: &str, value: &Value<'i>) -> Option<String> {
        let text = self.string(path, value)?;
        if text.trim().is_empty() {
            self.report(value.span().start, format!("{path} must not be empty"));
            return None;
        }
        if text.chars().any(char::is_control) {
            let message = format!("{path} must not contain control characters");
            self.report(value.span().start, message);
            return None;
        }
        Some(text)
    }

    fn boolean(&mut self, path: &str, value: &Value<'i>) -> Option<bool> {
        let flag = value.get_ref().as_bool();
        if flag.is_none() {
            let found = value.get_ref().type_str();
            let message = format!("{path} must be true or false, found {found}");
            self.report(value.span().start, message);
        }
        flag
    }

    /// Reads an integer in `min..=max`.
    fn int(&mut self, path: &str, value: &Value<'i>, min: u32, max: u32) -> Option<u32> {
        let offset = value.span().start;
        let Some(integer) = value.get_ref().as_integer() else {
            let found = value.get_ref().type_str();
            self.report(offset, format!("{path} must be an integer, found {found}"));
            return None;
        };
        let parsed = i128::from_str_radix(integer.as_str(), integer.radix()).ok();
        let in_range = parsed
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (min..=max).contains(n));
        if in_range.is_none() {
            let shown = parsed.map_or_else(|| integer.as_str().to_owned(), |n| n.to_string());
            let message = format!("{path} must be between {min} and {max}, found {shown}");
            self.report(offset, message);
        }
        in_range
    }

    /// Reads an array of strings. Returns the valid entries with their offsets, or `None`
    /// when the value is not an array.
    fn strings(&mut self, path: &str, value: &Value<'i>) -> Option<Vec<(String, usize)>> {
        let Some(array) = value.get_ref().as_array() else {
            let found = value.get_ref().type_str();
            let message = format!("{path} must be an array of strings, found {found}");
            self.report(value.span().start, message);
            return None;
        };
        let mut entries = Vec::new();
        for (index, element) in array.iter().enumerate() {
            let name = format!("{path}[{index}]");
            if let Some(text) = self.string(&name, element) {
                entries.push((text, element.span().start));
            }
        }
        Some(entries)
    }

    /// Reports `key` missing from the table at `span`.
    fn missing(&mut self, path: &str, span: &Range<usize>, key: &str) {
        self.report(
            span.start,
            format!("[{path}] is missing the required key `{key}`"),
        );
    }

    /// Reads `schedule`: an array of tables with `days`, `hours` and `dates`.
    fn schedule(&mut self, path: &str, value: &Value<'i>) -> Schedule {
        let mut schedule = Schedule::default();
        let Some(array) = value.get_ref().as_array() else {
            let found = value.get_ref().type_str();
            let message = format!("{path} must be an array of tables ([[{path}]]), found {found}");
            self.report(value.span().start, message);
            return schedule;
        };
        for (index, element) in array.iter().enumerate() {
            let name = format!("{path}[{index}]");
            let Some(table) = self.table(&name, element) else {
                continue;
            };
            if let Some(rule) = self.time_rule(&name, table, element.span()) {
                schedule.rules.push(rule);
            }
        }
        schedule
    }

    fn time_rule(
        &mut self,
        path: &str,
        table: &DeTable<'i>,
        span: Range<usize>,
    ) -> Option<TimeRule> {
        let mut rule = TimeRule::new();
        let mut valid = true;
        for (key, value) in self.entries(path, table, SCHEDULE_KEYS) {
            let field = format!("{path}.{key}");
            let offset = value.span().start;
            let result = match key {
                "days" => self.days(&field, value).map(|days| rule.set_days(&days)),
                "hours" => self
                    .string(&field, value)
                    .map(|hours| rule.set_hours(&hours)),
                _ => self.dates(&field, value).map(|dates| {
                    rule.set_dates(dates);
                    Ok(())
                }),
            };
            match result {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    self.report(offset, format!("{field}: {error}"));
                    valid = false;
                }
                None => valid = false,
            }
        }
        if valid && rule.is_unrestricted() {
            let message =
                format!("{path} sets none of days, hours and dates, so it would always match");
            self.report(span.start, message);
            return None;
        }
        valid.then_some(rule)
    }

    /// Reads the weekday entries of a rule, reporting each invalid one at its position.
    fn days(&mut self, path: &str, value: &Value<'i>) -> Option<Vec<String>> {
        let entries = self.strings(path, value)?;
        let mut days = Vec::new();
        let mut valid = true;
        for (index, (text, offset)) in entries.into_iter().enumerate() {
            if let Err(error) = TimeRule::new().set_days(&[&text]) {
                self.report(offset, format!("{path}[{index}]: {error}"));
                valid = false;
            }
            days.push(text);
        }
        valid.then_some(days)
    }

    fn dates(&mut self, path: &str, value: &Value<'i>) -> Option<Vec<Date>> {
        let entries = self.strings(path, value)?;
        let mut dates = Vec::new();
        let mut valid = true;
        for (index, (text, offset)) in entries.into_iter().enumerate() {
            match Date::parse(&text) {
                Ok(date) => dates.push(date),
                Err(error) => {
                    self.report(offset, format!("{path}[{index}]: {error}"));
                    valid = false;
                }
            }
        }
        valid.then_some(dates)
    }
}
