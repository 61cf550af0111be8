//! Availability: which bytes each known source has (an eD2k peer's part bitmap), so that
//! claims, once a reader's bytes are served, go to the bytes fewest sources have (rarest
//! first, as BitTorrent's own picker does). A rare part fetched early keeps the transfer
//! from depending on the one source that has it at the end.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use super::Writer;
use crate::RangeSet;

/// Most sources whose bytes are counted; a swarm larger than this is counted by its first.
const MAX_SOURCES: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct Availability {
    sources: HashMap<Writer, RangeSet>,
    /// How many sources have the bytes from each offset on, up to the next entry: rebuilt
    /// when a source comes or goes (rare), read on every claim (often).
    steps: Vec<(u64, u32)>,
}

impl Availability {
    /// `by` has `has` (`None`: it left, or no longer counts).
    pub(super) fn set(&mut self, by: Writer, has: Option<RangeSet>) {
        match has {
            // Asked again with every pick: nothing to rebuild.
            Some(h) if self.sources.get(&by) == Some(&h) => return,
            Some(h) if self.sources.len() < MAX_SOURCES || self.sources.contains_key(&by) => {
                self.sources.insert(by, h);
            }
            Some(_) => return,
            None => {
                if self.sources.remove(&by).is_none() {
                    return;
                }
            }
        }
        self.rebuild();
    }

    fn rebuild(&mut self) {
        let mut delta: BTreeMap<u64, i64> = BTreeMap::new();
        for r in self.sources.values().flat_map(RangeSet::iter) {
            *delta.entry(r.start).or_default() += 1;
            *delta.entry(r.end).or_default() -= 1;
        }
        self.steps.clear();
        let mut n: i64 = 0;
        for (at, d) in delta {
            n += d;
            self.steps
                .push((at, u32::try_from(n.max(0)).unwrap_or(u32::MAX)));
        }
    }

    /// How many sources have the byte at `offset`, and where that count next changes.
    fn count_at(&self, offset: u64) -> (u32, u64) {
        let i = self.steps.partition_point(|(at, _)| *at <= offset);
        let n = i.checked_sub(1).map_or(0, |j| self.steps[j].1);
        let next = self.steps.get(i).map_or(u64::MAX, |(at, _)| *at);
        (n, next)
    }

    /// The run of `free` bytes that the fewest sources have; among equals the first at or
    /// after `from`, wrapping around. `None` when no source is known.
    pub(super) fn rarest(&self, free: &RangeSet, from: u64) -> Option<Range<u64>> {
        if self.sources.is_empty() {
            return None;
        }
        let mut best: Option<((u32, bool, u64), Range<u64>)> = None;
        for run in free.iter() {
            let mut a = run.start;
            while a < run.end {
                let (n, next) = self.count_at(a);
                let seg = a..next.min(run.end);
                let key = (n, seg.end <= from, seg.start);
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    best = Some((key, seg.clone()));
                }
                a = seg.end;
            }
        }
        // A run that holds `from` starts there.
        best.map(|(_, r)| if r.contains(&from) { from..r.end } else { r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetworkId;

    fn w(source: u64) -> Writer {
        Writer {
            network: NetworkId::ED2K,
            source,
        }
    }

    fn one(r: Range<u64>) -> RangeSet {
        std::iter::once(r).collect()
    }

    fn set(rs: &[Range<u64>]) -> RangeSet {
        rs.iter().cloned().collect()
    }

    #[test]
    fn the_rarest_free_bytes_come_first_then_the_nearest_from_the_start() {
        let mut a = Availability::default();
        let free = one(0..100);
        assert_eq!(a.rarest(&free, 0), None, "nothing known");
        a.set(w(1), Some(one(0..100)));
        a.set(w(2), Some(one(0..50)));
        a.set(w(3), Some(set(&[0..30, 80..100])));
        // 0..30: 3 sources; 30..50: 2; 50..80: 1; 80..100: 2.
        assert_eq!(a.rarest(&free, 0), Some(50..80));
        assert_eq!(a.rarest(&set(&[0..50, 80..100]), 0), Some(30..50));
        // Equally rare: the first from `from`, wrapping.
        assert_eq!(a.rarest(&set(&[0..50, 80..100]), 60), Some(80..100));
        assert_eq!(a.rarest(&set(&[0..50, 80..100]), 90), Some(90..100));
        // A source that leaves no longer counts.
        a.set(w(1), None);
        assert_eq!(a.rarest(&free, 0), Some(50..80), "nobody has it now");
        assert_eq!(a.rarest(&one(0..50), 0), Some(30..50));
        a.set(w(2), None);
        a.set(w(3), None);
        assert!(a.sources.is_empty() && a.steps.is_empty());
    }
}
