//! The ledger of one transfer, shared by every network that fetches it: which bytes are
//! verified, who wrote each unverified byte, who claimed which bytes, which hashes can
//! check them, and which sources sent bad bytes. Pure bookkeeping: the sink around it
//! reads, writes and hashes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use super::range_map::RangeMap;
use super::units::{UnitAlgo, UnitHashes};
use crate::{NetworkId, RangeSet};

/// A claim with no byte written for this long is taken back, so another source can have it.
pub const CLAIM_STALL: Duration = Duration::from_secs(30);
/// A source whose bytes failed this many checks shared with other sources is dropped; a
/// source that alone wrote a unit that failed is dropped at once.
pub const MAX_STRIKES: u32 = 3;

/// One source of bytes: a network, and that network's own number for the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Writer {
    pub network: NetworkId,
    pub source: u64,
}

impl Writer {
    /// Bytes written before a restart: who sent them is forgotten, and they are never
    /// grounds for a ban.
    pub const EARLIER: Writer = Writer {
        network: NetworkId("earlier run"),
        source: 0,
    };
    const NOBODY: Writer = Writer {
        network: NetworkId("nobody"),
        source: u64::MAX,
    };
}

/// What one network did for this transfer, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetFigures {
    pub received: u64,
    /// Bytes it wrote that a check then verified (or that it verified itself).
    pub verified: u64,
    /// Bytes dropped: they failed a check, arrived twice, or landed where they may not.
    pub discarded: u64,
    /// Sources dropped because their bytes failed checks.
    pub dropped: u32,
    /// Hash checks its bytes failed (a unit written by several networks counts for each).
    pub failed_checks: u32,
}

/// A unit to hash from disk; its range is locked against writes until [`Ledger::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub range: Range<u64>,
    pub grid: usize,
    pub unit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Claim {
    by: Writer,
    until: Instant,
    since: Instant,
}

#[derive(Debug)]
pub struct Ledger {
    size: u64,
    verified: RangeSet,
    written: RangeMap<Writer>,
    claims: RangeMap<Claim>,
    /// End game: bytes another network claimed, taken on as well by a network with nothing
    /// else to do. Both may write them; the first copy verified wins.
    endgame: RangeMap<Writer>,
    /// Units being hashed: no write may land there.
    checking: RangeSet,
    /// Writes registered but not yet on disk: no check may start over them.
    writing: Vec<Range<u64>>,
    /// Known unit hashes, finest first.
    grids: Vec<UnitHashes>,
    /// Units that failed with several writers: refetched by one writer alone.
    exclusive: RangeMap<Writer>,
    strikes: HashMap<Writer, u32>,
    banned: HashSet<Writer>,
    /// Whole-file digests that matched the finished file.
    whole_passed: Vec<Vec<u8>>,
    /// A whole-file hash disagreed with a file every finer hash had passed.
    conflict: Option<String>,
    figures: BTreeMap<NetworkId, NetFigures>,
    /// Which bytes each known source has, for rarest-first claims.
    avail: avail::Availability,
    /// Bytes the user does not want (files of a torrent left out): never claimed, and
    /// not needed to complete. A piece reaching into them is still fetched whole.
    skipped: RangeSet,
}

impl Ledger {
    pub fn new(size: u64, verified: RangeSet) -> Ledger {
        let mut verified = verified;
        verified.remove(size..u64::MAX);
        Ledger {
            size,
            verified,
            written: RangeMap::new(),
            claims: RangeMap::new(),
            endgame: RangeMap::new(),
            checking: RangeSet::new(),
            writing: Vec::new(),
            grids: Vec::new(),
            exclusive: RangeMap::new(),
            strikes: HashMap::new(),
            banned: HashSet::new(),
            whole_passed: Vec::new(),
            conflict: None,
            figures: BTreeMap::new(),
            avail: avail::Availability::default(),
            skipped: RangeSet::new(),
        }
    }

    /// Leaves `skipped` out of the transfer: claims no longer hand those bytes out, and
    /// the transfer completes without them.
    pub fn set_skipped(&mut self, skipped: RangeSet) {
        self.skipped = skipped;
    }

    pub fn skipped(&self) -> &RangeSet {
        &self.skipped
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn verified(&self) -> &RangeSet {
        &self.verified
    }

    /// Bytes not yet verified.
    pub fn wanted(&self) -> RangeSet {
        self.verified.gaps(0..self.size)
    }

    /// Bytes on disk that no check has passed yet.
    pub fn unverified_written(&self) -> RangeSet {
        self.written.iter().map(|(r, _)| r).collect()
    }

    /// Bytes kept from an earlier run, writer unknown.
    pub fn restore_written(&mut self, written: &RangeSet) {
        for r in written.iter() {
            for g in self.verified.gaps(r).iter() {
                self.written.insert(g, Writer::EARLIER);
            }
        }
    }

    pub fn figures(&self) -> &BTreeMap<NetworkId, NetFigures> {
        &self.figures
    }

    pub fn knows_hashes(&self) -> bool {
        !self.grids.is_empty()
    }

    pub fn is_banned(&self, w: Writer) -> bool {
        self.banned.contains(&w)
    }

    /// Every byte wanted is verified, and every whole-file hash checked once more over the
    /// finished file (which a file with bytes left out cannot be).
    pub fn complete(&self) -> bool {
        if !self.skipped.is_empty() {
            let mut need = RangeSet::full(self.size);
            for r in self.skipped.iter() {
                need.remove(r);
            }
            return need.iter().all(|r| self.verified.contains(r));
        }
        self.verified.contains(0..self.size)
            && self
                .grids
                .iter()
                .filter(|g| self.is_whole(g))
                .all(|g| self.whole_passed.contains(&g.digests[0]))
    }

    /// The unit hashes learnt, finest first.
    pub fn grids(&self) -> &[UnitHashes] {
        &self.grids
    }

    /// Why the file cannot be finished: its whole-file hash disagrees with every finer one.
    pub fn conflict(&self) -> Option<&str> {
        self.conflict.as_deref()
    }

    fn is_whole(&self, g: &UnitHashes) -> bool {
        g.digests.len() == 1 && g.unit_len >= self.size && g.at.is_none_or(|a| a == 0)
    }

    /// Adds unit hashes. Returns false (and keeps nothing) when they do not fit the size.
    pub fn learn(&mut self, hashes: UnitHashes) -> bool {
        if !hashes.fits(self.size) {
            return false;
        }
        if let Some(g) = self.grids.iter_mut().find(|g| g.same_grid(&hashes)) {
            return g.merge(&hashes);
        }
        self.grids.push(hashes);
        self.grids.sort_by_key(|g| g.unit_len);
        self.imply_tree_roots();
        true
    }

    /// A Tiger tree level that hashes up to the whole-file root stands for that root, as
    /// eD2k's part hashes stand for its file hash: the root needs no second read of the
    /// file at the end.
    fn imply_tree_roots(&mut self) {
        let levels: Vec<[u8; 24]> = self
            .grids
            .iter()
            .filter(|g| g.algo == UnitAlgo::TigerTree && g.part_len.is_none() && g.at.is_none())
            .filter(|g| g.digests.len() > 1 && g.digests.iter().all(|d| d.len() == 24))
            .filter_map(|g| {
                let nodes: Vec<[u8; 24]> = g
                    .digests
                    .iter()
                    .filter_map(|d| d.as_slice().try_into().ok())
                    .collect();
                crate::tiger_tree::root_of(&nodes)
            })
            .collect();
        for root in levels {
            let whole = self
                .grids
                .iter()
                .any(|g| g.algo == UnitAlgo::TigerTree && self.is_whole(g) && g.digests[0] == root);
            if whole && !self.whole_passed.iter().any(|d| d[..] == root[..]) {
                self.whole_passed.push(root.to_vec());
            }
        }
    }

    fn fig(&mut self, n: NetworkId) -> &mut NetFigures {
        self.figures.entry(n).or_default()
    }

    /// Registers a write of `range` by `by` and returns the parts that may go to disk:
    /// not verified, not being checked, not claimed by another writer. The caller writes
    /// them, then calls [`Ledger::end_write`].
    pub fn begin_write(&mut self, by: Writer, range: Range<u64>, now: Instant) -> RangeSet {
        let len = range.end - range.start;
        self.fig(by.network).received += len;
        if self.banned.contains(&by) {
            self.fig(by.network).discarded += len;
            return RangeSet::new();
        }
        let mut gaps = self.verified.gaps(range.clone());
        for r in self.checking.iter() {
            gaps.remove(r);
        }
        let open = gaps.clone();
        for (r, c) in self.claims.within(range.clone()) {
            if c.by != by && c.until > now {
                gaps.remove(r);
            }
        }
        // Bytes it took on in the end game are its to write too.
        for (r, w) in self.endgame.within(range.clone()) {
            if w == by {
                for g in open.iter() {
                    let (a, b) = (g.start.max(r.start), g.end.min(r.end));
                    if a < b {
                        gaps.insert(a..b);
                    }
                }
            }
        }
        for (r, w) in self.exclusive.within(range.clone()) {
            if w != by {
                gaps.remove(r);
            }
        }
        self.fig(by.network).discarded += len - gaps.covered();
        for g in gaps.iter() {
            self.written.insert(g.clone(), by);
            self.writing.push(g);
        }
        // Bytes arriving keep the writer's claim alive.
        let mine: Vec<Range<u64>> = self
            .claims
            .within(range)
            .into_iter()
            .filter(|(_, c)| c.by == by)
            .map(|(r, _)| r)
            .collect();
        for r in mine {
            let since = self
                .claims
                .within(r.clone())
                .first()
                .map_or(now, |(_, c)| c.since);
            self.claims.insert(
                r,
                Claim {
                    by,
                    until: now + CLAIM_STALL,
                    since,
                },
            );
        }
        gaps
    }

    pub fn end_write(&mut self, gaps: &RangeSet) {
        for g in gaps.iter() {
            if let Some(i) = self.writing.iter().position(|w| *w == g) {
                self.writing.swap_remove(i);
            }
        }
    }

    /// A write failed: what it meant to put there is unknown, so it is not written.
    pub fn forget_written(&mut self, gaps: &RangeSet) {
        for g in gaps.iter() {
            self.written.remove(g);
        }
    }

    /// Whether a write the network checked itself may start: not while a check or any
    /// other write holds its bytes. Returns the bytes to write (those not verified yet),
    /// locked until [`Ledger::end_verified_write`].
    pub fn begin_verified_write(&mut self, range: Range<u64>) -> Option<RangeSet> {
        // Only the bytes not verified yet are written, so only they can be busy: a copy of
        // a piece verified already (end game) never waits.
        let gaps = self.verified.gaps(range);
        let busy = gaps.iter().any(|g| {
            self.checking.covered_in(g.clone()) > 0
                || self
                    .writing
                    .iter()
                    .any(|w| w.start < g.end && g.start < w.end)
        });
        if busy {
            return None;
        }
        for g in gaps.iter() {
            self.checking.insert(g);
        }
        Some(gaps)
    }

    /// A self-checked write failed: unlock its bytes, and forget what was written there.
    pub fn abort_verified_write(&mut self, gaps: &RangeSet) {
        for g in gaps.iter() {
            self.checking.remove(g.clone());
            self.written.remove(g);
        }
    }

    /// The bytes of a self-checked write are on disk: they are verified.
    pub fn end_verified_write(&mut self, by: NetworkId, range: Range<u64>, gaps: &RangeSet) {
        for g in gaps.iter() {
            self.checking.remove(g);
        }
        let len = range.end - range.start;
        let fresh = gaps.covered();
        let f = self.fig(by);
        f.received += len;
        f.verified += fresh;
        f.discarded += len - fresh;
        // Unverified bytes others wrote there are superseded: they count as discarded.
        for (r, w) in self.written.within(range.clone()) {
            self.fig(w.network).discarded += r.end - r.start;
        }
        self.written.remove(range.clone());
        self.claims.remove(range.clone());
        self.endgame.remove(range.clone());
        self.exclusive.remove(range.clone());
        self.verified.insert(range);
    }

    /// Units touching `touched` that can be checked now: every byte written or verified,
    /// some not yet verified, none being written or checked. Each is locked for the check.
    pub fn ready(&mut self, touched: Range<u64>) -> Vec<Check> {
        let mut out = Vec::new();
        if self.size == 0 {
            return out;
        }
        let end = touched.end.min(self.size);
        let first = touched.start.min(self.size - 1);
        for grid in 0..self.grids.len() {
            let mut off = self.grids[grid].unit_at(first, self.size).1.start;
            let g = &self.grids[grid];
            let recheck = self.is_whole(g) && !self.whole_passed.contains(&g.digests[0]);
            while off < end {
                let (unit, range) = self.grids[grid].unit_at(off, self.size);
                off = range.end;
                let known = self.grids[grid]
                    .digests
                    .get(unit)
                    .is_some_and(|d| !d.is_empty());
                if known && self.can_check(range.clone(), recheck) {
                    self.checking.insert(range.clone());
                    out.push(Check { range, grid, unit });
                }
            }
        }
        out
    }

    /// Whether a unit can be checked now; `recheck`: even if all of it is verified (a
    /// whole-file hash, checked once more at the end).
    fn can_check(&self, range: Range<u64>, recheck: bool) -> bool {
        if range.start >= range.end || (!recheck && self.verified.contains(range.clone())) {
            return false;
        }
        if self.checking.covered_in(range.clone()) > 0
            || self
                .writing
                .iter()
                .any(|w| w.start < range.end && range.start < w.end)
        {
            return false;
        }
        let mut have = self.verified.clone();
        for (r, _) in self.written.within(range.clone()) {
            have.insert(r);
        }
        have.contains(range)
    }

    /// Every unit that can be checked now, over the whole file.
    pub fn ready_all(&mut self) -> Vec<Check> {
        self.ready(0..self.size)
    }

    /// The digest a check must match.
    pub fn expected(&self, c: &Check) -> Option<(super::UnitAlgo, &[u8])> {
        let g = self.grids.get(c.grid)?;
        Some((g.algo, g.digests.get(c.unit)?.as_slice()))
    }

    /// Records a check's result. A pass verifies the unit; a failure makes its unverified
    /// bytes wanted again and strikes whoever wrote them. Returns the writers now banned.
    pub fn finish(&mut self, c: &Check, ok: bool) -> Vec<Writer> {
        self.checking.remove(c.range.clone());
        let parts = self.written.within(c.range.clone());
        if let Some(g) = self.grids.get(c.grid).filter(|g| self.is_whole(g)) {
            let digest = g.digests[0].clone();
            if ok && !self.whole_passed.contains(&digest) {
                self.whole_passed.push(digest);
            } else if !ok && parts.is_empty() {
                // Every byte passed a finer hash, yet the whole file does not match: the
                // hashes come from different contents. Fetching again cannot help.
                self.conflict = Some(
                    "every part of the file passed its hash, but the whole file does not match the whole-file hash given for it: the hashes known for this content disagree (a wrong link or search merge?)".into(),
                );
                return Vec::new();
            }
        }
        self.written.remove(c.range.clone());
        let mut by: Vec<Writer> = Vec::new();
        for (r, w) in &parts {
            let n = r.end - r.start;
            if ok {
                self.fig(w.network).verified += n;
            } else {
                self.fig(w.network).discarded += n;
            }
            if !by.contains(w) {
                by.push(*w);
            }
        }
        if !ok {
            let networks: std::collections::BTreeSet<NetworkId> =
                by.iter().map(|w| w.network).collect();
            for n in networks {
                self.fig(n).failed_checks += 1;
            }
        }
        self.endgame.remove(c.range.clone());
        if ok {
            self.verified.insert(c.range.clone());
            self.claims.remove(c.range.clone());
            self.exclusive.remove(c.range.clone());
            return Vec::new();
        }
        self.claims.remove(c.range.clone());
        let banned = self.strike(&by);
        if by.len() > 1 {
            self.exclusive.insert(c.range.clone(), Writer::NOBODY);
        }
        banned
    }

    /// The writers of a unit that failed a check, its own or a network's: a sole writer is
    /// dropped at once, each of several after [`MAX_STRIKES`]. Returns those now dropped.
    pub fn strike(&mut self, by: &[Writer]) -> Vec<Writer> {
        let mut banned = Vec::new();
        let sole = by.len() == 1;
        for w in by {
            if *w == Writer::EARLIER {
                continue;
            }
            let s = self.strikes.entry(*w).or_insert(0);
            *s += 1;
            if (sole || *s >= MAX_STRIKES) && self.banned.insert(*w) {
                banned.push(*w);
                self.figures.entry(w.network).or_default().dropped += 1;
            }
        }
        banned
    }

    /// Bytes a network threw away after its own check, and the source it dropped for them.
    pub fn discarded(&mut self, by: Writer, bytes: u64, dropped: bool) {
        let f = self.fig(by.network);
        f.received += bytes;
        f.discarded += bytes;
        f.failed_checks += 1;
        if dropped && self.banned.insert(by) {
            self.fig(by.network).dropped += 1;
        }
    }

    /// A network's own verdict on a range it checked itself (e.g. a test network, or a
    /// hash the sink does not know): a pass verifies the bytes it wrote there, a failure
    /// makes them wanted again. Bytes other writers put there are left to their checks.
    pub fn attest(&mut self, network: NetworkId, range: Range<u64>, ok: bool) {
        let range = range.start.min(self.size)..range.end.min(self.size);
        let mine: Vec<(Range<u64>, Writer)> = self
            .written
            .within(range)
            .into_iter()
            .filter(|(_, w)| w.network == network || *w == Writer::EARLIER)
            .collect();
        if !ok && !mine.is_empty() {
            self.fig(network).failed_checks += 1;
        }
        for (r, _) in mine {
            let n = r.end - r.start;
            self.written.remove(r.clone());
            if ok {
                self.fig(network).verified += n;
                self.verified.insert(r);
            } else {
                self.fig(network).discarded += n;
            }
        }
    }
}

mod avail;
pub(crate) mod claims;
#[cfg(test)]
mod tests;
