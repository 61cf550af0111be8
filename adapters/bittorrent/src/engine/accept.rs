//! The peer listener: incoming connections, each read to its handshake under a deadline and
//! handed to the torrent it names.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span};

use super::peer;
use super::torrent::Ctx;
use super::torrents::TorrentsView;

/// Most incoming connections waiting for their handshake.
const MAX_PENDING_ACCEPTS: usize = 64;

pub(crate) async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    torrents: TorrentsView,
    cancel: CancellationToken,
) {
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_ACCEPTS));
    let limiter = junction_core::limit::ConnLimiter::new(ctx.config.limits.clone());
    loop {
        let (mut s, addr) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over its per-IP limits: closed at once.
        let Ok(mut lim) = limiter.admit(addr.ip()) else {
            continue;
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            continue; // too many half-open connections: drop this one
        };
        let (ctx, torrents) = (ctx.clone(), torrents.clone());
        junction_core::task::spawn(info_span!("peer_in", %addr), cancel.clone(), async move {
            let hs = match peer::read_handshake(&mut s, ctx.config.handshake_timeout).await {
                Ok(hs) => hs,
                Err(e) => {
                    debug!(error = %e, "incoming handshake failed");
                    return;
                }
            };
            drop(permit);
            lim.handshake_done();
            let Some(t) = torrents.get(&hs.info_hash) else {
                debug!(info_hash = %hs.info_hash, "incoming peer for an unknown torrent");
                return;
            };
            // Breaking the request rate also backs the address off.
            let _ = peer::accepted(t, s, addr, hs, lim.request_rate()).await;
            drop(lim);
        });
    }
}
