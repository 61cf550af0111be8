//! Where a transfer's bytes live on disk: one sparse file, or, for content made of several
//! files (a multi-file torrent), a folder of them, each at its place in the content's bytes,
//! so the finished download is the files themselves and is seeded from them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use junction_core::RangeSet;
use junction_core::layout::{FileSpan, place};

/// A transfer's bytes: one file, or the files of a folder laid end to end.
#[derive(Debug)]
pub struct Data {
    /// (offset in the content, length, file); padding has no file and reads as zeros.
    spans: Vec<(u64, u64, Option<File>)>,
}

impl Data {
    /// Opens (or creates) the data at `path`, at full size, sparse: one file when `files`
    /// is empty, else a folder with every file of `files` in it. Bytes of `verified` that
    /// are not on disk any more (a file deleted or cut short) are taken out of it.
    pub fn open(
        path: &Path,
        files: &[FileSpan],
        size: u64,
        verified: &mut RangeSet,
    ) -> io::Result<Data> {
        if files.is_empty() {
            let file = open_at_length(path, size, 0, verified)?;
            return Ok(Data {
                spans: vec![(0, size, Some(file))],
            });
        }
        std::fs::create_dir_all(path)?;
        let mut spans = Vec::with_capacity(files.len());
        for ((offset, rel), f) in place(files).into_iter().zip(files) {
            let file = match rel {
                None => None,
                Some(rel) => {
                    let at = path.join(rel);
                    if let Some(dir) = at.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    Some(open_at_length(&at, f.length, offset, verified)?)
                }
            };
            spans.push((offset, f.length, file));
        }
        Ok(Data { spans })
    }

    /// The pieces of `offset..offset + len` in each span: (span index, offset in its file,
    /// position in the buffer, length).
    fn pieces(&self, offset: u64, len: usize) -> io::Result<Vec<(usize, u64, usize, usize)>> {
        let end = offset
            .checked_add(len as u64)
            .ok_or(io::ErrorKind::InvalidInput)?;
        let first = self.spans.partition_point(|(at, n, _)| at + n <= offset);
        let mut out = Vec::new();
        let mut pos = offset;
        for (i, (at, n, _)) in self.spans.iter().enumerate().skip(first) {
            if pos >= end {
                break;
            }
            let stop = (at + n).min(end);
            if stop > pos {
                out.push((i, pos - at, (pos - offset) as usize, (stop - pos) as usize));
                pos = stop;
            }
        }
        if pos < end {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(out)
    }

    /// Makes every written byte durable.
    pub fn sync_data(&self) -> io::Result<()> {
        for (_, _, f) in &self.spans {
            if let Some(f) = f {
                f.sync_data()?;
            }
        }
        Ok(())
    }
}

impl junction_core::swarm::Store for Data {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        for (i, at, from, n) in self.pieces(offset, buf.len())? {
            let part = &mut buf[from..from + n];
            match &self.spans[i].2 {
                Some(f) => f.read_exact_at(part, at)?,
                None => part.fill(0),
            }
        }
        Ok(())
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        for (i, at, from, n) in self.pieces(offset, data.len())? {
            if let Some(f) = &self.spans[i].2 {
                junction_core::write_all_at_uncached(f, &data[from..from + n], at)?;
            }
        }
        Ok(())
    }
}

/// Copies the bytes of the one file at `from` into a new folder `to` of `files`, for
/// content whose files were learnt after its bytes went into one file.
pub fn split(from: &Path, to: &Path, files: &[FileSpan], size: u64) -> io::Result<()> {
    use junction_core::swarm::Store;
    let source = File::open(from)?;
    let data = Data::open(to, files, size, &mut RangeSet::new())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < size {
        let n = buf.len().min((size - at) as usize);
        source.read_exact_at(&mut buf[..n], at)?;
        data.write_at(&buf[..n], at)?;
        at += n as u64;
    }
    data.sync_data()
}

/// Deletes a transfer's data: its file, or its folder.
pub fn remove_data(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path)?.is_dir() {
        true => std::fs::remove_dir_all(path),
        false => std::fs::remove_file(path),
    }
}

/// Opens or creates the file at `path` at `length`, taking the bytes it no longer holds
/// (from `offset` in the content on) out of `verified`.
fn open_at_length(
    path: &Path,
    length: u64,
    offset: u64,
    verified: &mut RangeSet,
) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let on_disk = file.metadata()?.len();
    if on_disk < length {
        verified.remove(offset + on_disk..offset + length);
    }
    if on_disk != length {
        file.set_len(length)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::swarm::Store;

    fn span(path: &str, length: u64, pad: bool) -> FileSpan {
        FileSpan {
            path: path.split('/').map(str::to_owned).collect(),
            length,
            pad,
        }
    }

    #[test]
    fn bytes_across_files_land_in_each_file_and_padding_reads_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        let files = [
            span("a.txt", 3, false),
            span(".pad/2", 2, true),
            span("sub/b.txt", 4, false),
            span("empty", 0, false),
            span("c.txt", 1, false),
        ];
        let mut verified = RangeSet::new();
        let data = Data::open(&root, &files, 10, &mut verified).unwrap();
        data.write_at(b"abcXYdefgh", 0).unwrap();
        assert_eq!(std::fs::read(root.join("a.txt")).unwrap(), b"abc");
        assert_eq!(std::fs::read(root.join("sub/b.txt")).unwrap(), b"defg");
        assert_eq!(std::fs::read(root.join("empty")).unwrap(), b"");
        assert_eq!(std::fs::read(root.join("c.txt")).unwrap(), b"h");
        assert!(!root.join(".pad").exists(), "padding is never written");
        let mut back = [0u8; 8];
        data.read_at(&mut back, 2).unwrap();
        assert_eq!(&back, b"c\0\0defgh");
        assert!(data.read_at(&mut [0u8; 2], 9).is_err(), "past the end");
        assert!(data.write_at(b"zz", u64::MAX - 1).is_err());
        data.sync_data().unwrap();
    }

    #[test]
    fn one_file_splits_into_the_files_it_is_made_of() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("t.part");
        std::fs::write(&one, b"abcdefg").unwrap();
        let files = [
            span("x/a", 2, false),
            span("pad", 1, true),
            span("b", 4, false),
        ];
        split(&one, &dir.path().join("t"), &files, 7).unwrap();
        assert_eq!(std::fs::read(dir.path().join("t/x/a")).unwrap(), b"ab");
        assert_eq!(std::fs::read(dir.path().join("t/b")).unwrap(), b"defg");
        remove_data(&dir.path().join("t")).unwrap();
        remove_data(&one).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_file_cut_short_loses_its_verified_bytes_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        let files = [span("a", 4, false), span("b", 4, false)];
        let data = Data::open(&root, &files, 8, &mut RangeSet::new()).unwrap();
        data.write_at(b"abcdefgh", 0).unwrap();
        drop(data);
        let mut verified = RangeSet::full(8);
        Data::open(&root, &files, 8, &mut verified).unwrap();
        assert_eq!(verified, RangeSet::full(8));
        std::fs::write(root.join("b"), b"x").unwrap();
        Data::open(&root, &files, 8, &mut verified).unwrap();
        assert_eq!(verified, std::iter::once(0..5).collect());
    }
}
