//! Process-wide counters of what the engine received, rejected and dropped.
//!
//! Counters are relaxed atomics: they are read for logs and tests, never used to make a
//! decision, so no ordering between them is needed.

use std::sync::atomic::{AtomicU64, Ordering};

/// One monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The engine's counters, shared by the transport, the dispatcher and the call tasks.
#[derive(Debug, Default)]
pub struct Metrics {
    /// SIP messages framed and parsed successfully.
    pub messages_received: Counter,
    /// Requests answered 400 because they could not be parsed.
    pub requests_malformed: Counter,
    /// Datagrams or responses that could not be parsed and got no answer.
    pub messages_dropped: Counter,
    /// Requests from addresses outside the trusted list, answered 403.
    pub requests_untrusted: Counter,
    /// Calls created from an initial INVITE.
    pub calls_started: Counter,
    /// Calls that reached the confirmed state on both legs.
    pub calls_answered: Counter,
    /// Calls that ended, whatever the cause.
    pub calls_ended: Counter,
    /// Calls refused with 503 because the engine was shutting down.
    pub calls_refused_draining: Counter,
    /// Transport send failures.
    pub send_errors: Counter,
}

impl Metrics {
    /// Renders the counters as `name value` lines, for logs at shutdown.
    pub fn summary(&self) -> String {
        format!(
            "received={} malformed={} dropped={} untrusted={} started={} answered={} ended={} \
             refused_draining={} send_errors={}",
            self.messages_received.get(),
            self.requests_malformed.get(),
            self.messages_dropped.get(),
            self.requests_untrusted.get(),
            self.calls_started.get(),
            self.calls_answered.get(),
            self.calls_ended.get(),
            self.calls_refused_draining.get(),
            self.send_errors.get(),
        )
    }
}
