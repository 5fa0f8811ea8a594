//! A call's media: its relay streams, their control, counters and the inactivity signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span};

use super::stream::{Activity, Control, Relay, SideCounters};
use super::{
    MediaError, PayloadMap, PortPool, RelayCounters, RemoteEndpoint, Side, TelephoneEventPacket,
};

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
    hold: watch::Sender<bool>,
    inactivity_timeout: Option<Duration>,
    /// Telephone-event observers of side A and side B, for streams added later.
    observers: [Option<mpsc::Sender<TelephoneEventPacket>>; 2],
}

#[derive(Debug)]
struct StreamHandle {
    /// Local RTP address of side A and side B.
    local: [SocketAddr; 2],
    counters: Arc<[SideCounters; 2]>,
    control: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
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
            hold: watch::Sender::new(false),
            inactivity_timeout,
            observers: [None, None],
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
        let local = [a.rtp_addr(), b.rtp_addr()];
        let counters = Arc::new([SideCounters::default(), SideCounters::default()]);
        let (control, control_receiver) = mpsc::unbounded_channel();
        for side in [Side::A, Side::B] {
            if let Some(observer) = &self.observers[side.index()] {
                // The receiver is alive: it is handed to the relay below.
                let _ = control.send(Control::Observer(side, Some(observer.clone())));
            }
        }

        let relay = Relay::new(
            index,
            [a, b],
            Arc::clone(&counters),
            Arc::clone(&self.activity),
            control_receiver,
        );
        let span = debug_span!("media", stream = index, a = %local[0], b = %local[1]);
        let task = tokio::spawn(relay.run().instrument(span));
        debug!(stream = index, a = %local[0], b = %local[1], "media stream started");

        self.streams.push(StreamHandle {
            local,
            counters,
            control,
            task,
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
        Ok(self.stream(stream)?.local[side.index()])
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
        self.send(stream, Control::Remote(side, remote))
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
    /// waits for the channel, so copies are lost while it is full.
    pub fn set_event_observer(
        &mut self,
        side: Side,
        observer: Option<mpsc::Sender<TelephoneEventPacket>>,
    ) {
        self.observers[side.index()].clone_from(&observer);
        for stream in &self.streams {
            // A send fails only if the task has ended, and then there is nothing to observe.
            let _ = stream
                .control
                .send(Control::Observer(side, observer.clone()));
        }
    }

    /// Suspends the inactivity signal while `held` is true, because a call on hold may
    /// carry no RTP at all (RFC 3264 §8.4). Ending the hold restarts the timeout from now.
    pub fn set_hold(&self, held: bool) {
        if !held {
            self.activity.touch(Instant::now());
        }
        self.hold.send_replace(held);
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
        let mut hold = self.hold.subscribe();
        loop {
            if *hold.borrow_and_update() {
                // The sender lives in `self`, so `changed` cannot fail while we borrow it.
                let _ = hold.changed().await;
                continue;
            }
            let deadline = self.activity.last() + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                _ = hold.changed() => {}
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
        // A send fails only if the task has ended, and then there is nothing to change.
        let _ = self.stream(stream)?.control.send(command);
        Ok(())
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        for stream in &self.streams {
            stream.task.abort();
        }
    }
}
