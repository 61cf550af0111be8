//! Claims: who fetches which bytes. A network asks for the next bytes nobody else has or
//! is fetching; a claim with no byte arriving for [`CLAIM_STALL`] is taken back; once
//! nothing is free, an idle network may take on another network's newest claim (end game).

use std::collections::HashSet;
use std::ops::Range;
use std::time::Instant;

use super::{CLAIM_STALL, Claim, Ledger, Writer};
use crate::{NetworkId, RangeSet};

/// Bytes ahead of a reader that come before anything else.
pub const STREAM_AHEAD: u64 = 4 << 20;
/// Bytes at the end of the file that come next while a reader waits.
pub const STREAM_TAIL: u64 = 2 << 20;

impl Ledger {
    fn expire(&mut self, now: Instant) {
        self.claims.retain(|c| c.until > now);
        let claimed: RangeSet = self.claims.iter().map(|(r, _)| r).collect();
        let orphans: Vec<Range<u64>> = self
            .endgame
            .iter()
            .flat_map(|(r, _)| claimed.gaps(r).iter().collect::<Vec<_>>())
            .collect();
        for r in orphans {
            self.endgame.remove(r);
        }
        let live: HashSet<Writer> = self.claims.iter().map(|(_, c)| c.by).collect();
        let stale: Vec<Range<u64>> = self
            .exclusive
            .iter()
            .filter(|(_, w)| **w != Writer::NOBODY && !live.contains(w))
            .map(|(r, _)| r)
            .collect();
        for r in stale {
            self.exclusive.insert(r, Writer::NOBODY);
        }
    }

    /// The finest grid with a unit at `offset`: a run (one file's hash inside a torrent)
    /// has none outside its file, and there the next finest grid decides.
    fn grid_at(&self, offset: u64) -> Option<&crate::swarm::UnitHashes> {
        self.grids
            .iter()
            .find(|g| g.unit_at(offset, self.size).0 != crate::swarm::NO_UNIT)
    }

    /// The finest unit boundary after `offset`.
    fn unit_end(&self, offset: u64) -> u64 {
        self.grid_at(offset)
            .map_or(self.size, |g| g.unit_at(offset, self.size).1.end)
    }

    /// Where a claim of up to `max` bytes from `run.start` ends: on a boundary of the
    /// finest known unit, so no unit is split between two claims (blame stays exact), but
    /// over as many whole units as `max` allows (few requests per claim).
    fn claim_end(&self, run: Range<u64>, max: u64) -> u64 {
        let end = run.end.min(run.start.saturating_add(max));
        let Some(g) = self.grid_at(end) else {
            return end;
        };
        if end == run.end || end <= self.unit_end(run.start) {
            return end;
        }
        g.unit_at(end, self.size).1.start
    }

    /// Claims up to `max` bytes inside `within` for `by`: bytes not verified, not written,
    /// not being checked, and claimed by nobody else. With a reader waiting at `from`, its
    /// next [`STREAM_AHEAD`] bytes come first, then the last [`STREAM_TAIL`] bytes of the
    /// file; then the bytes fewest known sources have (see [`Ledger::set_availability`]),
    /// then the rest from `from` on, wrapping around to `within.start`.
    pub fn claim(
        &mut self,
        by: Writer,
        within: Range<u64>,
        max: u64,
        from: Option<u64>,
        now: Instant,
    ) -> Option<Range<u64>> {
        let within: RangeSet = std::iter::once(within).collect();
        self.claim_in(by, &within, max, from, now)
    }

    /// [`Ledger::claim`] inside any of the ranges of `within` (the parts a peer has).
    pub fn claim_in(
        &mut self,
        by: Writer,
        within: &RangeSet,
        max: u64,
        from: Option<u64>,
        now: Instant,
    ) -> Option<Range<u64>> {
        if self.banned.contains(&by) || max == 0 {
            return None;
        }
        self.expire(now);
        let mut within = within.clone();
        within.remove(self.size..u64::MAX);
        let (Some(first), Some(last)) = (within.iter().next(), within.iter().last()) else {
            return None;
        };
        let span = first.start..last.end;
        let mut free = RangeSet::new();
        for w in within.iter() {
            for g in self.verified.gaps(w).iter() {
                free.insert(g);
            }
        }
        for r in self.checking.iter().chain(self.skipped.iter()) {
            free.remove(r);
        }
        for (r, _) in self.written.iter() {
            free.remove(r);
        }
        // Nobody's live claims are handed out again, its own included.
        for (r, _) in self.claims.within(span.clone()) {
            free.remove(r);
        }
        for (r, w) in self.exclusive.within(span.clone()) {
            if w != by && w != Writer::NOBODY {
                free.remove(r);
            }
        }
        let reader = from.filter(|f| within.contains(*f..*f + 1));
        let in_window = |a: u64, len: u64| {
            free.first_from(a)
                .filter(|r| r.start >= a && r.start < a.saturating_add(len))
        };
        // A reader's next bytes first, then the end of the file, which players read
        // early (an index or a duration); then the rarest, then onwards from the reader.
        let first = reader.and_then(|r| {
            in_window(r, STREAM_AHEAD)
                .or_else(|| in_window(self.size.saturating_sub(STREAM_TAIL), STREAM_TAIL))
        });
        let from = reader.unwrap_or(span.start);
        let Some(run) = first
            .or_else(|| self.avail.rarest(&free, from))
            .or_else(|| free.first_from(from))
            .or_else(|| free.first_from(0))
        else {
            // End game only once nothing at all is free.
            if self.anything_free() {
                return None;
            }
            return self.steal(by, &within, max);
        };
        let got = run.start..self.claim_end(run.clone(), max);
        for (r, w) in self.exclusive.within(got.clone()) {
            if w == Writer::NOBODY {
                let whole: Vec<Range<u64>> = self
                    .exclusive
                    .iter()
                    .filter(|(x, _)| x.start < r.end && r.start < x.end)
                    .map(|(x, _)| x)
                    .collect();
                for x in whole {
                    self.exclusive.insert(x, by);
                }
            }
        }
        self.claims.insert(
            got.clone(),
            Claim {
                by,
                until: now + CLAIM_STALL,
                since: now,
            },
        );
        Some(got)
    }

    /// Which bytes the source `by` has (`None`: it left), for rarest-first claims.
    pub fn set_availability(&mut self, by: Writer, has: Option<RangeSet>) {
        self.avail.set(by, has);
    }

    /// Whether any byte of the file is still unclaimed.
    fn anything_free(&self) -> bool {
        let mut free = self.verified.gaps(0..self.size);
        for r in self.checking.iter().chain(self.skipped.iter()) {
            free.remove(r);
        }
        for (r, _) in self.written.iter() {
            free.remove(r);
        }
        for (r, _) in self.claims.iter() {
            free.remove(r);
        }
        !free.is_empty()
    }

    /// End game: nothing inside `within` is free, so `by` takes on bytes another network
    /// claimed most recently and has not delivered yet, unless a third already did, one
    /// range per network at a time. The bytes then come twice at most; whichever copy is
    /// verified first wins.
    fn steal(&mut self, by: Writer, within: &RangeSet, max: u64) -> Option<Range<u64>> {
        // One range at a time per network: every copy taken on may come twice.
        if self.endgame.iter().any(|(_, w)| w.network == by.network) {
            return None;
        }
        let mut candidates: Vec<(Range<u64>, Instant)> = Vec::new();
        let claimed: Vec<(Range<u64>, Claim)> =
            within.iter().flat_map(|w| self.claims.within(w)).collect();
        for (r, c) in claimed {
            if c.by.network == by.network {
                continue;
            }
            let mut open = self.verified.gaps(r);
            for x in self.checking.iter() {
                open.remove(x);
            }
            for (x, _) in self.written.iter() {
                open.remove(x);
            }
            for (x, _) in self.endgame.iter() {
                open.remove(x);
            }
            for (x, w) in self.exclusive.iter() {
                if *w != by && *w != Writer::NOBODY {
                    open.remove(x);
                }
            }
            candidates.extend(open.iter().map(|o| (o, c.since)));
        }
        // The newest claim: its owner will get to it last (a BitTorrent peer serves
        // requests in order), so the owner's copy is the likelier to be cancelled in time.
        let (r, _) = candidates
            .into_iter()
            .max_by_key(|(r, since)| (*since, r.start))?;
        let end = r
            .end
            .min(r.start.saturating_add(max))
            .min(self.unit_end(r.start));
        let got = r.start..end;
        self.endgame.insert(got.clone(), by);
        Some(got)
    }

    /// Claims all of `range` for `by`, or nothing: a BitTorrent piece is fetched whole.
    pub fn claim_whole(&mut self, by: Writer, range: Range<u64>, now: Instant) -> bool {
        if self.banned.contains(&by) {
            return false;
        }
        self.expire(now);
        let range = range.start..range.end.min(self.size);
        // A piece wholly left out is not fetched; one reaching into wanted bytes is.
        let taken = self.skipped.contains(range.clone())
            || self.verified.covered_in(range.clone()) > 0
            || self.checking.covered_in(range.clone()) > 0
            || !self.written.within(range.clone()).is_empty()
            || self
                .claims
                .within(range.clone())
                .iter()
                .any(|(_, c)| c.by != by)
            || self
                .exclusive
                .within(range.clone())
                .iter()
                .any(|(_, w)| *w != by && *w != Writer::NOBODY);
        if taken {
            return false;
        }
        self.claims.insert(
            range,
            Claim {
                by,
                until: now + CLAIM_STALL,
                since: now,
            },
        );
        true
    }

    /// Gives back what `by` claimed inside `range`.
    pub fn release(&mut self, by: Writer, range: Range<u64>) {
        let mine: Vec<Range<u64>> = self
            .claims
            .within(range.clone())
            .into_iter()
            .filter(|(_, c)| c.by == by)
            .map(|(r, _)| r)
            .collect();
        for r in mine {
            self.claims.remove(r);
        }
        let taken_on: Vec<Range<u64>> = self
            .endgame
            .within(range)
            .into_iter()
            .filter(|(_, w)| *w == by)
            .map(|(r, _)| r)
            .collect();
        for r in taken_on {
            self.endgame.remove(r);
        }
    }

    /// Gives back every claim of a network (its fetch ended).
    pub fn release_network(&mut self, network: NetworkId) {
        self.claims.retain(|c| c.by.network != network);
        self.endgame.retain(|w| w.network != network);
        self.expire(Instant::now());
    }
}
