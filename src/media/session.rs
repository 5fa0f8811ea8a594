//! A call's media: its relay streams, their control, counters and the inactivity signal.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span};

use super::stream::{Activity, Control, Relay, SideCounters};
use super::{
    EventObserver, MediaError, PayloadMap, PortPair, PortPool, RelayCounters, RemoteEndpoint,
    Ringback, Side,
};
use crate::mailbox::{MailboxSender, mailbox};

/// The media of one call: one relay stream per `m=` line, each with a port pair on side A
/// and on side B, and one tokio task per stream.
///
/// Dropping the session stops its tasks. Their ports return to the pool when the tasks
/// have been dropped, which the runtime does at its next turn.
#[derive(Debug)]
pub struct MediaSession {
    pool: Arc<PortPool>,
    streams: Vec<StreamHandle>,
    activity: Arc<Activity>,
    /// Whether the call is on hold, which suspends the inactivity signal.
    on_hold: AtomicBool,
    /// Wakes a pending [`MediaSession::inactive`] when `on_hold` changes. Unlike a watch
    /// channel, it allocates nothing.
    hold_changed: Notify,
    inactivity_timeout: Option<Duration>,
    /// Telephone-event observers of sides A, B and C, for streams added later.
    observers: [Option<EventObserver>; 3],
    /// Whether side C (a transfer target) has sockets.
    side_c: bool,
}

#[derive(Debug)]
struct StreamHandle {
    /// Local RTP address of sides A, B and C (C only while allocated).
    local: [Option<SocketAddr>; 3],
    counters: Arc<[SideCounters; 3]>,
    control: MailboxSender<Control>,
    task: JoinHandle<()>,
    /// Side C's sockets between [`MediaSession::reserve_side_c`] and
    /// [`MediaSession::hand_over_side_c`].
    reserved_c: Option<PortPair>,
}

impl MediaSession {
    /// Allocates `streams` relay streams and starts relaying. `inactivity_timeout` is
    /// `None` to disable the inactivity signal; see [`super::inactivity_timeout`] for the
    /// configured value. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// Any error of [`PortPool::allocate`]; ports already allocated for the session are
    /// freed.
    pub fn new(
        pool: &Arc<PortPool>,
        inactivity_timeout: Option<Duration>,
        streams: usize,
    ) -> Result<MediaSession, MediaError> {
        let mut session = MediaSession {
            pool: Arc::clone(pool),
            streams: Vec::with_capacity(streams),
            activity: Arc::new(Activity::new()),
            on_hold: AtomicBool::new(false),
            hold_changed: Notify::new(),
            inactivity_timeout,
            observers: [None, None, None],
            side_c: false,
        };
        for _ in 0..streams {
            session.add_stream()?;
        }
        Ok(session)
    }

    /// Adds a relay stream for a new `m=` line, such as video added by a re-INVITE, and
    /// returns its index.
    ///
    /// # Errors
    ///
    /// Any error of [`PortPool::allocate`].
    pub fn add_stream(&mut self) -> Result<usize, MediaError> {
        let index = self.streams.len();
        let a = self.pool.allocate()?;
        let b = self.pool.allocate()?;
        let c = if self.side_c {
            Some(self.pool.allocate()?)
        } else {
            None
        };
        let local = [
            Some(a.rtp_addr()),
            Some(b.rtp_addr()),
            c.as_ref().map(|pair| pair.rtp_addr()),
        ];
        let counters = Arc::new(Default::default());
        let (control, control_receiver) = mailbox(usize::MAX);
        if let Some(c) = c {
            change(&control, Control::Side(Side::C, Some(Box::new(c))));
        }
        for side in [Side::A, Side::B, Side::C] {
            if let Some(observer) = &self.observers[side.index()] {
                change(&control, Control::Observer(side, Some(observer.clone())));
            }
        }

        let relay = Relay::new(
            index,
            [a, b],
            Arc::clone(&counters),
            Arc::clone(&self.activity),
            control_receiver,
        );
        let (a, b) = (Endpoint(local[0]), Endpoint(local[1]));
        let span = debug_span!("media", stream = index, a = %a, b = %b);
        let task = tokio::spawn(relay.run().instrument(span));
        debug!(stream = index, a = %a, b = %b, "media stream started");

        self.streams.push(StreamHandle {
            local,
            counters,
            control,
            task,
            reserved_c: None,
        });
        Ok(index)
    }

    /// Returns how many streams the session has.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Returns the relay's RTP address on `side` for `stream`, to put into the SDP sent to
    /// that side. RTCP is on the next port.
    ///
    /// # Errors
    ///
    /// [`MediaError::NoSuchStream`] for an index past the last stream.
    pub fn local_addr(&self, side: Side, stream: usize) -> Result<SocketAddr, MediaError> {
        self.stream(stream)?.local[side.index()].ok_or(MediaError::NoSuchSide { side })
    }

    /// Allocates side C on every stream, for the leg toward a transfer target. Packets
    /// from C are dropped until [`MediaSession::set_route`] sends them somewhere.
    ///
    /// # Errors
    ///
    /// Any error of [`PortPool::allocate`]; ports already allocated for C are freed.
    pub fn add_side_c(&mut self) -> Result<(), MediaError> {
        self.reserve_side_c()?;
        self.hand_over_side_c();
        Ok(())
    }

    /// Allocates side C's sockets, so that its addresses can go into an offer, without
    /// handing them to the relay tasks yet. The hand-over wakes the relay tasks, so it
    /// waits until the transfer's INVITE is sent.
    ///
    /// # Errors
    ///
    /// As [`PortPool::allocate`].
    pub fn reserve_side_c(&mut self) -> Result<(), MediaError> {
        if self.side_c {
            return Ok(());
        }
        let mut pairs = Vec::with_capacity(self.streams.len());
        for _ in &self.streams {
            pairs.push(self.pool.allocate()?);
        }
        for (stream, pair) in self.streams.iter_mut().zip(pairs) {
            stream.local[Side::C.index()] = Some(pair.rtp_addr());
            stream.reserved_c = Some(pair);
        }
        self.side_c = true;
        Ok(())
    }

    /// Hands the sockets reserved for side C to the relay tasks, which start relaying
    /// them.
    pub fn hand_over_side_c(&mut self) {
        for stream in &mut self.streams {
            if let Some(pair) = stream.reserved_c.take() {
                change(
                    &stream.control,
                    Control::Side(Side::C, Some(Box::new(pair))),
                );
            }
        }
    }

    /// Frees side C's sockets and stops routing anything to or from it.
    pub fn remove_side_c(&mut self) {
        if !self.side_c {
            return;
        }
        for stream in &mut self.streams {
            stream.local[Side::C.index()] = None;
            stream.reserved_c = None;
            change(&stream.control, Control::Side(Side::C, None));
            change(&stream.control, Control::Route(Side::C, None));
        }
        self.side_c = false;
    }

    /// Sets where packets from `from` go on every stream: `Some(side)` forwards them,
    /// `None` drops them. By default A and B are bridged and C goes nowhere.
    pub fn set_route(&self, from: Side, to: Option<Side>) {
        for stream in &self.streams {
            change(&stream.control, Control::Route(from, to));
        }
    }

    /// Starts generated ringback toward side A on the first stream, or stops it.
    pub fn set_ringback(&self, ringback: Option<Ringback>) {
        if let Some(stream) = self.streams.first() {
            change(&stream.control, Control::Ringback(ringback));
        }
    }

    /// Holds back `side`'s telephone events from the first press of a key whose event
    /// code is in `prefix` (bit n for event n, 10 for `*`, 11 for `#`) until
    /// [`MediaSession::release_event_gate`]; 0 disarms the gate.
    pub fn arm_event_gate(&self, side: Side, prefix: u16) {
        for stream in &self.streams {
            change(&stream.control, Control::GateArm(side, prefix));
        }
    }

    /// Sends key presses (RFC 4733 event codes) to side A on the first stream, with the
    /// payload type side A negotiated for telephone events.
    pub fn send_keys_to_a(&self, events: Vec<u8>, payload_type: u8) {
        if let Some(stream) = self.streams.first() {
            change(&stream.control, Control::Keys(events, payload_type));
        }
    }

    /// Lets `side`'s telephone events through again, from the next event on.
    pub fn release_event_gate(&self, side: Side) {
        for stream in &self.streams {
            change(&stream.control, Control::GateRelease(side));
        }
    }

    /// Sets where `side`'s endpoint wants media for `stream`, from its latest SDP. If the
    /// RTP address differs from the previous one, the side's latches are cleared so the
    /// new endpoint is latched by its first packet.
    ///
    /// # Errors
    ///
    /// [`MediaError::NoSuchStream`] for an index past the last stream.
    pub fn set_remote(
        &self,
        side: Side,
        stream: usize,
        remote: RemoteEndpoint,
    ) -> Result<(), MediaError> {
        self.send(stream, Control::Remote(side, Box::new(remote)))
    }

    /// Replaces the payload-type map of `stream`.
    ///
    /// # Errors
    ///
    /// [`MediaError::NoSuchStream`] for an index past the last stream.
    pub fn set_payload_map(&self, stream: usize, map: PayloadMap) -> Result<(), MediaError> {
        self.send(stream, Control::PayloadMap(Box::new(map)))
    }

    /// Sets the channel that receives a copy of every telephone-event packet that `side`
    /// sends on any stream, present or added later; `None` removes it. The stream's
    /// [`PayloadMap`] marks which payload types are telephone events. The relay never
    /// waits for the queue, so copies are lost while it is full.
    pub fn set_event_observer(&mut self, side: Side, observer: Option<EventObserver>) {
        self.observers[side.index()].clone_from(&observer);
        for stream in &self.streams {
            change(&stream.control, Control::Observer(side, observer.clone()));
        }
    }

    /// Suspends the inactivity signal while `held` is true, because a call on hold may
    /// carry no RTP at all (RFC 3264 §8.4). Ending the hold restarts the timeout from now.
    pub fn set_hold(&self, held: bool) {
        if !held {
            self.activity.touch(Instant::now());
        }
        self.on_hold.store(held, Ordering::Release);
        self.hold_changed.notify_waiters();
    }

    /// Returns the counters of `side` of `stream`.
    ///
    /// # Errors
    ///
    /// [`MediaError::NoSuchStream`] for an index past the last stream.
    pub fn counters(&self, side: Side, stream: usize) -> Result<RelayCounters, MediaError> {
        Ok(self.stream(stream)?.counters[side.index()].snapshot())
    }

    /// Completes when no RTP has arrived from either side on any stream for the inactivity
    /// timeout, counted from the last RTP packet, or from the session's start or the end
    /// of a hold if later. Never completes while on hold or when the timeout is disabled.
    ///
    /// Cancel-safe: the future keeps no state of its own, so it can be dropped in a
    /// `select!` and called again without losing time already counted.
    pub async fn inactive(&self) {
        let Some(timeout) = self.inactivity_timeout else {
            return std::future::pending().await;
        };
        loop {
            // Registered before the flag is read, so a change in between still wakes it.
            let changed = self.hold_changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.on_hold.load(Ordering::Acquire) {
                changed.await;
                continue;
            }
            let deadline = self.activity.last() + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }

    fn stream(&self, stream: usize) -> Result<&StreamHandle, MediaError> {
        self.streams.get(stream).ok_or(MediaError::NoSuchStream {
            stream,
            count: self.streams.len(),
        })
    }

    fn send(&self, stream: usize, command: Control) -> Result<(), MediaError> {
        change(&self.stream(stream)?.control, command);
        Ok(())
    }
}

/// A stream's local address in logs, `-` before the stream has one. Written only when the
/// log line is enabled.
#[derive(Clone, Copy)]
struct Endpoint(Option<SocketAddr>);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(address) => address.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        for stream in &self.streams {
            stream.task.abort();
        }
    }
}

/// Queues a change for a stream's task. The queue refuses it only once the task has
/// ended, and then there is nothing left to change.
fn change(control: &MailboxSender<Control>, command: Control) {
    let _ = control.try_send(command);
}
