//! A queue from one or more senders to one task that allocates nothing while empty.
//!
//! A tokio channel allocates room for 32 items when it is created. Every call has two
//! queues that carry a handful of items in a held call's life: changes for its relay
//! stream, and copies of the agent's telephone events. A tokio channel each would cost
//! more than a kilobyte per call for nothing. This queue keeps its items in a `VecDeque`
//! that gives its room back once drained.

use std::collections::VecDeque;
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
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The maximum number of waiting items; more are refused.
    capacity: usize,
    senders: usize,
    receiver_gone: bool,
    /// The receiving task to wake when an item arrives or the last sender goes.
    waker: Option<Waker>,
}

/// Creates a queue of at most `capacity` waiting items.
pub fn mailbox<T>(capacity: usize) -> (MailboxSender<T>, Mailbox<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            capacity,
            senders: 1,
            receiver_gone: false,
            waker: None,
        }),
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
}

impl<T> Clone for MailboxSender<T> {
    fn clone(&self) -> Self {
        self.shared.state().senders += 1;
        MailboxSender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for MailboxSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.state();
            state.senders = state.senders.saturating_sub(1);
            if state.senders > 0 {
                return;
            }
            state.waker.take()
        };
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
        if let Some(item) = state.items.pop_front() {
            if state.items.is_empty() {
                state.items = VecDeque::new();
            }
            return Poll::Ready(Some(item));
        }
        if state.senders == 0 {
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
        let mut state = self.shared.state();
        let item = state.items.pop_front();
        if state.items.is_empty() {
            state.items = VecDeque::new();
        }
        item
    }

    /// Waits for the next item; `None` once every sender is dropped and the queue is
    /// empty.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl<T> Drop for Mailbox<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.receiver_gone = true;
        state.items = VecDeque::new();
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
    async fn full_queue_refuses() {
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
    async fn sending_to_a_dropped_receiver_fails() {
        let (sender, mailbox) = mailbox(2);
        drop(mailbox);
        assert_eq!(sender.try_send(1), Err(1));
    }
}
