//! Reads and checks the `[control]` (HTTP control API), `[cdr]` (transfer records),
//! `[transfer]` (how transfers present this hotline) and `[runtime]` (threads) sections.

use std::path::PathBuf;

use toml::de::DeTable;

use super::reader::{Reader, Value, set};
use super::{CdrConfig, Config, ControlConfig, RuntimeConfig, TransferConfig};

const CONTROL_KEYS: &[&str] = &["enabled", "listen", "allow_remote", "token_env"];
const CDR_KEYS: &[&str] = &["enabled", "path"];
const TRANSFER_KEYS: &[&str] = &["origin_number", "hop_limit"];
/// Most hops a transfer may follow; more than any real chain of hotlines.
const MAX_HOP_LIMIT: u64 = 32;
const RUNTIME_KEYS: &[&str] = &["workers"];
/// Most worker threads; catches a value meant for something else.
const MAX_WORKERS: u64 = 1024;

impl<'i> Reader<'i> {
    pub(super) fn read_control(&mut self, table: &DeTable<'i>, control: &mut ControlConfig) {
        for (field, value) in self.entries("control", table, CONTROL_KEYS) {
            match field.as_str() {
                "control.enabled" => set(&mut control.enabled, self.boolean(&field, value)),
                "control.listen" => set(&mut control.listen, self.socket_addr(&field, value)),
                "control.allow_remote" => {
                    set(&mut control.allow_remote, self.boolean(&field, value));
                }
                _ => set(&mut control.token_env, self.env_name(&field, value)),
            }
        }
    }

    pub(super) fn read_cdr(&mut self, table: &DeTable<'i>, cdr: &mut CdrConfig) {
        for (field, value) in self.entries("cdr", table, CDR_KEYS) {
            match field.as_str() {
                "cdr.enabled" => set(&mut cdr.enabled, self.boolean(&field, value)),
                _ => set(&mut cdr.path, self.record_path(&field, value)),
            }
        }
    }

    pub(super) fn read_runtime(&mut self, table: &DeTable<'i>, runtime: &mut RuntimeConfig) {
        for (field, value) in self.entries("runtime", table, RUNTIME_KEYS) {
            set(
                &mut runtime.workers,
                self.int(&field, value, 0, MAX_WORKERS),
            );
        }
    }

    pub(super) fn read_transfer(&mut self, table: &DeTable<'i>, transfer: &mut TransferConfig) {
        for (field, value) in self.entries("transfer", table, TRANSFER_KEYS) {
            match field.as_str() {
                "transfer.hop_limit" => {
                    set(
                        &mut transfer.hop_limit,
                        self.int(&field, value, 1, MAX_HOP_LIMIT),
                    );
                }
                _ => set(
                    &mut transfer.origin_number,
                    self.origin_number(&field, value),
                ),
            }
        }
    }

    /// Reads a telephone number: digits with optional `+` in front and `-` or spaces
    /// between groups.
    fn origin_number(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let text = self.string(field, value)?;
        let digits = text.trim_start_matches('+');
        let valid = digits.chars().any(|ch| ch.is_ascii_digit())
            && digits
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch == '-' || ch == ' ');
        if !valid {
            let message = format!(
                "{field} must be a telephone number such as \"0311-12345\", found {text:?}"
            );
            self.report(value.span().start, message);
            return None;
        }
        Some(text)
    }

    fn boolean(&mut self, field: &str, value: &Value<'i>) -> Option<bool> {
        let boolean = value.get_ref().as_bool();
        if boolean.is_none() {
            let found = value.get_ref().type_str();
            let message = format!("{field} must be true or false, found {found}");
            self.report(value.span().start, message);
        }
        boolean
    }

    /// Reads the name of an environment variable: a letter or `_`, then letters, digits
    /// and `_` (the portable names of POSIX.1-2017 §8.1).
    fn env_name(&mut self, field: &str, value: &Value<'i>) -> Option<String> {
        let text = self.string(field, value)?;
        let mut chars = text.chars();
        let valid = chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            // The value is not echoed: it may be the token pasted in by mistake.
            let message = format!(
                "{field} must be the name of an environment variable, such as \
                 \"HOTLINE_CONTROL_TOKEN\" (letters, digits and _, not starting with a \
                 digit); put the token itself in that variable, never in this file"
            );
            self.report(value.span().start, message);
            return None;
        }
        Some(text)
    }

    fn record_path(&mut self, field: &str, value: &Value<'i>) -> Option<PathBuf> {
        let text = self.string(field, value)?;
        let problem = if text.trim().is_empty() {
            Some("must not be empty")
        } else if text.contains('\0') {
            Some("must not contain a NUL character")
        } else if text.ends_with('/') {
            Some("must name a file, not a directory")
        } else {
            None
        };
        if let Some(problem) = problem {
            let message = format!("{field} {problem}, found {text:?}");
            self.report(value.span().start, message);
            return None;
        }
        Some(PathBuf::from(text))
    }

    /// Checks across `[control]` and `[sip]`, skipping values that already have a problem.
    pub(super) fn validate_control(&mut self, config: &Config) {
        let control = &config.control;
        let listen = control.listen;

        let remote_valid = !self.failed(&["control.listen", "control.allow_remote"]);
        if remote_valid && !listen.ip().is_loopback() && !control.allow_remote {
            let message = format!(
                "control.listen ({listen}) is not a loopback address, so other hosts could \
                 reach the control API; use 127.0.0.1 or set control.allow_remote = true"
            );
            let offset = self.position("control.listen");
            self.report(offset, message);
        }

        // SIP also listens on TCP, so the two listeners must not share a port.
        let sip = config.sip.listen;
        let ports_valid = !self.failed(&["control.listen", "sip.listen"]);
        let same_host =
            sip.ip() == listen.ip() || sip.ip().is_unspecified() || listen.ip().is_unspecified();
        if ports_valid && same_host && sip.port() == listen.port() {
            let message =
                format!("control.listen ({listen}) uses the same TCP port as sip.listen ({sip})");
            let offset = self.position("control.listen");
            self.report(offset, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;

    use crate::config::{Config, Problem};

    fn problems(text: &str) -> Vec<String> {
        match Config::from_bytes("t.toml", text.as_bytes()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(Problem::to_string).collect(),
        }
    }

    fn parse(text: &str) -> Config {
        match Config::from_bytes("t.toml", text.as_bytes()) {
            Ok(config) => config,
            Err(problems) => panic!("unexpected problems: {problems:?}"),
        }
    }

    #[test]
    fn control_defaults() {
        let config = parse("");
        assert!(config.control.enabled);
        assert_eq!(
            config.control.listen,
            "127.0.0.1:8345".parse::<SocketAddr>().expect("address")
        );
        assert!(!config.control.allow_remote);
        assert_eq!(config.control.token_env, "HOTLINE_CONTROL_TOKEN");
        assert!(config.cdr.enabled);
        assert_eq!(config.cdr.path, Path::new("records/transfers.jsonl"));
    }

    #[test]
    fn runtime_workers_default_and_range() {
        assert_eq!(parse("").runtime.workers, 0);
        assert_eq!(parse("[runtime]\nworkers = 1\n").runtime.workers, 1);
        let problems = problems("[runtime]\nworkers = 5000\n");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("t.toml:2:11: "), "{problems:?}");
    }

    #[test]
    fn control_reads_every_key() {
        let text = "[control]\nenabled = false\nlisten = \"10.0.0.5:9000\"\n\
                    allow_remote = true\ntoken_env = \"CONTROL_TOKEN_2\"\n\
                    [cdr]\nenabled = false\npath = \"/var/log/hotline/t.jsonl\"\n";
        let config = parse(text);
        assert!(!config.control.enabled);
        assert_eq!(
            config.control.listen,
            "10.0.0.5:9000".parse::<SocketAddr>().expect("address")
        );
        assert!(config.control.allow_remote);
        assert_eq!(config.control.token_env, "CONTROL_TOKEN_2");
        assert!(!config.cdr.enabled);
        assert_eq!(config.cdr.path, Path::new("/var/log/hotline/t.jsonl"));
    }

    #[test]
    fn control_remote_needs_allow_remote() {
        let text = "[control]\nlisten = \"0.0.0.0:8345\"\n";
        assert_eq!(
            problems(text),
            vec![
                "t.toml:2:10: control.listen (0.0.0.0:8345) is not a loopback address, so \
                 other hosts could reach the control API; use 127.0.0.1 or set \
                 control.allow_remote = true"
            ]
        );
        let allowed = "[control]\nlisten = \"0.0.0.0:8345\"\nallow_remote = true\n";
        assert_eq!(problems(allowed), Vec::<String>::new());
    }

    #[test]
    fn control_accepts_ipv6_loopback() {
        assert_eq!(
            problems("[control]\nlisten = \"[::1]:8345\"\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn control_port_clashes_with_sip() {
        let text = "[sip]\nlisten = \"127.0.0.1:5060\"\n[control]\nlisten = \"127.0.0.1:5060\"\n";
        assert_eq!(
            problems(text),
            vec![
                "t.toml:4:10: control.listen (127.0.0.1:5060) uses the same TCP port as \
                 sip.listen (127.0.0.1:5060)"
            ]
        );
    }

    #[test]
    fn control_bad_values_have_positions() {
        let text = "[control]\nenabled = \"yes\"\nlisten = \"localhost\"\n\
                    allow_remote = 1\ntoken_env = \"s3cr3t-t0ken!\"\nport = 1\n";
        assert_eq!(
            problems(text),
            vec![
                "t.toml:2:11: control.enabled must be true or false, found string",
                "t.toml:3:10: control.listen must be an IP address and port such as \
                 \"127.0.0.1:5060\" or \"[::1]:5060\", found \"localhost\"",
                "t.toml:4:16: control.allow_remote must be true or false, found integer",
                "t.toml:5:13: control.token_env must be the name of an environment variable, \
                 such as \"HOTLINE_CONTROL_TOKEN\" (letters, digits and _, not starting with a \
                 digit); put the token itself in that variable, never in this file",
                "t.toml:6:1: unknown key `port` in [control], expected one of: enabled, \
                 listen, allow_remote, token_env",
            ]
        );
    }

    #[test]
    fn control_token_env_rejects_leading_digit() {
        let found = problems("[control]\ntoken_env = \"1TOKEN\"\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("t.toml:2:13: control.token_env must be the name"));
        let found = problems("[control]\ntoken_env = \"\"\n");
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn cdr_bad_values_have_positions() {
        let text = "[cdr]\nenabled = 0\npath = \"records/\"\n";
        assert_eq!(
            problems(text),
            vec![
                "t.toml:2:11: cdr.enabled must be true or false, found integer",
                "t.toml:3:8: cdr.path must name a file, not a directory, found \"records/\"",
            ]
        );
        let found = problems("[cdr]\npath = \" \"\n");
        assert_eq!(
            found,
            vec!["t.toml:2:8: cdr.path must not be empty, found \" \""]
        );
    }

    #[test]
    fn load_resolves_cdr_path() {
        let dir = std::env::temp_dir().join(format!("hotline-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create dir");
        let file = dir.join("hotline.toml");

        std::fs::write(&file, "[cdr]\npath = \"records/t.jsonl\"\n").expect("write");
        let config = Config::load(&file).expect("valid");
        assert_eq!(config.cdr.path, dir.join("records/t.jsonl"));

        std::fs::write(&file, "[cdr]\npath = \"/srv/t.jsonl\"\n").expect("write");
        let config = Config::load(&file).expect("valid");
        assert_eq!(config.cdr.path, Path::new("/srv/t.jsonl"));

        let _ = std::fs::remove_dir_all(&dir);
    }
}
