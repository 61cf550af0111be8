//! The push-proxy requests our HTTP port answers (`GET /gnutella/push-proxy?ServerId=…`
//! and its older forms): the Push queued on the leaf's link, or a `GIV` of ours when the
//! GUID is ours. The proxies' state is [`crate::engine::push_proxy::PushProxies`].

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::{debug, debug_span};

use super::giv_out;
use crate::engine::Shared;
use crate::engine::error::ServentError;
use crate::engine::link::{self, Out};
use crate::engine::net;
use crate::engine::push_proxy::giv_target_ok;
use crate::wire::descriptor_header::{Header, kind};
use crate::wire::ext::ExtArea;
use crate::wire::guid::Guid;
use crate::wire::http::{HttpHead, ResponseHead};
use crate::wire::message::{Message, Push};
use crate::wire::push_proxy::PushProxyRequest;
use junction_core::http::Headers;

/// Answer a push-proxy request (`parsed` is what [`PushProxyRequest::parse`] made of it),
/// then the connection closes, as gtk-gnutella does.
pub(super) async fn answer<S: AsyncWrite + Unpin>(
    s: &mut S,
    shared: &Arc<Shared>,
    parsed: crate::Result<PushProxyRequest>,
    peer: SocketAddr,
) -> Result<(), ServentError> {
    let (code, reason) = match parsed {
        Err(e) => (400, format!("Malformed push-proxy request: {e}")),
        Ok(PushProxyRequest { node: None, .. }) => (
            400,
            "Malformed push-proxy request: supplied no valid address".to_owned(),
        ),
        Ok(PushProxyRequest {
            servent,
            index,
            node: Some(node),
        }) => push(shared, servent, index, node, peer),
    };
    debug!(%peer, code, %reason, "push-proxy request answered");
    let r = ResponseHead::new(
        code,
        &reason,
        Headers::new()
            .with("Server", &shared.cfg.user_agent)
            .with("Connection", "close")
            .with("Content-Length", "0"),
    );
    net::write(s, &r.to_bytes(), shared).await?;
    s.flush().await?;
    Ok(())
}

/// Send the Push for `servent` (to connect to `node`): the status and reason to answer.
fn push(
    shared: &Arc<Shared>,
    servent: Guid,
    index: u32,
    node: SocketAddrV4,
    peer: SocketAddr,
) -> (u16, String) {
    if let Some(tx) = shared.push_proxies.leaf(&servent) {
        // TTL max_ttl - 1 and hops 1: it does not come from us really (gtk-gnutella).
        let ttl = shared.cfg.max_ttl.saturating_sub(1).max(1);
        let h = Header::new(Guid::modern(rand::random()), kind::PUSH, ttl, 1, 0);
        let p = Push {
            servent,
            index,
            ip: *node.ip(),
            port: node.port(),
            ext: ExtArea::default(),
        };
        let sent =
            link::encode(h, &Message::Push(p)).is_some_and(|b| tx.try_send(Out::Msg(b)).is_ok());
        return if sent {
            (202, "Push-proxy: message sent to node".to_owned())
        } else {
            (503, "Push-proxy: node link busy".to_owned())
        };
    }
    if servent == shared.guid {
        // Pushing ourselves: honour it at once with a GIV, a few at a time, and only to a
        // public address or the requester's own (no dials into networks it cannot reach).
        if !giv_target_ok(node, peer) {
            return (403, "Push-proxy: X-Node not reachable from here".to_owned());
        }
        let Ok(permit) = shared.push_proxies.self_pushes.clone().try_acquire_owned() else {
            return (503, "Push-proxy: too many pushes in progress".to_owned());
        };
        let shared = shared.clone();
        let span = debug_span!("gnutella_push_upload", target = %node);
        junction_core::task::spawn(span, shared.cancel.clone(), async move {
            if let Err(e) = giv_out(node, index, shared).await {
                debug!(%e, "GIV for a push-proxy request to ourselves failed");
            }
            drop(permit);
        });
        return (
            202,
            format!("Push-proxy: you found the target GUID {servent}"),
        );
    }
    (
        410,
        format!("Push proxy: no route to servent GUID {servent}"),
    )
}
