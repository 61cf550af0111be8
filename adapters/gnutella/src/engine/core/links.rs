//! The life of a link: admitting an incoming handshake, a link coming up (our hello:
//! vendor messages, ping, QRP), a link going away, and dialling ultrapeers with back-off.

use super::*;

/// Our Bye to a host the user removed (gtk-gnutella's words and code, capture 07a).
const REMOVED: &str = "User manual removal";

impl Core {
    /// What our side of a handshake says.
    pub(super) fn profile(&self) -> HandshakeProfile {
        HandshakeProfile {
            user_agent: self.shared.cfg.user_agent.clone(),
            ultrapeer: self.shared.cfg.ultrapeer,
            listen: Some(self.shared.my_addr())
                .filter(|a| !a.ip().is_unspecified())
                .map(SocketAddr::V4),
            guid: Some(self.shared.guid),
            degree: 32,
            max_ttl: self.shared.cfg.max_ttl,
            deflate: true,
            live_since: None,
            features: vec!["browse/1.0".to_owned()],
            ultrapeer_needed: self.count(true) < self.shared.cfg.max_ultrapeers,
        }
    }

    /// `X-Try-Ultrapeers` for `peer` (its connection and listening addresses):
    /// our ultrapeers, then known hosts, each once, never us nor the peer itself.
    pub(super) fn try_list(&self, peer: &[SocketAddrV4]) -> Vec<SocketAddrV4> {
        let mut exclude = vec![self.shared.my_addr()];
        if let SocketAddr::V4(l) = self.shared.cfg.listen {
            exclude.push(l);
        }
        if let Some(a) = self.shared.cfg.advertised {
            exclude.push(a);
        }
        exclude.extend_from_slice(peer);
        let ups = self
            .peers
            .values()
            .filter(|p| p.info.ultrapeer)
            .filter_map(|p| p.info.listen);
        crate::engine::hosts::try_list(ups.chain(self.hosts.iter().copied()), &exclude, 10)
    }

    pub(super) fn admit(
        &self,
        ultrapeer: bool,
        addr: SocketAddr,
        listen: Option<SocketAddrV4>,
    ) -> Admission {
        let cfg = &self.shared.cfg;
        let mut peer: Vec<SocketAddrV4> = listen.into_iter().collect();
        if let SocketAddr::V4(a) = addr {
            peer.push(a);
        }
        let tries = self.try_list(&peer);
        if self.cancel.is_cancelled() {
            return Admission::Reject(503, "Servent shutdown".into(), tries);
        }
        if !cfg.ultrapeer {
            return Admission::Reject(503, "I am a shielded leaf node".into(), tries);
        }
        if ultrapeer && self.count(true) >= cfg.max_ultrapeers {
            return Admission::Reject(503, "Too many ultrapeer connections".into(), tries);
        }
        if !ultrapeer && self.count(false) >= cfg.max_leaves {
            return Admission::Reject(503, "Too many leaves".into(), tries);
        }
        debug!(%addr, ultrapeer, "admitting");
        Admission::Accept(Box::new(self.profile()), tries)
    }

    pub(super) fn connected(&mut self, link: Link) {
        let info = link.info.clone();
        let dialed = (!info.incoming).then_some(info.addr);
        if let Some(a) = dialed {
            self.dialing.remove(&a);
            self.backoff.succeeded(&a);
        }
        let cfg = &self.shared.cfg;
        let full = if info.ultrapeer {
            self.count(true) >= cfg.max_ultrapeers
        } else {
            !cfg.ultrapeer || self.count(false) >= cfg.max_leaves
        };
        // A dial that was under way when the user removed the host.
        let removed = matches!(dialed, Some(SocketAddr::V4(a)) if self.hosts.is_removed(&a));
        let id = self.next_id;
        self.next_id += 1;
        let tx = conn::spawn_link(id, link, self.tx.clone(), self.shared.clone());
        if removed {
            let _ = tx.try_send(Out::Bye(Bye::new(201, REMOVED)));
            return;
        }
        if full {
            let _ = tx.try_send(Out::Bye(Bye::new(503, "Too many connections")));
            return;
        }
        if info.incoming && self.shared.cfg.firewalled.is_none() {
            self.shared.stats.firewalled.store(false, Ordering::Relaxed);
        }
        if !self.advertised_known
            && let Some(IpAddr::V4(ip)) = info.our_ip
            && !ip.is_unspecified()
        {
            let mut a = self
                .shared
                .my_addr
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            a.set_ip(ip);
            self.advertised_known = true;
        }
        for h in &info.try_hosts {
            self.hosts.add(*h);
        }
        if info.ultrapeer
            && let Some(l) = info.listen
        {
            self.hosts.add(l);
        }
        info!(id, peer = %info.addr, ultrapeer = info.ultrapeer, agent = %info.user_agent, "link up");
        let to_ultrapeer = info.ultrapeer;
        self.peers.insert(
            id,
            Peer {
                info,
                tx,
                qrp: QrpReceiver::new(),
                sent_table: None,
                tokens: (LEAF_QUERY_BURST, Instant::now()),
                last_ping: Instant::now(),
                dialed,
                supported: Vec::new(),
                hops_flow: u8::MAX,
                connected_back: false,
                push_proxy: None,
            },
        );
        // What we read of vendor messages, to a peer that said it reads them
        // (gtk-gnutella sends its own list first thing, and expects ours).
        let vendor = self.peers.get(&id).is_some_and(|p| p.info.vendor_messages);
        if vendor {
            let m = VendorMessage::messages_supported(&SUPPORTED_VENDOR_MESSAGES);
            let h = Header::new(Guid::ZERO, kind::VENDOR, 1, 0, 0);
            self.send(id, h, &Message::Vendor(m));
        }
        // Say hello: a ping (TTL 2 to an ultrapeer, which answers from its pong
        // cache: that is how we learn more hosts), and as a leaf our QRP table.
        let ttl = if to_ultrapeer { 2 } else { 1 };
        let ping = Header::new(Guid::modern(rand::random()), kind::PING, ttl, 0, 0);
        self.router.originate(ping.guid, kind::PING);
        self.send(id, ping, &Message::Ping(Ping::default()));
        if to_ultrapeer && !self.shared.cfg.ultrapeer {
            self.send_qrp(id);
        }
        if to_ultrapeer && self.shared.cfg.ultrapeer {
            self.send_up_tables();
        }
        self.update_counts();
    }

    /// A dial failed: the hosts it suggested are kept, the host itself forgotten unless it
    /// was only full, and it is not dialled again for a while.
    pub(super) fn dial_failed(&mut self, addr: SocketAddr, err: &ServentError) {
        debug!(%addr, %err, "dial failed");
        self.shared.set_error(format!("{addr}: {err}"));
        self.dialing.remove(&addr);
        if let ServentError::Refused { try_hosts, .. } = err {
            for h in try_hosts {
                self.hosts.add(*h);
            }
        }
        if let SocketAddr::V4(a) = addr
            && !matches!(err, ServentError::Refused { code: 503, .. })
        {
            self.hosts.remove(&a);
        }
        self.backoff.failed(addr, Instant::now());
    }

    /// Forget a link; a host we dialled is not redialled at once.
    pub(super) fn remove_peer(&mut self, id: ConnId) -> Option<Peer> {
        let p = self.peers.remove(&id)?;
        if let Some(a) = p.dialed {
            self.backoff.succeeded(&a);
            self.backoff.hold(a, Instant::now() + REDIAL_AFTER);
        }
        self.dqs.retain(|_, d| d.origin != Route::Peer(id));
        self.forget_waiting(id);
        self.shared.push_proxies.remove_link(id);
        if p.push_proxy.is_some() {
            self.publish_push_proxies();
        }
        Some(p)
    }

    /// The user removed a host: it leaves the endpoints and the host cache, is not learnt
    /// again (until added again), and a link to it (the one we dialled, or one whose
    /// peer listens there) gets a Bye. Whether it was known at all.
    pub(super) fn remove_endpoint(&mut self, addr: SocketAddr) -> bool {
        let before = self.endpoints.len();
        self.endpoints.retain(|e| *e != addr);
        let removed_before = matches!(addr, SocketAddr::V4(a) if self.hosts.is_removed(&a));
        let mut known =
            self.endpoints.len() < before || (self.dialing.contains(&addr) && !removed_before);
        let links: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.dialed == Some(addr) || p.info.listen.map(SocketAddr::V4) == Some(addr)
            })
            .map(|(c, _)| *c)
            .collect();
        known |= !links.is_empty();
        if let SocketAddr::V4(a) = addr {
            known |= self.hosts.contains(&a);
            if known {
                self.hosts.forget(a);
            }
        }
        for id in links {
            info!(id, peer = %addr, "host removed: link closed");
            self.bye(id, 201, REMOVED);
        }
        self.update_counts();
        known
    }

    pub(super) fn bye(&mut self, id: ConnId, code: u16, reason: &str) {
        if let Some(p) = self.remove_peer(id) {
            let _ = p.tx.try_send(Out::Bye(Bye::new(code, reason)));
        }
        self.update_counts();
    }

    /// Dial ultrapeers until we have enough.
    pub(super) fn maintain(&mut self) {
        if self.cancel.is_cancelled() {
            return;
        }
        let want = self.shared.cfg.max_ultrapeers;
        let have = self.count(true) + self.dialing.len();
        if have >= want || self.dialing.len() >= MAX_DIALING {
            return;
        }
        let now = Instant::now();
        self.backoff.prune(now, 4096);
        let connected: HashSet<SocketAddr> = self
            .peers
            .values()
            .flat_map(|p| {
                [
                    p.dialed,
                    p.info.listen.map(SocketAddr::V4),
                    (!p.info.incoming).then_some(p.info.addr),
                ]
            })
            .flatten()
            .collect();
        let me = SocketAddr::V4(self.shared.my_addr());
        let listen = self.shared.cfg.listen;
        let candidates: Vec<SocketAddr> = self
            .endpoints
            .iter()
            .copied()
            .chain(self.hosts.iter().map(|a| SocketAddr::V4(*a)))
            .filter(|a| *a != me && *a != listen)
            .filter(|a| !connected.contains(a) && !self.dialing.contains(a))
            .filter(|a| self.backoff.ready(a, now))
            .take((want - have).min(MAX_DIALING - self.dialing.len()))
            .collect();
        for addr in candidates {
            self.dialing.insert(addr);
            // Not retried before the dial ends (it reports success or failure).
            self.backoff.hold(addr, now + Duration::from_secs(3600));
            let profile = self.profile();
            let shared = self.shared.clone();
            let tx = self.tx.clone();
            let span = debug_span!("gnutella_dial", %addr);
            let cancel = shared.cancel.clone();
            junction_core::task::spawn(span, cancel, async move {
                let m = match conn::dial(addr, &profile, &shared).await {
                    Ok(link) => CoreMsg::Connected(link),
                    Err(err) => CoreMsg::DialFailed { addr, err },
                };
                let _ = tx.send(m).await;
            });
        }
    }
}
