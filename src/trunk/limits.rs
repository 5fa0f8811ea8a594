//! Channel counting per gateway: how many calls go through it now, against its limit.
//!
//! The count is one atomic, taken with a compare-and-swap loop so that concurrent calls
//! never exceed the limit, and released by dropping the [`ChannelGuard`], so a call task
//! that ends on any path gives its channel back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Stored limit of a gateway without one.
const NO_LIMIT: u32 = u32::MAX;

/// Channels of one gateway.
#[derive(Debug)]
pub struct ChannelCounter {
    in_use: AtomicU32,
    /// [`NO_LIMIT`] when the gateway has no limit.
    limit: AtomicU32,
}

/// A snapshot of a gateway's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    pub in_use: u32,
    /// `None` for a gateway without a limit.
    pub limit: Option<u32>,
}

impl Channels {
    /// Returns the channels left, or `None` when the gateway has no limit. The value is 0,
    /// not negative, when a lowered limit left more calls than it allows.
    pub fn free(&self) -> Option<u32> {
        self.limit.map(|limit| limit.saturating_sub(self.in_use))
    }

    /// Returns whether no channel is left.
    pub fn is_full(&self) -> bool {
        self.free() == Some(0)
    }
}

impl ChannelCounter {
    /// Creates a counter with no channel in use. A limit of `Some(u32::MAX)` is the same
    /// as none.
    pub fn new(limit: Option<u32>) -> Arc<Self> {
        Arc::new(ChannelCounter {
            in_use: AtomicU32::new(0),
            limit: AtomicU32::new(limit.unwrap_or(NO_LIMIT)),
        })
    }

    /// Takes one channel, or returns `None` when the limit is reached. The channel is
    /// released when the guard is dropped.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ChannelGuard> {
        let taken = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                let limit = self.limit.load(Ordering::Acquire);
                (in_use < limit).then_some(in_use + 1)
            });
        taken.ok().map(|_| ChannelGuard {
            counter: Arc::clone(self),
        })
    }

    /// Changes the limit. Calls already above a lowered limit keep their channels, and new
    /// ones are refused until the count drops below it.
    pub fn set_limit(&self, limit: Option<u32>) {
        self.limit
            .store(limit.unwrap_or(NO_LIMIT), Ordering::Release);
    }

    /// Returns the channels in use and the limit. The two are read separately, so under
    /// concurrent calls the snapshot may be a moment old.
    pub fn snapshot(&self) -> Channels {
        let limit = self.limit.load(Ordering::Acquire);
        Channels {
            in_use: self.in_use.load(Ordering::Acquire),
            limit: (limit != NO_LIMIT).then_some(limit),
        }
    }

    /// Returns the channels left, or `None` when the gateway has no limit.
    pub fn free(&self) -> Option<u32> {
        self.snapshot().free()
    }
}

/// One channel of a gateway, held for the life of a call. Dropping it releases the channel.
#[derive(Debug)]
#[must_use = "dropping the guard releases the channel at once"]
pub struct ChannelGuard {
    counter: Arc<ChannelCounter>,
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        // Every guard was created by one increment, so the count cannot go below zero.
        self.counter.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Barrier;
    use std::thread;

    #[test]
    fn acquire_up_to_limit() {
        let counter = ChannelCounter::new(Some(2));
        let first = counter.try_acquire();
        let second = counter.try_acquire();
        assert!(first.is_some());
        assert!(second.is_some());
        assert!(counter.try_acquire().is_none());
        assert_eq!(counter.free(), Some(0));

        drop(first);
        assert_eq!(counter.free(), Some(1));
        assert!(counter.try_acquire().is_some());
    }

    #[test]
    fn unlimited_counter() {
        let counter = ChannelCounter::new(None);
        let guards: Vec<_> = (0..100).filter_map(|_| counter.try_acquire()).collect();
        assert_eq!(guards.len(), 100);
        assert_eq!(counter.free(), None);
        assert_eq!(counter.snapshot().in_use, 100);
    }

    #[test]
    fn zero_limit_refuses_all() {
        let counter = ChannelCounter::new(Some(0));
        assert!(counter.try_acquire().is_none());
        assert!(counter.snapshot().is_full());
    }

    #[test]
    fn lowered_limit_keeps_calls() {
        let counter = ChannelCounter::new(Some(3));
        let guards: Vec<_> = (0..3).filter_map(|_| counter.try_acquire()).collect();
        counter.set_limit(Some(1));
        assert_eq!(counter.snapshot().in_use, 3);
        assert_eq!(counter.free(), Some(0));
        assert!(counter.try_acquire().is_none());

        drop(guards);
        assert!(counter.try_acquire().is_some());
    }

    #[test]
    fn contention_never_exceeds_limit() {
        const THREADS: usize = 8;
        const ROUNDS: usize = 2_000;
        const LIMIT: u32 = 5;

        let counter = ChannelCounter::new(Some(LIMIT));
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let counter = Arc::clone(&counter);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    let mut acquired = 0usize;
                    let mut max_seen = 0;
                    for _ in 0..ROUNDS {
                        if let Some(guard) = counter.try_acquire() {
                            acquired += 1;
                            max_seen = max_seen.max(counter.snapshot().in_use);
                            drop(guard);
                        }
                    }
                    (acquired, max_seen)
                })
            })
            .collect();

        let mut total = 0;
        for handle in handles {
            let (acquired, max_seen) = handle.join().expect("worker thread panicked");
            assert!(max_seen <= LIMIT, "saw {max_seen} channels in use");
            total += acquired;
        }
        assert!(total > 0);
        assert_eq!(counter.snapshot().in_use, 0);
    }

    #[test]
    fn contention_holds_exact_limit() {
        const THREADS: usize = 8;
        const LIMIT: u32 = 20;

        let counter = ChannelCounter::new(Some(LIMIT));
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let counter = Arc::clone(&counter);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    (0..10)
                        .filter_map(|_| counter.try_acquire())
                        .collect::<Vec<_>>()
                })
            })
            .collect();

        let held: Vec<ChannelGuard> = handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("worker thread panicked"))
            .collect();
        assert_eq!(held.len(), LIMIT as usize);
        assert_eq!(counter.free(), Some(0));
        drop(held);
        assert_eq!(counter.free(), Some(LIMIT));
    }
}
