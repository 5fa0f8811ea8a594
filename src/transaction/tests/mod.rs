//! Tests of the four transaction machines, driven through their public API on tokio's
//! paused clock, and the helpers they share.

use std::time::Duration;

use tokio::time::Instant;

use super::{Action, Transaction};

mod invite_client;
mod invite_server;
mod non_invite_client;
mod non_invite_server;

/// Advances the paused clock from deadline to deadline, at most `limit` past `start`,
/// and returns every action with the time since `start` at which it was returned.
pub(crate) async fn drive(
    txn: &mut impl Transaction,
    start: Instant,
    limit: Duration,
) -> Vec<(Duration, Action)> {
    let mut log = Vec::new();
    while let Some(deadline) = txn.next_deadline() {
        if deadline > start + limit {
            break;
        }
        tokio::time::advance(deadline.saturating_duration_since(Instant::now())).await;

        let now = Instant::now();
        for action in txn.on_timeout(now) {
            log.push((now - start, action));
        }
    }
    log
}

/// Returns the offsets at which `log` transmitted something.
pub(crate) fn transmit_times(log: &[(Duration, Action)]) -> Vec<Duration> {
    log.iter()
        .filter(|(_, action)| matches!(action, Action::Transmit(_)))
        .map(|(at, _)| *at)
        .collect()
}

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}
