//! The relay port pool: even RTP ports with RTCP on the next port (RFC 3550 §11).

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::UdpSocket;

use super::MediaError;
use crate::config::MediaConfig;

/// The relay's port range, shared by all calls.
///
/// Pairs are handed out round-robin, so a port just released is the last to be reused and
/// late packets of an ended call rarely reach a new one. A port that another process has
/// bound is skipped.
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
    in_use: Vec<bool>,
    /// Index of the pair to try first.
    next: usize,
}

/// An RTP socket on an even port and an RTCP socket on the next port, both bound on the
/// relay address. The pair returns to the pool when dropped.
#[derive(Debug)]
pub struct PortPair {
    // Field order matters: the sockets close before the lease frees their ports.
    pub(super) rtp: UdpSocket,
    pub(super) rtcp: UdpSocket,
    lease: Lease,
}

#[derive(Debug)]
struct Lease {
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
                in_use: vec![false; count],
                next: 0,
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
        self.state().in_use.len()
    }

    /// Returns how many port pairs are allocated.
    pub fn in_use(&self) -> usize {
        self.state().in_use.iter().filter(|used| **used).count()
    }

    /// Binds the next free pair. Must be called inside a tokio runtime.
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

        let mut state = self.state();
        let count = state.in_use.len();
        for offset in 0..count {
            let index = (state.next + offset) % count;
            if state.in_use[index] {
                continue;
            }
            let Some((rtp, rtcp)) = self.bind_pair(index)? else {
                continue;
            };
            state.in_use[index] = true;
            state.next = (index + 1) % count;
            return Ok(PortPair {
                rtp,
                rtcp,
                lease: Lease {
                    pool: Arc::clone(self),
                    index,
                },
            });
        }

        Err(MediaError::PortsExhausted {
            address: self.address,
            min: self.port_min,
            max: self.port_max,
        })
    }

    /// Binds both sockets of a pair, or returns `None` if either port is taken.
    fn bind_pair(&self, index: usize) -> Result<Option<(UdpSocket, UdpSocket)>, MediaError> {
        // The range was checked in `new`, so the pair's ports fit in u16.
        let rtp_port = u32::from(self.first_port) + 2 * index as u32;
        let Ok(rtp_port) = u16::try_from(rtp_port) else {
            return Ok(None);
        };
        let Some(rtp) = bind(SocketAddr::new(self.address, rtp_port))? else {
            return Ok(None);
        };
        let Some(rtcp) = bind(SocketAddr::new(self.address, rtp_port + 1))? else {
            return Ok(None);
        };
        Ok(Some((rtp, rtcp)))
    }

    fn release(&self, index: usize) {
        if let Some(used) = self.state().in_use.get_mut(index) {
            *used = false;
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
        let port = self.lease.port();
        SocketAddr::new(self.lease.pool.address, port)
    }
}

impl Lease {
    fn port(&self) -> u16 {
        let port = u32::from(self.pool.first_port) + 2 * self.index as u32;
        u16::try_from(port).unwrap_or(0)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.release(self.index);
    }
}

/// Binds a non-blocking UDP socket, or returns `None` if the address is in use.
fn bind(address: SocketAddr) -> Result<Option<UdpSocket>, MediaError> {
    let bind_error = |source| MediaError::Bind { address, source };
    let socket = match StdUdpSocket::bind(address) {
        Ok(socket) => socket,
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => return Ok(None),
        Err(error) => return Err(bind_error(error)),
    };
    socket.set_nonblocking(true).map_err(bind_error)?;
    let socket = UdpSocket::from_std(socket).map_err(bind_error)?;
    Ok(Some(socket))
}
