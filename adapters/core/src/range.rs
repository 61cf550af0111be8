//! Sets of byte ranges: which bytes of a content are written, verified, or still wanted.

use std::collections::BTreeMap;
use std::ops::Range;

/// Disjoint, non-adjacent half-open ranges, kept merged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start → end; no two entries touch or overlap.
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The set holding `0..size`, or nothing when size is 0.
    pub fn full(size: u64) -> Self {
        let mut s = Self::new();
        s.insert(0..size);
        s
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Total number of bytes covered.
    pub fn covered(&self) -> u64 {
        self.map.iter().map(|(s, e)| e - s).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.map.iter().map(|(&s, &e)| s..e)
    }

    pub fn insert(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        let (mut start, mut end) = (r.start, r.end);
        // Absorb a range that starts before and reaches into or touches ours.
        if let Some((&s, &e)) = self.map.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
        }
        // Absorb every range that starts inside or right at the end of ours.
        let absorbed: Vec<u64> = self.map.range(start..=end).map(|(&s, _)| s).collect();
        for s in absorbed {
            if let Some(e) = self.map.remove(&s) {
                end = end.max(e);
            }
        }
        self.map.insert(start, end);
    }

    pub fn remove(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        let touched: Vec<(u64, u64)> = self
            .map
            .range(..r.end)
            .rev()
            .take_while(|&(_, &e)| e > r.start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touched {
            self.map.remove(&s);
            if s < r.start {
                self.map.insert(s, r.start);
            }
            if e > r.end {
                self.map.insert(r.end, e);
            }
        }
    }

    /// Whether every byte of `r` is in the set (an empty range always is).
    pub fn contains(&self, r: Range<u64>) -> bool {
        r.start >= r.end || self.run_end(r.start).is_some_and(|e| e >= r.end)
    }

    /// The end of the covered run that holds `offset`, if `offset` is covered.
    pub fn run_end(&self, offset: u64) -> Option<u64> {
        self.map
            .range(..=offset)
            .next_back()
            .filter(|&(_, &e)| e > offset)
            .map(|(_, &e)| e)
    }

    /// The parts of `within` not in the set.
    pub fn gaps(&self, within: Range<u64>) -> RangeSet {
        let mut out = RangeSet::new();
        out.insert(within.clone());
        for r in self.iter() {
            if r.start >= within.end {
                break;
            }
            out.remove(r);
        }
        out
    }

    /// Bytes of the set inside `within`.
    pub fn covered_in(&self, within: Range<u64>) -> u64 {
        self.iter()
            .map(|r| {
                r.end
                    .min(within.end)
                    .saturating_sub(r.start.max(within.start))
            })
            .sum()
    }

    /// The first gap at or after `offset`, wrapping to the start; for readers' priorities.
    pub fn first_from(&self, offset: u64) -> Option<Range<u64>> {
        if let Some(end) = self.run_end(offset) {
            return Some(offset..end);
        }
        self.map
            .range(offset..)
            .next()
            .or_else(|| self.map.iter().next())
            .map(|(&s, &e)| s..e)
    }
}

impl std::fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<Range<u64>> for RangeSet {
    fn from_iter<I: IntoIterator<Item = Range<u64>>>(iter: I) -> Self {
        let mut s = RangeSet::new();
        iter.into_iter().for_each(|r| s.insert(r));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const N: u64 = 64;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u64),
        Remove(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        (any::<bool>(), 0..N, 0..N).prop_map(|(ins, a, b)| {
            let (s, e) = (a.min(b), a.max(b) + 1);
            if ins {
                Op::Insert(s, e)
            } else {
                Op::Remove(s, e)
            }
        })
    }

    fn model_ranges(bits: &[bool]) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        for (i, &b) in bits.iter().enumerate() {
            let i = i as u64;
            match (b, out.last_mut()) {
                (true, Some(r)) if r.end == i => r.end = i + 1,
                (true, _) => out.push(i..i + 1),
                _ => {}
            }
        }
        out
    }

    proptest! {
        #[test]
        fn behaves_like_a_bitmap(ops in proptest::collection::vec(op(), 0..40),
                                 probe in (0..N, 0..N)) {
            let mut set = RangeSet::new();
            let mut bits = vec![false; N as usize + 1];
            for op in &ops {
                match *op {
                    Op::Insert(s, e) => { set.insert(s..e); (s..e).for_each(|i| bits[i as usize] = true); }
                    Op::Remove(s, e) => { set.remove(s..e); (s..e).for_each(|i| bits[i as usize] = false); }
                }
            }
            // Same ranges, merged and ordered.
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), model_ranges(&bits));
            prop_assert_eq!(set.covered(), bits.iter().filter(|&&b| b).count() as u64);
            let (a, b) = (probe.0.min(probe.1), probe.0.max(probe.1) + 1);
            prop_assert_eq!(set.contains(a..b), (a..b).all(|i| bits[i as usize]));
            let gaps = set.gaps(a..b);
            prop_assert_eq!(gaps.covered(), (a..b).filter(|&i| !bits[i as usize]).count() as u64);
            prop_assert_eq!(set.covered_in(a..b), (a..b).filter(|&i| bits[i as usize]).count() as u64);
            for g in gaps.iter() {
                prop_assert!((g.start..g.end).all(|i| !bits[i as usize]));
            }
        }
    }

    #[test]
    fn adjacent_ranges_merge_and_removal_splits() {
        let mut s: RangeSet = [0..10, 10..20, 30..40].into_iter().collect();
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0..20, 30..40]);
        s.remove(5..35);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0..5, 35..40]);
        assert_eq!(s.run_end(2), Some(5));
        assert_eq!(s.run_end(5), None);
        assert_eq!(s.first_from(6), Some(35..40));
        assert_eq!(s.first_from(38), Some(38..40));
        assert_eq!(s.first_from(41), Some(0..5));
        assert!(RangeSet::full(0).is_empty());
    }
}
