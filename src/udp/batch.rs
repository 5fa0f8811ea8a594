//! Receiving several datagrams with one system call (`recvmmsg(2)` on Linux), and
//! knowing from a short batch that a socket's queue is empty without another call.
//!
//! A relay socket carries one packet per 20 ms, so a wake-up usually finds one datagram.
//! Reading until `EWOULDBLOCK` would cost a second, empty `recvfrom` per packet. A batch
//! smaller than the room offered shows that the queue ran dry, so the socket's readiness
//! is cleared without that second call. The SIP socket, shared by every call, finds
//! several datagrams queued once the engine is busy, and takes up to a batch of them per
//! system call.

use std::io;
use std::net::SocketAddr;

use super::Socket;

/// The maximum number of datagrams received per system call.
pub const BATCH_LEN: usize = 8;

/// The source recorded for a buffer that received nothing usable: readers skip it.
pub const NO_SOURCE: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Receive buffers for one batch, and what each received.
pub struct Batch<const SIZE: usize> {
    pub buffers: [[u8; SIZE]; BATCH_LEN],
    /// Length and source of each datagram received by the last [`Batch::receive`].
    pub received: [(usize, SocketAddr); BATCH_LEN],
}

impl<const SIZE: usize> Default for Batch<SIZE> {
    fn default() -> Batch<SIZE> {
        Batch::new()
    }
}

impl<const SIZE: usize> Batch<SIZE> {
    pub const fn new() -> Batch<SIZE> {
        Batch {
            buffers: [[0; SIZE]; BATCH_LEN],
            received: [(0, NO_SOURCE); BATCH_LEN],
        }
    }

    /// Returns a batch built on the heap, for sizes too large for a thread's stack.
    pub fn boxed() -> Box<Batch<SIZE>> {
        let mut batch = Box::<Batch<SIZE>>::new_uninit();
        let pointer = batch.as_mut_ptr();
        // SAFETY: both fields are written before `assume_init`: the buffers with zero
        // bytes, a valid value for `u8` arrays, and the records with a plain value.
        unsafe {
            (&raw mut (*pointer).buffers).write_bytes(0, 1);
            (&raw mut (*pointer).received).write([(0, NO_SOURCE); BATCH_LEN]);
            batch.assume_init()
        }
    }

    /// Receives the datagrams waiting on `socket`, up to [`BATCH_LEN`], and returns how
    /// many. Returns 0 when none was waiting. A datagram longer than `SIZE` is cut to
    /// `SIZE` bytes. When fewer than [`BATCH_LEN`] arrive, the socket's readiness is
    /// cleared, so the task sleeps until the next datagram.
    ///
    /// # Errors
    ///
    /// The socket's error other than `EWOULDBLOCK`, such as a queued ICMP error.
    pub fn receive(&mut self, socket: &Socket) -> io::Result<usize> {
        let mut count = 0;
        let result = socket.try_read(|_| {
            count = self.receive_now(socket)?;
            if count < BATCH_LEN {
                // Tells tokio the queue is empty, which clears the readiness.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(count),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(count),
            Err(error) => Err(error),
        }
    }

    /// Reads once and returns how many datagrams were read.
    #[cfg(target_os = "linux")]
    fn receive_now(&mut self, socket: &Socket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;

        // SAFETY: all-zero bytes are a valid value of these plain C structures.
        let mut addresses: [libc::sockaddr_storage; BATCH_LEN] = unsafe { std::mem::zeroed() };
        let mut vectors: [libc::iovec; BATCH_LEN] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; BATCH_LEN] = unsafe { std::mem::zeroed() };
        for (index, buffer) in self.buffers.iter_mut().enumerate() {
            vectors[index] = libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: SIZE,
            };
            let header = &mut headers[index].msg_hdr;
            header.msg_name = std::ptr::from_mut(&mut addresses[index]).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &raw mut vectors[index];
            header.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live buffer of SIZE bytes and a live
        // sockaddr_storage, all of which outlive the call; BATCH_LEN headers are passed.
        let count = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH_LEN as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let Ok(count) = usize::try_from(count) else {
            return Err(io::Error::last_os_error());
        };
        let count = count.min(BATCH_LEN);
        for (index, header) in headers.iter().enumerate().take(count) {
            let length = (header.msg_len as usize).min(SIZE);
            // A UDP socket bound to IPv4 or IPv6 receives from nothing else. A source of
            // another family would leave an empty datagram, which the relay drops.
            self.received[index] = match socket_addr(&addresses[index]) {
                Some(source) => (length, source),
                None => (0, NO_SOURCE),
            };
        }
        Ok(count)
    }

    #[cfg(not(target_os = "linux"))]
    fn receive_now(&mut self, socket: &Socket) -> io::Result<usize> {
        self.received[0] = socket.try_recv_from(&mut self.buffers[0])?;
        Ok(1)
    }
}

/// Converts a source address filled in by the kernel; `None` for a family other than
/// IPv4 and IPv6.
#[cfg(target_os = "linux")]
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: by its family the storage contains a sockaddr_in, which it is large
            // and aligned enough for.
            let address: &libc::sockaddr_in = unsafe { &*std::ptr::from_ref(storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr)),
                u16::from_be(address.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let address: &libc::sockaddr_in6 = unsafe { &*std::ptr::from_ref(storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(address.sin6_addr.s6_addr),
                u16::from_be(address.sin6_port),
                address.sin6_flowinfo,
                address.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    async fn socket() -> UdpSocket {
        UdpSocket::bind((LOOPBACK, 0)).await.unwrap()
    }

    fn relay_socket() -> Socket {
        Socket::new(std::net::UdpSocket::bind((LOOPBACK, 0)).unwrap()).unwrap()
    }

    async fn readable(relay: &Socket) {
        std::future::poll_fn(|cx| relay.poll_recv_ready(cx))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn batch_reads_queued_datagrams_in_order() {
        let (relay, peer) = (relay_socket(), socket().await);
        let target = relay.local_addr().unwrap();
        for payload in [&b"one"[..], b"two", b"three"] {
            peer.send_to(payload, target).await.unwrap();
        }
        readable(&relay).await;
        tokio::time::sleep(Duration::from_millis(20)).await;

        let mut batch = Batch::<16>::new();
        assert_eq!(batch.receive(&relay).unwrap(), 3);
        let peer_address = peer.local_addr().unwrap();
        for (index, payload) in [&b"one"[..], b"two", b"three"].iter().enumerate() {
            let (length, source) = batch.received[index];
            assert_eq!(&batch.buffers[index][..length], *payload);
            assert_eq!(source, peer_address);
        }
        assert_eq!(batch.receive(&relay).unwrap(), 0);
    }

    #[tokio::test]
    async fn batch_leaves_the_rest_for_the_next_read() {
        let (relay, peer) = (relay_socket(), socket().await);
        let target = relay.local_addr().unwrap();
        for index in 0..BATCH_LEN + 2 {
            peer.send_to(&[index as u8], target).await.unwrap();
        }
        readable(&relay).await;
        tokio::time::sleep(Duration::from_millis(20)).await;

        let mut batch = Batch::<16>::new();
        assert_eq!(batch.receive(&relay).unwrap(), BATCH_LEN);
        assert_eq!(batch.receive(&relay).unwrap(), 2);
        assert_eq!(batch.buffers[1][0], BATCH_LEN as u8 + 1);
    }

    #[tokio::test]
    async fn short_batch_still_wakes_for_the_next_datagram() {
        let (relay, peer) = (relay_socket(), socket().await);
        let target = relay.local_addr().unwrap();
        let mut batch = Batch::<16>::new();
        peer.send_to(b"first", target).await.unwrap();
        readable(&relay).await;
        assert_eq!(batch.receive(&relay).unwrap(), 1);

        // The short batch cleared the readiness; the next datagram sets it again.
        peer.send_to(b"second", target).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), readable(&relay))
            .await
            .unwrap();
        assert_eq!(batch.receive(&relay).unwrap(), 1);
        assert_eq!(&batch.buffers[0][..6], b"second");
    }

    #[tokio::test]
    async fn long_datagram_is_cut_to_the_buffer() {
        let (relay, peer) = (relay_socket(), socket().await);
        peer.send_to(&[7; 40], relay.local_addr().unwrap())
            .await
            .unwrap();
        readable(&relay).await;

        let mut batch = Batch::<16>::new();
        assert_eq!(batch.receive(&relay).unwrap(), 1);
        assert_eq!(batch.received[0].0, 16);
    }
}
