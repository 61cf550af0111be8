//! When a search is done. Gnutella itself never says so; as gtk-gnutella's and LimeWire's
//! dynamic queries do, ours ends when its result goal is met, or when every ultrapeer it
//! could ask was asked (the TTL widening per step) and the last probe's wait expired
//! (longer while hits still come in). An ultrapeer then tells the leaf it ran the query
//! for with Query Done (`JNCT`/1), and a leaf's search ends once every ultrapeer it asked
//! said so. Searches keep their deadline as the upper bound.

use super::*;

impl Core {
    /// The wait for the results of a probe sent with `ttl`.
    pub(super) fn probe_wait(ttl: u8) -> Duration {
        PROBE_WAIT_PER_HOP * u32::from(ttl.max(1))
    }

    /// End every dynamic query and search that is done.
    pub(super) fn finish(&mut self, now: Instant) {
        let ended: Vec<Guid> = self
            .dqs
            .iter()
            .filter(|(g, d)| self.dq_done(g, d, now))
            .map(|(g, _)| *g)
            .collect();
        for g in ended {
            self.end_dq(g);
        }
        let wanted = self.shared.cfg.wanted_hits;
        self.searches.retain(|g, s| {
            let keep = !s.tx.is_closed() && s.deadline > now && !s.done(wanted, now);
            if !keep {
                debug!(guid = %g, hits = s.hits, "search over");
            }
            keep
        });
    }

    /// End the dynamic query `g` now if it is done.
    pub(super) fn finish_dq(&mut self, g: Guid) {
        if self
            .dqs
            .get(&g)
            .is_some_and(|d| self.dq_done(&g, d, Instant::now()))
        {
            self.end_dq(g);
        }
    }

    fn dq_done(&self, g: &Guid, d: &DynQuery, now: Instant) -> bool {
        d.hits >= self.shared.cfg.wanted_hits
            || now.duration_since(d.started) >= DQ_LIFETIME
            || (d.origin == Route::Local && !self.searches.contains_key(g))
            || (d.exhausted
                && now >= d.wait_until
                && d.bridging.as_ref().is_none_or(|t| t.is_finished()))
    }

    /// The dynamic query `g` is over: our search ends with it, or the leaf we ran it for
    /// hears so (when it reads Query Done).
    fn end_dq(&mut self, g: Guid) {
        let Some(d) = self.dqs.remove(&g) else {
            return;
        };
        debug!(guid = %g, hits = d.hits, asked = d.sent.len(), steps = d.step, "dynamic query over");
        match d.origin {
            Route::Local => {
                self.searches.remove(&g);
            }
            Route::Peer(c) => {
                if self
                    .peers
                    .get(&c)
                    .is_some_and(|p| p.supported.contains(&QUERY_DONE))
                {
                    let h = Header::new(g, kind::VENDOR, 1, 0, 0);
                    self.send(c, h, &Message::Vendor(VendorMessage::query_done(d.hits)));
                }
            }
        }
    }

    /// Query Done from ultrapeer `id` for our search `g`.
    pub(super) fn on_query_done(&mut self, id: ConnId, g: Guid) {
        let Some(s) = self.searches.get_mut(&g) else {
            return;
        };
        if let Until::Ultrapeers { waiting, .. } = &mut s.until {
            waiting.remove(&id);
        }
        let wanted = self.shared.cfg.wanted_hits;
        if s.done(wanted, Instant::now()) {
            debug!(guid = %g, hits = s.hits, "search over: every ultrapeer is done");
            self.searches.remove(&g);
        }
    }

    /// Link `id` is gone: no Query Done will come from it.
    pub(super) fn forget_waiting(&mut self, id: ConnId) {
        for s in self.searches.values_mut() {
            if let Until::Ultrapeers { waiting, .. } = &mut s.until {
                waiting.remove(&id);
            }
        }
    }
}

impl Search {
    /// Done, besides its deadline and its stream being dropped.
    fn done(&self, wanted: u32, now: Instant) -> bool {
        self.hits >= wanted
            || match &self.until {
                Until::Dq => false,
                Until::Ultrapeers {
                    waiting,
                    unsignalled,
                } => {
                    waiting.is_empty()
                        && (!unsignalled || now.duration_since(self.last_hit) >= SEARCH_SETTLE)
                }
            }
    }
}
