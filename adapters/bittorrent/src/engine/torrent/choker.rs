//! Choking (BEP 3): which interested peers we upload to. The best `slots` by rate, plus
//! one optimistic unchoke that rotates, so new peers get a chance to show their rate.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{ConnId, State};

/// The choker's memory between rounds.
#[derive(Debug, Default)]
pub struct Choker {
    round: u32,
    optimistic: Option<ConnId>,
}

impl Choker {
    /// A peer connection ended.
    pub fn drop_conn(&mut self, conn: ConnId) {
        if self.optimistic == Some(conn) {
            self.optimistic = None;
        }
    }
}

impl State {
    /// Unchokes an interested peer at once if a slot is free (so a new leecher need not
    /// wait for the next choker round).
    pub fn on_interest(&mut self, conn: ConnId, interested: bool, slots: usize) {
        let unchoked = self
            .peers
            .values()
            .filter(|p| !p.choked && p.interested)
            .count();
        if let Some(p) = self.peers.get_mut(&conn) {
            p.interested = interested;
            if interested && p.choked && unchoked < slots + 1 {
                p.choked = false;
                p.choke_tx.send_replace(false);
            }
        }
    }

    /// One choker round (every 10 s): the `slots` interested peers with the best rate
    /// (download from them while leeching, upload to them while seeding) are unchoked,
    /// plus one optimistic unchoke rotated every third round; everyone else is choked.
    pub fn choke_round(&mut self, slots: usize, seeding: bool) {
        self.choker.round = self.choker.round.wrapping_add(1);
        let mut rates: Vec<(ConnId, u64)> = Vec::new();
        for (c, p) in &mut self.peers {
            let down = p.counters.down.load(Ordering::Relaxed);
            let up = p.counters.up.load(Ordering::Relaxed);
            let rate = if seeding {
                up - p.last_up.min(up)
            } else {
                down - p.last_down.min(down)
            };
            p.last_down = down;
            p.last_up = up;
            if p.interested {
                rates.push((*c, rate));
            }
        }
        rates.sort_by_key(|r| std::cmp::Reverse(r.1));
        let mut unchoke: HashSet<ConnId> = rates.iter().take(slots).map(|r| r.0).collect();
        let rotate = self.choker.round % 3 == 1
            || self
                .choker
                .optimistic
                .is_none_or(|o| !self.peers.get(&o).is_some_and(|p| p.interested));
        if rotate {
            // New connections (under a minute) count three times.
            let mut pool: Vec<ConnId> = Vec::new();
            for (c, _) in rates.iter().skip(slots) {
                let w = if self
                    .peers
                    .get(c)
                    .is_some_and(|p| p.connected.elapsed() < Duration::from_secs(60))
                {
                    3
                } else {
                    1
                };
                pool.extend(std::iter::repeat_n(*c, w));
            }
            self.choker.optimistic =
                (!pool.is_empty()).then(|| pool[rand::random::<u32>() as usize % pool.len()]);
        }
        if let Some(o) = self.choker.optimistic {
            unchoke.insert(o);
        }
        for (c, p) in &mut self.peers {
            let choke = !unchoke.contains(c);
            if p.choked != choke {
                p.choked = choke;
                p.choke_tx.send_replace(choke);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tokio::sync::watch;
    use tokio_util::sync::CancellationToken;

    use super::super::PeerEntry;
    use super::*;
    use crate::wire::id::PeerId;

    fn add_peer(st: &mut State, conn: ConnId, interested: bool) {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1000 + conn as u16));
        let mut e = PeerEntry::new(
            addr,
            PeerId([conn as u8; 20]),
            watch::channel(true).0,
            Arc::default(),
            CancellationToken::new(),
            None,
        );
        e.interested = interested;
        st.peers.insert(conn, e);
    }

    #[test]
    fn choker_unchokes_best_plus_optimistic() {
        let mut st = State::new("t".into());
        for c in 0..7 {
            add_peer(&mut st, c, c != 6);
            st.peers[&c]
                .counters
                .down
                .store(c * 1000, Ordering::Relaxed);
        }
        st.choke_round(4, false);
        let unchoked: Vec<ConnId> = {
            let mut v: Vec<_> = st
                .peers
                .iter()
                .filter(|p| !p.1.choked)
                .map(|p| *p.0)
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(unchoked.len(), 5, "{unchoked:?}");
        for best in [2, 3, 4, 5] {
            assert!(unchoked.contains(&best));
        }
        assert!(!unchoked.contains(&6), "not interested");
        // A newly interested peer is unchoked at once only while a slot is free.
        add_peer(&mut st, 9, false);
        st.on_interest(9, true, 4);
        assert!(st.peers[&9].choked);
    }
}
