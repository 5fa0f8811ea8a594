//! The UDP socket of the SIP transport and the relay, registered with the runtime for
//! reading only.
//!
//! tokio's `UdpSocket` registers for reading and writing. A UDP socket turns writable
//! again each time the kernel frees a datagram it sent, which on loopback happens within
//! the `sendto`. So every datagram sent also queued a write readiness on the socket's
//! epoll entry that nothing waits for, and the next `epoll_wait` returned it, or woke a
//! worker parked in it. Nothing here waits for the socket to turn writable. The relay
//! drops a datagram the kernel cannot take, as it would drop late media. The transport
//! tries again for a few milliseconds before it reports the send as failed, and SIP's
//! retransmissions cover that as they cover a lost datagram. So the socket is watched
//! for reading alone and sends go straight to it.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

mod batch;

pub use batch::{BATCH_LEN, Batch, NO_SOURCE};

/// How often [`Socket::send_to`] tries again while the send buffer is full.
const SEND_RETRIES: u32 = 5;
/// The wait between those tries.
const SEND_RETRY_WAIT: Duration = Duration::from_millis(1);

/// A bound, non-blocking UDP socket whose readability the runtime watches.
#[derive(Debug)]
pub struct Socket {
    fd: AsyncFd<StdUdpSocket>,
}

impl Socket {
    /// Registers a bound socket with the current runtime for readability. The socket is
    /// made non-blocking here.
    ///
    /// # Errors
    ///
    /// Setting the socket non-blocking or registering it failed.
    pub fn new(socket: StdUdpSocket) -> io::Result<Socket> {
        socket.set_nonblocking(true)?;
        // SAFETY: the `AsyncFd` owns the socket, whose descriptor stays open and the same
        // until the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Socket { fd })
    }

    /// Returns ready once a datagram may be waiting. The readiness stays set until a
    /// read through [`Socket::try_read`] finds the queue empty.
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fd.poll_read_ready(cx).map_ok(drop)
    }

    /// Runs a read on the socket when it is marked readable. A `WouldBlock` from `read`
    /// clears the mark, and so does one returned while the mark was not set.
    ///
    /// # Errors
    ///
    /// The error of `read`, or `WouldBlock` when the socket is not marked readable.
    pub fn try_read<R>(&self, read: impl FnOnce(&StdUdpSocket) -> io::Result<R>) -> io::Result<R> {
        self.fd.try_io(Interest::READABLE, read)
    }

    /// Receives one datagram if the socket is marked readable and one is waiting.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when none is waiting, or the socket's error.
    pub fn try_recv_from(&self, buffer: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.try_read(|socket| socket.recv_from(buffer))
    }

    /// Sends one datagram now, or fails with `WouldBlock` when the send buffer is full.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or the error of `sendto`.
    pub fn try_send_to(&self, datagram: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.fd.get_ref().send_to(datagram, target)
    }

    /// Sends one datagram, trying again for a few milliseconds while the send buffer is
    /// full.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the buffer stayed full, or the error of `sendto`.
    pub async fn send_to(&self, datagram: &[u8], target: SocketAddr) -> io::Result<usize> {
        let mut retries = 0;
        loop {
            match self.try_send_to(datagram, target) {
                Err(error)
                    if error.kind() == io::ErrorKind::WouldBlock && retries < SEND_RETRIES =>
                {
                    retries += 1;
                    tokio::time::sleep(SEND_RETRY_WAIT).await;
                }
                result => return result,
            }
        }
    }

    /// Returns the address the socket is bound to.
    ///
    /// # Errors
    ///
    /// The error of `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn socket() -> Socket {
        Socket::new(StdUdpSocket::bind((LOOPBACK, 0)).unwrap()).unwrap()
    }

    async fn readable(socket: &Socket) {
        std::future::poll_fn(|cx| socket.poll_recv_ready(cx))
            .await
            .unwrap();
    }

    /// Returns whether the socket turns readable within `wait`.
    async fn turns_readable(socket: &Socket, wait: Duration) -> bool {
        tokio::time::timeout(wait, readable(socket)).await.is_ok()
    }

    /// Long enough for a datagram on loopback on a busy machine.
    const ARRIVAL: Duration = Duration::from_secs(2);
    /// Long enough to show that nothing arrived.
    const QUIET: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn sends_and_receives_a_datagram() {
        let (relay, peer) = (socket(), socket());
        let target = peer.local_addr().unwrap();
        assert_eq!(relay.send_to(b"ping", target).await.unwrap(), 4);

        assert!(turns_readable(&peer, ARRIVAL).await);
        let mut buffer = [0; 16];
        let (length, source) = peer.try_recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"ping");
        assert_eq!(source, relay.local_addr().unwrap());
    }

    #[tokio::test]
    async fn only_arriving_datagrams_make_it_readable() {
        let (relay, peer) = (socket(), socket());
        let (relay_address, peer_address) =
            (relay.local_addr().unwrap(), peer.local_addr().unwrap());
        for _ in 0..10 {
            relay.try_send_to(b"out", peer_address).unwrap();
        }
        assert!(!turns_readable(&relay, QUIET).await);

        peer.try_send_to(b"in", relay_address).unwrap();
        assert!(turns_readable(&relay, ARRIVAL).await);
        let mut buffer = [0; 16];
        assert_eq!(relay.try_recv_from(&mut buffer).unwrap().0, 2);

        // The read that finds the queue empty clears the readiness.
        let empty = relay.try_recv_from(&mut buffer).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        assert!(!turns_readable(&relay, QUIET).await);
    }
}
