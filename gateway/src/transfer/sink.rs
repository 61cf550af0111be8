//! The file behind a transfer: a sparse file written at offsets, with the ranges written
//! and the ranges verified. Networks write through it as a [`TransferSink`].

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use junction_core::{RangeSet, SinkError, TransferSink};
use tokio::sync::watch;

/// No reader is waiting.
const NO_PRIORITY: u64 = u64::MAX;

#[derive(Debug)]
pub struct FileSink {
    file: File,
    size: u64,
    ranges: Mutex<Ranges>,
    /// Bumped whenever the verified set grows, so readers and the manager wake up.
    changed: watch::Sender<u64>,
    priority: AtomicU64,
    /// Bytes written since the manager last looked (for the rate).
    fresh_bytes: AtomicU64,
    /// Bytes written onto ranges already verified (received twice), this run.
    redundant: AtomicU64,
    /// Verified ranges changed since they were last persisted.
    dirty: AtomicBool,
    closed: AtomicBool,
    /// The transfer was cancelled: readers stop waiting.
    retired: AtomicBool,
}

#[derive(Debug, Default)]
struct Ranges {
    written: RangeSet,
    verified: RangeSet,
}

impl FileSink {
    /// Opens (or creates) the file at full length, sparse, with what is known verified.
    pub fn open(path: &Path, size: u64, verified: RangeSet) -> std::io::Result<FileSink> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let on_disk = file.metadata()?.len();
        // Bytes past the end of what is on disk cannot be verified any more.
        let mut verified = verified;
        verified.remove(on_disk.min(size)..u64::MAX);
        if on_disk != size {
            file.set_len(size)?;
        }
        Ok(FileSink {
            file,
            size,
            ranges: Mutex::new(Ranges {
                written: verified.clone(),
                verified,
            }),
            changed: watch::channel(0).0,
            priority: AtomicU64::new(NO_PRIORITY),
            fresh_bytes: AtomicU64::new(0),
            redundant: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        })
    }

    fn ranges(&self) -> std::sync::MutexGuard<'_, Ranges> {
        self.ranges.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn verified_set(&self) -> RangeSet {
        self.ranges().verified.clone()
    }

    pub fn written_set(&self) -> RangeSet {
        self.ranges().written.clone()
    }

    /// Ranges known written from an earlier run (only those still inside the file).
    pub fn restore_written(&self, written: RangeSet) {
        let mut r = self.ranges();
        for w in written.iter() {
            r.written
                .insert(w.start.min(self.size)..w.end.min(self.size));
        }
    }

    pub fn written_bytes(&self) -> u64 {
        self.ranges().written.covered()
    }

    pub fn verified_bytes(&self) -> u64 {
        self.ranges().verified.covered()
    }

    pub fn is_complete(&self) -> bool {
        self.ranges().verified.contains(0..self.size)
    }

    /// Verified bytes from `offset` on, up to `max`, if `offset` is verified.
    pub fn read_verified(&self, offset: u64, max: usize) -> std::io::Result<Option<Bytes>> {
        let end = match self.ranges().verified.run_end(offset) {
            Some(end) => end.min(offset + max as u64),
            None => return Ok(None),
        };
        let mut buf = vec![0u8; (end - offset) as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(Some(Bytes::from(buf)))
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn set_priority(&self, offset: Option<u64>) {
        self.priority
            .store(offset.unwrap_or(NO_PRIORITY), Ordering::Relaxed);
    }

    pub fn redundant_bytes(&self) -> u64 {
        self.redundant.load(Ordering::Relaxed)
    }

    pub fn take_fresh_bytes(&self) -> u64 {
        self.fresh_bytes.swap(0, Ordering::Relaxed)
    }

    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Makes written data durable, before its verified ranges are recorded as such.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Refuses further writes (pause, cancel, shutdown) and wakes waiting readers.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Ends the sink for good (cancel): writes are refused and readers give up.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.close();
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub fn reopen(&self) {
        self.closed.store(false, Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check(&self, offset: u64, len: u64) -> Result<Range<u64>, SinkError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.size);
        end.map(|end| offset..end).ok_or(SinkError::OutOfRange {
            start: offset,
            end: offset.saturating_add(len),
            size: self.size,
        })
    }
}

impl TransferSink for FileSink {
    fn size(&self) -> u64 {
        self.size
    }

    fn wanted(&self) -> RangeSet {
        self.ranges().verified.gaps(0..self.size)
    }

    fn priority(&self) -> Option<u64> {
        Some(self.priority.load(Ordering::Relaxed)).filter(|&p| p != NO_PRIORITY)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        if self.is_closed() {
            return Err(SinkError::Closed);
        }
        let range = self.check(offset, data.len() as u64)?;
        // Verified bytes are never overwritten: only the gaps of this write go to disk.
        let gaps = self.ranges().verified.gaps(range.clone());
        let redundant = data.len() as u64 - gaps.covered();
        if redundant > 0 {
            self.redundant.fetch_add(redundant, Ordering::Relaxed);
        }
        for g in gaps.iter() {
            let slice = &data[(g.start - offset) as usize..(g.end - offset) as usize];
            junction_core::write_all_at_uncached(&self.file, slice, g.start)?;
        }
        self.ranges().written.insert(range);
        // Written ranges are persisted too (after an fsync), so a restart keeps them.
        self.dirty.store(true, Ordering::Release);
        self.fresh_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        let range = self.check(offset, len as u64)?;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, range.start)?;
        Ok(Bytes::from(buf))
    }

    fn written(&self) -> RangeSet {
        let r = self.ranges();
        let mut w = r.written.clone();
        for v in r.verified.iter() {
            w.remove(v);
        }
        w
    }

    fn verified(&self, range: Range<u64>, ok: bool) {
        let range = range.start.min(self.size)..range.end.min(self.size);
        {
            let mut r = self.ranges();
            if ok {
                r.verified.insert(range);
            } else {
                // Bad data: wanted again (a verified range stays verified).
                let verified = r.verified.clone();
                r.written.remove(range.clone());
                for v in verified.iter() {
                    r.written.insert(v);
                }
                drop(r);
                self.dirty.store(true, Ordering::Release);
                return;
            }
        }
        self.dirty.store(true, Ordering::Release);
        self.changed.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_bytes_are_never_overwritten_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let sink = FileSink::open(&path, 10, RangeSet::new()).unwrap();
        sink.write(0, b"hello").unwrap();
        sink.verified(0..5, true);
        assert_eq!(sink.redundant_bytes(), 0);
        sink.write(0, b"XXXXXworld").unwrap();
        assert_eq!(&sink.read(0, 10).unwrap()[..], b"helloworld");
        assert_eq!(
            sink.redundant_bytes(),
            5,
            "the five verified bytes came again"
        );
        assert!(!sink.is_complete());
        assert_eq!(
            sink.read_verified(0, 100).unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        assert!(sink.read_verified(5, 100).unwrap().is_none());
        assert!(matches!(
            sink.write(8, b"abc"),
            Err(SinkError::OutOfRange { .. })
        ));
        sink.verified(5..10, true);
        assert!(sink.is_complete());
        drop(sink);
        let again = FileSink::open(&path, 10, RangeSet::full(10)).unwrap();
        assert!(again.is_complete());
        assert_eq!(&again.read(0, 10).unwrap()[..], b"helloworld");
    }

    #[test]
    fn written_ranges_are_offered_unverified_and_restored_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let sink = FileSink::open(&path, 10, RangeSet::new()).unwrap();
        sink.write(0, b"abcdef").unwrap();
        sink.verified(0..2, true);
        assert_eq!(sink.written(), RangeSet::from_iter(std::iter::once(2..6)));
        let kept = sink.written_set();
        drop(sink);
        let again = FileSink::open(&path, 10, RangeSet::from_iter(std::iter::once(0..2))).unwrap();
        assert!(again.written().is_empty());
        again.restore_written(kept);
        assert_eq!(again.written(), RangeSet::from_iter(std::iter::once(2..6)));
        // A failed check of the whole file makes all unverified bytes wanted again.
        again.verified(0..10, false);
        assert!(again.written().is_empty());
        assert_eq!(again.verified_bytes(), 2);
    }

    #[test]
    fn a_truncated_file_loses_the_verified_ranges_it_no_longer_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let sink = FileSink::open(&path, 10, RangeSet::full(10)).unwrap();
        assert_eq!(sink.verified_bytes(), 3);
    }

    #[test]
    fn a_closed_sink_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::open(&dir.path().join("f"), 4, RangeSet::new()).unwrap();
        sink.close();
        assert!(matches!(sink.write(0, b"a"), Err(SinkError::Closed)));
    }
}
