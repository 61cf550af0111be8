//! bt_interop's sink: the fetch written into the output file.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use bytes::Bytes;
use junction_core::{RangeSet, SinkError, TransferSink};

/// A sink writing into a file, tracking verified ranges like the gateway does.
pub struct FileSink {
    file: File,
    size: u64,
    verified: Mutex<RangeSet>,
    /// Verified pieces are counted but not written (benchmarks: the cost without storage).
    pub discard: bool,
}

impl FileSink {
    pub fn at(path: std::path::PathBuf, size: u64) -> Self {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create sink file");
        file.set_len(size).expect("set_len");
        Self {
            file,
            size,
            verified: Mutex::new(RangeSet::new()),
            discard: false,
        }
    }

    pub fn verified_bytes(&self) -> u64 {
        self.verified.lock().unwrap().covered()
    }
}

impl TransferSink for FileSink {
    fn size(&self) -> u64 {
        self.size
    }
    fn wanted(&self) -> RangeSet {
        let v = self.verified.lock().unwrap();
        v.gaps(0..self.size)
    }
    fn priority(&self) -> Option<u64> {
        None
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        let end = offset + data.len() as u64;
        if end > self.size {
            return Err(SinkError::OutOfRange {
                start: offset,
                end,
                size: self.size,
            });
        }
        if !self.discard {
            junction_core::write_all_at_uncached(&self.file, data, offset)?;
        }
        Ok(())
    }
    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    }
    fn verified(&self, range: Range<u64>, ok: bool) {
        let mut v = self.verified.lock().unwrap();
        if ok {
            v.insert(range);
        } else {
            v.remove(range);
        }
    }
}
