//! The peer listener: incoming connections, each read to its handshake under a deadline and
//! handed to the torrent it names.

use std::net::SocketAddr;
use std::sync::Arc;

use junction_core::accept::Admitted;
use tokio::net::{TcpListener, TcpStream};
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
    let limiter = junction_core::limit::ConnLimiter::new(ctx.config.limits.clone());
    let span = |addr| info_span!("peer_in", %addr);
    junction_core::accept::accept_loop(
        listener,
        limiter,
        MAX_PENDING_ACCEPTS,
        cancel,
        span,
        |s, addr, admitted| incoming(s, addr, admitted, ctx.clone(), torrents.clone()),
    )
    .await;
}

/// One incoming peer: its handshake names the torrent it is handed to.
async fn incoming(
    mut s: TcpStream,
    addr: SocketAddr,
    mut admitted: Admitted,
    ctx: Arc<Ctx>,
    torrents: TorrentsView,
) {
    let hs = match peer::read_handshake(&mut s, ctx.config.handshake_timeout).await {
        Ok(hs) => hs,
        Err(e) => {
            debug!(error = %e, "incoming handshake failed");
            return;
        }
    };
    admitted.handshake_done();
    let Some(t) = torrents.get(&hs.info_hash) else {
        debug!(info_hash = %hs.info_hash, "incoming peer for an unknown torrent");
        return;
    };
    // Breaking the request rate also backs the address off.
    let _ = peer::accepted(t, s, addr, hs, admitted.conn.request_rate()).await;
}
