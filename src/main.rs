//! Command line of hotline-b2bua: `run` starts the engine, `check` validates a
//! configuration file and the dialplans it names, `route` explains where a transfer
//! would go. All load and validate their files before anything is bound.
//!
//! Exit codes:
//! - 0 on success: for `run` after a graceful shutdown, for `route` when the transfer
//!   would be routed;
//! - 2 when the configuration or a dialplan is invalid;
//! - 3 when `route` finds that the transfer would be refused;
//! - 1 for any other failure.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};
use hotline_b2bua::config::{Config, LoadError, LogConfig, LogFormat, Problem};
use hotline_b2bua::dialplan::{self, ExplainOptions, Plan, Timestamp, Trigger};
use tracing_subscriber::EnvFilter;

/// mimalloc in place of the C library's allocator: a call's life is thousands of small
/// allocations freed on other threads, which glibc's arenas serve with more CPU and keep
/// as fragmented resident memory after the call ends.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_FAILURE: u8 = 1;
const EXIT_INVALID_CONFIG: u8 = 2;
const EXIT_REFUSED: u8 = 3;

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
  [dialplan] paths = [\"../dialplans\"] (dialplan files or directories, relative to the
             configuration file's directory; see docs/dialplan.md)
  [runtime]  workers = 0 (worker threads, 0 = one per CPU)
Logs go to standard error. Exit codes: 0 success, 2 invalid configuration or dialplan,
3 transfer refused (route), 1 other failure.";

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
    /// Validate the configuration and its dialplans, and print every problem as
    /// file:line:column: message.
    ///
    /// The dialplans are read once the configuration file itself is valid, because
    /// dialplan.paths may be among its problems.
    #[command(after_help = CONFIG_SUMMARY)]
    Check(ConfigArg),
    /// Explain step by step where a transfer would go, without placing it.
    ///
    /// Loads the configuration and its dialplans, matches the trigger, and prints the
    /// rule, destination, gateways in the order they would be tried, the headers that
    /// would be sent and whether the hotline accepts the matter. Values only known at
    /// transfer time are shown as ${origin}, ${agent} and ${work_order}. Exits 0 when
    /// the transfer would be routed and 3 when it would be refused.
    #[command(after_help = CONFIG_SUMMARY)]
    Route(RouteArgs),
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("trigger")
        .required(true)
        .args(["keys", "refer_to", "destination", "name"])
))]
struct RouteArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// DTMF keys the agent pressed, such as '*2' or '*311#'.
    #[arg(long, value_name = "KEYS")]
    keys: Option<String>,
    /// Refer-To URI of a REFER, such as tel:022-12345 or sip:beijing@hotline.example.
    #[arg(long, value_name = "URI")]
    refer_to: Option<String>,
    /// Destination id, such as xiongan.
    #[arg(long, value_name = "ID")]
    destination: Option<String>,
    /// Destination name from the HTTP interface, such as 北京市热线.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Catalogue code of the matter, such as transport.
    #[arg(long, value_name = "CODE")]
    matter: Option<String>,
    /// Caller's number, as the switch presents it.
    #[arg(long, value_name = "NUMBER")]
    caller: Option<String>,
    /// Instant of the transfer, RFC 3339 such as 2025-01-06T09:30:00+08:00; schedules
    /// are judged in China Standard Time (UTC+08:00). Defaults to now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<Timestamp>,
    /// Print the explanation as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text).map_err(|error| error.to_string())
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
        Command::Route(args) => route(&args),
    }
}

fn check(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(LoadError::Invalid { problems }) => {
            print_problems(path, "configuration", &problems);
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    println!("{}: ok", path.display());

    match Plan::load(&config.dialplan.resolved_paths(path)) {
        Ok(plan) => {
            println!("{}", plan_summary(&plan));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            print_problems(path, "dialplan", &problems);
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

/// Formats one line on a valid plan, with the fingerprint that logs show on reload.
fn plan_summary(plan: &Plan) -> String {
    format!(
        "dialplan: ok, {} files, {} destinations, {} trunks, {} transfer keys, catalogue {} \
         with {} categories, fingerprint {}",
        plan.files().len(),
        plan.destinations().len(),
        plan.trunks().len(),
        plan.keys().bindings.len(),
        plan.catalogue_version().unwrap_or("without version"),
        plan.categories().len(),
        plan.fingerprint()
    )
}

fn route(args: &RouteArgs) -> ExitCode {
    let path = &args.config.config;
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(LoadError::Invalid { problems }) => {
            print_problems(path, "configuration", &problems);
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let plan = match Plan::load(&config.dialplan.resolved_paths(path)) {
        Ok(plan) => plan,
        Err(problems) => {
            print_problems(path, "dialplan", &problems);
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };

    let trigger = match (&args.keys, &args.refer_to, &args.destination, &args.name) {
        (Some(keys), _, _, _) => Trigger::Keys(keys.clone()),
        (_, Some(uri), _, _) => Trigger::ReferTo(uri.clone()),
        (_, _, Some(id), _) => Trigger::Destination(id.clone()),
        (_, _, _, Some(name)) => Trigger::Name(name.clone()),
        // clap requires exactly one member of the trigger group.
        (None, None, None, None) => return ExitCode::from(EXIT_FAILURE),
    };
    let options = ExplainOptions {
        matter: args.matter.as_deref(),
        caller: args.caller.as_deref(),
        at: args.at.unwrap_or_else(Timestamp::now),
        status: None,
    };
    let explanation = dialplan::explain(&plan, trigger, options);

    if args.json {
        match serde_json::to_string_pretty(&explanation) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("error: failed to write the explanation as JSON: {error}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    } else {
        print!("{explanation}");
    }
    match explanation.is_routed() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(EXIT_REFUSED),
    }
}

/// Turns transparent huge pages off for the engine's memory.
///
/// mimalloc returns pages that emptied to the kernel and faults them in again when calls
/// need them. With huge pages each such fault zeroes 2 MiB: in a profile at 2,000 calls
/// per second the kernel's page clearing took 14 % of the engine's CPU, and 0.5 % with
/// 4 KiB pages.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and changes only this process's
    // memory policy.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "failed to turn off transparent huge pages");
    }
}

fn run(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(LoadError::Invalid { problems }) => {
            print_problems(path, "configuration", &problems);
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };

    // The dialplans are validated like the configuration, before anything starts.
    if let Err(problems) = Plan::load(&config.dialplan.resolved_paths(path)) {
        print_problems(path, "dialplan", &problems);
        return ExitCode::from(EXIT_INVALID_CONFIG);
    }

    if let Err(error) = init_logging(&config.log) {
        eprintln!("error: failed to set up logging: {error}");
        return ExitCode::from(EXIT_FAILURE);
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %path.display(),
        "starting"
    );

    disable_transparent_huge_pages();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.runtime.workers > 0 {
        builder.worker_threads(config.runtime.workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "failed to start the async runtime");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(hotline_b2bua::server::run(config, path)) {
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

/// Prints each problem, then a summary naming the configuration file and `what` was
/// invalid: `configuration` or `dialplan`.
fn print_problems(path: &Path, what: &str, problems: &[Problem]) {
    for problem in problems {
        eprintln!("{problem}");
    }
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    eprintln!(
        "{}: invalid {what}, {} {noun}",
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
