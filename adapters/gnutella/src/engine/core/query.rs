//! Queries and their hits: QRP tables sent up, a query answered from the shares and
//! routed (to leaves by their tables, dynamic querying for our leaves), hits routed back,
//! and pushes.

use super::*;

impl Core {
    /// What we and our leaves may answer: our table plus every leaf's.
    pub(super) fn up_table(&self) -> QrpTable {
        let mut t = self.shared.shares().table().clone();
        for p in self.peers.values() {
            if !p.info.ultrapeer
                && let Some(lt) = p.qrp.table()
            {
                t.merge(lt);
            }
        }
        t
    }

    /// Last-hop QRP: send ultrapeers that asked for it our combined table,
    /// as a patch from what they have when it changed.
    pub(super) fn send_up_tables(&mut self) {
        if !self.shared.cfg.ultrapeer {
            return;
        }
        self.last_up_tables = Instant::now();
        let want: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.info.ultrapeer && p.info.up_qrp)
            .map(|(c, _)| *c)
            .collect();
        if want.is_empty() {
            return;
        }
        let table = self.up_table();
        for c in want {
            let Some(p) = self.peers.get(&c) else {
                continue;
            };
            let msgs = match &p.sent_table {
                Some(prev) if *prev == table => continue,
                Some(prev) => table.patch_from(Some(prev), 4096),
                None => table.to_messages(4096),
            };
            let Ok(msgs) = msgs else {
                continue;
            };
            for m in msgs {
                let h = Header::new(Guid::modern(rand::random()), kind::QRP, 1, 0, 0);
                self.send(c, h, &Message::RouteTable(m));
            }
            if let Some(p) = self.peers.get_mut(&c) {
                p.sent_table = Some(table.clone());
            }
        }
    }

    /// Whether a query may go to `peer` with `ttl`: an ultrapeer's table is
    /// only consulted for the last hop (TTL 1), a leaf's always.
    pub(super) fn may_route(p: &Peer, ttl: u8, q: &Query) -> bool {
        if p.info.ultrapeer && ttl > 1 {
            return true;
        }
        match p.qrp.table() {
            None => p.info.ultrapeer,
            Some(_) if !q.urns().is_empty() => true,
            Some(t) => t.matches_keywords(&q.text()),
        }
    }

    pub(super) fn send_qrp(&mut self, id: ConnId) {
        let msgs = match self.shared.shares().table().to_messages(4096) {
            Ok(m) => m,
            Err(e) => {
                debug!(%e, "cannot build QRP messages");
                return;
            }
        };
        for m in msgs {
            let h = Header::new(Guid::modern(rand::random()), kind::QRP, 1, 0, 0);
            self.send(id, h, &Message::RouteTable(m));
        }
    }

    pub(super) fn on_query(&mut self, id: ConnId, h: Header, q: Query) {
        let h = match self.router.inbound(&h, id) {
            Inbound::Accept(h) => h,
            Inbound::Duplicate => {
                self.shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Inbound::BadTtl => return,
        };
        if !self.take_query_token(id) {
            self.shared
                .stats
                .flood_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.shared
            .stats
            .queries_seen
            .fetch_add(1, Ordering::Relaxed);
        self.answer(id, &h, &q);
        if !self.shared.cfg.ultrapeer {
            return;
        }
        let from_leaf = self.peers.get(&id).is_some_and(|p| !p.info.ultrapeer);
        let bridging = match self.peers.get(&id) {
            Some(p) if from_leaf => {
                crate::engine::bridge::answer(&self.shared, p.tx.clone(), h, &q)
            }
            _ => None,
        };
        let leaf_h = Header {
            ttl: 1,
            hops: h.hops.saturating_add(1),
            ..h
        };
        let leaves = self.to_leaves(Some(id), leaf_h, &q);
        if from_leaf {
            let hops = h.hops.saturating_add(1);
            if self.start_dq(h.guid, q, hops, Route::Peer(id), leaves > 0) {
                if let Some(d) = self.dqs.get_mut(&h.guid) {
                    d.bridging = bridging;
                }
                self.finish_dq(h.guid);
            }
        } else if let Some(nh) = next_hop(&h)
            && let Some(b) = link::encode(nh, &Message::Query(q.clone()))
        {
            let ups: Vec<ConnId> = self
                .peers
                .iter()
                .filter(|(c, p)| **c != id && p.info.ultrapeer && nh.hops < p.hops_flow)
                .filter(|(_, p)| Self::may_route(p, nh.ttl, &q))
                .map(|(c, _)| *c)
                .collect();
            for c in ups {
                if self.send_bytes(c, &b) {
                    self.shared
                        .stats
                        .queries_forwarded
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Flood control: a leaf of ours may query [`LEAF_QUERY_RATE`] times a second
    /// on average (bursts of [`LEAF_QUERY_BURST`]); ultrapeers are not limited.
    pub(super) fn take_query_token(&mut self, id: ConnId) -> bool {
        let ultrapeer = self.shared.cfg.ultrapeer;
        let Some(p) = self.peers.get_mut(&id) else {
            return false;
        };
        if p.info.ultrapeer || !ultrapeer {
            return true;
        }
        let now = Instant::now();
        let (tokens, last) = p.tokens;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * LEAF_QUERY_RATE)
            .min(LEAF_QUERY_BURST);
        if tokens < 1.0 {
            p.tokens = (tokens, now);
            return false;
        }
        p.tokens = (tokens - 1.0, now);
        true
    }

    /// Last hop: the query goes to each leaf whose QRP table says it may match.
    /// Tables rarely hold URNs (gtk-gnutella's do not): URN queries go to every
    /// leaf with a table, keyword queries only where every keyword is present.
    /// Returns how many leaves it went to.
    pub(super) fn to_leaves(&self, except: Option<ConnId>, h: Header, q: &Query) -> usize {
        let Some(b) = link::encode(h, &Message::Query(q.clone())) else {
            return 0;
        };
        let mut sent = 0;
        for (&c, p) in &self.peers {
            if Some(c) == except
                || p.info.ultrapeer
                || h.hops >= p.hops_flow
                || !Self::may_route(p, 1, q)
            {
                continue;
            }
            if self.send_bytes(c, &b) {
                sent += 1;
                self.shared
                    .stats
                    .queries_forwarded
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        sent
    }

    pub(super) fn answer(&self, id: ConnId, h: &Header, q: &Query) {
        let firewalled = self.shared.stats.firewalled.load(Ordering::Relaxed);
        // Firewalled to firewalled cannot transfer, but without a connect-back test
        // "firewalled" is only a guess: skip the answer only when configured so.
        if self.shared.cfg.firewalled == Some(true) && q.flags.has(QueryFlags::FIREWALLED) {
            return;
        }
        let text = q.text();
        let urns = q.urns();
        let records: Vec<HitRecord> = {
            let shares = self.shared.shares();
            shares
                .matches(&text, &urns)
                .into_iter()
                .map(|f| hit_record(f.index, &f.name, f.size, &f.hashes()))
                .collect()
        };
        if records.is_empty() {
            return;
        }
        let busy = self.shared.slots.available_permits() == 0;
        let a = self.shared.my_addr();
        // Without a known address only a push can reach us.
        let firewalled = firewalled || a.ip().is_unspecified();
        // Like gtk-gnutella: enough TTL to come back even if the path grew a little.
        let ttl = h.hops.saturating_add(5).min(HARD_TTL_LIMIT as u8);
        let uploaded = self.shared.stats.uploads.load(Ordering::Relaxed) > 0;
        let proxies = self.shared.push_proxies.ours();
        for chunk in records.chunks(HITS_PER_MESSAGE) {
            let t = trailer(firewalled, &proxies, busy, uploaded);
            let hit = our_hit(&self.shared, chunk, t);
            let rh = Header::new(h.guid, kind::QUERY_HIT, ttl.max(1), 0, 0);
            self.send(id, rh, &Message::QueryHit(hit));
        }
    }

    /// Start widening `query` over our ultrapeers; `leaves_asked` when our leaves just
    /// got it (their answers are awaited too). False when too many run already.
    pub(super) fn start_dq(
        &mut self,
        guid: Guid,
        query: Query,
        hops: u8,
        origin: Route,
        leaves_asked: bool,
    ) -> bool {
        if self.dqs.len() >= MAX_DQS {
            debug!(%guid, "too many dynamic queries; query not widened");
            return false;
        }
        let now = Instant::now();
        let wait = if leaves_asked {
            Self::probe_wait(1)
        } else {
            Duration::ZERO
        };
        self.dqs.insert(
            guid,
            DynQuery {
                query,
                hops,
                origin,
                sent: HashSet::new(),
                hits: 0,
                started: now,
                next: now,
                step: 0,
                exhausted: false,
                wait_until: now + wait,
                bridging: None,
            },
        );
        self.dq_step(guid);
        true
    }

    /// One widening step: the next two ultrapeers, with a TTL growing per step.
    /// With none left to ask the query stops widening (and ends once its wait is over).
    pub(super) fn dq_step(&mut self, guid: Guid) {
        let max_ttl = self.shared.cfg.max_ttl;
        let Some(hops) = self.dqs.get(&guid).map(|d| d.hops) else {
            return;
        };
        let mut ups: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.info.ultrapeer && hops < p.hops_flow)
            .map(|(c, _)| *c)
            .collect();
        ups.sort_unstable();
        let Some(dq) = self.dqs.get_mut(&guid) else {
            return;
        };
        let origin = dq.origin;
        let targets: Vec<ConnId> = ups
            .into_iter()
            .filter(|c| !dq.sent.contains(c) && Route::Peer(*c) != origin)
            .take(2)
            .collect();
        if targets.is_empty() {
            dq.exhausted = true;
            return;
        }
        let ttl = (2 + dq.step / 2).min(max_ttl).max(1);
        let now = Instant::now();
        dq.step = dq.step.saturating_add(1);
        dq.next = now + DQ_STEP;
        dq.wait_until = dq.wait_until.max(now + Self::probe_wait(ttl));
        dq.sent.extend(targets.iter().copied());
        let h = Header::new(guid, kind::QUERY, ttl, dq.hops, 0);
        let Some(b) = link::encode(h, &Message::Query(dq.query.clone())) else {
            return;
        };
        for c in targets {
            if self.send_bytes(c, &b) {
                self.shared
                    .stats
                    .queries_forwarded
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn on_hit(&mut self, id: ConnId, h: Header, hit: QueryHit) {
        self.router.learn_push(hit.servent, id);
        if let Some(dq) = self.dqs.get_mut(&h.guid) {
            dq.hits = dq.hits.saturating_add(hit.results.len() as u32);
            dq.wait_until = dq.wait_until.max(Instant::now() + HIT_QUIET);
        }
        match self.router.reply_route(h.guid, kind::QUERY_HIT) {
            Some(Route::Local) => self.deliver(h.guid, &hit),
            Some(Route::Peer(c)) if c != id => {
                self.send(c, reply_hop(&h), &Message::QueryHit(hit));
            }
            _ => trace!(guid = %h.guid, "hit without route dropped"),
        }
    }

    pub(super) fn deliver(&mut self, guid: Guid, hit: &QueryHit) {
        let Some(s) = self.searches.get_mut(&guid) else {
            return;
        };
        s.last_hit = Instant::now();
        let t = hit.trailer.as_ref();
        let push = t.and_then(QhdTrailer::push).unwrap_or(false);
        let busy = t.and_then(QhdTrailer::busy).unwrap_or(false);
        let proxies = t.map(trailer_proxies).unwrap_or_default();
        for r in &hit.results {
            let sha1 = r.sha1();
            if s.sha1.is_some() && sha1 != s.sha1 {
                continue;
            }
            let rh = RemoteHit {
                addr: SocketAddrV4::new(hit.ip, hit.port),
                servent: hit.servent,
                index: r.index,
                name: r.name_str().chars().take(1024).collect(),
                size: r.file_size(),
                sha1,
                ed2k: r.ext.urns().iter().find_map(Urn::ed2k),
                btih: r.ext.urns().iter().find_map(Urn::btih),
                tth: r.ext.tiger(),
                push,
                busy,
                proxies: proxies.clone(),
            };
            if s.tx.try_send(rh).is_err() {
                break;
            }
            s.hits = s.hits.saturating_add(1);
        }
    }

    pub(super) fn on_push(&mut self, id: ConnId, h: Header, p: Push) {
        match self.router.inbound(&h, id) {
            Inbound::Accept(_) => {}
            Inbound::Duplicate | Inbound::BadTtl => return,
        }
        if p.servent == self.shared.guid {
            let target = SocketAddrV4::new(p.ip, p.port);
            if target.port() == 0 || target.ip().is_unspecified() || p.index == FW2FW_FILE_INDEX {
                return;
            }
            // Pushes make us connect out: only a few at a time.
            let Ok(permit) = self.push_slots.clone().try_acquire_owned() else {
                debug!(%target, "too many pushes in progress");
                return;
            };
            let shared = self.shared.clone();
            let span = debug_span!("gnutella_push_upload", %target, index = p.index);
            let cancel = shared.cancel.clone();
            junction_core::task::spawn(span, cancel, async move {
                if let Err(e) = crate::engine::upload::giv_out(target, p.index, shared).await {
                    debug!(%e, "push upload failed");
                }
                drop(permit);
            });
        } else if let Some(c) = self.router.push_route(p.servent)
            && c != id
        {
            self.send(c, reply_hop(&h), &Message::Push(p));
        }
    }
}
