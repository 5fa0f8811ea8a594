//! A bounded queue from one or more senders to one task that allocates nothing while
//! empty.
//!
//! A tokio channel allocates room for 32 items when it is created. Every call has three
//! queues that carry a handful of items in a held call's life: the call task's events,
//! changes for its relay stream, and copies of the agent's telephone events. A tokio
//! channel each would cost about two kilobytes per call for nothing. This queue keeps
//! its items in a `VecDeque` that gives its room back once drained.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// The receiving end, polled by one task.
#[derive(Debug)]
pub struct Mailbox<T> {
    shared: Arc<Shared<T>>,
}

/// A sending end. Clones share the queue, and the receiver gets `None` once every
/// sender is dropped.
#[derive(Debug)]
pub struct MailboxSender<T> {
    shared: Arc<Shared<T>>,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Live senders, counted outside the lock: a route lookup clones and drops one for
    /// every message.
    senders: AtomicUsize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The maximum number of waiting items. More are rejected.
    capacity: usize,
    receiver_gone: bool,
    /// The receiving task to wake when an item arrives or the last sender goes.
    waker: Option<Waker>,
    /// Senders waiting in [`MailboxSender::send`] for room, woken when an item is taken.
    blocked: Vec<Waker>,
}

/// Creates a queue of at most `capacity` waiting items.
pub fn mailbox<T>(capacity: usize) -> (MailboxSender<T>, Mailbox<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            capacity,
            receiver_gone: false,
            waker: None,
            blocked: Vec::new(),
        }),
        senders: AtomicUsize::new(1),
    });
    let sender = MailboxSender {
        shared: Arc::clone(&shared),
    };
    (sender, Mailbox { shared })
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        // Every update is one push, pop or store, so the state is whole even after a
        // holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> MailboxSender<T> {
    /// Queues `item`, or gives it back when the queue is full or the receiver is gone.
    ///
    /// # Errors
    ///
    /// The item itself, not queued.
    pub fn try_send(&self, item: T) -> Result<(), T> {
        let waker = {
            let mut state = self.shared.state();
            if state.receiver_gone || state.items.len() >= state.capacity {
                return Err(item);
            }
            state.items.push_back(item);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Queues `item`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// The item itself when the receiver is gone.
    pub async fn send(&self, item: T) -> Result<(), T> {
        let mut item = Some(item);
        poll_fn(|cx| {
            let mut state = self.shared.state();
            if state.items.len() >= state.capacity && !state.receiver_gone {
                state.blocked.push(cx.waker().clone());
                return Poll::Pending;
            }
            // The future completes on this poll, so the item is still here.
            let Some(item) = item.take() else {
                return Poll::Ready(Ok(()));
            };
            if state.receiver_gone {
                return Poll::Ready(Err(item));
            }
            state.items.push_back(item);
            let waker = state.waker.take();
            drop(state);
            if let Some(waker) = waker {
                waker.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }
}

impl<T> Clone for MailboxSender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        MailboxSender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for MailboxSender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) > 1 {
            return;
        }
        // The receiver reads the count under the lock, so it either saw this sender gone
        // or left its waker for this sender to take.
        let waker = self.shared.state().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Mailbox<T> {
    /// Returns the next item, `None` once every sender is dropped and the queue is
    /// empty, or registers the task to be woken.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.state();
        if let Some(item) = state.take() {
            return Poll::Ready(Some(item));
        }
        if self.shared.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes the next item if one is waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        self.shared.state().take()
    }

    /// Waits for the next item; `None` once every sender is dropped and the queue is
    /// empty.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl<T> Drop for Mailbox<T> {
    fn drop(&mut self) {
        let blocked = {
            let mut state = self.shared.state();
            state.receiver_gone = true;
            state.items = VecDeque::new();
            std::mem::take(&mut state.blocked)
        };
        blocked.into_iter().for_each(Waker::wake);
    }
}

impl<T> State<T> {
    /// Pops the oldest item, frees the queue's room once it is empty and wakes the
    /// senders waiting for room.
    fn take(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        if self.items.is_empty() {
            self.items = VecDeque::new();
        }
        // Woken while the lock is held: a waker only schedules its task.
        self.blocked.drain(..).for_each(Waker::wake);
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_then_the_end() {
        let (sender, mut mailbox) = mailbox(8);
        sender.try_send(1).unwrap();
        sender.try_send(2).unwrap();
        assert_eq!(mailbox.recv().await, Some(1));
        assert_eq!(mailbox.recv().await, Some(2));

        // An item sent before the last sender is dropped still arrives.
        sender.try_send(3).unwrap();
        drop(sender);
        assert_eq!(mailbox.recv().await, Some(3));
        assert_eq!(mailbox.recv().await, None);
    }

    #[tokio::test]
    async fn waiting_receiver_is_woken() {
        let (sender, mut mailbox) = mailbox(8);
        let receiving = tokio::spawn(async move { mailbox.recv().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        sender.try_send(7).unwrap();
        let received = tokio::time::timeout(Duration::from_secs(1), receiving).await;
        assert_eq!(received.unwrap().unwrap(), Some(7));
    }

    #[tokio::test]
    async fn full_queue_rejects_item() {
        let (sender, _mailbox) = mailbox(2);
        sender.try_send(1).unwrap();
        sender.try_send(2).unwrap();
        assert_eq!(sender.try_send(3), Err(3));
    }

    #[tokio::test]
    async fn end_comes_after_the_last_clone() {
        let (sender, mut mailbox) = mailbox::<u8>(2);
        let clone = sender.clone();
        drop(sender);
        let waiting = tokio::time::timeout(Duration::from_millis(20), mailbox.recv()).await;
        assert!(waiting.is_err());
        drop(clone);
        assert_eq!(mailbox.recv().await, None);
    }

    #[tokio::test]
    async fn send_waits_for_room() {
        let (sender, mut mailbox) = mailbox(1);
        sender.send(1).await.unwrap();
        let sending = tokio::spawn(async move { sender.send(2).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!sending.is_finished());

        assert_eq!(mailbox.recv().await, Some(1));
        let sent = tokio::time::timeout(Duration::from_secs(1), sending).await;
        assert_eq!(sent.unwrap().unwrap(), Ok(()));
        assert_eq!(mailbox.recv().await, Some(2));
    }

    #[tokio::test]
    async fn blocked_send_fails_when_receiver_drops() {
        let (sender, mailbox) = mailbox(1);
        sender.send(1).await.unwrap();
        let sending = tokio::spawn(async move { sender.send(2).await });
        tokio::time::sleep(Duration::from_millis(10)).await;

        drop(mailbox);
        let sent = tokio::time::timeout(Duration::from_secs(1), sending).await;
        assert_eq!(sent.unwrap().unwrap(), Err(2));
    }

    #[tokio::test]
    async fn sending_to_a_dropped_receiver_fails() {
        let (sender, mailbox) = mailbox(2);
        drop(mailbox);
        assert_eq!(sender.try_send(1), Err(1));
    }
}
