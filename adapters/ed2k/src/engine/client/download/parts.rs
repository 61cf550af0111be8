//! One running download's state: the hashset it learnt, and the blocks it claims from the
//! transfer for each peer, part by part.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use junction_core::swarm::{UnitAlgo, UnitHashes};
use junction_core::{FetchEvent, RangeSet, TransferSink};
use tokio::sync::{Notify, mpsc};

use crate::engine::client::Shared;
use crate::engine::client::recovery::Recovery;
use crate::wire::hash::{BLOCK_SIZE, PART_SIZE, part_count, part_hash_count, root_of_parts};
use crate::wire::{Hash16, PartStatus};

#[derive(Default)]
pub(super) struct Inner {
    hashset: Option<Vec<Hash16>>,
    in_flight: RangeSet,
    /// Peers fetching in each part: a peer keeps to the part it started.
    claims: HashMap<u64, HashSet<u64>>,
}

/// One running download.
pub(crate) struct Download {
    pub(super) s: Arc<Shared>,
    pub(super) hash: Hash16,
    pub(super) size: u64,
    /// The transfer's sink: it hands out the blocks to fetch (shared with the other
    /// networks) and checks every part against the MD4s this download gives it.
    pub(super) sink: Arc<dyn TransferSink>,
    /// AICH block hashes, asked of peers when the user gave an AICH root.
    pub(super) aich: Recovery,
    pub(super) st: Mutex<Inner>,
    pub(super) changed: Notify,
    pub(super) events: mpsc::Sender<FetchEvent>,
}

impl Download {
    fn st(&self) -> MutexGuard<'_, Inner> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn part_range(&self, p: u64) -> Range<u64> {
        let a = p * PART_SIZE;
        a..(a + PART_SIZE).min(self.size)
    }

    pub(super) fn note(&self, text: String) {
        let _ = self.events.try_send(FetchEvent::Note(text));
    }

    /// Every part verified (by the sink, whoever fetched it).
    pub fn is_done(&self) -> bool {
        self.sink.wanted().is_empty()
    }

    /// A peer whose bytes failed a part check.
    pub(super) fn banned(&self, peer: u64) -> bool {
        self.sink.is_banned(peer)
    }

    /// Gives the part MD4s to the sink, which then checks every part, whoever wrote it.
    /// False for a sink that does not check (nothing could be verified).
    pub(super) fn learn(&self, parts: &[Hash16]) -> bool {
        let n = usize::try_from(part_count(self.size)).unwrap_or(usize::MAX);
        let units = UnitHashes::uniform(
            UnitAlgo::Md4,
            PART_SIZE,
            parts.iter().take(n).map(|h| h.to_vec()).collect(),
        );
        self.sink.learn(units)
    }

    pub(super) fn needs_hashset(&self) -> bool {
        self.size >= PART_SIZE && self.st().hashset.is_none()
    }

    /// Accepts a hashset if it fits the file.
    pub(super) fn set_hashset(&self, parts: Vec<Hash16>) -> bool {
        if parts.len() as u64 != part_hash_count(self.size) || root_of_parts(&parts) != self.hash {
            return false;
        }
        let mut st = self.st();
        if st.hashset.is_none() {
            st.hashset = Some(parts.clone());
            drop(st);
            if !self.learn(&parts) {
                self.note(
                    "this transfer's sink does not check parts; eD2k cannot fetch into it".into(),
                );
            }
        }
        true
    }

    /// The bytes of the parts a peer has (all of them when it sent no part status: a
    /// complete source).
    fn has_bytes(&self, status: &PartStatus) -> RangeSet {
        let mut out = RangeSet::new();
        for p in 0..part_count(self.size) {
            if status.is_empty() || status.get(usize::try_from(p).unwrap_or(usize::MAX)) {
                out.insert(self.part_range(p));
            }
        }
        out
    }

    /// Picks up to `max` blocks the peer has, which the transfer grants (no network has
    /// or fetches them): first in a part this peer already works on (eMule keeps a peer on
    /// its part, so parts complete and are checked early); else the transfer picks a new
    /// part among the peer's, one no other peer works on if it can: where a reader waits,
    /// then the end of the file, then the part fewest sources have.
    pub(super) fn pick(&self, peer: u64, status: &PartStatus, max: usize) -> Vec<Range<u64>> {
        // The peer's parts count toward the rarity the transfer's claims follow.
        self.sink.availability(peer, Some(self.has_bytes(status)));
        let mut wanted = self.sink.wanted();
        // Bytes any network wrote wait for their part's check, not for us.
        for w in self.sink.written().iter() {
            wanted.remove(w);
        }
        let mut st = self.st();
        let n = part_count(self.size);
        let has =
            |p: u64| status.is_empty() || status.get(usize::try_from(p).unwrap_or(usize::MAX));
        let avail = |st: &Inner, p: u64| -> RangeSet {
            let pr = self.part_range(p);
            let mut r = RangeSet::new();
            for w in wanted.iter() {
                let a = w.start.max(pr.start);
                let b = w.end.min(pr.end);
                r.insert(a..b);
            }
            for x in st.in_flight.iter() {
                r.remove(x);
            }
            r
        };
        let mut out = Vec::new();
        let mine: Vec<u64> = (0..n)
            .filter(|p| has(*p) && st.claims.get(p).is_some_and(|c| c.contains(&peer)))
            .collect();
        for p in mine {
            let a = avail(&st, p);
            self.fill(&mut st, peer, p, a, max, &mut out);
            if !out.is_empty() {
                return out;
            }
        }
        for lonely in [true, false] {
            let mut within = RangeSet::new();
            for p in (0..n).filter(|p| has(*p)) {
                if lonely && st.claims.get(&p).is_some_and(|c| !c.is_empty()) {
                    continue;
                }
                for r in avail(&st, p).iter() {
                    within.insert(r);
                }
            }
            if within.is_empty() {
                continue;
            }
            let Some(b) = self.sink.claim_in(peer, &within, BLOCK_SIZE) else {
                continue;
            };
            // A block ends at a block boundary counted from its part's start.
            let p = b.start / PART_SIZE;
            let pr = self.part_range(p);
            let boundary = pr.start + ((b.start - pr.start) / BLOCK_SIZE + 1) * BLOCK_SIZE;
            let end = b.end.min(boundary).min(pr.end);
            if end < b.end {
                self.sink.release(peer, end..b.end);
            }
            st.in_flight.insert(b.start..end);
            out.push(b.start..end);
            let a = avail(&st, p);
            self.fill(&mut st, peer, p, a, max, &mut out);
            st.claims.entry(p).or_default().insert(peer);
            break;
        }
        out
    }

    /// Claims blocks of part `p` from its free bytes `a` until `out` holds `max`.
    fn fill(
        &self,
        st: &mut Inner,
        peer: u64,
        p: u64,
        mut a: RangeSet,
        max: usize,
        out: &mut Vec<Range<u64>>,
    ) {
        let pr = self.part_range(p);
        while out.len() < max {
            let Some(r) = a.iter().next() else { break };
            // Cut at block boundaries counted from the part start.
            let rel = r.start - pr.start;
            let boundary = pr.start + (rel / BLOCK_SIZE + 1) * BLOCK_SIZE;
            let end = r.end.min(boundary).min(pr.end);
            a.remove(r.start..end);
            // Only what the transfer hands us.
            let Some(b) = self.sink.claim(peer, r.start..end, BLOCK_SIZE) else {
                continue;
            };
            st.in_flight.insert(b.clone());
            out.push(b);
        }
    }

    pub(super) fn release(&self, peer: u64, ranges: &[Range<u64>]) {
        for r in ranges {
            self.sink.release(peer, r.clone());
        }
        let mut st = self.st();
        for r in ranges {
            st.in_flight.remove(r.clone());
        }
        for c in st.claims.values_mut() {
            c.remove(&peer);
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// A block arrived whole and is written: the sink checked its part if it completed it.
    pub(super) fn block_done(&self, peer: u64, r: Range<u64>) {
        self.sink.release(peer, r.clone());
        self.st().in_flight.remove(r);
        self.changed.notify_waiters();
    }
}
