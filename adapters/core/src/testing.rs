//! Test helpers for the adapters' tests (cargo feature `testing`; an adapter enables it
//! from its `[dev-dependencies]`). The per-IP flood the listeners' tests share is in
//! `adapters/core/testing/per_ip.rs`, included with `#[path]`.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::{RangeSet, SinkError, TransferSink};

/// An in-memory [`TransferSink`] that trusts the network's own checks: `write` stores the
/// bytes, `verified(range, ok)` marks the range verified (or wanted again), `wanted()` is
/// what is not verified. It keeps no ledger: claims, strikes and `learn` are the trait's
/// defaults, so the network under test hashes every unit itself. For a sink that checks
/// bytes and shares work between sources, use [`crate::swarm::SwarmSink`] over a
/// [`crate::swarm::MemStore`].
#[derive(Debug)]
pub struct MemSink {
    size: u64,
    data: Mutex<Vec<u8>>,
    verified: Mutex<RangeSet>,
    writes: AtomicU64,
    failures: AtomicU64,
}

impl MemSink {
    /// An empty sink for content of `size` bytes (all zero, nothing verified).
    pub fn new(size: u64) -> MemSink {
        MemSink {
            size,
            data: Mutex::new(vec![0; size as usize]),
            verified: Mutex::new(RangeSet::new()),
            writes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The content as written so far (zeros where nothing was written).
    pub fn data(&self) -> Vec<u8> {
        self.data.lock().unwrap().clone()
    }

    /// The ranges marked verified.
    pub fn verified_set(&self) -> RangeSet {
        self.verified.lock().unwrap().clone()
    }

    /// How many bytes are marked verified.
    pub fn verified_bytes(&self) -> u64 {
        self.verified.lock().unwrap().covered()
    }

    /// How many writes were stored.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// How many times a range failed the network's check (`verified(_, false)`).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn check(&self, start: u64, end: u64) -> Result<(), SinkError> {
        if end > self.size {
            return Err(SinkError::OutOfRange {
                start,
                end,
                size: self.size,
            });
        }
        Ok(())
    }
}

impl TransferSink for MemSink {
    fn size(&self) -> u64 {
        self.size
    }
    fn wanted(&self) -> RangeSet {
        self.verified.lock().unwrap().gaps(0..self.size)
    }
    fn priority(&self) -> Option<u64> {
        None
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        let end = offset.saturating_add(data.len() as u64);
        self.check(offset, end)?;
        self.data.lock().unwrap()[offset as usize..end as usize].copy_from_slice(data);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        let end = offset.saturating_add(len as u64);
        self.check(offset, end)?;
        let data = self.data.lock().unwrap();
        Ok(Bytes::copy_from_slice(&data[offset as usize..end as usize]))
    }
    fn verified(&self, range: Range<u64>, ok: bool) {
        let mut v = self.verified.lock().unwrap();
        if ok {
            v.insert(range);
        } else {
            v.remove(range);
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_marks_and_counts() {
        let s = MemSink::new(10);
        s.write(2, b"abc").unwrap();
        assert_eq!(&s.read(2, 3).unwrap()[..], b"abc");
        assert_eq!(s.data(), b"\0\0abc\0\0\0\0\0");
        assert!(s.write(8, b"abc").is_err());
        assert!(s.read(8, 3).is_err());
        s.verified(2..5, true);
        assert_eq!(s.verified_bytes(), 3);
        assert_eq!(s.wanted().covered(), 7);
        s.verified(3..4, false);
        assert_eq!(s.verified_set().iter().collect::<Vec<_>>(), [2..3, 4..5]);
        assert_eq!((s.writes(), s.failures()), (1, 1));
        s.write_verified(0, b"xy").unwrap();
        assert_eq!((s.writes(), s.verified_bytes()), (2, 4));
    }
}
