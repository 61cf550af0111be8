//! The acceptor task: every incoming connection is classified by its first bytes (a
//! Gnutella handshake, an HTTP request, a `GIV`, a TCP connect back) and handed on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use junction_core::accept::{Admitted, MAX_PENDING, accept_loop};
use junction_core::limit::ConnLimiter;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{debug, debug_span};

use super::error::ServentError;
use super::inbox::CoreMsg;
use super::{Shared, conn, upload};

/// Accept connections on `listener` until `cancel`.
pub(super) async fn acceptor(
    listener: TcpListener,
    core: mpsc::Sender<CoreMsg>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let limiter = ConnLimiter::new(shared.cfg.limits.clone());
    let span = |addr| debug_span!("gnutella_incoming", peer = %addr);
    accept_loop(
        listener,
        limiter,
        MAX_PENDING,
        cancel,
        span,
        |s, addr, admitted| {
            let (core, shared) = (core.clone(), shared.clone());
            async move {
                if let Err(e) = incoming(s, addr, core, shared, admitted).await {
                    debug!(%e, "incoming connection ended");
                }
            }
        },
    )
    .await;
}

async fn incoming(
    mut s: TcpStream,
    addr: SocketAddr,
    core: mpsc::Sender<CoreMsg>,
    shared: Arc<Shared>,
    mut admitted: Admitted,
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
        // The handshake's slot is freed when this returns.
        let link = conn::accept(s, buf, addr, core.clone(), admitted.conn).await?;
        core.send(CoreMsg::Connected(link))
            .await
            .map_err(|_| ServentError::Shutdown)?;
        Ok(())
    } else if buf.starts_with(b"GET ") || buf.starts_with(b"HEAD") {
        admitted.handshake_done();
        if shared.cfg.firewalled.is_none()
            && (!addr.ip().is_loopback() || shared.cfg.listen.ip().is_loopback())
        {
            shared.stats.firewalled.store(false, Ordering::Relaxed);
        }
        // Breaking the request rate also backs the address off.
        let rate = admitted.conn.request_rate();
        let served = upload::serve(s, buf, addr, shared, rate).await;
        drop(admitted);
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
