//! The accept loop every listener runs (peer ports, index server, tracker): each
//! connection is admitted under the per-IP limits and a bound on connections still in
//! their handshake, then handled in its own task, which ends with the listener's token.
//! Written once, so a refusal, a failed `accept` and a shutdown behave the same on every
//! port of every network.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Span;

use crate::limit::{ConnLimiter, ConnPermit};

/// Connections of one listener that may be in their handshake at once; past it, a new
/// connection is closed at once (a slow-handshake flood cannot hold every task).
pub const MAX_PENDING: usize = 256;

/// How long to pause after `accept` fails (out of file descriptors, mostly), so the loop
/// does not spin while the error lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What an accepted connection holds: its place under the per-IP limits for as long as it
/// lives, and one of the listener's pending slots until its handshake is done.
#[derive(Debug)]
pub struct Admitted {
    pub conn: ConnPermit,
    pending: Option<OwnedSemaphorePermit>,
}

impl Admitted {
    /// The handshake is over: the connection frees its pending slot and counts as open.
    pub fn handshake_done(&mut self) {
        self.pending = None;
        self.conn.handshake_done();
    }
}

/// Accepts on `listener` until `cancel`, and runs `handle` for each admitted connection
/// in a task inside `span(addr)`, ended by `cancel` too. Connections over their IP's
/// limits, or beyond `max_pending` unfinished handshakes, are closed at once.
pub async fn accept_loop<H, Fut>(
    listener: TcpListener,
    limiter: ConnLimiter,
    max_pending: usize,
    cancel: CancellationToken,
    span: impl Fn(SocketAddr) -> Span,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, Admitted) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let pending = Arc::new(Semaphore::new(max_pending));
    loop {
        let (stream, addr) = tokio::select! {
            () = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let Ok(conn) = limiter.admit(addr.ip()) else {
            continue;
        };
        let Ok(slot) = pending.clone().try_acquire_owned() else {
            tracing::debug!(%addr, "too many connections in their handshake: closed");
            continue;
        };
        let admitted = Admitted {
            conn,
            pending: Some(slot),
        };
        crate::task::spawn(span(addr), cancel.clone(), handle(stream, addr, admitted));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::PeerLimits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener that answers each connection with one byte once `go` is set, holding
    /// its handshake open until then.
    async fn listener(max_pending: usize, limits: PeerLimits) -> (SocketAddr, CancellationToken) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let cancel = CancellationToken::new();
        tokio::spawn(accept_loop(
            l,
            ConnLimiter::new(limits),
            max_pending,
            cancel.clone(),
            |_| Span::none(),
            |mut s, _, mut a| async move {
                let mut b = [0u8; 1];
                if s.read_exact(&mut b).await.is_ok() {
                    a.handshake_done();
                    let _ = s.write_all(&b).await;
                    let _ = s.read(&mut b).await;
                }
            },
        ));
        (addr, cancel)
    }

    async fn answered(s: &mut TcpStream) -> bool {
        let mut b = [0u8; 1];
        s.write_all(b"x").await.is_ok()
            && matches!(
                tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
                Ok(Ok(1))
            )
    }

    #[tokio::test]
    async fn unfinished_handshakes_beyond_the_bound_are_closed_and_done_ones_free_their_slot() {
        let (addr, cancel) = listener(2, PeerLimits::unlimited()).await;
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut over = TcpStream::connect(addr).await.unwrap();
        assert!(!answered(&mut over).await, "a third handshake is refused");
        assert!(answered(&mut a).await && answered(&mut b).await);
        // Both handshakes are done: their slots are free, though the connections live on.
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert!(answered(&mut c).await, "a slot came back");
        cancel.cancel();
    }

    #[tokio::test]
    async fn an_ip_over_its_limit_is_closed_and_cancel_ends_the_connections() {
        let limits = PeerLimits {
            max_conns_per_ip: 1,
            ..PeerLimits::unlimited()
        };
        let (addr, cancel) = listener(MAX_PENDING, limits).await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        assert!(answered(&mut first).await);
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert!(!answered(&mut second).await, "one connection per IP");
        cancel.cancel();
        let mut b = [0u8; 1];
        let end = tokio::time::timeout(Duration::from_secs(5), first.read(&mut b)).await;
        assert!(matches!(end, Ok(Ok(0) | Err(_))), "{end:?}");
    }
}
