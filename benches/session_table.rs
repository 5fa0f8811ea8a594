//! The session table under contention: every receive task looks up the Call-ID of each
//! message, and call tasks insert and remove their Call-IDs as calls start and end.
//!
//! `session::SessionTable` (a sharded `DashMap`) is measured against a
//! `Mutex<HashMap>` holding the same routes, with 1, 2 and 4 threads. Each sample
//! starts the threads once and lets each run its share of the operations, so the time
//! per operation includes the contention and not the thread start.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hotline_b2bua::mailbox::{MailboxSender, mailbox};
use hotline_b2bua::session::{CallEvent, LegId, Route, SessionId, SessionTable};
use hotline_b2bua::sip::CallId;

/// Calls up while the lookups run: two Call-IDs each.
const CALLS_UP: usize = 1_000;
const THREADS: [usize; 3] = [1, 2, 4];

/// The two tables behind one interface, so both run the same loop.
trait Table: Sync {
    fn get(&self, call_id: &CallId) -> Option<SessionId>;
    fn insert(&self, call_id: CallId, route: Route);
    /// Removes the Call-ID if `session` still owns it.
    fn remove(&self, call_id: &CallId, session: SessionId);
}

impl Table for SessionTable {
    fn get(&self, call_id: &CallId) -> Option<SessionId> {
        SessionTable::get(self, call_id).map(|route| route.session)
    }
    fn insert(&self, call_id: CallId, route: Route) {
        SessionTable::insert(self, call_id, route);
    }
    fn remove(&self, call_id: &CallId, session: SessionId) {
        SessionTable::remove(self, call_id, session);
    }
}

/// The baseline: one lock around a standard map, with the same clone-out lookups.
#[derive(Default)]
struct LockedMap(Mutex<HashMap<CallId, Route>>);

impl Table for LockedMap {
    fn get(&self, call_id: &CallId) -> Option<SessionId> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(call_id).cloned().map(|route| route.session)
    }
    fn insert(&self, call_id: CallId, route: Route) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(call_id).or_insert(route);
    }
    fn remove(&self, call_id: &CallId, session: SessionId) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map
            .get(call_id)
            .is_some_and(|route| route.session == session)
        {
            map.remove(call_id);
        }
    }
}

fn call_ids(prefix: &str, count: usize) -> Vec<CallId> {
    (0..count)
        .map(|call| CallId::new(&format!("{prefix}-{call:08x}@bench.invalid")))
        .collect()
}

fn route(session: u64, sender: &MailboxSender<CallEvent>) -> Route {
    Route {
        session: SessionId(session),
        leg: LegId::A,
        sender: sender.clone(),
    }
}

fn fill(table: &impl Table, ids: &[CallId], sender: &MailboxSender<CallEvent>) {
    for (session, call_id) in ids.iter().enumerate() {
        table.insert(call_id.clone(), route(session as u64, sender));
    }
}

/// Runs `per_thread(thread, operations)` on `threads` threads started together and
/// returns the wall time until the last one finishes.
fn run_threads(
    threads: usize,
    operations: u64,
    per_thread: impl Fn(usize, u64) + Sync,
) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let share = operations.div_ceil(threads as u64);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let barrier = &barrier;
            let per_thread = &per_thread;
            scope.spawn(move || {
                barrier.wait();
                per_thread(thread, share);
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins every thread before returning.
        start
    })
    .elapsed()
}

/// Lookups only: what the receive tasks do for every in-dialog message.
fn lookups(c: &mut Criterion) {
    let (sender, _receiver) = mailbox(1);
    let ids = call_ids("up", 2 * CALLS_UP);
    let dashmap = SessionTable::new();
    let locked = LockedMap::default();
    fill(&dashmap, &ids, &sender);
    fill(&locked, &ids, &sender);

    let mut group = c.benchmark_group("session table/lookup");
    group.throughput(Throughput::Elements(1));
    for threads in THREADS {
        let tables: [(&str, &dyn Table); 2] = [("dashmap", &dashmap), ("mutex hashmap", &locked)];
        for (name, table) in tables {
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                b.iter_custom(|operations| {
                    run_threads(threads, operations, |thread, share| {
                        let mut index = thread * 7919;
                        for _ in 0..share {
                            index = (index + 1) % ids.len();
                            black_box(table.get(&ids[index]));
                        }
                    })
                })
            });
        }
    }
    group.finish();
}

/// Call churn with lookups: per call start, one insert, eight lookups (the INVITE
/// transaction, ACK, BYE and their responses) and one remove, with `CALLS_UP` calls up.
fn churn(c: &mut Criterion) {
    let (sender, _receiver) = mailbox(1);
    let up = call_ids("up", 2 * CALLS_UP);
    let churned: Arc<[CallId]> = call_ids("new", 4 * 4096).into();
    let dashmap = SessionTable::new();
    let locked = LockedMap::default();
    fill(&dashmap, &up, &sender);
    fill(&locked, &up, &sender);

    let mut group = c.benchmark_group("session table/call churn");
    group.throughput(Throughput::Elements(1));
    for threads in THREADS {
        let tables: [(&str, &dyn Table); 2] = [("dashmap", &dashmap), ("mutex hashmap", &locked)];
        for (name, table) in tables {
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                b.iter_custom(|calls| {
                    run_threads(threads, calls, |thread, share| {
                        // Each thread churns its own quarter of the new Call-IDs.
                        let own = &churned[thread * 4096..(thread + 1) * 4096];
                        for call in 0..share as usize {
                            let call_id = &own[call % own.len()];
                            table.insert(call_id.clone(), route(call as u64, &sender));
                            for _ in 0..8 {
                                black_box(table.get(call_id));
                            }
                            table.remove(call_id, SessionId(call as u64));
                        }
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lookups, churn);
criterion_main!(benches);
