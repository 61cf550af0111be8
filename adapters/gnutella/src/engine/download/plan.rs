//! What is left to fetch and who fetches it: the plan of ranges, and the context a
//! transfer's source workers share (claims made with the sink, the SHA-1, the THEX turn).

use std::net::SocketAddrV4;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use junction_core::swarm::{UnitAlgo, UnitHashes};
use junction_core::{RangeSet, TransferSink};
use tokio::sync::mpsc;

use crate::engine::Shared;
use crate::engine::inbox::CoreMsg;
use crate::wire::urn::{Sha1Hash, TigerHash};

/// Sources asked for the THEX tree per transfer before giving up on it.
const MAX_THEX_TRIES: usize = 3;

/// Byte ranges still to fetch and those being fetched.
#[derive(Debug)]
pub(super) struct FetchPlan {
    pub(super) need: RangeSet,
    pub(super) inflight: RangeSet,
}

impl FetchPlan {
    pub(super) fn claim(&mut self, chunk: u64, from: u64) -> Option<Range<u64>> {
        let r = self.need.first_from(from)?;
        let end = r.end.min(r.start.saturating_add(chunk.max(1)));
        let r = r.start..end;
        self.need.remove(r.clone());
        self.inflight.insert(r.clone());
        Some(r)
    }

    /// A claim ended; `got` are the bytes received in it (or beside it).
    pub(super) fn settle(&mut self, claimed: Range<u64>, got: Option<Range<u64>>) {
        self.inflight.remove(claimed.clone());
        self.need.insert(claimed);
        if let Some(g) = got {
            self.need.remove(g);
        }
    }
}

/// The THEX tree of a transfer: fetched once, from one source at a time.
#[derive(Default)]
pub(super) struct ThexState {
    /// A tree was learnt.
    done: bool,
    /// A source is fetching it.
    busy: bool,
    /// Sources asked already.
    tried: std::collections::HashSet<SocketAddrV4>,
}

pub(super) struct Ctx {
    pub(super) sha1: Option<Sha1Hash>,
    /// The TTH known before any source was contacted (never one a source announced):
    /// the only root a THEX tree is checked against.
    pub(super) tth: Option<TigerHash>,
    pub(super) thex: Mutex<ThexState>,
    /// The sink checks the SHA-1 (and any finer hash another network learnt) itself, and
    /// hands out claims shared with the other networks.
    pub(super) verifies: std::sync::atomic::AtomicBool,
    /// The SHA-1 a source announced (`X-Gnutella-Content-URN`) when we knew none.
    pub(super) learned: Mutex<Option<Sha1Hash>>,
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) plan: Mutex<FetchPlan>,
    pub(super) sink: Arc<dyn TransferSink>,
    pub(super) shared: Arc<Shared>,
    pub(super) core: mpsc::Sender<CoreMsg>,
    pub(super) alts: mpsc::Sender<SocketAddrV4>,
}

impl Ctx {
    /// The SHA-1 to ask for and verify against: the one we were given, or the
    /// one the first source announced.
    pub(super) fn sha1(&self) -> Option<Sha1Hash> {
        self.sha1
            .or(*self.learned.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether to ask `addr` for the tree now; if so it is marked busy and tried.
    pub(super) fn take_thex_turn(&self, addr: SocketAddrV4) -> bool {
        if self.tth.is_none() {
            return false;
        }
        let mut t = self.thex.lock().unwrap_or_else(|e| e.into_inner());
        if t.done || t.busy || t.tried.len() >= MAX_THEX_TRIES || !t.tried.insert(addr) {
            return false;
        }
        t.busy = true;
        true
    }

    /// A THEX fetch ended; `learnt` if its tree was taken.
    pub(super) fn thex_ended(&self, learnt: bool) {
        let mut t = self.thex.lock().unwrap_or_else(|e| e.into_inner());
        t.busy = false;
        t.done |= learnt;
    }

    pub(super) fn plan(&self) -> std::sync::MutexGuard<'_, FetchPlan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn verifies(&self) -> bool {
        self.verifies.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tells the sink the whole-file SHA-1, so it checks the file whoever wrote it.
    pub(super) fn learn(&self, h: Sha1Hash) {
        let units = UnitHashes::whole(UnitAlgo::Sha1, self.size, &h.0);
        if self.sink.learn(units) {
            self.verifies
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// What is left to fetch, as the sink sees it: neither verified nor written by anyone.
    pub(super) fn refresh(&self) {
        let mut need = self.sink.wanted();
        for w in self.sink.written().iter() {
            need.remove(w);
        }
        let mut p = self.plan();
        for r in p.inflight.clone().iter() {
            need.remove(r);
        }
        p.need = need;
    }

    /// The next range for `source`: from where a reader waits, bytes no other source or
    /// network is fetching.
    pub(super) fn claim(&self, source: u64, chunk: u64) -> Option<Range<u64>> {
        let from = self.sink.priority().unwrap_or(0);
        loop {
            let r = self.plan().claim(chunk, from)?;
            match self.sink.claim(source, r.clone(), chunk) {
                Some(c) => {
                    // Keep only what the sink gave; the rest stays needed.
                    let mut p = self.plan();
                    p.settle(r.clone(), None);
                    p.need.remove(c.clone());
                    p.inflight.insert(c.clone());
                    return Some(c);
                }
                // Another network or source has it: not ours to fetch now.
                None => self.plan().inflight.remove(r),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn plan_claims_and_settles() {
        let mut p = FetchPlan {
            need: RangeSet::full(10),
            inflight: RangeSet::new(),
        };
        let a = p.claim(4, 0).unwrap();
        assert_eq!(a, 0..4);
        let b = p.claim(4, 0).unwrap();
        assert_eq!(b, 4..8);
        p.settle(a, Some(0..2));
        p.settle(b, Some(4..8));
        assert_eq!(p.need.iter().collect::<Vec<_>>(), vec![2..4, 8..10]);
        assert!(p.inflight.is_empty());
    }
}
