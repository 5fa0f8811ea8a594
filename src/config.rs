//! The engine's configuration file (`config/hotline.toml`): its schema, defaults and
//! validation. Everything is checked before any socket is bound.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration. Every section has defaults, so an empty file is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub agent: AgentConfig,
    pub timers: TimerConfig,
    pub media: MediaConfig,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
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

impl Default for Config {
    fn default() -> Self {
        Config {
            sip: SipConfig::default(),
            agent: AgentConfig::default(),
            timers: TimerConfig::default(),
            media: MediaConfig::default(),
            shutdown: ShutdownConfig::default(),
            log: LogConfig::default(),
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
    /// Reads and validates a configuration file.
    // TODO: replace with the validating loader that reports file:line:column.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)?;
        Ok(toml::from_str(&text)?)
    }
}
