//! The health of one gateway: a machine fed with signals from OPTIONS probes and from
//! calls, with no I/O and no clock.
//!
//! ```text
//!                 first success                       M consecutive successes
//!   +---------+ -----------------> +------+ <--------------------------------- +------+
//!   | Unknown |                    |  Up  |                                    | Down |
//!   +---------+ -----------+       +------+ ---------------------------------> +------+
//!                          |                  N consecutive failures              ^
//!                          +------------------------------------------------------+
//!                                      N consecutive failures
//! ```
//!
//! A gateway never seen Down needs a single success to be Up: the recovery hysteresis M
//! exists to stop a gateway that just failed from flapping back, which does not apply yet.
//!
//! # What counts as a success or a failure
//!
//! Any final response to an OPTIONS shows that the gateway is reachable and processing
//! requests, because RFC 3261 §11.2 lets it respond 200, 405 or a 4xx of its policy. So
//! 2xx, 3xx, 4xx and 6xx count as success. The exceptions are 408, which a proxy in
//! front of the gateway sends when the gateway did not answer, and every 5xx, which says
//! the server cannot serve requests now. A timeout, a transport error or an unresolvable
//! name are failures. Provisional responses carry no signal.
//!
//! Calls give passive signals: a 1xx or 2xx to an INVITE sent to the gateway is a
//! success, and 503, 408, timer B or a transport error is a failure. Any other final
//! response (486, 404, 480, 603, ...) is about the called party, not the gateway, so it
//! changes nothing.

use std::fmt;

/// Health of a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// No signal yet, or probing disabled and no call sent. Selected like Up.
    Unknown,
    Up,
    /// Skipped by selection until it recovers.
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cause of a failed probe or call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// No final response before the probe timeout, timer F or timer B.
    Timeout,
    /// A final response meaning the gateway cannot serve requests now (408, 5xx).
    Status(u16),
    /// The transport failed to send the request.
    TransportError,
    /// The target's name did not resolve to an address.
    Unresolvable,
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureCause::Timeout => f.write_str("timeout"),
            FailureCause::Status(status) => write!(f, "status {status}"),
            FailureCause::TransportError => f.write_str("transport error"),
            FailureCause::Unresolvable => f.write_str("unresolvable target"),
        }
    }
}

/// One piece of evidence about a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A response with this status came from the gateway.
    Success {
        status: u16,
    },
    Failure(FailureCause),
}

impl Signal {
    /// Classifies a response to an OPTIONS probe. Returns `None` for a provisional response,
    /// which carries no signal.
    pub fn from_options_response(status: u16) -> Option<Signal> {
        match status {
            100..=199 => None,
            408 | 500..=599 => Some(Signal::Failure(FailureCause::Status(status))),
            _ => Some(Signal::Success { status }),
        }
    }

    /// Classifies a response to an INVITE sent to the gateway. Returns `None` for a final
    /// response about the called party (anything but 2xx, 408 and 503).
    pub fn from_invite_response(status: u16) -> Option<Signal> {
        match status {
            100..=299 => Some(Signal::Success { status }),
            408 | 503 => Some(Signal::Failure(FailureCause::Status(status))),
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::Success { status } => write!(f, "response {status}"),
            Signal::Failure(cause) => cause.fmt(f),
        }
    }
}

/// A change of health, returned so that the caller logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Health,
    pub to: Health,
    /// The signal that completed the run of successes or failures.
    pub cause: Signal,
}

/// The run lengths that move a gateway's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures that mark the gateway Down; 0 acts as 1.
    pub down_after: u32,
    /// Consecutive successes that bring a Down gateway back Up; 0 acts as 1.
    pub up_after: u32,
}

/// The health machine of one gateway.
#[derive(Debug, Clone)]
pub struct HealthState {
    health: Health,
    thresholds: Thresholds,
    /// Consecutive successes since the last failure.
    successes: u32,
    /// Consecutive failures since the last success.
    failures: u32,
}

impl HealthState {
    /// Creates a machine in [`Health::Unknown`].
    pub fn new(thresholds: Thresholds) -> Self {
        HealthState {
            health: Health::Unknown,
            thresholds,
            successes: 0,
            failures: 0,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Returns the length of the current run of failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Returns the length of the current run of successes.
    pub fn consecutive_successes(&self) -> u32 {
        self.successes
    }

    /// Changes the thresholds, keeping the health and the current runs. A run already
    /// longer than a lowered threshold moves the health at the next signal.
    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.thresholds = thresholds;
    }

    /// Feeds one signal. Returns the transition it caused, if any.
    pub fn on_signal(&mut self, signal: Signal) -> Option<Transition> {
        match signal {
            Signal::Success { status } => self.on_success(status),
            Signal::Failure(cause) => self.on_failure(cause),
        }
    }

    /// Counts a success: a response with `status` came from the gateway.
    pub fn on_success(&mut self, status: u16) -> Option<Transition> {
        self.failures = 0;
        self.successes = self.successes.saturating_add(1);
        let up = match self.health {
            Health::Up => false,
            Health::Unknown => true,
            Health::Down => self.successes >= self.thresholds.up_after.max(1),
        };
        up.then(|| self.move_to(Health::Up, Signal::Success { status }))
    }

    /// Counts a failure.
    pub fn on_failure(&mut self, cause: FailureCause) -> Option<Transition> {
        self.successes = 0;
        self.failures = self.failures.saturating_add(1);
        let down =
            self.health != Health::Down && self.failures >= self.thresholds.down_after.max(1);
        down.then(|| self.move_to(Health::Down, Signal::Failure(cause)))
    }

    fn move_to(&mut self, to: Health, cause: Signal) -> Transition {
        let from = self.health;
        self.health = to;
        Transition { from, to, cause }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(down_after: u32, up_after: u32) -> HealthState {
        HealthState::new(Thresholds {
            down_after,
            up_after,
        })
    }

    const TIMEOUT: FailureCause = FailureCause::Timeout;

    #[test]
    fn unknown_up_on_first_success() {
        let mut health = state(3, 2);
        let transition = health.on_success(200);
        assert_eq!(
            transition,
            Some(Transition {
                from: Health::Unknown,
                to: Health::Up,
                cause: Signal::Success { status: 200 },
            })
        );
        assert_eq!(health.health(), Health::Up);
    }

    #[test]
    fn down_after_n_failures() {
        let mut health = state(3, 2);
        health.on_success(200);
        assert_eq!(health.on_failure(TIMEOUT), None);
        assert_eq!(health.on_failure(TIMEOUT), None);
        let transition = health.on_failure(FailureCause::Status(503));
        assert_eq!(
            transition,
            Some(Transition {
                from: Health::Up,
                to: Health::Down,
                cause: Signal::Failure(FailureCause::Status(503)),
            })
        );
        assert_eq!(health.on_failure(TIMEOUT), None);
        assert_eq!(health.health(), Health::Down);
        assert_eq!(health.consecutive_failures(), 4);
    }

    #[test]
    fn unknown_down_after_n_failures() {
        let mut health = state(2, 2);
        assert_eq!(health.on_failure(TIMEOUT), None);
        assert_eq!(health.health(), Health::Unknown);
        let transition = health.on_failure(TIMEOUT);
        assert_eq!(transition.map(|t| t.from), Some(Health::Unknown));
        assert_eq!(health.health(), Health::Down);
    }

    #[test]
    fn up_after_m_successes() {
        let mut health = state(1, 3);
        health.on_failure(TIMEOUT);
        assert_eq!(health.health(), Health::Down);
        assert_eq!(health.on_success(200), None);
        assert_eq!(health.on_success(405), None);
        let transition = health.on_success(200);
        assert_eq!(
            transition.map(|t| (t.from, t.to)),
            Some((Health::Down, Health::Up))
        );
        assert_eq!(health.on_success(200), None);
    }

    #[test]
    fn flapping_resets_runs() {
        let mut health = state(2, 2);
        health.on_success(200);
        for _ in 0..10 {
            assert_eq!(health.on_failure(TIMEOUT), None);
            assert_eq!(health.on_success(200), None);
        }
        assert_eq!(health.health(), Health::Up);

        health.on_failure(TIMEOUT);
        health.on_failure(TIMEOUT);
        assert_eq!(health.health(), Health::Down);
        for _ in 0..10 {
            assert_eq!(health.on_success(200), None);
            assert_eq!(health.on_failure(TIMEOUT), None);
        }
        assert_eq!(health.health(), Health::Down);
    }

    #[test]
    fn zero_threshold_acts_as_one() {
        let mut health = state(0, 0);
        health.on_success(200);
        assert!(health.on_failure(TIMEOUT).is_some());
        assert!(health.on_success(200).is_some());
    }

    #[test]
    fn lowered_threshold_applies_next_signal() {
        let mut health = state(5, 1);
        health.on_success(200);
        health.on_failure(TIMEOUT);
        health.on_failure(TIMEOUT);
        health.set_thresholds(Thresholds {
            down_after: 2,
            up_after: 1,
        });
        assert_eq!(health.health(), Health::Up);
        assert!(health.on_failure(TIMEOUT).is_some());
    }

    #[test]
    fn options_response_classes() {
        let cases = [
            (100, None),
            (183, None),
            (200, Some(Signal::Success { status: 200 })),
            (302, Some(Signal::Success { status: 302 })),
            (404, Some(Signal::Success { status: 404 })),
            (405, Some(Signal::Success { status: 405 })),
            (483, Some(Signal::Success { status: 483 })),
            (408, Some(Signal::Failure(FailureCause::Status(408)))),
            (500, Some(Signal::Failure(FailureCause::Status(500)))),
            (503, Some(Signal::Failure(FailureCause::Status(503)))),
            (599, Some(Signal::Failure(FailureCause::Status(599)))),
            (603, Some(Signal::Success { status: 603 })),
        ];
        for (status, expected) in cases {
            assert_eq!(Signal::from_options_response(status), expected, "{status}");
        }
    }

    #[test]
    fn invite_response_passive_signals() {
        let cases = [
            (100, Some(Signal::Success { status: 100 })),
            (180, Some(Signal::Success { status: 180 })),
            (200, Some(Signal::Success { status: 200 })),
            (408, Some(Signal::Failure(FailureCause::Status(408)))),
            (503, Some(Signal::Failure(FailureCause::Status(503)))),
            (404, None),
            (486, None),
            (480, None),
            (500, None),
            (603, None),
        ];
        for (status, expected) in cases {
            assert_eq!(Signal::from_invite_response(status), expected, "{status}");
        }
    }

    #[test]
    fn passive_signals_move_health() {
        let mut health = state(2, 2);
        let signal = Signal::from_invite_response(180);
        assert!(signal.is_some_and(|s| health.on_signal(s).is_some()));
        assert_eq!(health.health(), Health::Up);

        for status in [503, 408] {
            if let Some(signal) = Signal::from_invite_response(status) {
                health.on_signal(signal);
            }
        }
        assert_eq!(health.health(), Health::Down);

        health.on_signal(Signal::Failure(FailureCause::TransportError));
        assert_eq!(health.consecutive_failures(), 3);
    }
}
