//! One relay stream: the task that forwards RTP and RTCP of one `m=` line between the
//! sides, with symmetric-RTP latching and counters.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rtp_rs::RtpReader;
use tokio::time::Instant;
use tracing::{debug, trace, warn};

use super::packet::{self, PacketKind};
use super::tone::{PACKET_INTERVAL, Ringback, ToneGenerator};
use super::{EventObserver, PayloadMap, PortPair, RemoteEndpoint, Side, TelephoneEventPacket};
use crate::mailbox::Mailbox;
use crate::udp::{BATCH_LEN, Batch, Socket};

/// How long a latched source must be silent before packets from another source may take
/// its place.
///
/// Until a side has sent a packet, the relay sends to the address from its SDP. The first
/// packet latches the side to its source address (and the first RTCP packet its RTCP
/// address), and from then on the relay sends there, which reaches endpoints behind NAT.
/// Packets from any other source are dropped as stray unless the latched source has sent
/// nothing for this long, in which case the new source is latched. A new SDP address for
/// the side clears its latches at once.
pub const RELATCH_SILENCE: Duration = Duration::from_secs(2);

/// The largest datagram relayed, in bytes. A datagram that fills the buffer may have been
/// truncated and is dropped as invalid.
const MAX_DATAGRAM: usize = 4096;

/// How many batches one socket may relay before the task looks at its other sockets.
const ROUNDS: usize = 4;

thread_local! {
    /// The receive buffers of the relay tasks running on this thread. A stream borrows
    /// them only inside one synchronous drain, so streams need no buffers of their own.
    static BATCH: RefCell<Batch<MAX_DATAGRAM>> = const { RefCell::new(Batch::new()) };
}

/// The six sockets a stream may have, in the order they are polled.
const SOCKETS: [(Side, Port); 6] = [
    (Side::A, Port::Rtp),
    (Side::A, Port::Rtcp),
    (Side::B, Port::Rtp),
    (Side::B, Port::Rtcp),
    (Side::C, Port::Rtp),
    (Side::C, Port::Rtcp),
];

/// Counters of one side of one stream, since the stream started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Datagrams received on this side's sockets, whatever they contained.
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Datagrams sent out of this side's sockets to its endpoint.
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Received datagrams that were neither RTP nor RTCP, or too large.
    pub dropped_invalid: u64,
    /// Received datagrams from a source other than the latched one (see
    /// [`RELATCH_SILENCE`]).
    pub dropped_stray: u64,
    /// Received datagrams that could not be sent on: no address known for the other side,
    /// or the send failed.
    pub dropped_unroutable: u64,
}

#[derive(Debug, Default)]
pub(super) struct SideCounters {
    packets_received: AtomicU64,
    bytes_received: AtomicU64,
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    dropped_invalid: AtomicU64,
    dropped_stray: AtomicU64,
    dropped_unroutable: AtomicU64,
}

impl SideCounters {
    pub(super) fn snapshot(&self) -> RelayCounters {
        RelayCounters {
            packets_received: self.packets_received.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            dropped_invalid: self.dropped_invalid.load(Ordering::Relaxed),
            dropped_stray: self.dropped_stray.load(Ordering::Relaxed),
            dropped_unroutable: self.dropped_unroutable.load(Ordering::Relaxed),
        }
    }
}

fn increment(counter: &AtomicU64, amount: usize) {
    counter.fetch_add(amount as u64, Ordering::Relaxed);
}

/// The time of the last RTP packet from a latched source on any stream of the call.
#[derive(Debug)]
pub(super) struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last_rtp_ms: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_rtp_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn touch(&self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start).as_millis();
        let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
        self.last_rtp_ms.fetch_max(elapsed, Ordering::Relaxed);
    }

    pub(super) fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_rtp_ms.load(Ordering::Relaxed))
    }
}

/// Changes sent from the session handle to a stream task.
#[derive(Debug)]
pub(super) enum Control {
    Remote(Side, Box<RemoteEndpoint>),
    PayloadMap(Box<PayloadMap>),
    Observer(Side, Option<EventObserver>),
    /// Adds the sockets of a side (C) or removes them (`None`).
    Side(Side, Option<Box<PortPair>>),
    /// Sets where packets from a side go; `None` drops them.
    Route(Side, Option<Side>),
    /// Starts (or stops, with `None`) generated ringback toward side A.
    Ringback(Option<Ringback>),
    /// Arms the event gate of a side with the event codes that start a feature code
    /// (bit n for event n), or disarms it with 0.
    GateArm(Side, u16),
    /// Stops suppressing a side's telephone events after the current event ends.
    GateRelease(Side),
    /// Sends these RFC 4733 event codes to side A as key presses, with this payload type.
    Keys(Vec<u8>, u8),
}

/// Holds back a side's telephone events from the moment one of the prefix keys (such as
/// `*`) is pressed until the session releases the gate, so that the digits of a feature
/// code never reach the other party.
#[derive(Debug, Default)]
struct EventGate {
    prefix: u16,
    suppressing: bool,
    /// RTP timestamp of the last event held back, whose end packets keep being held back
    /// after a release.
    last_event: Option<u32>,
}

impl EventGate {
    /// Returns whether a telephone-event packet with `event` code and RTP `timestamp` is
    /// held back.
    fn holds(&mut self, event: u8, timestamp: u32) -> bool {
        if self.prefix == 0 {
            return false;
        }
        let starts_code = event < 16 && self.prefix & (1 << event) != 0;
        if !self.suppressing && starts_code && self.last_event != Some(timestamp) {
            self.suppressing = true;
        }
        if self.suppressing || self.last_event == Some(timestamp) {
            self.last_event = Some(timestamp);
            return true;
        }
        false
    }
}

/// The socket of a side that a datagram arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Rtp,
    Rtcp,
}

/// The reason a stream's task woke up.
enum Wake {
    /// A change from the session handle; `None` once the handle is dropped.
    Control(Option<Control>),
    Readable(Side, Port, io::Result<()>),
    Ringback,
}

/// The source address a side is latched to.
#[derive(Debug, Default)]
struct Latch {
    source: Option<SocketAddr>,
    last_seen: Option<Instant>,
}

/// The decision of [`Latch::accept`] on a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Latching {
    /// From the latched source.
    Same,
    /// Latched to this source now, replacing `previous` if there was one.
    Latched { previous: Option<SocketAddr> },
    /// From another source while the latched one is active: to be dropped.
    Stray,
}

impl Latch {
    /// Applies the rule of [`RELATCH_SILENCE`] to a datagram from `source`.
    fn accept(&mut self, source: SocketAddr, now: Instant) -> Latching {
        let previous = self.source;
        if previous == Some(source) {
            self.last_seen = Some(now);
            return Latching::Same;
        }
        let silent = self
            .last_seen
            .is_none_or(|seen| now.saturating_duration_since(seen) >= RELATCH_SILENCE);
        if previous.is_some() && !silent {
            return Latching::Stray;
        }
        self.source = Some(source);
        self.last_seen = Some(now);
        Latching::Latched { previous }
    }
}

/// One side of a stream.
struct Leg {
    sockets: PortPair,
    remote: Option<RemoteEndpoint>,
    rtp_latch: Latch,
    rtcp_latch: Latch,
    observer: Option<EventObserver>,
}

impl Leg {
    fn new(sockets: PortPair) -> Leg {
        Leg {
            sockets,
            remote: None,
            rtp_latch: Latch::default(),
            rtcp_latch: Latch::default(),
            observer: None,
        }
    }

    /// Returns the socket to send a packet of `kind` to this side's endpoint from, and the
    /// address: the latched source if any, else the address from SDP.
    fn destination(&self, kind: PacketKind) -> Option<(&Socket, SocketAddr)> {
        let rtp = self.rtp_latch.source.or(self.remote.map(|r| r.rtp));
        let mux = self.remote.is_some_and(|r| r.rtcp_mux);
        match kind {
            PacketKind::Rtp => Some((self.sockets.rtp(), rtp?)),
            PacketKind::Rtcp if mux => Some((self.sockets.rtp(), rtp?)),
            PacketKind::Rtcp => {
                let from_sdp = self.remote.map(|r| r.rtcp_address());
                Some((self.sockets.rtcp(), self.rtcp_latch.source.or(from_sdp)?))
            }
        }
    }

    fn socket(&self, port: Port) -> &Socket {
        match port {
            Port::Rtp => self.sockets.rtp(),
            Port::Rtcp => self.sockets.rtcp(),
        }
    }

    fn set_remote(&mut self, remote: RemoteEndpoint) {
        let moved = self.remote.is_some_and(|old| old.rtp != remote.rtp);
        if moved {
            self.rtp_latch = Latch::default();
            self.rtcp_latch = Latch::default();
        }
        self.remote = Some(remote);
    }
}

/// The state of one stream's task.
pub(super) struct Relay {
    index: usize,
    /// Sides A and B always have sockets; side C only during a transfer.
    legs: [Option<Leg>; 3],
    /// Where packets from each side go.
    routes: [Option<Side>; 3],
    gates: [EventGate; 3],
    ringback: Option<(ToneGenerator, tokio::time::Interval)>,
    map: PayloadMap,
    counters: Arc<[SideCounters; 3]>,
    activity: Arc<Activity>,
    control: Mailbox<Control>,
    /// The socket polled first on the next wake-up, so that a busy socket cannot starve
    /// the others.
    first_polled: usize,
}

impl Relay {
    pub(super) fn new(
        index: usize,
        sockets: [PortPair; 2],
        counters: Arc<[SideCounters; 3]>,
        activity: Arc<Activity>,
        control: Mailbox<Control>,
    ) -> Relay {
        let [a, b] = sockets;
        Relay {
            index,
            legs: [Some(Leg::new(a)), Some(Leg::new(b)), None],
            routes: [Some(Side::B), Some(Side::A), None],
            gates: Default::default(),
            ringback: None,
            map: PayloadMap::identity(),
            counters,
            activity,
            control,
            first_polled: 0,
        }
    }

    /// Relays until the session handle is dropped.
    ///
    /// The task polls its sockets by hand rather than through one future per socket, so
    /// an idle stream costs only its state.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would keep a second copy of the relay in its future"
    )]
    pub(super) fn run(mut self) -> impl Future<Output = ()> {
        async move {
            loop {
                match std::future::poll_fn(|cx| self.poll_wake(cx)).await {
                    Wake::Control(Some(command)) => self.apply(command),
                    Wake::Control(None) => return,
                    Wake::Readable(side, port, Ok(())) => self.drain(side, port),
                    Wake::Readable(side, port, Err(error)) => {
                        warn!(stream = self.index, ?side, ?port, %error,
                            "relay socket failed, stream stopped");
                        return;
                    }
                    Wake::Ringback => self.send_ringback(),
                }
            }
        }
    }

    /// Returns the first thing that needs the task: a control message, a readable socket
    /// (starting from a different socket each time) or a ringback packet due.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        if let Poll::Ready(command) = self.control.poll_recv(cx) {
            return Poll::Ready(Wake::Control(command));
        }
        let start = self.first_polled;
        for offset in 0..SOCKETS.len() {
            let (side, port) = SOCKETS[(start + offset) % SOCKETS.len()];
            let Some(leg) = &self.legs[side.index()] else {
                continue;
            };
            if let Poll::Ready(ready) = leg.socket(port).poll_recv_ready(cx) {
                self.first_polled = (start + offset + 1) % SOCKETS.len();
                return Poll::Ready(Wake::Readable(side, port, ready));
            }
        }
        if let Some((_, interval)) = &mut self.ringback
            && interval.poll_tick(cx).is_ready()
        {
            return Poll::Ready(Wake::Ringback);
        }
        Poll::Pending
    }

    fn apply(&mut self, command: Control) {
        match command {
            Control::Remote(side, remote) => {
                debug!(stream = self.index, ?side, rtp = %remote.rtp, rtcp_mux = remote.rtcp_mux,
                    "media remote set");
                if let Some(leg) = &mut self.legs[side.index()] {
                    leg.set_remote(*remote);
                }
            }
            Control::PayloadMap(map) => self.map = *map,
            Control::Observer(side, observer) => {
                if let Some(leg) = &mut self.legs[side.index()] {
                    leg.observer = observer;
                }
            }
            Control::Side(side, sockets) => {
                let observer = self.legs[side.index()]
                    .as_mut()
                    .and_then(|leg| leg.observer.take());
                self.legs[side.index()] = sockets.map(|sockets| {
                    let mut leg = Leg::new(*sockets);
                    leg.observer = observer;
                    leg
                });
            }
            Control::Route(from, to) => {
                debug!(stream = self.index, ?from, ?to, "media route set");
                self.routes[from.index()] = to;
            }
            Control::Ringback(spec) => {
                self.ringback = spec.map(|spec| {
                    let mut interval = tokio::time::interval(PACKET_INTERVAL);
                    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    (ToneGenerator::new(spec), interval)
                });
            }
            Control::GateArm(side, prefix) => {
                self.gates[side.index()] = EventGate {
                    prefix,
                    ..EventGate::default()
                };
            }
            Control::GateRelease(side) => self.gates[side.index()].suppressing = false,
            Control::Keys(events, payload_type) => self.send_keys(&events, payload_type),
        }
    }

    /// Sends key presses to side A: keys the gate held back that turned out to be no
    /// feature code. They go out at once under their own SSRC, one press 1600 timestamp
    /// units (200 ms at 8000 Hz) after the other.
    fn send_keys(&mut self, events: &[u8], payload_type: u8) {
        let Some(leg) = &self.legs[Side::A.index()] else {
            return;
        };
        let Some((socket, destination)) = leg.destination(PacketKind::Rtp) else {
            return;
        };
        let ssrc: u32 = rand::random();
        let mut sequence: u16 = rand::random();
        let mut timestamp: u32 = rand::random();
        for &event in events {
            for packet in
                super::tone::key_press_packets(event, payload_type, ssrc, timestamp, &mut sequence)
            {
                let _ = socket.try_send_to(&packet, destination);
            }
            timestamp = timestamp.wrapping_add(1600);
        }
    }

    /// Sends one generated ringback packet toward side A.
    fn send_ringback(&mut self) {
        let Some((generator, _)) = &mut self.ringback else {
            return;
        };
        let mut packet = [0; super::tone::PACKET_BYTES];
        let length = generator.next_packet(&mut packet);
        let Some(leg) = &self.legs[Side::A.index()] else {
            return;
        };
        if let Some((socket, destination)) = leg.destination(PacketKind::Rtp) {
            let _ = socket.try_send_to(&packet[..length], destination);
        }
    }

    /// Relays the datagrams waiting on one socket, up to [`ROUNDS`] batches.
    fn drain(&mut self, side: Side, port: Port) {
        BATCH.with_borrow_mut(|batch| {
            for _ in 0..ROUNDS {
                let Some(leg) = &self.legs[side.index()] else {
                    return;
                };
                let count = match batch.receive(leg.socket(port)) {
                    Ok(count) => count,
                    Err(error) => {
                        trace!(stream = self.index, ?side, %error, "relay receive failed");
                        return;
                    }
                };
                for index in 0..count {
                    let (length, source) = batch.received[index];
                    self.relay(side, port, &mut batch.buffers[index][..length], source);
                }
                if count < BATCH_LEN {
                    return;
                }
            }
        });
    }

    /// Validates, latches, translates and forwards one received datagram.
    fn relay(&mut self, side: Side, port: Port, datagram: &mut [u8], source: SocketAddr) {
        let counters = &self.counters[side.index()];
        increment(&counters.packets_received, 1);
        increment(&counters.bytes_received, datagram.len());

        let Some(kind) = self.admit(side, port, datagram, source) else {
            return;
        };
        if kind == PacketKind::Rtp && !self.translate(side, datagram, source) {
            return;
        }
        self.forward(side, kind, datagram);
    }

    /// Classifies the datagram and applies the latching rule; returns `None`, counting the
    /// drop, for a datagram that is not relayed.
    fn admit(
        &mut self,
        side: Side,
        port: Port,
        datagram: &[u8],
        source: SocketAddr,
    ) -> Option<PacketKind> {
        let counters = &self.counters[side.index()];
        let kind = match (port, packet::classify(datagram)) {
            _ if datagram.len() == MAX_DATAGRAM => None,
            (Port::Rtcp, Some(PacketKind::Rtp)) => None,
            (_, kind) => kind,
        };
        let Some(kind) = kind else {
            trace!(stream = self.index, ?side, %source, length = datagram.len(), "dropped non-RTP datagram");
            increment(&counters.dropped_invalid, 1);
            return None;
        };

        let now = Instant::now();
        let leg = self.legs[side.index()].as_mut()?;
        let latch = match port {
            Port::Rtp => &mut leg.rtp_latch,
            Port::Rtcp => &mut leg.rtcp_latch,
        };
        match latch.accept(source, now) {
            Latching::Same => {}
            Latching::Latched { previous } => {
                let stream = self.index;
                debug!(stream, ?side, ?port, ?previous, %source, "media source latched");
            }
            Latching::Stray => {
                trace!(stream = self.index, ?side, %source, "dropped datagram from stray source");
                increment(&counters.dropped_stray, 1);
                return None;
            }
        }

        if kind == PacketKind::Rtp {
            self.activity.touch(now);
        }
        Some(kind)
    }

    /// Hands telephone events to the observer and rewrites the payload type of the RTP
    /// packet for the other side. Returns false when the side's event gate holds the
    /// packet back.
    fn translate(&mut self, side: Side, packet: &mut [u8], source: SocketAddr) -> bool {
        let payload_type = packet::payload_type(packet);
        if self.map.is_telephone_event(side, payload_type) {
            let observer = self.legs[side.index()]
                .as_ref()
                .and_then(|leg| leg.observer.as_ref());
            notify_observer(observer, self.index, side, source, packet);
            if let Ok(reader) = RtpReader::new(packet)
                && let Some(&event) = reader.payload().first()
                && self.gates[side.index()].holds(event, reader.timestamp())
            {
                trace!(
                    stream = self.index,
                    ?side,
                    event,
                    "telephone event held back"
                );
                return false;
            }
        }
        let translated = self.map.translate(side, payload_type);
        if translated != payload_type {
            packet::set_payload_type(packet, translated);
        }
        true
    }

    /// Sends the datagram to the other side's endpoint.
    fn forward(&self, from: Side, kind: PacketKind, datagram: &[u8]) {
        let received = &self.counters[from.index()];
        let Some(to) = self.routes[from.index()] else {
            increment(&received.dropped_unroutable, 1);
            return;
        };
        let leg = self.legs[to.index()].as_ref();
        let Some((socket, destination)) = leg.and_then(|leg| leg.destination(kind)) else {
            trace!(
                stream = self.index,
                ?from,
                "dropped datagram: no address for the other side"
            );
            increment(&received.dropped_unroutable, 1);
            return;
        };

        match socket.try_send_to(datagram, destination) {
            Ok(sent) => {
                trace!(stream = self.index, ?from, %destination, sent, ?kind, "relayed");
                let counters = &self.counters[to.index()];
                increment(&counters.packets_sent, 1);
                increment(&counters.bytes_sent, sent);
            }
            Err(error) => {
                trace!(stream = self.index, %destination, %error, "relay send failed");
                increment(&received.dropped_unroutable, 1);
            }
        }
    }
}

/// Hands a copy of a telephone-event packet to the side's observer, if there is one. A
/// full or closed channel loses the copy, never the relayed packet.
fn notify_observer(
    observer: Option<&EventObserver>,
    stream: usize,
    side: Side,
    source: SocketAddr,
    packet: &[u8],
) {
    let Some(observer) = observer else {
        return;
    };
    let Ok(reader) = RtpReader::new(packet) else {
        return;
    };
    let event = TelephoneEventPacket {
        stream,
        side,
        source,
        payload_type: reader.payload_type(),
        marker: reader.mark(),
        sequence: u16::from(reader.sequence_number()),
        timestamp: reader.timestamp(),
        ssrc: reader.ssrc(),
        payload: Bytes::copy_from_slice(reader.payload()),
    };
    if observer.try_send(Box::new(event)).is_err() {
        trace!(stream, ?side, "telephone-event observer is full or closed");
    }
}
