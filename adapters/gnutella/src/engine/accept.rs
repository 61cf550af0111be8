//! The acceptor task: every incoming connection is classified by its first bytes (a
//! Gnutella handshake, an HTTP request, a `GIV`, a TCP connect back) and handed on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use junction_core::limit::{ConnLimiter, ConnPermit};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{debug, debug_span};

use super::error::ServentError;
use super::inbox::CoreMsg;
use super::{Shared, conn, upload};

/// Incoming connections being classified at once.
const MAX_PENDING_ACCEPTS: usize = 256;

/// Accept connections on `listener` until `cancel`.
pub(super) async fn acceptor(
    listener: TcpListener,
    core: mpsc::Sender<CoreMsg>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_ACCEPTS));
    let limiter = ConnLimiter::new(shared.cfg.limits.clone());
    loop {
        let (s, addr) = tokio::select! {
            () = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(%e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over its per-IP limits: closed at once.
        let Ok(lim) = limiter.admit(addr.ip()) else {
            continue;
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            continue;
        };
        let core = core.clone();
        let shared = shared.clone();
        let span = debug_span!("gnutella_incoming", peer = %addr);
        junction_core::task::spawn(span, cancel.clone(), async move {
            if let Err(e) = incoming(s, addr, core, shared, (permit, lim)).await {
                debug!(%e, "incoming connection ended");
            }
        });
    }
}

async fn incoming(
    mut s: TcpStream,
    addr: SocketAddr,
    core: mpsc::Sender<CoreMsg>,
    shared: Arc<Shared>,
    (permit, mut lim): (tokio::sync::OwnedSemaphorePermit, ConnPermit),
) -> Result<(), ServentError> {
    let mut buf = BytesMut::with_capacity(4096);
    timeout(conn::HANDSHAKE_TIMEOUT, async {
        while buf.len() < 4 && !buf.starts_with(b"\n\n") {
            if s.read_buf(&mut buf).await? == 0 {
                return Err(ServentError::Closed("first bytes"));
            }
        }
        Ok(())
    })
    .await
    .map_err(|_| ServentError::Timeout("first bytes"))??;
    shared.stats.add_in(buf.len() as u64);
    if buf.starts_with(b"\n\n") {
        // A TCP Connect Back we asked for (`BEAR`/7): someone reached our port.
        debug!("connect back received");
        if shared.cfg.firewalled.is_none()
            && (!addr.ip().is_loopback() || shared.cfg.listen.ip().is_loopback())
        {
            shared.stats.firewalled.store(false, Ordering::Relaxed);
        }
        Ok(())
    } else if buf.starts_with(b"GNUT") {
        let link = conn::accept(s, buf, addr, core.clone(), lim).await?;
        drop(permit);
        core.send(CoreMsg::Connected(link))
            .await
            .map_err(|_| ServentError::Shutdown)?;
        Ok(())
    } else if buf.starts_with(b"GET ") || buf.starts_with(b"HEAD") {
        drop(permit);
        lim.handshake_done();
        if shared.cfg.firewalled.is_none()
            && (!addr.ip().is_loopback() || shared.cfg.listen.ip().is_loopback())
        {
            shared.stats.firewalled.store(false, Ordering::Relaxed);
        }
        // Breaking the request rate also backs the address off.
        let rate = lim.request_rate();
        let served = upload::serve(s, buf, addr, shared, rate).await;
        drop(lim);
        served
    } else if buf.starts_with(b"GIV ") {
        let giv = upload::read_giv(&mut s, &mut buf).await?;
        core.send(CoreMsg::Giv {
            giv,
            stream: s,
            buf,
        })
        .await
        .map_err(|_| ServentError::Shutdown)
    } else {
        Err(ServentError::Protocol("unknown protocol".into()))
    }
}
