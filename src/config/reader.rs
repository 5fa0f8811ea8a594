//! Reads the spanned TOML document into a [`Config`], collecting every problem with the
//! byte offset it refers to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};
use tracing_subscriber::EnvFilter;

use super::uri::check_sip_uri;
use super::{
    AgentConfig, Config, DialplanConfig, IpPrefix, LogConfig, LogFormat, MediaConfig, Problem,
    ShutdownConfig, SipConfig, TimerConfig,
};

/// Highest values accepted for the bounded settings. They keep timer arithmetic such as
/// 64*T1 (RFC 3261 §17.1.1.2) far from overflow and catch unit mistakes (ms for s).
const MAX_TIMER_MS: u64 = 60_000;
const MAX_RING_TIMEOUT_SECS: u64 = 3_600;
const MAX_LONG_TIMEOUT_SECS: u64 = 86_400;
/// Largest UDP payload over IPv4: 65535 minus the IP and UDP headers.
const MAX_UDP_PAYLOAD: u64 = 65_507;
/// SO_RCVBUF takes a C int.
const MAX_RECV_BUFFER: u64 = i32::MAX as u64;

const SECTIONS: &[&str] = &[
    "sip", "agent", "timers", "media", "shutdown", "log", "dialplan", "control", "cdr", "transfer",
    "runtime",
];
const SIP_KEYS: &[&str] = &[
    "listen",
    "trusted",
    "udp_max_bytes",
    "user_agent",
    "udp_recv_buffer",
];
const AGENT_KEYS: &[&str] = &["target", "ring_timeout_secs"];
const TIMER_KEYS: &[&str] = &["t1_ms", "t2_ms", "t4_ms"];
const MEDIA_KEYS: &[&str] = &["address", "port_min", "port_max", "inactivity_timeout_secs"];
const SHUTDOWN_KEYS: &[&str] = &["grace_period_secs", "retry_after_secs"];
const LOG_KEYS: &[&str] = &["format", "level"];
const DIALPLAN_KEYS: &[&str] = &["paths"];

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// Walks the parsed document, fills a [`Config`] and collects problems with the byte
/// offset they refer to.
pub(super) struct Reader<'i> {
    text: &'i str,
    pub(super) problems: Vec<(usize, String)>,
    /// Byte range of each value or section present in the file, by dotted name.
    positions: HashMap<String, Range<usize>>,
}

impl<'i> Reader<'i> {
    pub(super) fn new(text: &'i str) -> Self {
        Reader {
            text,
            problems: Vec::new(),
            positions: HashMap::new(),
        }
    }

    pub(super) fn report(&mut self, offset: usize, message: String) {
        self.problems.push((offset, message));
    }

    pub(super) fn into_problems(mut self, file: &str) -> Vec<Problem> {
        self.problems.sort_by_key(|(offset, _)| *offset);
        self.problems
            .into_iter()
            .map(|(offset, message)| {
                let (line, column) = line_column(self.text, offset);
                Problem {
                    file: file.to_owned(),
                    line,
                    column,
                    message,
                }
            })
            .collect()
    }

    /// Fills a [`Config`] from the document. Returns `None` after reporting syntax errors,
    /// because a partly parsed document would lead to false reports.
    pub(super) fn read_document(&mut self) -> Option<Config> {
        let mut config = Config::default();
        let (root, errors) = DeTable::parse_recoverable(self.text);
        if !errors.is_empty() {
            for error in errors {
                let offset = error.span().map_or(0, |span| span.start);
                self.report(offset, syntax_message(error.message()));
            }
            return None;
        }

        for (key, value) in root.get_ref() {
            let name: &str = key.get_ref();
            let Some(table) = self.section(name, value) else {
                continue;
            };
            match name {
                "sip" => self.read_sip(table, &mut config.sip),
                "agent" => self.read_agent(table, &mut config.agent),
                "timers" => self.read_timers(table, &mut config.timers),
                "media" => self.read_media(table, &mut config.media),
                "shutdown" => self.read_shutdown(table, &mut config.shutdown),
                "log" => self.read_log(table, &mut config.log),
                "control" => self.read_control(table, &mut config.control),
                "cdr" => self.read_cdr(table, &mut config.cdr),
                "transfer" => self.read_transfer(table, &mut config.transfer),
                "runtime" => self.read_runtime(table, &mut config.runtime),
                _ => self.read_dialplan(table, &mut config.dialplan),
            }
        }
        Some(config)
    }

    /// Returns the table of a known section, or reports an unknown or non-table entry.
    fn section<'a>(&mut self, name: &str, value: &'a Value<'i>) -> Option<&'a DeTable<'i>> {
        let offset = value.span().start;
        if !SECTIONS.contains(&name) {
            let message = format!(
                "unknown section `{name}`, expected one of: {}",
                SECTIONS.join(", ")
            );
            self.report(offset, message);
            return None;
        }
        let Some(table) = value.get_ref().as_table() else {
            let found = value.get_ref().type_str();
            self.report(offset, format!("`{name}` must be a table, found {found}"));
            return None;
        };
        self.positions.insert(name.to_owned(), value.span());
        Some(table)
    }

    /// Reports unknown keys and records the position of each known one. Returns the known
    /// entries with their dotted names.
    pub(super) fn entries<'a>(
        &mut self,
        section: &str,
        table: &'a DeTable<'i>,
        known: &[&str],
    ) -> Vec<(String, &'a Value<'i>)> {
        let mut entries = Vec::new();
        for (key, value) in table {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                let field = format!("{section}.{name}");
                self.positions.insert(field.clone(), value.span());
                entries.push((field, value));
            } else {
                let message = format!(
                    "unknown key `{name}` in [{section}], expected one of: {}",
                    known.join(", ")
                );
                self.report(key.span().start, message);
            }
        }
        entries
    }

    fn read_sip(&mut self, table: &DeTable<'i>, sip: &mut SipConfig) {
        for (field, value) in self.entries("sip", table, SIP_KEYS) {
            match field.as_str() {
                "sip.listen" => set(&mut sip.listen, self.socket_addr(&field, value)),
                "sip.trusted" => set(&mut sip.trusted, self.trusted(&field, value)),
                "sip.udp_max_bytes" => set(
                    &mut sip.udp_max_bytes,
                    self.int(&field, value, 1, MAX_UDP_PAYLOAD),
                ),
                "sip.user_agent" => set(&mut sip.user_agent, self.user_agent(&field, value)),
                _ => set(
                    &mut sip.udp_recv_buffer,
                    self.int(&field, value, 1, MAX_RECV_BUFFER),
                ),
            }
        }
    }

    fn read_agent(&mut self, table: &DeTable<'i>, agent: &mut AgentConfig) {
        for (field, value) in self.entries("agent", table, AGENT_KEYS) {
            match field.as_str() {
                "agent.target" => set(&mut agent.target, self.agent_target(&field, value)),
                _ => set(
                    &mut agent.ring_timeout_secs,
                    self.int(&field, value, 1, MAX_RING_TIMEOUT_SECS),
                ),
            }
        }
    }

    fn read_timers(&mut self, table: &DeTable<'i>, timers: &mut TimerConfig) {
        for (field, value) in self.entries("timers", table, TIMER_KEYS) {
            let slot = match field.as_str() {
                "timers.t1_ms" => &mut timers.t1_ms,
                "timers.t2_ms" => &mut timers.t2_ms,
                _ => &mut timers.t4_ms,
            };
            set(slot, self.int(&field, value, 1, MAX_TIMER_MS));
        }
    }

    fn read_media(&mut self, table: &DeTable<'i>, media: &mut MediaConfig) {
        for (field, value) in self.entries("media", table, MEDIA_KEYS) {
            match field.as_str() {
                "media.address" => set(&mut media.address, self.media_address(&field, value)),
                "media.port_min" => set(&mut media.port_min, self.port(&field, value)),
                "media.port_max" => set(&mut media.port_max, self.port(&field, value)),
                _ => set(
                    &mut media.inactivity_timeout_secs,
                    self.int(&field, value, 0, MAX_LONG_TIMEOUT_SECS),
                ),
            }
        }
    }

    fn read_shutdown(&mut self, table: &DeTable<'i>, shutdown: &mut ShutdownConfig) {
        for (field, value) in self.entries("shutdown", table, SHUTDOWN_KEYS) {
            match field.as_str() {
                "shutdown.grace_period_secs" => set(
                    &mut shutdown.grace_period_secs,
                    self.int(&field, value, 0, MAX_LONG_TIMEOUT_SECS),
                ),
                _ => set(
                    &mut shutdown.retry_after_secs,
                    self.int(&field, value, 0, u64::from(u32::MAX)),
                ),
            }
        }
    }

    fn read_log(&mut self, table: &DeTable<'i>, log: &mut LogConfig) {
        for (field, value) in self.entries("log", table, LOG_KEYS) {
            match field.as_str() {
                "log.format" => set(&mut log.format, self.log_format(&field, value)),
                _ => set(&mut log.level, self.log_level(&field, value)),
            }
        }
    }

    fn read_dialplan(&mut self, table: &DeTable<'i>, dialplan: &mut DialplanConfig) {
        for (field, value) in self.entries("dialplan", table, DIALPLAN_KEYS) {
            set(&mut dialplan.paths, self.dialplan_paths(&field, value));
        }
    }

    pub(super) fn string(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        match value.get_ref().as_str() {
            Some(text) => Some(text.to_owned()),
            None => {
                let found = value.get_ref().type_str();
                let message = format!("{field} must be a string, found {found}");
                self.report(value.span().start, message);
                None
            }
        }
    }

    /// Reads an integer in `min..=max` and converts it to the field's type.
    pub(super) fn int<T: TryFrom<u64>>(
        &mut self,
        field: &str,
        value: &Value<'i>,
        min: u64,
        max: u64,
    ) -> Option<T> {
        let offset = value.span().start;
        let Some(integer) = value.get_ref().as_integer() else {
            let found = value.get_ref().type_str();
            self.report(offset, format!("{field} must be an integer, found {found}"));
            return None;
        };
        let parsed = i128::from_str_radix(integer.as_str(), integer.radix()).ok();
        let in_range = parsed
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| (min..=max).contains(n));
        let converted = in_range.and_then(|n| T::try_from(n).ok());
        if converted.is_none() {
            let shown = parsed.map_or_else(|| integer.as_str().to_owned(), |n| n.to_string());
            let message = format!("{field} must be between {min} and {max}, found {shown}");
            self.report(offset, message);
        }
        converted
    }

    fn port(&mut self, field: &str, value: &Value<'i>) -> Option<u16> {
        self.int(field, value, 1, u64::from(u16::MAX))
    }

    pub(super) fn socket_addr(&mut self, field: &str, value: &Value<'i>) -> Option<SocketAddr> {
        let text = self.string(field, value)?;
        let offset = value.span().start;
        let Ok(address) = text.parse::<SocketAddr>() else {
            let message = format!(
                "{field} must be an IP address and port such as \"127.0.0.1:5060\" \
                 or \"[::1]:5060\", found {text:?}"
            );
            self.report(offset, message);
            return None;
        };
        if address.port() == 0 {
            self.report(offset, format!("{field} must have a port other than 0"));
            return None;
        }
        Some(address)
    }

    fn trusted(&mut self, field: &str, value: &Value<'i>) -> Option<Vec<String>> {
        let Some(array) = value.get_ref().as_array() else {
            let found = value.get_ref().type_str();
            let message = format!("{field} must be an array of strings, found {found}");
            self.report(value.span().start, message);
            return None;
        };
        if array.is_empty() {
            let message = format!("{field} is empty, so no switch could send calls");
            self.report(value.span().start, message);
            return None;
        }

        let mut entries = Vec::new();
        let mut valid = true;
        for (index, element) in array.iter().enumerate() {
            let name = format!("{field}[{index}]");
            let Some(entry) = self.string(&name, element) else {
                valid = false;
                continue;
            };
            if let Err(error) = entry.parse::<IpPrefix>() {
                self.report(element.span().start, format!("{name}: {error}"));
                valid = false;
            }
            entries.push(entry);
        }
        valid.then_some(entries)
    }

    /// Reads `dialplan.paths`. An empty list is valid: the engine then has no transfer
    /// destinations and rejects every transfer.
    fn dialplan_paths(&mut self, field: &str, value: &Value<'i>) -> Option<Vec<PathBuf>> {
        let Some(array) = value.get_ref().as_array() else {
            let found = value.get_ref().type_str();
            let message = format!("{field} must be an array of strings, found {found}");
            self.report(value.span().start, message);
            return None;
        };

        let mut paths = Vec::new();
        let mut valid = true;
        for (index, element) in array.iter().enumerate() {
            let name = format!("{field}[{index}]");
            let Some(path) = self.string(&name, element) else {
                valid = false;
                continue;
            };
            if path.trim().is_empty() || path.contains('\0') {
                let message = format!("{name} must be a file or directory path, found {path:?}");
                self.report(element.span().start, message);
                valid = false;
                continue;
            }
            paths.push(PathBuf::from(path));
        }
        valid.then_some(paths)
    }

    fn user_agent(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let text = self.string(field, value)?;
        if text.trim().is_empty() {
            self.report(value.span().start, format!("{field} must not be empty"));
            return None;
        }
        if text.chars().any(char::is_control) {
            let message = format!("{field} must not contain control characters such as CR or LF");
            self.report(value.span().start, message);
            return None;
        }
        Some(text)
    }

    fn agent_target(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let text = self.string(field, value)?;
        if let Err(reason) = check_sip_uri(&text) {
            let message = format!("{field} {text:?} is not a usable SIP URI: {reason}");
            self.report(value.span().start, message);
            return None;
        }
        Some(text)
    }

    fn media_address(&mut self, field: &str, value: &Value<'i>) -> Option<IpAddr> {
        let text = self.string(field, value)?;
        let offset = value.span().start;
        let Ok(address) = text.parse::<IpAddr>() else {
            let message = format!("{field} must be an IP address, found {text:?}");
            self.report(offset, message);
            return None;
        };
        if address.is_unspecified() || address.is_multicast() {
            let message = format!(
                "{field} must be a unicast address of this host because it is sent in SDP, \
                 found {address}"
            );
            self.report(offset, message);
            return None;
        }
        Some(address)
    }

    fn log_format(&mut self, field: &str, value: &Value<'i>) -> Option<LogFormat> {
        let text = self.string(field, value)?;
        match text.as_str() {
            "plain" => Some(LogFormat::Plain),
            "json" => Some(LogFormat::Json),
            _ => {
                let message = format!("{field} must be \"plain\" or \"json\", found {text:?}");
                self.report(value.span().start, message);
                None
            }
        }
    }

    fn log_level(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let text = self.string(field, value)?;
        if let Err(error) = EnvFilter::builder().parse(&text) {
            let message = format!("{field} {text:?} is not a valid tracing filter: {error}");
            self.report(value.span().start, message);
            return None;
        }
        Some(text)
    }

    /// Position of a value for a problem that involves it: the value itself, else the
    /// header of its section, else the start of the file.
    pub(super) fn position(&self, field: &str) -> usize {
        if let Some(span) = self.positions.get(field) {
            return span.start;
        }
        let section = field.split('.').next().unwrap_or(field);
        self.positions.get(section).map_or(0, |span| span.start)
    }

    /// Whether any of `fields` already has a problem, in which case `config` keeps its
    /// default instead and a check across values would report something false.
    pub(super) fn failed(&self, fields: &[&str]) -> bool {
        fields.iter().any(|field| {
            self.positions.get(*field).is_some_and(|span| {
                self.problems
                    .iter()
                    .any(|(offset, _)| span.contains(offset))
            })
        })
    }

    /// Checks that involve more than one value, skipping those whose values already have
    /// a problem.
    pub(super) fn validate(&mut self, config: &Config) {
        let timers_valid = !self.failed(&["timers.t1_ms", "timers.t2_ms"]);
        let port_min_valid = !self.failed(&["media.port_min"]);
        let ports_valid = port_min_valid && !self.failed(&["media.port_max"]);
        let addresses_valid = !self.failed(&["sip.listen", "media.address"]);

        let timers = &config.timers;
        if timers.t1_ms > timers.t2_ms && timers_valid {
            let message = format!(
                "timers.t1_ms ({}) must not be greater than timers.t2_ms ({})",
                timers.t1_ms, timers.t2_ms
            );
            let offset = self.position("timers.t1_ms");
            self.report(offset, message);
        }

        let media = &config.media;
        if !media.port_min.is_multiple_of(2) && port_min_valid {
            let message = format!(
                "media.port_min must be even because RTP takes the even port and RTCP the \
                 next odd one (RFC 3550 §11), found {}",
                media.port_min
            );
            let offset = self.position("media.port_min");
            self.report(offset, message);
        }
        if media.port_max <= media.port_min && ports_valid {
            let message = format!(
                "media.port_max ({}) must be greater than media.port_min ({}) so the range \
                 holds at least one RTP/RTCP pair",
                media.port_max, media.port_min
            );
            let offset = self.position("media.port_max");
            self.report(offset, message);
        }

        let listen = config.sip.listen;
        let same_host = listen.ip() == media.address || listen.ip().is_unspecified();
        let overlap = same_host && (media.port_min..=media.port_max).contains(&listen.port());
        if overlap && ports_valid && addresses_valid {
            let message = format!(
                "media port range {}-{} contains the SIP port of sip.listen ({listen})",
                media.port_min, media.port_max
            );
            let offset = self.position("media.port_min");
            self.report(offset, message);
        }

        self.validate_control(config);
    }
}

pub(super) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Turns toml's message (`invalid key`, possibly over several lines) into one line.
fn syntax_message(message: &str) -> String {
    let text = message.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("invalid TOML: {text}")
}

/// Converts a byte offset into a 1-based line and a 1-based column counted in characters.
/// Offsets past the end or inside a character are moved back to the nearest boundary.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_bytes("t.toml", text.as_bytes()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(Problem::to_string).collect(),
        }
    }

    #[test]
    fn empty_file_is_default() {
        assert_eq!(problems(""), Vec::<String>::new());
    }

    #[test]
    fn line_column_counts_characters() {
        let text = "a = 1\nb = \"é\" x\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // "x" sits after the two-byte é: byte 15, character column 9.
        assert_eq!(line_column(text, 15), (2, 9));
        // Byte 12 is inside é, so it moves back to the start of é.
        assert_eq!(line_column(text, 12), (2, 6));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn collects_all_problems() {
        let text = "[sip]\nlisten = \"nope\"\nbogus = 1\n[timers]\nt1_ms = 0\n";
        assert_eq!(
            problems(text),
            vec![
                "t.toml:2:10: sip.listen must be an IP address and port such as \
                 \"127.0.0.1:5060\" or \"[::1]:5060\", found \"nope\"",
                "t.toml:3:1: unknown key `bogus` in [sip], expected one of: listen, trusted, \
                 udp_max_bytes, user_agent, udp_recv_buffer",
                "t.toml:5:9: timers.t1_ms must be between 1 and 60000, found 0",
            ]
        );
    }

    #[test]
    fn cross_checks_use_value_positions() {
        let text = "[timers]\nt1_ms = 5000\nt2_ms = 4000\n[media]\nport_min = 5001\n\
                    port_max = 5001\n";
        assert_eq!(
            problems(text),
            vec![
                "t.toml:2:9: timers.t1_ms (5000) must not be greater than timers.t2_ms (4000)",
                "t.toml:5:12: media.port_min must be even because RTP takes the even port and \
                 RTCP the next odd one (RFC 3550 §11), found 5001",
                "t.toml:6:12: media.port_max (5001) must be greater than media.port_min (5001) \
                 so the range holds at least one RTP/RTCP pair",
            ]
        );
    }

    #[test]
    fn dialplan_paths_validated() {
        assert_eq!(
            problems("[dialplan]\npaths = \"dialplans\"\n"),
            ["t.toml:2:9: dialplan.paths must be an array of strings, found string"]
        );
        assert_eq!(
            problems("[dialplan]\npaths = [\"\", 3]\nextra = 1\n"),
            [
                "t.toml:2:10: dialplan.paths[0] must be a file or directory path, found \"\"",
                "t.toml:2:14: dialplan.paths[1] must be a string, found integer",
                "t.toml:3:1: unknown key `extra` in [dialplan], expected one of: paths",
            ]
        );
        let config = Config::from_bytes("t.toml", b"[dialplan]\npaths = []\n").unwrap();
        assert!(config.dialplan.paths.is_empty());
    }

    #[test]
    fn invalid_utf8_is_a_problem() {
        let result = Config::from_bytes("t.toml", b"a = \"\xff\"\n");
        let problems = result.unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 1);
        assert_eq!(problems[0].column, 6);
    }
}
