//! SIP transports (RFC 3261 §18): one UDP socket and one TCP listener on the configured
//! address, outgoing TCP connections reused by remote address, and the rule that sends a
//! request too large for UDP over TCP.
//!
//! The transport handles bytes and addresses only. It frames TCP streams by Content-Length,
//! hands every datagram or framed message to a [`Handler`], and never parses SIP beyond
//! that.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::sip::framing::{StreamFramer, StreamItem};
use crate::udp;

/// Largest datagram the UDP receive loop accepts; anything longer is truncated by the
/// kernel and then fails Content-Length framing.
const MAX_DATAGRAM: usize = 65_535;
/// How long an outgoing TCP connect may take before the send fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// Messages queued per TCP connection before senders see back-pressure.
const TCP_QUEUE: usize = 256;

/// Transport protocol of a message or a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl Protocol {
    /// Returns the token used in Via headers (RFC 3261 §20.42).
    pub fn via_token(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
        }
    }

    pub fn is_reliable(self) -> bool {
        self == Protocol::Tcp
    }
}

/// A destination: a socket address and the protocol to reach it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub addr: SocketAddr,
    pub protocol: Protocol,
}

/// One datagram or one framed TCP message, as received.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub data: Bytes,
    pub source: SocketAddr,
    pub protocol: Protocol,
}

/// Receives everything the transport reads. Called from the receive tasks, so it must not
/// block; it may spawn or send to channels.
pub trait Handler: Send + Sync + 'static {
    fn on_inbound(&self, inbound: Inbound);
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("failed to bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("failed to send to {target:?}: {source}")]
    Send { target: Target, source: io::Error },
    #[error("connecting to {addr} over TCP timed out")]
    ConnectTimeout { addr: SocketAddr },
    #[error("the TCP connection to {addr} is closed")]
    ConnectionClosed { addr: SocketAddr },
}

/// The engine's sockets. Cheap to share: every method takes `&self`.
pub struct Transport {
    udp: Arc<udp::Socket>,
    local: SocketAddr,
    udp_max_bytes: usize,
    connections: Arc<DashMap<SocketAddr, mpsc::Sender<Bytes>>>,
    handler: Arc<dyn Handler>,
}

impl Transport {
    /// Binds the UDP socket and the TCP listener on `local` and starts their receive tasks.
    ///
    /// `udp_max_bytes` is the size above which a request goes over TCP instead
    /// (RFC 3261 §18.1.1); `udp_recv_buffer` sets SO_RCVBUF in bytes.
    pub async fn bind(
        local: SocketAddr,
        udp_max_bytes: usize,
        udp_recv_buffer: usize,
        handler: Arc<dyn Handler>,
    ) -> Result<Arc<Transport>, TransportError> {
        let udp = bind_udp(local, udp_recv_buffer).map_err(|source| TransportError::Bind {
            addr: local,
            source,
        })?;
        let local = udp.local_addr().map_err(|source| TransportError::Bind {
            addr: local,
            source,
        })?;
        let listener = TcpListener::bind(local)
            .await
            .map_err(|source| TransportError::Bind {
                addr: local,
                source,
            })?;

        let transport = Arc::new(Transport {
            udp: Arc::new(udp),
            local,
            udp_max_bytes,
            connections: Arc::new(DashMap::new()),
            handler,
        });
        info!(%local, "listening on udp");
        info!(%local, "listening on tcp");

        tokio::spawn(Arc::clone(&transport).udp_receive_loop());
        tokio::spawn(Arc::clone(&transport).tcp_accept_loop(listener));
        Ok(transport)
    }

    /// The bound address of both listeners.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one message. A request for a UDP target goes over TCP instead when it is larger
    /// than the configured UDP limit; TCP reuses an open connection to the address or
    /// opens one.
    pub async fn send(&self, target: Target, data: Bytes) -> Result<(), TransportError> {
        // RFC 3261 §18.1.1 moves large requests to TCP; a response goes back over the
        // transport its request came on (§18.2.2), whatever its size.
        let is_response = data.starts_with(b"SIP/");
        let too_large = data.len() > self.udp_max_bytes && !is_response;
        let use_tcp = target.protocol == Protocol::Tcp || too_large;
        if !use_tcp {
            return self
                .udp
                .send_to(&data, target.addr)
                .await
                .map(drop)
                .map_err(|source| TransportError::Send { target, source });
        }

        let sender = self.tcp_sender(target.addr).await?;
        sender
            .send(data)
            .await
            .map_err(|_| TransportError::ConnectionClosed { addr: target.addr })
    }

    /// The effective protocol a message of `len` bytes to `target` will use.
    pub fn protocol_for(&self, target: Target, len: usize) -> Protocol {
        if target.protocol == Protocol::Udp && len <= self.udp_max_bytes {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }

    async fn tcp_sender(&self, addr: SocketAddr) -> Result<mpsc::Sender<Bytes>, TransportError> {
        if let Some(sender) = self.connections.get(&addr)
            && !sender.is_closed()
        {
            return Ok(sender.clone());
        }

        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| TransportError::ConnectTimeout { addr })?
            .map_err(|source| TransportError::Send {
                target: Target {
                    addr,
                    protocol: Protocol::Tcp,
                },
                source,
            })?;
        debug!(peer = %addr, "tcp connection opened");
        Ok(self.adopt_connection(stream, addr))
    }

    /// Registers a connection for reuse and starts its reader and writer tasks.
    fn adopt_connection(&self, stream: TcpStream, peer: SocketAddr) -> mpsc::Sender<Bytes> {
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let (sender, queue) = mpsc::channel(TCP_QUEUE);
        self.connections.insert(peer, sender.clone());

        tokio::spawn(tcp_write_loop(writer, queue, peer));
        tokio::spawn(tcp_read_loop(
            reader,
            peer,
            Arc::clone(&self.handler),
            sender.clone(),
            Arc::clone(&self.connections),
        ));
        sender
    }

    async fn udp_receive_loop(self: Arc<Self>) {
        let mut batch = udp::Batch::<MAX_DATAGRAM>::boxed();
        loop {
            let received = match std::future::poll_fn(|cx| self.udp.poll_recv_ready(cx)).await {
                Ok(()) => batch.receive(&self.udp),
                Err(error) => Err(error),
            };
            match received {
                Ok(count) => {
                    let datagrams = batch.received.iter().zip(batch.buffers.iter());
                    for (&(length, source), buffer) in datagrams.take(count) {
                        if source == udp::NO_SOURCE {
                            continue;
                        }
                        let data = Bytes::copy_from_slice(&buffer[..length]);
                        self.handler.on_inbound(Inbound {
                            data,
                            source,
                            protocol: Protocol::Udp,
                        });
                    }
                }
                // NOTE: Linux reports an ICMP port-unreachable for an earlier send_to as an
                // error on a later receive, without saying which destination failed. The
                // transaction that sent it ends with timer B or F instead of at once.
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                    debug!(%error, "icmp error on udp socket");
                }
                Err(error) => {
                    warn!(%error, "udp receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn tcp_accept_loop(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    debug!(%peer, "tcp connection accepted");
                    self.adopt_connection(stream, peer);
                }
                Err(error) => {
                    warn!(%error, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

fn bind_udp(local: SocketAddr, recv_buffer: usize) -> io::Result<udp::Socket> {
    use socket2::{Domain, Socket, Type};

    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, None)?;
    if let Err(error) = socket.set_recv_buffer_size(recv_buffer) {
        warn!(%error, bytes = recv_buffer, "failed to set the udp receive buffer");
    }
    socket.bind(&local.into())?;
    udp::Socket::new(socket.into())
}

async fn tcp_write_loop(
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Bytes>,
    peer: SocketAddr,
) {
    while let Some(data) = queue.recv().await {
        if let Err(error) = writer.write_all(&data).await {
            debug!(%peer, %error, "tcp write failed");
            break;
        }
    }
    let _ = writer.shutdown().await;
}

async fn tcp_read_loop(
    mut reader: OwnedReadHalf,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    writer: mpsc::Sender<Bytes>,
    connections: Arc<DashMap<SocketAddr, mpsc::Sender<Bytes>>>,
) {
    read_frames(&mut reader, peer, handler.as_ref(), &writer).await;

    // Dropping the registered sender lets the writer task finish and close the socket.
    connections.remove_if(&peer, |_, registered| registered.same_channel(&writer));
    debug!(%peer, "tcp connection closed");
}

async fn read_frames(
    reader: &mut OwnedReadHalf,
    peer: SocketAddr,
    handler: &dyn Handler,
    writer: &mpsc::Sender<Bytes>,
) {
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let len = match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(len) => len,
            Err(error) => {
                debug!(%peer, %error, "tcp read failed");
                break;
            }
        };
        framer.extend(&buf[..len]);

        loop {
            match framer.next_item() {
                Ok(None) => break,
                Ok(Some(StreamItem::Message(data))) => handler.on_inbound(Inbound {
                    data,
                    source: peer,
                    protocol: Protocol::Tcp,
                }),
                // RFC 5626 §3.5.1: a double-CRLF ping gets a single-CRLF pong.
                Ok(Some(StreamItem::Ping)) => {
                    let _ = writer.try_send(Bytes::from_static(b"\r\n"));
                }
                Err(error) => {
                    // The stream cannot be resynchronised after a framing fault.
                    warn!(%peer, %error, "closing tcp connection after a framing error");
                    return;
                }
            }
        }
    }
}
