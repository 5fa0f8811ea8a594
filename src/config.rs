//! The engine's configuration file (`config/hotline.toml`): its schema, defaults and
//! validation. Everything is checked before any socket is bound.
//!
//! [`Config::load`] parses the TOML itself (with toml's spanned document), so that it can
//! report every problem at once, each as `file:line:column: message`: syntax errors,
//! unknown sections and keys, values of the wrong type or out of range, and checks across
//! values such as T1 <= T2.
//!
//! The `[dialplan]` section only names the dialplan files; the [`crate::dialplan`] module
//! reads and validates them.

mod prefix;
mod reader;
mod services;
mod uri;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use prefix::{IpPrefix, PrefixError};
use reader::Reader;
pub(crate) use reader::line_column;

/// The whole configuration. Every section has defaults, so an empty file is valid.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub agent: AgentConfig,
    pub timers: TimerConfig,
    pub media: MediaConfig,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
    pub dialplan: DialplanConfig,
    pub control: ControlConfig,
    pub cdr: CdrConfig,
    pub transfer: TransferConfig,
    pub runtime: RuntimeConfig,
}

/// The threads the engine runs on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads for signalling and the relay; 0 means one per CPU the process may
    /// use. One worker spends less CPU per call (no hand-offs between threads) but is
    /// limited to one core.
    pub workers: usize,
}

/// How this engine's hotline presents itself to the hotlines it transfers to.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// This hotline's own number, such as `0311-12345`, written into History-Info,
    /// Diversion and User-to-User of transfer INVITEs.
    pub origin_number: String,
    /// Most History-Info entries a call may already carry for a transfer to go ahead,
    /// which stops calls looping between hotlines.
    pub hop_limit: u32,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            origin_number: "0311-12345".to_owned(),
            hop_limit: 4,
        }
    }
}

/// Listening sockets and who may send calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Address for both the UDP and the TCP listener.
    pub listen: SocketAddr,
    /// Switch addresses allowed to send requests, as `ip` or `ip/prefix`.
    pub trusted: Vec<String>,
    /// Messages larger than this many bytes go over TCP (RFC 3261 §18.1.1).
    pub udp_max_bytes: usize,
    /// Value of the User-Agent and Server headers.
    pub user_agent: String,
    /// UDP receive buffer in bytes (SO_RCVBUF).
    pub udp_recv_buffer: usize,
}

/// Where calls from the switch go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// SIP URI of the agent; `;transport=tcp` selects TCP.
    pub target: String,
    /// Seconds the agent may ring before the caller gets 480.
    pub ring_timeout_secs: u64,
}

/// RFC 3261 §17 timer bases, in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimerConfig {
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
}

/// The RTP relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Address the relay binds and advertises in SDP.
    pub address: IpAddr,
    /// First port of the relay range (even).
    pub port_min: u16,
    /// Last port of the relay range.
    pub port_max: u16,
    /// Seconds without RTP from either side before a call is ended; 0 disables.
    pub inactivity_timeout_secs: u64,
}

/// What happens on SIGINT or SIGTERM.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds active calls may go on before both legs get a BYE.
    pub grace_period_secs: u64,
    /// Retry-After value, in seconds, in the 503 given to new calls while draining.
    pub retry_after_secs: u32,
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `plain` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `hotline_b2bua=debug`.
    pub level: String,
}

/// Location of the dialplans: the transfer destinations, trunks, keys and matter catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialplanConfig {
    /// Dialplan files, or directories whose `*.toml` files are all read. Relative paths
    /// are resolved against the directory of the configuration file.
    pub paths: Vec<PathBuf>,
}

/// The HTTP control API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Whether the control API listens at all.
    pub enabled: bool,
    /// Address of the HTTP listener. Must be loopback unless `allow_remote` is true.
    pub listen: SocketAddr,
    /// Allow `listen` on an address other hosts can reach.
    pub allow_remote: bool,
    /// Name of the environment variable that contains the bearer token. The token itself
    /// never appears in the file.
    pub token_env: String,
}

/// Transfer records (one JSON line per transfer).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdrConfig {
    /// Whether records are written.
    pub enabled: bool,
    /// File the records are appended to. [`Config::load`] resolves a relative path against
    /// the directory of the configuration file.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            trusted: vec!["127.0.0.0/8".to_owned()],
            udp_max_bytes: 1300,
            user_agent: concat!("hotline-b2bua/", env!("CARGO_PKG_VERSION")).to_owned(),
            udp_recv_buffer: 4 * 1024 * 1024,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            target: "sip:agent@127.0.0.1:5070".to_owned(),
            ring_timeout_secs: 60,
        }
    }
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            address: IpAddr::from([127, 0, 0, 1]),
            port_min: 20000,
            port_max: 29999,
            inactivity_timeout_secs: 60,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_period_secs: 30,
            retry_after_secs: 60,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Plain,
            level: "info".to_owned(),
        }
    }
}

impl Default for DialplanConfig {
    /// `../dialplans`: the `dialplans` directory beside the directory of the configuration
    /// file, as in the source tree (`config/hotline.toml` and `dialplans/`).
    fn default() -> Self {
        DialplanConfig {
            paths: vec![PathBuf::from("../dialplans")],
        }
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8345)),
            allow_remote: false,
            token_env: "HOTLINE_CONTROL_TOKEN".to_owned(),
        }
    }
}

impl DialplanConfig {
    /// The configured paths, with relative ones resolved against the directory of
    /// `config_file`. `dir/..` pairs are removed from the joined path so that messages
    /// name `dialplans/x.toml`, not `config/../dialplans/x.toml`.
    ///
    /// NOTE: the removal is lexical. When the configuration directory is a symbolic
    /// link, `..` in `paths` is taken relative to the link's parent, not the target's.
    pub fn resolved_paths(&self, config_file: &Path) -> Vec<PathBuf> {
        let base = config_file.parent().unwrap_or(Path::new(""));
        self.paths
            .iter()
            .map(|path| remove_parent_steps(&base.join(path)))
            .collect()
    }
}

fn remove_parent_steps(path: &Path) -> PathBuf {
    use std::path::Component;

    let mut kept: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match (component, kept.last()) {
            (Component::CurDir, _) => {}
            (Component::ParentDir, Some(Component::Normal(_))) => {
                kept.pop();
            }
            _ => kept.push(component),
        }
    }
    match kept.is_empty() {
        true => PathBuf::from("."),
        false => kept.into_iter().collect(),
    }
}

impl Default for CdrConfig {
    fn default() -> Self {
        CdrConfig {
            enabled: true,
            path: PathBuf::from("records/transfers.jsonl"),
        }
    }
}

impl TimerConfig {
    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }
}

impl Config {
    /// Reads `path` and returns the validated configuration, with a relative `cdr.path`
    /// resolved against the directory of `path`.
    ///
    /// # Errors
    ///
    /// [`LoadError::Read`] when the file cannot be read, [`LoadError::Invalid`] with every
    /// problem found (syntax, unknown keys, wrong types, semantic checks) otherwise.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::from_bytes(&path.display().to_string(), &bytes)
            .map_err(|problems| LoadError::Invalid { problems })?;
        if let Some(directory) = path.parent() {
            config.cdr.path = directory.join(&config.cdr.path);
        }
        Ok(config)
    }

    /// Parses and validates the text of a configuration file. `file` names it in the
    /// returned problems.
    ///
    /// # Errors
    ///
    /// Every problem found, ordered by position in the text.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Config, Vec<Problem>> {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                let valid = String::from_utf8_lossy(&bytes[..error.valid_up_to()]);
                let (line, column) = line_column(&valid, valid.len());
                return Err(vec![Problem {
                    file: file.to_owned(),
                    line,
                    column,
                    message: "invalid UTF-8, the file must be UTF-8 text".to_owned(),
                }]);
            }
        };

        let mut reader = Reader::new(text);
        let config = reader.read_document();
        if let Some(config) = &config {
            reader.validate(config);
        }
        let problems = reader.into_problems(file);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(problems),
        }
    }
}

impl SipConfig {
    /// The `trusted` entries as prefixes. Entries that do not parse are skipped, which only
    /// happens for a configuration that [`Config::load`] did not validate.
    pub fn trusted_prefixes(&self) -> Vec<IpPrefix> {
        self.trusted
            .iter()
            .filter_map(|entry| entry.parse().ok())
            .collect()
    }
}

/// Reads `path` and returns every problem in it, for `hotline-b2bua check`. An empty list
/// means the file is a valid configuration.
///
/// # Errors
///
/// [`LoadError::Read`] when the file cannot be read; this function never returns
/// [`LoadError::Invalid`].
pub fn check_file(path: &Path) -> Result<Vec<Problem>, LoadError> {
    match Config::load(path) {
        Ok(_) => Ok(Vec::new()),
        Err(LoadError::Invalid { problems }) => Ok(problems),
        Err(error) => Err(error),
    }
}

/// Failure to load a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", format_problems(problems))]
    Invalid { problems: Vec<Problem> },
}

fn format_problems(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    lines.join("\n")
}

/// One problem in a configuration file, displayed as `file:line:column: message`. Line and
/// column start at 1; the column counts characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialplan_paths_resolve_against_config_dir() {
        let dialplan = DialplanConfig {
            paths: vec![
                PathBuf::from("../dialplans"),
                PathBuf::from("extra/./beijing.toml"),
                PathBuf::from("/etc/hotline/dialplans"),
            ],
        };
        let resolved = dialplan.resolved_paths(Path::new("config/hotline.toml"));
        assert_eq!(resolved[0], Path::new("dialplans"));
        assert_eq!(resolved[1], Path::new("config/extra/beijing.toml"));
        assert_eq!(resolved[2], Path::new("/etc/hotline/dialplans"));

        let resolved = dialplan.resolved_paths(Path::new("hotline.toml"));
        assert_eq!(resolved[0], Path::new("../dialplans"));
    }
}
