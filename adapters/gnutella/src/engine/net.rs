//! Socket helpers every task shares: the connect bound to our listen address, the head
//! reader, and writes with a timeout (links, uploads, downloads, browse, push proxies).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::Shared;
use super::error::ServentError;

/// Time allowed for a TCP connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one socket write.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Read until `parse` finds a complete head; leftover bytes stay in `buf`. `parse` is
/// Gnutella's (handshake) or core's (HTTP heads), hence any error Gnutella's converts from.
pub async fn read_head<T, E, R: AsyncRead + Unpin>(
    s: &mut R,
    buf: &mut BytesMut,
    what: &'static str,
    wait: Duration,
    parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>,
) -> Result<T, ServentError>
where
    crate::Error: From<E>,
{
    let fut = async {
        loop {
            if let Some((t, n)) = parse(buf).map_err(crate::Error::from)? {
                buf.advance(n);
                return Ok(t);
            }
            if buf.len() > 64 * 1024 {
                return Err(ServentError::Protocol(format!("{what} too long")));
            }
            buf.reserve(4096);
            if s.read_buf(buf).await? == 0 {
                return Err(ServentError::Closed(what));
            }
        }
    };
    timeout(wait, fut)
        .await
        .map_err(|_| ServentError::Timeout(what))?
}

/// The local address outgoing connections to `to` are bound to: the configured
/// listen IP (port chosen by the system), unless it is unspecified or of the
/// other family. Peers then see us where we listen (gtk-gnutella checks the
/// connection's address against the `Node`/`Listen-IP` we announce).
pub fn bind_addr(listen: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
    let ip = listen.ip();
    (!ip.is_unspecified() && ip.is_ipv4() == to.is_ipv4()).then_some(SocketAddr::new(ip, 0))
}

/// Open a TCP connection to `to` from our listen address (see [`bind_addr`]),
/// giving up after `wait`.
pub async fn connect_from(
    listen: SocketAddr,
    to: SocketAddr,
    wait: Duration,
) -> Result<TcpStream, ServentError> {
    let fut = async {
        match bind_addr(listen, to) {
            Some(local) => {
                let sock = if to.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                sock.bind(local)?;
                sock.connect(to).await
            }
            None => TcpStream::connect(to).await,
        }
    };
    Ok(timeout(wait, fut)
        .await
        .map_err(|_| ServentError::Timeout("TCP connect"))??)
}

/// Write `b` within [`WRITE_TIMEOUT`] and count it (HTTP heads and bodies).
pub async fn write<S: AsyncWrite + Unpin>(
    s: &mut S,
    b: &[u8],
    shared: &Shared,
) -> Result<(), ServentError> {
    timeout(WRITE_TIMEOUT, s.write_all(b))
        .await
        .map_err(|_| ServentError::Timeout("HTTP write"))??;
    shared.stats.add_out(b.len() as u64);
    Ok(())
}
