//! Starts the engine from a validated configuration, and stops it: on SIGINT or SIGTERM
//! new calls get 503, active calls have the grace period to finish, and what remains is
//! hung up before the process exits. SIGHUP reloads the dialplan.

mod engine;
mod plans;
mod records;

pub use engine::EngineHandle;
pub use plans::{Loaded, Plans};

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::cdr::RecordWriter;
use crate::config::Config;
use crate::media::{PREBOUND, PortPool};
use crate::routing::Origin;
use crate::session::{CallEvent, Context, Dispatcher, TrustList};
use crate::sip::uri::Uri;
use crate::transport::Transport;
use crate::trunk::{Prober, TrunkRegistry};

/// How long hung-up calls get to finish their BYE transactions before the process exits.
const HANGUP_WAIT: Duration = Duration::from_secs(5);
/// How often the drain checks whether calls are left.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// Runs the engine until SIGINT or SIGTERM, then drains and returns. `config_file` is
/// the path the configuration was read from; relative dialplan paths start there.
///
/// # Errors
///
/// Fails before serving anything when a dialplan is invalid, when the configuration holds
/// an invalid value that validation let through, or when a socket cannot be bound.
pub async fn run(config: Config, config_file: &Path) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("failed to watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("failed to watch SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("failed to watch SIGHUP")?;

    // The dialplan is validated before any socket is bound.
    let paths = config.dialplan.resolved_paths(config_file);
    if let Err(problems) = crate::dialplan::Plan::load(&paths) {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::bail!("invalid dialplan:\n{}", listed.join("\n"));
    }
    let records = match config.cdr.enabled {
        true => RecordWriter::start(&config.cdr.path)
            .await
            .context("failed to open the transfer records")?,
        false => RecordWriter::disabled(),
    };
    let control_config = config.control.clone();
    let origin = Origin {
        number: config.transfer.origin_number.clone(),
        hop_limit: config.transfer.hop_limit as usize,
    };

    let ctx = start(config).await?;
    ctx.attach_recorder(Arc::new(records::Recorder {
        writer: records.clone(),
        origin: origin.number.clone(),
    }));
    let prober = ctx.probes().context("the gateway prober is missing")?;
    let plans = Arc::new(Plans::new(
        paths,
        origin,
        Arc::clone(&ctx),
        Arc::clone(prober),
    ));
    if let Err(problems) = plans.reload().await {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::bail!("invalid dialplan:\n{}", listed.join("\n"));
    }

    let (stop_control, control_stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = Arc::new(EngineHandle {
        ctx: Arc::clone(&ctx),
        plans: Arc::clone(&plans),
        records: records.clone(),
    });
    let control = tokio::spawn(async move {
        let shutdown = async move {
            let _ = control_stopped.await;
        };
        if let Err(error) = crate::control::serve(&control_config, engine, shutdown).await {
            tracing::error!(%error, "control API stopped");
        }
    });

    loop {
        tokio::select! {
            _ = interrupt.recv() => {
                info!("received SIGINT");
                break;
            }
            _ = terminate.recv() => {
                info!("received SIGTERM");
                break;
            }
            _ = hangup.recv() => {
                info!("received SIGHUP; reloading the dialplan");
                let _ = plans.reload().await;
            }
        }
    }
    drain(&ctx).await;
    let _ = stop_control.send(());
    let _ = control.await;
    if let Some(probes) = ctx.probes() {
        probes.shutdown().await;
    }
    if let Err(error) = records.flush().await {
        tracing::warn!(%error, "failed to flush the transfer records");
    }
    info!(counters = %ctx.metrics.summary(), "stopped");
    Ok(())
}

/// Descriptors kept for signalling, control and log files; the relay's pairs (two sockets
/// each) may take the rest of the open-files limit.
const RESERVED_FILES: u64 = 256;

/// Binds the sockets and starts serving. Returns the shared context.
pub async fn start(config: Config) -> anyhow::Result<Arc<Context>> {
    let trusted = TrustList::parse(&config.sip.trusted)?;
    let agent: Uri = config
        .agent
        .target
        .parse()
        .with_context(|| format!("invalid agent target {:?}", config.agent.target))?;
    let pool = PortPool::from_config(&config.media).context("failed to set up the relay ports")?;
    let open_files = raise_open_files_limit();
    let needed = 2 * pool.capacity() as u64 + RESERVED_FILES;
    if open_files.is_some_and(|limit| limit < needed) {
        warn!(
            limit = open_files,
            needed, "the open-files limit is lower than the relay port range needs"
        );
    }
    reserve_descriptor_table(open_files.map_or(needed, |limit| limit.min(needed)));
    if let Some(limit) = open_files {
        let files = usize::try_from(limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
        pool.limit_bound(files / 2);
    }
    // A bind failure here (address not local) surfaces again, with its call, when a call
    // needs ports; the engine still handles signalling meanwhile.
    if let Err(error) = pool.prebind(PREBOUND) {
        warn!(%error, "failed to bind relay ports ahead of the first calls");
    }
    let listen = config.sip.listen;
    let udp_max = config.sip.udp_max_bytes;
    let recv_buffer = config.sip.udp_recv_buffer;
    let media = (
        config.media.address,
        config.media.port_min,
        config.media.port_max,
    );

    let ctx = Context::new(config, pool, trusted, agent);
    // The gateways come from the dial plan; until one is loaded no gateway is probed.
    let prober = Prober::new(
        Arc::new(TrunkRegistry::new()),
        ctx.timers,
        &ctx.config.sip.user_agent,
    );
    ctx.attach_probes(Arc::clone(&prober));
    let dispatcher = Dispatcher::new(Arc::clone(&ctx));
    let transport = Transport::bind(listen, udp_max, recv_buffer, dispatcher).await?;
    ctx.attach_transport(Arc::clone(&transport));
    prober.start(transport);
    info!(
        agent = %ctx.agent,
        relay = %media.0,
        ports = %format!("{}-{}", media.1, media.2),
        "engine started"
    );
    Ok(ctx)
}

/// Refuses new calls, waits up to the grace period for active calls to end, then hangs up
/// the rest and waits briefly for their BYE transactions.
pub async fn drain(ctx: &Context) {
    ctx.start_draining();
    let grace = Duration::from_secs(ctx.config.shutdown.grace_period_secs);
    info!(
        calls = ctx.active_calls(),
        grace_secs = grace.as_secs(),
        "draining"
    );
    wait_idle(ctx, Instant::now() + grace).await;
    if ctx.active_calls() == 0 {
        return;
    }

    let remaining = ctx.table.senders();
    info!(calls = ctx.active_calls(), "grace period over; hanging up");
    for sender in remaining {
        let _ = sender.send(CallEvent::Terminate).await;
    }
    wait_idle(ctx, Instant::now() + HANGUP_WAIT).await;
}

async fn wait_idle(ctx: &Context, deadline: Instant) {
    while ctx.active_calls() > 0 && Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Grows the process's descriptor table to `count` entries now. A descriptor is
/// duplicated to number `count - 1` and closed again, and the kernel never shrinks the
/// table.
///
/// Linux grows the table by doubling when a new descriptor does not fit, and in a
/// process with several threads each growth waits for an RCU grace period. Measured
/// here: the `socket` call for a relay port stalled 6 ms when descriptor 512 was first
/// used, in the middle of a transfer.
fn reserve_descriptor_table(count: u64) {
    let Ok(highest) = libc::c_int::try_from(count.saturating_sub(1)) else {
        return;
    };
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor, the lowest free one at or above
    // `highest`, and touches no descriptor in use.
    let copy = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, highest) };
    if copy < 0 {
        debug!(
            count,
            "failed to grow the descriptor table ahead of the calls"
        );
        return;
    }
    // SAFETY: `copy` was made above and nothing else uses it.
    unsafe { libc::close(copy) };
}

/// Raises the soft limit on open files to the hard limit, as every relay port is a
/// socket, and returns the limit now in force (`None` if it cannot be read).
fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit that the call only reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads how many descriptors the table has room for (`FDSize` in `/proc/self/status`).
    fn descriptor_table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("FDSize:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn descriptor_table_reserved() {
        let limit = raise_open_files_limit().unwrap_or(1024);
        let count = limit.min(4096);
        reserve_descriptor_table(count);
        assert!(
            descriptor_table_size() >= count,
            "FDSize {} after reserving {count}",
            descriptor_table_size()
        );
    }
}
