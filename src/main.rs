//! Command line of hotline-b2bua: `run` starts the engine, `check` validates a
//! configuration file. Both load and validate the file before anything is bound.
//!
//! Exit codes: 0 on success (for `run`, after a graceful shutdown), 2 when the
//! configuration is invalid, 1 for any other failure.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hotline_b2bua::config::{self, Config, LoadError, LogConfig, LogFormat, Problem};
use tracing_subscriber::EnvFilter;

const EXIT_FAILURE: u8 = 1;
const EXIT_INVALID_CONFIG: u8 = 2;

const CONFIG_SUMMARY: &str = "\
The configuration file is TOML; every key is optional. The main keys, with defaults:
  [sip]      listen = \"127.0.0.1:5060\" (UDP and TCP), trusted = [\"127.0.0.0/8\"]
             (switch addresses allowed to send requests), udp_max_bytes = 1300 (bytes),
             udp_recv_buffer = 4194304 (bytes)
  [agent]    target = \"sip:agent@127.0.0.1:5070\", ring_timeout_secs = 60 (seconds)
  [timers]   t1_ms = 500, t2_ms = 4000, t4_ms = 5000 (milliseconds, RFC 3261 §17)
  [media]    address = \"127.0.0.1\", port_min = 20000, port_max = 29999 (even start),
             inactivity_timeout_secs = 60 (seconds, 0 disables)
  [shutdown] grace_period_secs = 30 (seconds), retry_after_secs = 60 (seconds)
  [log]      format = \"plain\" or \"json\", level = \"info\" (a tracing filter; RUST_LOG
             overrides it)
Logs go to standard error. Exit codes: 0 success, 2 invalid configuration, 1 other
failure.";

/// SIP back-to-back user agent between a call-centre switch and its agents.
#[derive(Debug, Parser)]
#[command(name = "hotline-b2bua", version, after_help = CONFIG_SUMMARY)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the configuration, then run the engine until SIGINT or SIGTERM.
    ///
    /// On the signal the engine rejects new calls with 503, lets active calls go on for
    /// shutdown.grace_period_secs seconds, then ends the remaining ones with BYE.
    #[command(after_help = CONFIG_SUMMARY)]
    Run(ConfigArg),
    /// Validate the configuration and print every problem as file:line:column: message.
    #[command(after_help = CONFIG_SUMMARY)]
    Check(ConfigArg),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// Path of the TOML configuration file.
    #[arg(
        short,
        long,
        value_name = "PATH",
        default_value = "config/hotline.toml"
    )]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(arg) => check(&arg.config),
        Command::Run(arg) => run(&arg.config),
    }
}

fn check(path: &Path) -> ExitCode {
    match config::check_file(path) {
        Ok(problems) if problems.is_empty() => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Ok(problems) => {
            print_problems(path, &problems);
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(LoadError::Invalid { problems }) => {
            print_problems(path, &problems);
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };

    if let Err(error) = init_logging(&config.log) {
        eprintln!("error: failed to set up logging: {error}");
        return ExitCode::from(EXIT_FAILURE);
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %path.display(),
        "starting"
    );

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "failed to start the async runtime");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(hotline_b2bua::server::run(config)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "engine failed");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn print_problems(path: &Path, problems: &[Problem]) {
    for problem in problems {
        eprintln!("{problem}");
    }
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    eprintln!(
        "{}: invalid configuration, {} {noun}",
        path.display(),
        problems.len()
    );
}

/// Installs the global subscriber: `log.format` on standard error, filtered by RUST_LOG
/// when it is set and valid, else by `log.level`.
fn init_logging(log: &LogConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            match EnvFilter::builder().parse(&directives) {
                Ok(filter) => filter,
                Err(error) => {
                    eprintln!("warning: ignoring invalid RUST_LOG {directives:?}: {error}");
                    EnvFilter::builder().parse(&log.level)?
                }
            }
        }
        _ => EnvFilter::builder().parse(&log.level)?,
    };

    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Plain => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
}
