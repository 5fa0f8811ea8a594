//! The session table: which call task owns a Call-ID, shared lock-free by every receive task.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::CallSender;
use crate::sip::CallId;

/// Identifies one call (both legs) inside the engine. Never reused while the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The legs of a call: A faces the caller (the switch), B faces the agent, and C faces a
/// remote hotline during and after a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegId {
    A,
    B,
    C,
}

impl LegId {
    pub fn as_str(self) -> &'static str {
        match self {
            LegId::A => "a",
            LegId::B => "b",
            LegId::C => "c",
        }
    }
}

/// The call task and leg that messages with one Call-ID belong to.
#[derive(Debug, Clone)]
pub struct Route {
    pub session: SessionId,
    pub leg: LegId,
    pub sender: CallSender,
}

/// Call-ID to call task. Lookups clone the route out, so no shard guard outlives a call.
#[derive(Debug, Default)]
pub struct SessionTable {
    routes: DashMap<CallId, Route>,
    next_id: AtomicU64,
}

impl SessionTable {
    pub fn new() -> Self {
        SessionTable::default()
    }

    pub fn next_id(&self) -> SessionId {
        SessionId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub fn get(&self, call_id: &CallId) -> Option<Route> {
        self.routes.get(call_id).map(|entry| entry.value().clone())
    }

    /// Inserts a route unless the Call-ID is taken. Returns whether it was inserted.
    pub fn insert(&self, call_id: CallId, route: Route) -> bool {
        match self.routes.entry(call_id) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(slot) => {
                slot.insert(route);
                true
            }
        }
    }

    /// Routes a Call-ID to `route`, replacing whatever route it had (a leg moving to
    /// another call).
    pub fn reassign(&self, call_id: CallId, route: Route) {
        self.routes.insert(call_id, route);
    }

    /// Removes a Call-ID if it still belongs to `session`.
    pub fn remove(&self, call_id: &CallId, session: SessionId) {
        self.routes
            .remove_if(call_id, |_, route| route.session == session);
    }

    /// Number of Call-IDs routed, two per call with both legs up.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Senders of every call task, each once (for shutdown).
    pub fn senders(&self) -> Vec<CallSender> {
        let mut seen = std::collections::HashSet::new();
        self.routes
            .iter()
            .filter(|entry| seen.insert(entry.value().session))
            .map(|entry| entry.value().sender.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::mailbox;
    use crate::session::CallEvent;

    fn route(table: &SessionTable, leg: LegId) -> Route {
        let (sender, _receiver) = mailbox(1);
        Route {
            session: table.next_id(),
            leg,
            sender,
        }
    }

    #[test]
    fn call_event_is_three_words() {
        // A call's queue grows by whole events while a burst waits for the call task.
        assert!(size_of::<CallEvent>() <= 3 * size_of::<usize>());
    }

    #[test]
    fn insert_refuses_taken_call_id() {
        let table = SessionTable::new();
        let call_id = CallId::new("a@h");
        assert!(table.insert(call_id.clone(), route(&table, LegId::A)));
        assert!(!table.insert(call_id.clone(), route(&table, LegId::A)));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn remove_checks_owner() {
        let table = SessionTable::new();
        let call_id = CallId::new("a@h");
        let first = route(&table, LegId::A);
        let owner = first.session;
        table.insert(call_id.clone(), first);
        table.remove(&call_id, SessionId(owner.0 + 100));
        assert!(table.get(&call_id).is_some());
        table.remove(&call_id, owner);
        assert!(table.get(&call_id).is_none());
    }

    #[test]
    fn senders_lists_each_session_once() {
        let table = SessionTable::new();
        let a = route(&table, LegId::A);
        let mut b = a.clone();
        b.leg = LegId::B;
        table.insert(CallId::new("a@h"), a);
        table.insert(CallId::new("b@h"), b);
        assert_eq!(table.senders().len(), 1);
    }
}
