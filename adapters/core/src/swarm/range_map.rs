//! Disjoint byte ranges, each with a value: who wrote or claimed those bytes.

use std::collections::BTreeMap;
use std::ops::Range;

/// Non-overlapping ranges keyed by start; inserting over a range replaces what was there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeMap<T> {
    runs: BTreeMap<u64, (u64, T)>,
}

impl<T> Default for RangeMap<T> {
    fn default() -> Self {
        RangeMap {
            runs: BTreeMap::new(),
        }
    }
}

impl<T: Clone + PartialEq> RangeMap<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Sets `r` to `value`; a neighbour with the same value is merged into one run, so a
    /// writer's many small writes stay one entry.
    pub fn insert(&mut self, r: Range<u64>, value: T) {
        if r.start >= r.end {
            return;
        }
        self.remove(r.clone());
        let (mut start, mut end) = (r.start, r.end);
        if let Some((&s, (e, v))) = self.runs.range(..start).next_back()
            && *e == start
            && *v == value
        {
            start = s;
        }
        if let Some((e, v)) = self.runs.get(&end)
            && *v == value
        {
            let e = *e;
            self.runs.remove(&end);
            end = e;
        }
        self.runs.insert(start, (end, value));
    }

    /// Cuts `r` out, keeping what lies either side of it.
    pub fn remove(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        let hit: Vec<u64> = self.overlapping_starts(r.clone());
        for start in hit {
            let Some((end, v)) = self.runs.remove(&start) else {
                continue;
            };
            if start < r.start {
                self.runs.insert(start, (r.start, v.clone()));
            }
            if end > r.end {
                self.runs.insert(r.end, (end, v));
            }
        }
    }

    fn overlapping_starts(&self, r: Range<u64>) -> Vec<u64> {
        let first = self
            .runs
            .range(..r.start)
            .next_back()
            .filter(|(_, (end, _))| *end > r.start)
            .map(|(s, _)| *s);
        first
            .into_iter()
            .chain(self.runs.range(r.start..r.end).map(|(s, _)| *s))
            .collect()
    }

    /// The pieces of `r` that carry a value, clipped to `r`.
    pub fn within(&self, r: Range<u64>) -> Vec<(Range<u64>, T)> {
        if r.start >= r.end {
            return Vec::new();
        }
        self.overlapping_starts(r.clone())
            .into_iter()
            .filter_map(|s| {
                let (e, v) = self.runs.get(&s)?;
                Some((s.max(r.start)..(*e).min(r.end), v.clone()))
            })
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Range<u64>, &T)> + '_ {
        self.runs.iter().map(|(s, (e, v))| (*s..*e, v))
    }

    /// Drops every run whose value fails `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.runs.retain(|_, (_, v)| keep(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_and_remove_splits() {
        let mut m = RangeMap::new();
        m.insert(0..10, 'a');
        m.insert(4..6, 'b');
        assert_eq!(
            m.within(0..10),
            vec![(0..4, 'a'), (4..6, 'b'), (6..10, 'a')]
        );
        m.remove(2..8);
        assert_eq!(m.within(0..100), vec![(0..2, 'a'), (8..10, 'a')]);
        assert_eq!(m.within(1..9), vec![(1..2, 'a'), (8..9, 'a')]);
        m.retain(|_| false);
        assert!(m.is_empty());
        // Neighbours with the same value become one run.
        m.insert(0..2, 'a');
        m.insert(4..6, 'a');
        m.insert(2..4, 'a');
        assert_eq!(m.iter().count(), 1);
        assert_eq!(m.within(0..10), vec![(0..6, 'a')]);
    }
}
