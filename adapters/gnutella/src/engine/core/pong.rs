//! Pings and pongs: our pong, and cached pongs of other hosts answered with their hops.

use super::*;

impl Core {
    /// Our pong, with GGEP `VC` (vendor), `DU` (uptime) and as ultrapeer `UP`
    /// (free leaf and ultrapeer slots), as gtk-gnutella sends.
    pub(super) fn our_pong(&self) -> Pong {
        let a = self.shared.my_addr();
        let (files, kbytes) = {
            let s = self.shared.shares();
            (u32::try_from(s.len()).unwrap_or(u32::MAX), s.kbytes())
        };
        let cfg = &self.shared.cfg;
        let mut vc = VENDOR.to_vec();
        vc.push(VERSION_BYTE);
        let mut exts = vec![Extension::new(ggep::ids::VC, vc)];
        if cfg.ultrapeer {
            let free =
                |max: usize, used: usize| u8::try_from(max.saturating_sub(used)).unwrap_or(u8::MAX);
            exts.push(Extension::new(
                ggep::ids::UP,
                vec![
                    2,
                    free(cfg.max_leaves, self.count(false)),
                    free(cfg.max_ultrapeers, self.count(true)),
                ],
            ));
        }
        let uptime = self.started.elapsed().as_secs().min(86_400);
        exts.push(Extension::new(ggep::ids::DU, ggep::encode_vlint(uptime)));
        let exts: Vec<Extension> = exts.into_iter().filter_map(Result::ok).collect();
        Pong {
            port: a.port(),
            ip: *a.ip(),
            files,
            kbytes,
            ext: ExtArea::from_items(vec![Item::Ggep(Block::new(exts))]),
        }
    }

    pub(super) fn on_ping(&mut self, id: ConnId, h: Header) {
        let h = match self.router.inbound(&h, id) {
            Inbound::Accept(h) => h,
            Inbound::Duplicate => {
                self.shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Inbound::BadTtl => return,
        };
        let reply = Header::new(h.guid, kind::PONG, h.hops.saturating_add(1), 0, 0);
        self.send(id, reply, &Message::Pong(self.our_pong()));
        if h.ttl <= 1 {
            return;
        }
        // Pong caching: answer for the hosts we know instead of flooding the ping.
        // Only our own pong has hops 0 ("this is me"): another host's pong goes
        // out with the hops it arrived with, plus one (gtk-gnutella `pcache.c`
        // flags a link whose hops-0 pongs name other addresses).
        let cached: Vec<(u8, Pong)> = self
            .pongs
            .iter()
            .filter(|(from, _, _)| *from != id)
            .map(|(_, hops, p)| (*hops, p.clone()))
            .take(6)
            .collect();
        for (hops, p) in &cached {
            self.send(
                id,
                cached_pong_header(&reply, *hops),
                &Message::Pong(p.clone()),
            );
        }
        if cached.len() < 3
            && self.shared.cfg.ultrapeer
            && let Some(nh) = next_hop(&h)
            && let Some(b) = link::encode(nh, &Message::Ping(Ping::default()))
        {
            for (&c, p) in &self.peers {
                if c != id && p.info.ultrapeer {
                    self.send_bytes(c, &b);
                }
            }
        }
    }

    pub(super) fn on_pong(&mut self, id: ConnId, h: Header, pong: Pong) {
        let from_up = self.peers.get(&id).is_some_and(|p| p.info.ultrapeer);
        let addr = SocketAddrV4::new(pong.ip, pong.port);
        let says_up = pong
            .ext
            .ggep_blocks()
            .any(|b| b.ultrapeer_slots().is_some_and(|r| r.is_ok()));
        if from_up || h.hops > 0 || says_up {
            self.hosts.add(addr);
            self.pongs
                .retain(|(_, _, p)| SocketAddrV4::new(p.ip, p.port) != addr);
            self.pongs.push_front((id, h.hops, pong.clone()));
            self.pongs.truncate(PONG_CACHE);
        }
        if let Some(Route::Peer(c)) = self.router.reply_route(h.guid, kind::PONG)
            && c != id
        {
            self.send(c, reply_hop(&h), &Message::Pong(pong));
        }
    }
}

/// The header of a cached pong sent in answer to a ping: the reply header
/// (the ping's GUID and TTL) with the hops the pong arrived with plus one, since
/// we route it one hop further. Never 0: hops 0 means the pong's host is us.
pub fn cached_pong_header(reply: &Header, arrived_hops: u8) -> Header {
    Header {
        hops: arrived_hops.saturating_add(1),
        ..*reply
    }
}

/// A routed reply goes one hop further; it is never dropped for TTL on the way back.
pub(super) fn reply_hop(h: &Header) -> Header {
    Header {
        ttl: h.ttl.saturating_sub(1).max(1),
        hops: h.hops.saturating_add(1),
        ..*h
    }
}
