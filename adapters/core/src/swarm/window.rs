//! One file of a transfer's content, offered to a network as content of its own: a file of
//! a multi-file torrent that eD2k or Gnutella know by its own hashes. The network sees a
//! sink `len` bytes long; every offset is moved by `at` into the transfer's sink, so the
//! file's bytes land where the torrent has them and are checked there by every hash known
//! (the torrent's pieces wholly inside the file, the file's own whole-file hash).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::UnitHashes;
use crate::{RangeSet, SinkError, TransferSink};

/// Source numbers of different windows must not meet in the transfer's ledger (two
/// Gnutella fetches may both call a peer 3): each window tags its own in the top bits.
const TAG_SHIFT: u32 = 48;
const SOURCE_MASK: u64 = (1 << TAG_SHIFT) - 1;

pub struct WindowSink {
    inner: Arc<dyn TransferSink>,
    at: u64,
    len: u64,
    tag: u64,
}

impl WindowSink {
    /// The bytes `at..at + len` of `inner`, as seen by a network fetching file number
    /// `index` (which tags its sources apart from other files' fetches).
    pub fn new(inner: Arc<dyn TransferSink>, at: u64, len: u64, index: usize) -> WindowSink {
        let len = len.min(inner.size().saturating_sub(at));
        let tag = ((index as u64 + 1) & 0xFFFF) << TAG_SHIFT;
        WindowSink {
            inner,
            at,
            len,
            tag,
        }
    }

    fn tagged(&self, source: u64) -> u64 {
        (source & SOURCE_MASK) | self.tag
    }

    fn outer(&self, r: Range<u64>) -> Range<u64> {
        let (a, b) = (r.start.min(self.len), r.end.min(self.len));
        self.at + a..self.at + b
    }

    /// The part of `set` (the transfer's offsets) inside the window, in the file's offsets.
    fn inside(&self, set: &RangeSet) -> RangeSet {
        let mut out = RangeSet::new();
        for r in set.iter() {
            let (a, b) = (r.start.max(self.at), r.end.min(self.at + self.len));
            if a < b {
                out.insert(a - self.at..b - self.at);
            }
        }
        out
    }

    fn outer_set(&self, set: &RangeSet) -> RangeSet {
        let mut out = RangeSet::new();
        for r in set.iter() {
            let r = self.outer(r);
            if r.start < r.end {
                out.insert(r);
            }
        }
        out
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), SinkError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(SinkError::OutOfRange {
                start: offset,
                end: offset.saturating_add(len as u64),
                size: self.len,
            }),
        }
    }

    /// `hashes` of the file as units of the transfer: a whole-file hash as one unit; equal
    /// units (eD2k parts) as a run, and the last, shorter one as a unit of its own when
    /// the run would reach past the file into the next. Empty when the grid cannot move.
    fn moved(&self, hashes: UnitHashes) -> Vec<UnitHashes> {
        let uniform = hashes.at.is_none() && hashes.part_len.is_none();
        let n = hashes.digests.len() as u64;
        if !uniform || n == 0 || hashes.unit_len == 0 {
            return Vec::new();
        }
        let algo = hashes.algo;
        if n == 1 && hashes.unit_len >= self.len {
            return vec![UnitHashes::run(
                algo,
                self.at,
                self.len.max(1),
                hashes.digests,
            )];
        }
        // Below the root, Tiger tree nodes are aligned to the whole content's start.
        if algo == super::UnitAlgo::TigerTree || n != self.len.div_ceil(hashes.unit_len) {
            return Vec::new();
        }
        let ends_with_content = self.at + self.len == self.inner.size();
        if self.len.is_multiple_of(hashes.unit_len) || ends_with_content {
            return vec![UnitHashes::run(
                algo,
                self.at,
                hashes.unit_len,
                hashes.digests,
            )];
        }
        let mut digests = hashes.digests;
        let Some(last) = digests.pop() else {
            return Vec::new();
        };
        let head = (n - 1) * hashes.unit_len;
        vec![
            UnitHashes::run(algo, self.at, hashes.unit_len, digests),
            UnitHashes::run(algo, self.at + head, self.len - head, vec![last]),
        ]
    }
}

impl TransferSink for WindowSink {
    fn size(&self) -> u64 {
        self.len
    }
    fn wanted(&self) -> RangeSet {
        self.inside(&self.inner.wanted())
    }
    fn priority(&self) -> Option<u64> {
        let p = self.inner.priority()?;
        (self.at..self.at + self.len)
            .contains(&p)
            .then(|| p - self.at)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.check(offset, data.len())?;
        self.inner.write(self.at + offset, data)
    }
    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        self.check(offset, len)?;
        self.inner.read(self.at + offset, len)
    }
    fn verified(&self, range: Range<u64>, ok: bool) {
        self.inner.verified(self.outer(range), ok);
    }
    fn written(&self) -> RangeSet {
        self.inside(&self.inner.written())
    }
    fn skipped(&self) -> RangeSet {
        self.inside(&self.inner.skipped())
    }
    fn claim(&self, source: u64, within: Range<u64>, max: u64) -> Option<Range<u64>> {
        let r = self
            .inner
            .claim(self.tagged(source), self.outer(within), max)?;
        Some(r.start - self.at..r.end - self.at)
    }
    fn claim_in(&self, source: u64, within: &RangeSet, max: u64) -> Option<Range<u64>> {
        let r = self
            .inner
            .claim_in(self.tagged(source), &self.outer_set(within), max)?;
        Some(r.start - self.at..r.end - self.at)
    }
    fn availability(&self, source: u64, has: Option<RangeSet>) {
        let has = has.map(|h| self.outer_set(&h));
        self.inner.availability(self.tagged(source), has);
    }
    fn claim_whole(&self, source: u64, range: Range<u64>) -> bool {
        self.inner
            .claim_whole(self.tagged(source), self.outer(range))
    }
    fn release(&self, source: u64, range: Range<u64>) {
        self.inner.release(self.tagged(source), self.outer(range));
    }
    fn write_from(&self, source: u64, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.check(offset, data.len())?;
        self.inner
            .write_from(self.tagged(source), self.at + offset, data)
    }
    fn write_verified(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.check(offset, data.len())?;
        self.inner.write_verified(self.at + offset, data)
    }
    fn learn(&self, hashes: UnitHashes) -> bool {
        // A grid that does not survive the move: the network checks its own units and
        // says so through `verified`.
        let moved = self.moved(hashes);
        !moved.is_empty() && moved.into_iter().all(|h| self.inner.learn(h))
    }
    fn strike(&self, sources: &[u64]) -> Vec<u64> {
        let tagged: Vec<u64> = sources.iter().map(|&s| self.tagged(s)).collect();
        self.inner
            .strike(&tagged)
            .into_iter()
            .filter(|s| s & !SOURCE_MASK == self.tag)
            .map(|s| s & SOURCE_MASK)
            .collect()
    }
    fn is_banned(&self, source: u64) -> bool {
        self.inner.is_banned(self.tagged(source))
    }
    fn discarded(&self, source: u64, bytes: u64, dropped: bool) {
        self.inner.discarded(self.tagged(source), bytes, dropped);
    }
}

#[cfg(test)]
mod tests;
