//! Reaching a source: a direct connection, or a push (sent through the core) that a
//! firewalled source answers with `GIV`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;
use tracing::debug;

use super::plan::Ctx;
use super::source::SourceInfo;
use crate::engine::error::ServentError;
use crate::engine::inbox::{Command, CoreMsg};
use crate::engine::net::CONNECT_TIMEOUT;
use crate::engine::push_proxy::request_push;
use crate::wire::guid::Guid;
use crate::wire::push_proxy::{MAX_PUSH_PROXIES, usable};

/// Wait for a pushed servent's `GIV`.
const GIV_TIMEOUT: Duration = Duration::from_secs(30);
/// Wait for the core to say whether it knows a route for the Push.
const ROUTE_ANSWER: Duration = Duration::from_secs(5);

pub(super) async fn open(
    info: &SourceInfo,
    ctx: &Ctx,
) -> Result<(TcpStream, BytesMut), ServentError> {
    let wait = if info.push {
        Duration::from_secs(5)
    } else {
        CONNECT_TIMEOUT
    };
    let direct =
        crate::engine::net::connect_from(ctx.shared.cfg.listen, SocketAddr::V4(info.addr), wait)
            .await;
    let err = match direct {
        Ok(s) => {
            s.set_nodelay(true)?;
            return Ok((s, BytesMut::new()));
        }
        Err(e) => e,
    };
    let Some(servent) = info.servent else {
        return Err(err);
    };
    debug!(%err, "direct connect failed; asking for a push");
    let index = info.index.unwrap_or(0);
    let (tx, rx) = oneshot::channel();
    let (routed_tx, routed) = oneshot::channel();
    ctx.core
        .send(CoreMsg::Cmd(Command::Push {
            servent,
            index,
            reply: tx,
            routed: routed_tx,
        }))
        .await
        .map_err(|_| ServentError::Shutdown)?;
    // No route over Gnutella: ask the servent's push proxies over HTTP (gtk-gnutella,
    // LimeWire); the GIV then comes as for a routed Push.
    let routed = route_answer(routed).await?;
    if !routed && !info.proxies.is_empty() {
        via_proxies(info, ctx, servent, index).await;
    }
    timeout(GIV_TIMEOUT, rx)
        .await
        .map_err(|_| ServentError::Timeout("GIV"))?
        .map_err(|_| ServentError::Timeout("GIV"))
}

/// Whether the core found a route for our Push (false when it did not answer in time).
/// It drops the question when too many wait for a GIV already: no GIV will come to us,
/// so the push fails at once rather than after asking push proxies for nothing.
async fn route_answer(routed: oneshot::Receiver<bool>) -> Result<bool, ServentError> {
    match timeout(ROUTE_ANSWER, routed).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err(ServentError::Timeout("GIV")),
        Err(_) => Ok(false),
    }
}

/// Ask `info`'s push proxies, one after the other, to push `servent` towards us, until
/// one says it sent the Push (`202` directly, `203` over Gnutella).
async fn via_proxies(info: &SourceInfo, ctx: &Ctx, servent: Guid, index: u32) {
    let me = ctx.shared.my_addr();
    if !usable(&me) {
        debug!(%me, "no address of ours to give push proxies");
        return;
    }
    for &proxy in info.proxies.iter().take(MAX_PUSH_PROXIES) {
        match request_push(&ctx.shared, proxy, servent, index, me).await {
            Ok(code @ (202 | 203)) => {
                debug!(%proxy, code, "push proxy sent the Push");
                return;
            }
            Ok(code) => debug!(%proxy, code, "push proxy refused"),
            Err(e) => debug!(%proxy, %e, "push proxy unreachable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_push_is_no_question_for_proxies() {
        // The core drops the question (too many GIV waiters): fail at once.
        let (tx, rx) = oneshot::channel::<bool>();
        drop(tx);
        let t = std::time::Instant::now();
        assert!(matches!(
            route_answer(rx).await,
            Err(ServentError::Timeout("GIV"))
        ));
        assert!(t.elapsed() < ROUTE_ANSWER);
        for routed in [true, false] {
            let (tx, rx) = oneshot::channel();
            tx.send(routed).unwrap();
            assert_eq!(route_answer(rx).await.unwrap(), routed);
        }
    }
}
