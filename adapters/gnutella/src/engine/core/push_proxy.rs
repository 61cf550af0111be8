//! Push proxies on the links: a firewalled leaf asks its ultrapeers (`LIME`/21) and keeps
//! those that acknowledge (`LIME`/22); an ultrapeer acknowledges its leaves' requests and
//! registers them for the HTTP push-proxy requests (`engine::push_proxy`).

use super::*;
use crate::wire::push_proxy::{MAX_PUSH_PROXIES, usable};

impl Core {
    /// As a firewalled leaf, ask ultrapeer `id`, which reads `LIME`/21 (any version), to be
    /// our push proxy. The MUID is our servent GUID.
    pub(super) fn ask_push_proxy(&mut self, id: ConnId, list: &[SupportedMessage]) {
        let reads = list
            .iter()
            .any(|(v, s, _)| (*v, *s) == (PUSH_PROXY_REQUEST.0, PUSH_PROXY_REQUEST.1));
        let firewalled = self.shared.stats.firewalled.load(Ordering::Relaxed);
        let asks = reads
            && firewalled
            && !self.shared.cfg.ultrapeer
            && self.peers.get(&id).is_some_and(|p| p.info.ultrapeer);
        if asks {
            debug!(id, "asking for a push proxy");
            let h = Header::new(self.shared.guid, kind::VENDOR, 1, 0, 0);
            self.send(id, h, &Message::Vendor(VendorMessage::push_proxy_request()));
        }
    }

    /// As an ultrapeer, a leaf asks us to be its push proxy: register it and acknowledge
    /// (v2, our address), unless we do not know our address or proxy too many already.
    pub(super) fn on_push_proxy_request(&mut self, id: ConnId, h: &Header) {
        let Some(p) = self.peers.get(&id) else {
            return;
        };
        let me = self.shared.my_addr();
        if !self.shared.cfg.ultrapeer || p.info.ultrapeer || !usable(&me) {
            debug!(id, %me, "push proxy request not taken");
            return;
        }
        let cap = self.shared.cfg.max_leaves.max(1);
        if !self
            .shared
            .push_proxies
            .add_leaf(h.guid, id, p.tx.clone(), cap)
        {
            return;
        }
        debug!(id, servent = %h.guid, "push proxy for a leaf");
        let ack = Header::new(h.guid, kind::VENDOR, 1, 0, 0);
        self.send(id, ack, &Message::Vendor(VendorMessage::push_proxy_ack(me)));
    }

    /// As a leaf, ultrapeer `id` acknowledged being our push proxy at `addr`.
    pub(super) fn on_push_proxy_ack(&mut self, id: ConnId, addr: SocketAddrV4) {
        if self.shared.cfg.ultrapeer || !usable(&addr) {
            return;
        }
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if !p.info.ultrapeer {
            return;
        }
        debug!(id, %addr, "push proxy acknowledged");
        p.push_proxy = Some(addr);
        self.publish_push_proxies();
    }

    /// Our push proxies, as the hits announce them: those of the links still up.
    pub(super) fn publish_push_proxies(&self) {
        let mut list: Vec<SocketAddrV4> = Vec::new();
        let mut ids: Vec<ConnId> = self.peers.keys().copied().collect();
        ids.sort_unstable();
        for a in ids.iter().filter_map(|c| self.peers[c].push_proxy) {
            if !list.contains(&a) && list.len() < MAX_PUSH_PROXIES {
                list.push(a);
            }
        }
        self.shared.push_proxies.set_ours(list);
    }
}
