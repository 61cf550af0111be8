//! Connections to the gRPC API and the HTTP fronts, through per-IP limits
//! ([`junction_core::limit`]): an address over them is closed as soon as it is accepted,
//! and an admitted connection holds its [`ConnPermit`] for as long as it is open. It counts
//! as a pending handshake until the client has sent its opening bytes, and is closed if it
//! has not within the first-byte timeout, so silent connections cannot hold the pending
//! slots. On the HTTP fronts the opening is one byte (hyper's header timeout bounds the
//! rest of a request head); on the gRPC API it is the 24-byte HTTP/2 preface (or as many
//! bytes of a TLS hello), which the HTTP/2 handshake would otherwise wait for with no time
//! limit, however slowly it is dribbled.
//!
//! 127.0.0.1 and ::1 are not limited: they are the operator's own tools on this host (a
//! script running `junction` in a loop, Sonarr polling, players), which a back-off would
//! lock out with no message. Other addresses, other loopback ones included, are.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use junction_core::limit::{ConnLimiter, ConnPermit};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// An admitted connection and its permit.
#[derive(Debug)]
pub(crate) struct Limited {
    tcp: TcpStream,
    /// None for the host's own address.
    permit: Option<ConnPermit>,
    peer: std::net::IpAddr,
    /// Bytes the client has sent, counted up to `opening`.
    heard: usize,
    /// Bytes the client must send within the first-byte timeout.
    opening: usize,
    /// When a limited connection that has not sent its opening is closed.
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Length of the HTTP/2 client preface (`PRI * HTTP/2.0...`), the gRPC API's opening.
const H2_PREFACE: usize = 24;

/// The host's own tools: the addresses a local client connects from by default.
pub(crate) fn own_host(ip: std::net::IpAddr) -> bool {
    ip == std::net::Ipv4Addr::LOCALHOST || ip == std::net::Ipv6Addr::LOCALHOST
}

/// The next connection `limiter` admits, with Nagle off; refused ones are closed at once.
/// A limited one that has not sent `opening` bytes (at least 1) within `first_byte` reads
/// as timed out.
pub(crate) async fn accept(
    listener: &TcpListener,
    limiter: &ConnLimiter,
    first_byte: Duration,
    opening: usize,
) -> Limited {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match own_host(peer.ip()) {
            true => None,
            false => match limiter.admit(peer.ip()) {
                Ok(p) => Some(p),
                Err(_) => continue,
            },
        };
        // Small frames and responses leave at once.
        let _ = tcp.set_nodelay(true);
        let first_byte = permit
            .as_ref()
            .map(|_| Box::pin(tokio::time::sleep(first_byte)));
        return Limited {
            tcp,
            permit,
            peer: peer.ip(),
            heard: 0,
            opening: opening.max(1),
            first_byte,
        };
    }
}

/// The admitted connections of `listener`, as a stream for tonic (HTTP/2: a connection
/// must send its preface within `first_byte`).
pub(crate) fn incoming(
    listener: TcpListener,
    limiter: ConnLimiter,
    first_byte: Duration,
) -> impl Stream<Item = io::Result<Limited>> {
    futures::stream::unfold((listener, limiter), move |(l, lim)| async move {
        let c = accept(&l, &lim, first_byte, H2_PREFACE).await;
        Some((Ok(c), (l, lim)))
    })
}

impl Limited {
    pub(crate) fn peer(&self) -> std::net::IpAddr {
        self.peer
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if this.heard < this.opening && buf.filled().len() > before {
            this.heard += buf.filled().len() - before;
            if this.heard >= this.opening {
                this.first_byte = None;
                if let Some(p) = &mut this.permit {
                    p.handshake_done();
                }
            }
        }
        if r.is_pending()
            && let Some(deadline) = &mut this.first_byte
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no opening within the first-byte timeout",
            )));
        }
        r
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp.connect_info()
    }
}
