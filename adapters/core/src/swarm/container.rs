//! The content that holds a file (a multi-file torrent), offered whole to a network that
//! fetches only whole contents (BitTorrent), when the transfer is of that one file: the
//! other direction of [`super::WindowSink`]. The network sees a sink `total` bytes long.
//! Only the file's bytes, `at..at + len`, reach the transfer; every other byte stays
//! wanted and can never be claimed, as a file left out of a torrent. A piece that reaches
//! past the file is still fetched and hashed whole by the network, which keeps only the
//! file's part of it.
//!
//! A piece that passes its hash proves only that these are the torrent's bytes. That the
//! torrent's file is this content rests on the hash the torrent claims for the file, which
//! nothing checked, so the bytes reach the transfer unverified, and the transfer's own
//! hashes decide: a torrent that lied about its file is struck, as a lying source is.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::UnitHashes;
use crate::{RangeSet, SinkError, TransferSink};

pub struct ContainerSink {
    /// The file's own sink, `len` bytes long.
    inner: Arc<dyn TransferSink>,
    at: u64,
    len: u64,
    total: u64,
}

impl ContainerSink {
    /// A content of `total` bytes whose bytes `at..at + inner.size()` are the file
    /// `inner` holds. None when the file does not fit inside the content.
    pub fn new(inner: Arc<dyn TransferSink>, at: u64, total: u64) -> Option<ContainerSink> {
        let len = inner.size();
        (at.checked_add(len)? <= total).then_some(ContainerSink {
            inner,
            at,
            len,
            total,
        })
    }

    /// The part of `r` (the content's offsets) inside the file, in the file's offsets.
    fn inside(&self, r: Range<u64>) -> Option<Range<u64>> {
        let (a, b) = (r.start.max(self.at), r.end.min(self.at + self.len));
        (a < b).then(|| a - self.at..b - self.at)
    }

    fn inside_set(&self, set: &RangeSet) -> RangeSet {
        set.iter().filter_map(|r| self.inside(r)).collect()
    }

    fn outer_set(&self, set: &RangeSet) -> RangeSet {
        set.iter()
            .map(|r| self.at + r.start..self.at + r.end)
            .collect()
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), SinkError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.total => Ok(()),
            _ => Err(SinkError::OutOfRange {
                start: offset,
                end: offset.saturating_add(len as u64),
                size: self.total,
            }),
        }
    }

    /// The part of `data`, written at `offset` of the content, that falls in the file:
    /// its offset in the file and its bytes.
    fn file_part<'a>(&self, offset: u64, data: &'a [u8]) -> Option<(u64, &'a [u8])> {
        let r = self.inside(offset..offset + data.len() as u64)?;
        let skip = (self.at + r.start - offset) as usize;
        Some((r.start, &data[skip..skip + (r.end - r.start) as usize]))
    }
}

impl TransferSink for ContainerSink {
    fn size(&self) -> u64 {
        self.total
    }
    /// Everything outside the file, and the file's bytes not yet verified.
    fn wanted(&self) -> RangeSet {
        let mut out = RangeSet::full(self.total);
        let done = self.inner.wanted().gaps(0..self.len);
        for r in self.outer_set(&done).iter() {
            out.remove(r);
        }
        out
    }
    fn priority(&self) -> Option<u64> {
        self.inner.priority().map(|p| self.at + p)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.write_from(0, offset, data)
    }
    /// Only the file's bytes are kept, and only they can be read back.
    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        self.check(offset, len)?;
        match self.inside(offset..offset + len as u64) {
            Some(r) if r.end - r.start == len as u64 => self.inner.read(r.start, len),
            _ => Err(SinkError::OutOfRange {
                start: offset,
                end: offset + len as u64,
                size: self.total,
            }),
        }
    }
    fn verified(&self, range: Range<u64>, ok: bool) {
        if let Some(r) = self.inside(range) {
            self.inner.verified(r, ok);
        }
    }
    fn written(&self) -> RangeSet {
        self.outer_set(&self.inner.written())
    }
    /// Everything outside the file, and what the file's transfer leaves out.
    fn skipped(&self) -> RangeSet {
        let mut out = self.outer_set(&self.inner.skipped());
        out.insert(0..self.at);
        out.insert(self.at + self.len..self.total);
        out
    }
    fn claim(&self, source: u64, within: Range<u64>, max: u64) -> Option<Range<u64>> {
        let r = self.inner.claim(source, self.inside(within)?, max)?;
        Some(self.at + r.start..self.at + r.end)
    }
    fn claim_in(&self, source: u64, within: &RangeSet, max: u64) -> Option<Range<u64>> {
        let r = self.inner.claim_in(source, &self.inside_set(within), max)?;
        Some(self.at + r.start..self.at + r.end)
    }
    fn availability(&self, source: u64, has: Option<RangeSet>) {
        let has = has.map(|h| self.inside_set(&h));
        self.inner.availability(source, has);
    }
    /// A piece wholly outside the file is never fetched; one that reaches into it claims
    /// the file's part.
    fn claim_whole(&self, source: u64, range: Range<u64>) -> bool {
        self.inside(range)
            .is_some_and(|r| self.inner.claim_whole(source, r))
    }
    fn release(&self, source: u64, range: Range<u64>) {
        if let Some(r) = self.inside(range) {
            self.inner.release(source, r);
        }
    }
    fn write_from(&self, source: u64, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.check(offset, data.len())?;
        match self.file_part(offset, data) {
            Some((at, part)) => self.inner.write_from(source, at, part),
            None => Ok(()),
        }
    }
    /// A piece the network hashed whole: the file's part of it is written, as source
    /// 0's (the network's number for the pieces it checks itself), and left to the
    /// transfer's own hashes.
    fn write_verified(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.write_from(0, offset, data)
    }
    /// The torrent's piece hashes are not the file's (see the module's note).
    fn learn(&self, _hashes: UnitHashes) -> bool {
        false
    }
    fn strike(&self, sources: &[u64]) -> Vec<u64> {
        self.inner.strike(sources)
    }
    fn is_banned(&self, source: u64) -> bool {
        self.inner.is_banned(source)
    }
    fn discarded(&self, source: u64, bytes: u64, dropped: bool) {
        self.inner.discarded(source, bytes, dropped);
    }
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
