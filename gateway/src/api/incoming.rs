//! Connections to the gRPC API and the HTTP fronts, through per-IP limits
//! ([`junction_core::limit`]): an address over them is closed as soon as it is accepted,
//! and an admitted connection holds its [`ConnPermit`] for as long as it is open. It counts
//! as a pending handshake until the client has sent its first bytes.

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
    permit: ConnPermit,
    spoke: bool,
}

/// The next connection `limiter` admits, with Nagle off; refused ones are closed at once.
pub(crate) async fn accept(listener: &TcpListener, limiter: &ConnLimiter) -> Limited {
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
        let Ok(permit) = limiter.admit(peer.ip()) else {
            continue;
        };
        // Small frames and responses leave at once.
        let _ = tcp.set_nodelay(true);
        return Limited {
            tcp,
            permit,
            spoke: false,
        };
    }
}

/// The admitted connections of `listener`, as a stream for tonic.
pub(crate) fn incoming(
    listener: TcpListener,
    limiter: ConnLimiter,
) -> impl Stream<Item = io::Result<Limited>> {
    futures::stream::unfold((listener, limiter), |(l, lim)| async move {
        let c = accept(&l, &lim).await;
        Some((Ok(c), (l, lim)))
    })
}

impl Limited {
    pub(crate) fn peer(&self) -> std::net::IpAddr {
        self.permit.ip()
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
        if !this.spoke && buf.filled().len() > before {
            this.spoke = true;
            this.permit.handshake_done();
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
