//! Transaction timer values (RFC 3261 §17, table 4, and RFC 6026) and the two timer shapes
//! the machines run: a retransmission timer that backs off, and a one-shot timer.

use std::fmt;
use std::time::Duration;

use thiserror::Error;
use tokio::time::Instant;

/// Default T1, the round-trip time estimate (RFC 3261 §17.1.1.1).
pub const DEFAULT_T1: Duration = Duration::from_millis(500);

/// Default T2, the maximum retransmission interval for non-INVITE requests and INVITE
/// responses (RFC 3261 §17.1.2.2).
pub const DEFAULT_T2: Duration = Duration::from_secs(4);

/// Default T4, the maximum time a message stays in the network (RFC 3261 §17.1.2.2).
pub const DEFAULT_T4: Duration = Duration::from_secs(5);

/// Time an INVITE server transaction waits for a response from the TU before it requests a
/// 100 (Trying) (RFC 3261 §17.2.1).
pub const TRYING_DELAY: Duration = Duration::from_millis(200);

/// Lower bound of timer D on unreliable transports (RFC 3261 §17.1.1.2).
pub const MIN_TIMER_D: Duration = Duration::from_secs(32);

/// Largest accepted T1, T2 or T4. It keeps the longest derived timer (64*T1, about an hour)
/// far from the range limits of [`Instant`] arithmetic.
pub const MAX_BASE_INTERVAL: Duration = Duration::from_secs(60);

/// The RFC 3261 timers, named as in table 4 of §17, plus L and M of RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmission interval, unreliable transports only.
    A,
    /// INVITE transaction timeout.
    B,
    /// Wait time for response retransmissions in an INVITE client transaction.
    D,
    /// Non-INVITE request retransmission interval, unreliable transports only.
    E,
    /// Non-INVITE transaction timeout.
    F,
    /// INVITE final response retransmission interval, unreliable transports only.
    G,
    /// Wait time for the ACK to a 3xx-6xx response.
    H,
    /// Wait time for ACK retransmissions.
    I,
    /// Wait time for non-INVITE request retransmissions.
    J,
    /// Wait time for non-INVITE response retransmissions.
    K,
    /// Wait time for INVITE retransmissions after a 2xx (RFC 6026).
    L,
    /// Wait time for 2xx retransmissions after the first 2xx (RFC 6026).
    M,
    /// Delay before the INVITE server transaction requests a 100 (Trying).
    Trying,
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trying => f.write_str("Trying"),
            other => write!(f, "timer {other:?}"),
        }
    }
}

/// Invalid T1, T2 or T4 values given to [`Timers::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TimersError {
    /// T1 is zero, so retransmission timers would never advance.
    #[error("invalid T1 of 0 ms: T1 must be greater than zero")]
    ZeroT1,
    /// T2 is below T1, so backing off would shorten the interval.
    #[error("invalid T2 of {t2:?}: T2 must be at least T1 ({t1:?})")]
    T2BelowT1 { t1: Duration, t2: Duration },
    /// A value exceeds [`MAX_BASE_INTERVAL`].
    #[error("invalid {name} of {value:?}: the maximum is {MAX_BASE_INTERVAL:?}")]
    TooLarge { name: &'static str, value: Duration },
}

/// The base intervals T1, T2 and T4 and the timers derived from them (RFC 3261 §17,
/// table 4).
///
/// The default is T1 = 500 ms, T2 = 4 s, T4 = 5 s. [`Timers::new`] checks custom values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    t1: Duration,
    t2: Duration,
    t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: DEFAULT_T1,
            t2: DEFAULT_T2,
            t4: DEFAULT_T4,
        }
    }
}

impl Timers {
    /// Checks and stores custom base intervals.
    ///
    /// # Errors
    ///
    /// [`TimersError`] when T1 is zero, T2 is below T1, or any value exceeds
    /// [`MAX_BASE_INTERVAL`].
    pub fn new(t1: Duration, t2: Duration, t4: Duration) -> Result<Self, TimersError> {
        for (name, value) in [("T1", t1), ("T2", t2), ("T4", t4)] {
            if value > MAX_BASE_INTERVAL {
                return Err(TimersError::TooLarge { name, value });
            }
        }
        if t1.is_zero() {
            return Err(TimersError::ZeroT1);
        }
        if t2 < t1 {
            return Err(TimersError::T2BelowT1 { t1, t2 });
        }
        Ok(Self { t1, t2, t4 })
    }

    /// T1, the round-trip time estimate and the first retransmission interval.
    pub fn t1(&self) -> Duration {
        self.t1
    }

    /// T2, the cap on the retransmission interval of timers E and G.
    pub fn t2(&self) -> Duration {
        self.t2
    }

    /// T4, the maximum time a message stays in the network.
    pub fn t4(&self) -> Duration {
        self.t4
    }

    /// 64*T1: timers B, F and H, timer J on unreliable transports, and timers L and M of
    /// RFC 6026.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: zero on reliable transports, otherwise at least 32 s (RFC 3261 §17.1.1.2).
    ///
    /// The unreliable value is the larger of 32 s and 64*T1, so that with a raised T1 the
    /// client still absorbs every retransmission the server sends before its timer H fires.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            MIN_TIMER_D.max(self.transaction_timeout())
        }
    }

    /// Timer I: zero on reliable transports, otherwise T4 (RFC 3261 §17.2.1).
    pub fn timer_i(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: zero on reliable transports, otherwise 64*T1 (RFC 3261 §17.2.2).
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }

    /// Timer K: zero on reliable transports, otherwise T4 (RFC 3261 §17.1.2.2).
    pub fn timer_k(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }
}

/// A retransmission timer (A, E or G): when it fires next and the interval it waited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retransmit {
    pub(crate) timer: Timer,
    pub(crate) at: Instant,
    pub(crate) interval: Duration,
}

impl Retransmit {
    pub(crate) fn start(timer: Timer, now: Instant, interval: Duration) -> Self {
        Self {
            timer,
            at: now + interval,
            interval,
        }
    }

    /// Schedules the next firing `interval` after the previous deadline, so a slightly
    /// late caller does not shift the schedule. A caller late by more than the interval
    /// gets the next firing `interval` after `now` instead of a burst of catch-up firings.
    pub(crate) fn restart(&mut self, now: Instant, interval: Duration) {
        self.interval = interval;
        self.at += interval;
        if self.at <= now {
            self.at = now + interval;
        }
    }
}

/// A timer that fires once and is then gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneShot {
    pub(crate) timer: Timer,
    pub(crate) at: Instant,
}

impl OneShot {
    pub(crate) fn after(timer: Timer, now: Instant, delay: Duration) -> Self {
        Self {
            timer,
            at: now + delay,
        }
    }
}

/// Returns the earliest of a machine's two timers.
pub(crate) fn next_deadline(
    retransmit: Option<Retransmit>,
    one_shot: Option<OneShot>,
) -> Option<Instant> {
    match (retransmit, one_shot) {
        (Some(r), Some(o)) => Some(r.at.min(o.at)),
        (Some(r), None) => Some(r.at),
        (None, Some(o)) => Some(o.at),
        (None, None) => None,
    }
}

/// Returns the timer that is due at `now`. On a tie the one-shot timer wins, so a machine
/// gives up before it would retransmit once more.
pub(crate) fn due(
    retransmit: Option<Retransmit>,
    one_shot: Option<OneShot>,
    now: Instant,
) -> Option<Timer> {
    let one_shot = one_shot.filter(|o| o.at <= now);
    let retransmit = retransmit.filter(|r| r.at <= now);
    match (retransmit, one_shot) {
        (Some(r), Some(o)) if r.at < o.at => Some(r.timer),
        (_, Some(o)) => Some(o.timer),
        (Some(r), None) => Some(r.timer),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_rfc() {
        let timers = Timers::default();
        assert_eq!(timers.t1(), Duration::from_millis(500));
        assert_eq!(timers.t2(), Duration::from_secs(4));
        assert_eq!(timers.t4(), Duration::from_secs(5));
        assert_eq!(timers.transaction_timeout(), Duration::from_secs(32));
        assert_eq!(timers.timer_d(false), Duration::from_secs(32));
        assert_eq!(timers.timer_i(false), Duration::from_secs(5));
        assert_eq!(timers.timer_j(false), Duration::from_secs(32));
        assert_eq!(timers.timer_k(false), Duration::from_secs(5));
    }

    #[test]
    fn reliable_waits_are_zero() {
        let timers = Timers::default();
        assert_eq!(timers.timer_d(true), Duration::ZERO);
        assert_eq!(timers.timer_i(true), Duration::ZERO);
        assert_eq!(timers.timer_j(true), Duration::ZERO);
        assert_eq!(timers.timer_k(true), Duration::ZERO);
    }

    #[test]
    fn custom_t1_scales_derived_timers() {
        let timers = Timers::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(timers.transaction_timeout(), Duration::from_secs(64));
        assert_eq!(timers.timer_d(false), Duration::from_secs(64));
        assert_eq!(timers.timer_j(false), Duration::from_secs(64));
        assert_eq!(timers.timer_k(false), Duration::from_secs(10));
    }

    #[test]
    fn small_t1_keeps_timer_d_at_32s() {
        let timers = Timers::new(
            Duration::from_millis(100),
            Duration::from_secs(4),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(timers.transaction_timeout(), Duration::from_millis(6400));
        assert_eq!(timers.timer_d(false), Duration::from_secs(32));
    }

    #[test]
    fn new_rejects_invalid_values() {
        let second = Duration::from_secs(1);
        assert_eq!(
            Timers::new(Duration::ZERO, second, second),
            Err(TimersError::ZeroT1)
        );
        assert_eq!(
            Timers::new(second * 2, second, second),
            Err(TimersError::T2BelowT1 {
                t1: second * 2,
                t2: second
            })
        );
        assert_eq!(
            Timers::new(second, second * 61, second),
            Err(TimersError::TooLarge {
                name: "T2",
                value: second * 61
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn restart_skips_missed_firings() {
        let start = Instant::now();
        let mut timer = Retransmit::start(Timer::A, start, Duration::from_millis(500));

        timer.restart(start + Duration::from_millis(510), Duration::from_secs(1));
        assert_eq!(timer.at, start + Duration::from_millis(1500));

        timer.restart(start + Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(timer.at, start + Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn due_prefers_one_shot_on_tie() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let retransmit = Some(Retransmit::start(Timer::E, start, second));
        let one_shot = Some(OneShot::after(Timer::F, start, second));

        assert_eq!(due(retransmit, one_shot, start), None);
        assert_eq!(due(retransmit, one_shot, start + second), Some(Timer::F));
        assert_eq!(next_deadline(retransmit, one_shot), Some(start + second));
    }
}
