//! Vendor messages: Messages Supported, Hops Flow, TCP Connect Back, push proxies
//! (`core/push_proxy.rs`) and Query Done.

use super::*;

impl Core {
    /// Vendor messages are hop-to-hop: anything but TTL 1 / hops 0 is dropped.
    pub(super) fn on_vendor(&mut self, id: ConnId, h: Header, v: VendorMessage) {
        if h.ttl != 1 || h.hops != 0 {
            trace!(
                id,
                ttl = h.ttl,
                hops = h.hops,
                "vendor message not hop-to-hop dropped"
            );
            return;
        }
        if let Some(list) = v.supported_messages() {
            let list = match list {
                Ok(l) => l,
                Err(e) => {
                    debug!(id, %e, "bad Messages Supported ignored");
                    return;
                }
            };
            debug!(id, n = list.len(), "peer's vendor messages");
            let connect_back = list.contains(&TCP_CONNECT_BACK);
            self.ask_push_proxy(id, &list);
            if let Some(p) = self.peers.get_mut(&id) {
                p.supported = list;
            }
            // Still firewalled by our guess: ask the peer to try reaching us.
            let port = self.shared.my_addr().port();
            if connect_back
                && port != 0
                && self.shared.cfg.firewalled.is_none()
                && self.shared.stats.firewalled.load(Ordering::Relaxed)
            {
                let h = Header::new(Guid::ZERO, kind::VENDOR, 1, 0, 0);
                let m = VendorMessage::tcp_connect_back(port);
                self.send(id, h, &Message::Vendor(m));
            }
        } else if let Some(hops) = v.hops_flow_value() {
            if let (Ok(hops), Some(p)) = (hops, self.peers.get_mut(&id)) {
                debug!(id, hops, "hops flow");
                p.hops_flow = hops;
            }
        } else if let Some(Ok(port)) = v.connect_back_port() {
            self.connect_back(id, port);
        } else if v.is_push_proxy_request() {
            self.on_push_proxy_request(id, &h);
        } else if let Some(ack) = v.push_proxy_ack_addr(self.link_ip(id)) {
            match ack {
                Ok(addr) => self.on_push_proxy_ack(id, addr),
                Err(e) => debug!(id, %e, "bad push proxy acknowledgement ignored"),
            }
        } else if let Some(results) = v.query_done_results() {
            debug!(id, guid = %h.guid, results, "ultrapeer's dynamic query done");
            self.on_query_done(id, h.guid);
        }
    }

    /// Answer a TCP Connect Back: connect to the peer's IP at `port` and write
    /// `\n\n` (once per link, a few at a time).
    pub(super) fn connect_back(&mut self, id: ConnId, port: u16) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if p.connected_back || port == 0 {
            return;
        }
        p.connected_back = true;
        let target = SocketAddr::new(p.info.addr.ip(), port);
        let Ok(permit) = self.push_slots.clone().try_acquire_owned() else {
            return;
        };
        let listen = self.shared.cfg.listen;
        let span = debug_span!("gnutella_connect_back", %target);
        junction_core::task::spawn(span, self.shared.cancel.clone(), async move {
            let r = async {
                let mut s = net::connect_from(listen, target, CONNECT_BACK_TIMEOUT).await?;
                tokio::time::timeout(CONNECT_BACK_TIMEOUT, async {
                    use tokio::io::AsyncWriteExt;
                    s.write_all(b"\n\n").await?;
                    s.shutdown().await
                })
                .await
                .map_err(|_| ServentError::Timeout("connect back"))??;
                Ok::<(), ServentError>(())
            }
            .await;
            if let Err(e) = r {
                debug!(%e, "connect back failed");
            }
            drop(permit);
        });
    }

    /// The IPv4 address of link `id`'s peer (unspecified when unknown or IPv6).
    fn link_ip(&self, id: ConnId) -> std::net::Ipv4Addr {
        match self.peers.get(&id).map(|p| p.info.addr.ip()) {
            Some(IpAddr::V4(ip)) => ip,
            _ => std::net::Ipv4Addr::UNSPECIFIED,
        }
    }
}
