//! Push proxies, both roles (gtk-gnutella `pproxy.c`, LimeWire's push-proxy handlers).
//!
//! * As an ultrapeer, a leaf's Push Proxy Request (`LIME`/21) registers it here with its
//!   link's queue ([`PushProxies::leaves`]); `GET /gnutella/push-proxy?ServerId=…` on our
//!   HTTP port (answered by the upload server, `upload/proxy_request.rs`) then queues the
//!   Push on that link and answers `202`; an unknown GUID gets `410`, a malformed request
//!   `400`.
//! * As a firewalled leaf, the ultrapeers that acknowledged (`LIME`/22) are kept in
//!   [`PushProxies::ours`] and go into our hits as GGEP `PUSH`.
//! * As a downloader, [`request_push`] asks a source's proxy to push it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};

use super::Shared;
use super::error::ServentError;
use super::link::Out;
use super::net::{self, CONNECT_TIMEOUT};
use super::router::ConnId;
use crate::wire::guid::Guid;
use crate::wire::http::{HttpHead, ResponseHead};
use crate::wire::push_proxy::{MAX_PUSH_PROXIES, PushProxyRequest};

/// Wait for a proxy's answer once connected.
const PROXY_ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// GIV dials at once for push-proxy requests naming us (anyone may send them).
const MAX_SELF_PUSHES: usize = 8;

/// Push-proxy state shared by the core (which fills it) and the HTTP side (which reads it).
#[derive(Debug)]
pub struct PushProxies {
    /// The ultrapeers that acknowledged being our push proxies (at most
    /// [`MAX_PUSH_PROXIES`]).
    ours: Mutex<Vec<SocketAddrV4>>,
    /// Leaves we are the push proxy of: servent GUID → their link and its queue.
    leaves: Mutex<HashMap<Guid, (ConnId, mpsc::Sender<Out>)>>,
    /// The GIV dials push-proxy requests naming us may have going.
    pub(super) self_pushes: Arc<Semaphore>,
}

impl Default for PushProxies {
    fn default() -> Self {
        PushProxies {
            ours: Mutex::default(),
            leaves: Mutex::default(),
            self_pushes: Arc::new(Semaphore::new(MAX_SELF_PUSHES)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PushProxies {
    /// Our push proxies, for our hits.
    pub fn ours(&self) -> Vec<SocketAddrV4> {
        lock(&self.ours).clone()
    }

    /// Replace our push proxies (at most [`MAX_PUSH_PROXIES`] kept).
    pub(super) fn set_ours(&self, mut list: Vec<SocketAddrV4>) {
        list.truncate(MAX_PUSH_PROXIES);
        *lock(&self.ours) = list;
    }

    /// Proxy for `servent` on link `id`, in place of any GUID that link registered before
    /// (one per link: a leaf is one servent); false when another live link has `servent`
    /// (its Pushes would go to this one), or `cap` leaves are proxied already.
    pub(super) fn add_leaf(
        &self,
        servent: Guid,
        id: ConnId,
        tx: mpsc::Sender<Out>,
        cap: usize,
    ) -> bool {
        let mut l = lock(&self.leaves);
        if l.get(&servent)
            .is_some_and(|(c, t)| *c != id && !t.is_closed())
        {
            return false;
        }
        l.retain(|_, (c, _)| *c != id);
        if l.len() >= cap && !l.contains_key(&servent) {
            return false;
        }
        l.insert(servent, (id, tx));
        true
    }

    /// Link `id` is gone: stop proxying for it.
    pub(super) fn remove_link(&self, id: ConnId) {
        lock(&self.leaves).retain(|_, (c, _)| *c != id);
    }

    /// How many leaves we proxy for.
    pub fn leaves(&self) -> usize {
        lock(&self.leaves).len()
    }

    /// The link queue of the leaf `servent`, when we proxy for it.
    pub(super) fn leaf(&self, servent: &Guid) -> Option<mpsc::Sender<Out>> {
        lock(&self.leaves).get(servent).map(|(_, tx)| tx.clone())
    }
}

/// Whether a GIV for a push-proxy request from `peer` may go to `node`: `peer`'s own
/// address, or a public one.
pub(super) fn giv_target_ok(node: SocketAddrV4, peer: SocketAddr) -> bool {
    let ip = *node.ip();
    let from = match peer.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    from == Some(ip) || public(ip)
}

/// A globally routable IPv4 address (what `Ipv4Addr::is_global`, unstable, says).
fn public(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b & 0xfe) == 18))
}

/// Ask the push proxy at `proxy` to push `servent` towards `node` (where we listen):
/// the proxy's status (`202`/`203`: the Push went out).
pub async fn request_push(
    shared: &Shared,
    proxy: SocketAddrV4,
    servent: Guid,
    index: u32,
    node: SocketAddrV4,
) -> Result<u16, ServentError> {
    let mut s =
        net::connect_from(shared.cfg.listen, SocketAddr::V4(proxy), CONNECT_TIMEOUT).await?;
    let req = PushProxyRequest {
        servent,
        index,
        node: Some(node),
    };
    let head = req.to_head(&proxy.to_string(), &shared.cfg.user_agent);
    tokio::time::timeout(net::WRITE_TIMEOUT, s.write_all(&head.to_bytes()))
        .await
        .map_err(|_| ServentError::Timeout("push-proxy request"))??;
    let mut buf = BytesMut::new();
    let r = net::read_head(
        &mut s,
        &mut buf,
        "push-proxy answer",
        PROXY_ANSWER_TIMEOUT,
        ResponseHead::parse,
    )
    .await?;
    Ok(r.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_guid_per_link_and_none_taken_from_another() {
        let p = PushProxies::default();
        let (tx1, _rx1) = mpsc::channel(1);
        let (tx2, _rx2) = mpsc::channel(1);
        let (a, b, c) = (Guid([1; 16]), Guid([2; 16]), Guid([3; 16]));
        assert!(p.add_leaf(a, 1, tx1.clone(), 8));
        // A second GUID from the same link replaces its first.
        assert!(p.add_leaf(b, 1, tx1.clone(), 8));
        assert_eq!(p.leaves(), 1);
        assert!(p.leaf(&a).is_none());
        assert!(p.leaf(&b).is_some());
        // Another link naming b is refused: b's Pushes still go to link 1.
        assert!(!p.add_leaf(b, 2, tx2.clone(), 8));
        assert!(lock(&p.leaves)[&b].0 == 1);
        // So one leaf cannot fill the cap: link 2 still gets in with its own GUID.
        for i in 10..20 {
            assert!(p.add_leaf(Guid([i; 16]), 1, tx1.clone(), 2));
        }
        assert!(p.add_leaf(c, 2, tx2.clone(), 2));
        assert_eq!(p.leaves(), 2);
        // Link 1 gone (its queue closed): its GUID may be taken.
        drop((tx1, _rx1));
        assert!(p.add_leaf(Guid([19; 16]), 3, tx2, 3));
    }

    #[test]
    fn self_push_giv_only_to_public_or_the_requester() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let to = |s: &str| giv_target_ok(s.parse().unwrap(), peer);
        assert!(to("8.8.8.8:6346"));
        assert!(to("203.0.113.9:6346"), "the requester itself");
        for bad in [
            "127.0.0.1:22",
            "10.0.0.1:80",
            "192.168.1.1:80",
            "172.16.0.1:80",
            "169.254.169.254:80",
            "100.64.0.1:80",
            "224.0.0.1:80",
            "240.0.0.1:80",
            "0.1.2.3:80",
            "198.18.0.1:80",
            "192.0.0.1:80",
        ] {
            assert!(!to(bad), "{bad}");
        }
        let local: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert!(giv_target_ok("127.0.0.1:6346".parse().unwrap(), local));
    }

    #[test]
    fn self_pushes_are_bounded() {
        let p = PushProxies::default();
        let held: Vec<_> = (0..MAX_SELF_PUSHES)
            .map(|_| p.self_pushes.clone().try_acquire_owned().unwrap())
            .collect();
        assert!(p.self_pushes.clone().try_acquire_owned().is_err());
        drop(held);
        assert!(p.self_pushes.clone().try_acquire_owned().is_ok());
    }
}
