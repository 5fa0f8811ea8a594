//! The relay port pool: even RTP ports with RTCP on the next port (RFC 3550 §11), bound
//! once and reused after a rest.

use std::collections::VecDeque;
use std::io;
use std::mem::ManuallyDrop;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::MediaError;
use crate::config::MediaConfig;
use crate::udp::Socket;

/// How long a released pair rests before another call may reuse it, so that packets
/// still in flight from the ended call do not reach the next one. A late packet that
/// latches a reused side anyway gives way to the new endpoint after
/// [`super::RELATCH_SILENCE`].
pub const PAIR_REST: Duration = Duration::from_secs(1);

/// How many pairs [`PortPool::prebind`] binds ahead of the first calls.
pub const PREBOUND: usize = 64;

/// How many datagrams a parked socket may discard before it is handed out again. A
/// socket with more waiting is closed rather than reused.
const DRAIN_LIMIT: usize = 256;

/// The relay's port range, shared by all calls.
///
/// Pairs are handed out round-robin, so a port just released is the last to be bound
/// again, and late packets of an ended call rarely reach a new one. A port that another
/// process has bound is skipped.
///
/// Binding a pair costs two sockets, two binds and two registrations with the reactor,
/// and closing it as many calls again. That was a fifth of the engine's CPU per call at
/// a few thousand calls per second, and 60-70 µs on a transfer's path to the remote
/// INVITE.
/// So a released pair stays bound ("parked") and is handed out again after resting
/// [`PAIR_REST`], its queued datagrams discarded. [`PortPool::prebind`] parks a few pairs
/// ahead of the first calls.
///
/// Leased and parked pairs together stay within the bound set by
/// [`PortPool::limit_bound`] (the open-files limit). A call may need a pair when none has
/// finished its rest and the bound or the range is reached. It then gets the pair that
/// has rested longest, because at that rate a closed port would be bound again as soon.
///
/// Parked sockets stay registered with the runtime that bound them, so a pool serves
/// one runtime.
#[derive(Debug)]
pub struct PortPool {
    address: IpAddr,
    port_min: u16,
    port_max: u16,
    /// The even RTP port of pair 0.
    first_port: u16,
    pairs: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    /// Whether each pair is bound by this pool: leased or parked.
    bound: Vec<bool>,
    /// Index of the pair to try binding first.
    next: usize,
    /// Released pairs still bound, the longest resting first.
    parked: VecDeque<Parked>,
    /// The maximum number of pairs leased and parked together.
    max_bound: usize,
    leased: usize,
}

#[derive(Debug)]
struct Parked {
    index: usize,
    sockets: Sockets,
    /// When the pair may be handed out again.
    ready_at: Instant,
}

#[derive(Debug)]
struct Sockets {
    rtp: Socket,
    rtcp: Socket,
}

/// An RTP socket on an even port and an RTCP socket on the next port, both bound on the
/// relay address. The pair returns to the pool when dropped.
#[derive(Debug)]
pub struct PortPair {
    /// Taken only by `Drop`.
    sockets: ManuallyDrop<Sockets>,
    pool: Arc<PortPool>,
    index: usize,
}

impl PortPool {
    /// Creates the pool for `address` and the ports `port_min..=port_max`. An odd
    /// `port_min` is rounded up, and a last even port without room for RTCP is unused.
    ///
    /// # Errors
    ///
    /// [`MediaError::InvalidPortRange`] if the range contains no even pair or starts at 0.
    pub fn new(address: IpAddr, port_min: u16, port_max: u16) -> Result<Arc<PortPool>, MediaError> {
        let invalid = MediaError::InvalidPortRange {
            min: port_min,
            max: port_max,
        };
        if port_min == 0 || port_min > port_max {
            return Err(invalid);
        }
        let first_port = port_min.checked_add(port_min % 2).ok_or(invalid)?;
        let last_rtcp = u32::from(port_max);
        let span = last_rtcp + 1 - u32::from(first_port);
        let count = (span / 2) as usize;
        if count == 0 {
            return Err(MediaError::InvalidPortRange {
                min: port_min,
                max: port_max,
            });
        }
        Ok(Arc::new(PortPool {
            address,
            port_min,
            port_max,
            first_port,
            pairs: Mutex::new(PoolState {
                bound: vec![false; count],
                next: 0,
                parked: VecDeque::new(),
                max_bound: count,
                leased: 0,
            }),
        }))
    }

    /// Creates the pool from the `[media]` configuration.
    ///
    /// # Errors
    ///
    /// As [`PortPool::new`].
    pub fn from_config(config: &MediaConfig) -> Result<Arc<PortPool>, MediaError> {
        PortPool::new(config.address, config.port_min, config.port_max)
    }

    /// Returns the address the relay binds and advertises.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// Returns how many port pairs the range contains.
    pub fn capacity(&self) -> usize {
        self.state().bound.len()
    }

    /// Returns how many port pairs are allocated to calls.
    pub fn in_use(&self) -> usize {
        self.state().leased
    }

    /// Sets the maximum number of pairs bound at once, leased and parked together, such
    /// as from the open-files limit. The default is the whole range. Parked pairs beyond
    /// the bound are closed as they come up for reuse, and so are pairs released beyond it.
    pub fn limit_bound(&self, pairs: usize) {
        let mut state = self.state();
        state.max_bound = pairs.min(state.bound.len());
    }

    /// Returns how many released or prebound pairs are kept bound for reuse.
    pub fn parked(&self) -> usize {
        self.state().parked.len()
    }

    /// Binds up to `pairs` pairs (at most a quarter of the range) and parks them ready for
    /// use, so that the first calls and transfers do not wait for binding. Returns how
    /// many were bound. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`PortPool::allocate`], except that running out of free ports is not an error.
    pub fn prebind(self: &Arc<Self>, pairs: usize) -> Result<usize, MediaError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(MediaError::NoRuntime);
        }
        let mut state = self.state();
        let pairs = pairs.min(state.bound.len() / 4).min(state.max_bound);
        let now = Instant::now();
        for count in 0..pairs {
            let (index, sockets) = match self.bind_next(&mut state) {
                Ok(bound) => bound,
                Err(MediaError::PortsExhausted { .. }) => return Ok(count),
                Err(error) => return Err(error),
            };
            state.parked.push_back(Parked {
                index,
                sockets,
                ready_at: now,
            });
        }
        Ok(pairs)
    }

    /// Hands out a parked pair that has rested, or else binds the next free pair, or else
    /// (at the bound or with every port bound) the parked pair that has rested longest.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`MediaError::PortsExhausted`] when every pair is allocated or bound by others,
    /// [`MediaError::Bind`] when binding fails for another reason than the port being in
    /// use (such as an address that is not local), [`MediaError::NoRuntime`] outside a
    /// runtime.
    pub fn allocate(self: &Arc<Self>) -> Result<PortPair, MediaError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(MediaError::NoRuntime);
        }
        if let Some(pair) = self.unpark(Instant::now()) {
            return Ok(pair);
        }
        let bound = {
            let mut state = self.state();
            if state.leased + state.parked.len() < state.max_bound {
                self.bind_next(&mut state)
            } else {
                Err(self.exhausted())
            }
        };
        match bound {
            Ok((index, sockets)) => Ok(self.lease(index, sockets)),
            // No port or descriptor to spare: a pair cut short in its rest beats a
            // failed call.
            Err(MediaError::PortsExhausted { .. }) => self
                .unpark(Instant::now() + PAIR_REST)
                .ok_or_else(|| self.exhausted()),
            Err(error) if out_of_files(&error) => {
                self.unpark(Instant::now() + PAIR_REST).ok_or(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Takes the longest-resting parked pair if it may be reused at `now`, with its queues
    /// emptied. A pair still flooded after its rest, or beyond the bound, is closed and
    /// the next one tried.
    fn unpark(self: &Arc<Self>, now: Instant) -> Option<PortPair> {
        loop {
            let (parked, within_bound) = {
                let mut state = self.state();
                if state.parked.front()?.ready_at > now {
                    return None;
                }
                let within_bound = state.leased + state.parked.len() <= state.max_bound;
                (state.parked.pop_front()?, within_bound)
            };
            if within_bound && drained(&parked.sockets.rtp) && drained(&parked.sockets.rtcp) {
                return Some(self.lease(parked.index, parked.sockets));
            }
            drop(parked.sockets);
            self.unbind(parked.index);
        }
    }

    /// Binds the next free pair, round-robin, and marks it bound.
    fn bind_next(&self, state: &mut PoolState) -> Result<(usize, Sockets), MediaError> {
        let count = state.bound.len();
        for offset in 0..count {
            let index = (state.next + offset) % count;
            if state.bound[index] {
                continue;
            }
            let Some(sockets) = self.bind_pair(index)? else {
                continue;
            };
            state.bound[index] = true;
            state.next = (index + 1) % count;
            return Ok((index, sockets));
        }
        Err(self.exhausted())
    }

    /// Hands a bound pair to a call.
    fn lease(self: &Arc<Self>, index: usize, sockets: Sockets) -> PortPair {
        self.state().leased += 1;
        PortPair {
            sockets: ManuallyDrop::new(sockets),
            pool: Arc::clone(self),
            index,
        }
    }

    fn exhausted(&self) -> MediaError {
        MediaError::PortsExhausted {
            address: self.address,
            min: self.port_min,
            max: self.port_max,
        }
    }

    /// Binds both sockets of a pair, or returns `None` if either port is taken.
    fn bind_pair(&self, index: usize) -> Result<Option<Sockets>, MediaError> {
        // The range was checked in `new`, so the pair's ports fit in u16.
        let Ok(rtp_port) = u16::try_from(self.port_of(index)) else {
            return Ok(None);
        };
        let Some(rtp) = bind(SocketAddr::new(self.address, rtp_port))? else {
            return Ok(None);
        };
        let Some(rtcp) = bind(SocketAddr::new(self.address, rtp_port + 1))? else {
            return Ok(None);
        };
        Ok(Some(Sockets { rtp, rtcp }))
    }

    fn port_of(&self, index: usize) -> u32 {
        u32::from(self.first_port) + 2 * index as u32
    }

    /// Takes back a pair: parked for reuse within the bound, else closed.
    fn release(&self, index: usize, sockets: Sockets) {
        let mut state = self.state();
        state.leased = state.leased.saturating_sub(1);
        if state.leased + state.parked.len() < state.max_bound {
            state.parked.push_back(Parked {
                index,
                sockets,
                ready_at: Instant::now() + PAIR_REST,
            });
            return;
        }
        drop(state);
        drop(sockets);
        self.unbind(index);
    }

    /// Frees a pair's ports after its sockets have been closed.
    fn unbind(&self, index: usize) {
        if let Some(bound) = self.state().bound.get_mut(index) {
            *bound = false;
        }
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        // The state stays consistent even if a holder panicked: every update is one store.
        self.pairs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PortPair {
    /// Returns the local RTP address; RTCP is on the next port.
    pub fn rtp_addr(&self) -> SocketAddr {
        let port = u16::try_from(self.pool.port_of(self.index)).unwrap_or(0);
        SocketAddr::new(self.pool.address, port)
    }

    pub(super) fn rtp(&self) -> &Socket {
        &self.sockets.rtp
    }

    pub(super) fn rtcp(&self) -> &Socket {
        &self.sockets.rtcp
    }
}

impl Drop for PortPair {
    fn drop(&mut self) {
        // SAFETY: the sockets are taken only here, and `drop` runs once.
        let sockets = unsafe { ManuallyDrop::take(&mut self.sockets) };
        self.pool.release(self.index, sockets);
    }
}

/// Discards the datagrams waiting on a parked socket. Returns false if more than
/// [`DRAIN_LIMIT`] were waiting.
fn drained(socket: &Socket) -> bool {
    let mut scratch = [0; 64];
    for _ in 0..DRAIN_LIMIT {
        match socket.try_recv_from(&mut scratch) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
            // An error queued for the socket (such as an ICMP port unreachable) is
            // consumed by this read; the socket stays usable.
            Err(_) => {}
        }
    }
    false
}

/// Returns whether binding failed because the process or the system ran out of
/// descriptors.
fn out_of_files(error: &MediaError) -> bool {
    matches!(error, MediaError::Bind { source, .. }
        if matches!(source.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)))
}

/// Binds a non-blocking UDP socket, or returns `None` if the address is in use.
fn bind(address: SocketAddr) -> Result<Option<Socket>, MediaError> {
    let bind_error = |source| MediaError::Bind { address, source };
    let socket = match StdUdpSocket::bind(address) {
        Ok(socket) => socket,
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => return Ok(None),
        Err(error) => return Err(bind_error(error)),
    };
    let socket = Socket::new(socket).map_err(bind_error)?;
    Ok(Some(socket))
}
