//! The relay's UDP socket, registered with the runtime for reading only.
//!
//! tokio's `UdpSocket` registers for reading and writing. A UDP socket becomes writable
//! again each time the kernel frees a datagram it sent, which on loopback is at once, so
//! every relayed packet also woke the socket's epoll entry for a write readiness nobody
//! waits for, and the next `epoll_wait` returned it. The relay never waits to send: a
//! datagram the kernel cannot take at once is dropped, as late media would be. So the
//! socket is registered for reading alone and sends straight on the non-blocking socket.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A bound, non-blocking UDP socket whose readability the runtime watches.
#[derive(Debug)]
pub(super) struct RelaySocket {
    fd: AsyncFd<StdUdpSocket>,
}

impl RelaySocket {
    /// Registers a socket with the current runtime for readability. The socket is made
    /// non-blocking here.
    ///
    /// # Errors
    ///
    /// Setting the socket non-blocking or registering it failed.
    pub(super) fn new(socket: StdUdpSocket) -> io::Result<RelaySocket> {
        socket.set_nonblocking(true)?;
        // SAFETY: the `AsyncFd` owns the socket, whose descriptor stays open and the same
        // until the `AsyncFd` is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(RelaySocket { fd })
    }

    /// Returns ready once a datagram may be waiting. The readiness stays set until a
    /// read through [`RelaySocket::try_read`] finds the queue empty.
    pub(super) fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fd.poll_read_ready(cx).map_ok(drop)
    }

    /// Runs a read on the socket when it is marked readable. A `WouldBlock` from `read`
    /// clears the mark, and so does one returned while the mark was not set.
    pub(super) fn try_read<R>(
        &self,
        read: impl FnOnce(&StdUdpSocket) -> io::Result<R>,
    ) -> io::Result<R> {
        self.fd.try_io(Interest::READABLE, read)
    }

    /// Receives one datagram if the socket is marked readable and one is waiting.
    pub(super) fn try_recv_from(&self, buffer: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.try_read(|socket| socket.recv_from(buffer))
    }

    /// Sends one datagram now, or fails with `WouldBlock` when the send buffer is full.
    pub(super) fn try_send_to(&self, datagram: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.fd.get_ref().send_to(datagram, target)
    }

    #[cfg(test)]
    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }
}

impl AsRawFd for RelaySocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn relay_socket() -> RelaySocket {
        RelaySocket::new(StdUdpSocket::bind((LOOPBACK, 0)).unwrap()).unwrap()
    }

    async fn readable(socket: &RelaySocket) {
        std::future::poll_fn(|cx| socket.poll_recv_ready(cx))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sends_and_wakes_on_a_datagram() {
        let (relay, peer) = (relay_socket(), relay_socket());
        let target = peer.local_addr().unwrap();
        assert_eq!(relay.try_send_to(b"ping", target).unwrap(), 4);

        tokio::time::timeout(Duration::from_secs(1), readable(&peer))
            .await
            .unwrap();
        let mut buffer = [0; 16];
        let (length, source) = peer.try_recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"ping");
        assert_eq!(source, relay.local_addr().unwrap());
    }

    /// Returns whether the socket turns readable within 50 ms.
    async fn turns_readable(socket: &RelaySocket) -> bool {
        tokio::time::timeout(Duration::from_millis(50), readable(socket))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_arriving_datagrams_make_it_readable() {
        let (relay, peer) = (relay_socket(), relay_socket());
        let (relay_address, peer_address) =
            (relay.local_addr().unwrap(), peer.local_addr().unwrap());
        for _ in 0..10 {
            relay.try_send_to(b"out", peer_address).unwrap();
        }
        assert!(!turns_readable(&relay).await);

        peer.try_send_to(b"in", relay_address).unwrap();
        assert!(turns_readable(&relay).await);
        let mut buffer = [0; 16];
        assert_eq!(relay.try_recv_from(&mut buffer).unwrap().0, 2);

        // The read that finds the queue empty clears the readiness.
        let empty = relay.try_recv_from(&mut buffer).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        assert!(!turns_readable(&relay).await);
    }
}
