//! Where a transfer's bytes live on disk: one sparse file, or, for content made of several
//! files (a multi-file torrent), a folder of them, each at its place in the content's bytes,
//! so the finished download is the files themselves and is seeded from them. A file left
//! out is made only if a piece shared with a wanted file writes into it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use junction_core::RangeSet;
use junction_core::layout::{FileSpan, place};

/// A transfer's bytes: one file, or the files of a folder laid end to end.
#[derive(Debug)]
pub struct Data {
    /// (offset in the content, length, what holds it).
    spans: Vec<(u64, u64, Span)>,
}

#[derive(Debug)]
enum Span {
    /// Padding: reads as zeros, writes are dropped.
    Pad,
    /// A file, opened at once or (left out) at its first write; unmade, it reads as zeros.
    File { path: PathBuf, file: OnceLock<File> },
}

impl Data {
    /// Opens (or creates) the data at `path`, at full size, sparse: one file when `files`
    /// is empty, else a folder with every file of `files` in it but those `skip` leaves
    /// out (made at their first write). Bytes of `verified` that are not on disk any more
    /// (a file deleted or cut short) are taken out of it.
    pub fn open(
        path: &Path,
        files: &[FileSpan],
        skip: &[bool],
        size: u64,
        verified: &mut RangeSet,
    ) -> io::Result<Data> {
        if files.is_empty() {
            let file = open_at_length(path, size, 0, verified)?;
            let span = Span::File {
                path: path.to_path_buf(),
                file: OnceLock::from(file),
            };
            return Ok(Data {
                spans: vec![(0, size, span)],
            });
        }
        std::fs::create_dir_all(path)?;
        let mut spans = Vec::with_capacity(files.len());
        for (i, ((offset, rel), f)) in place(files).into_iter().zip(files).enumerate() {
            let span = match rel {
                None => Span::Pad,
                Some(rel) => {
                    let at = path.join(rel);
                    let file = OnceLock::new();
                    if !skip.get(i).copied().unwrap_or(false) || at.exists() {
                        if let Some(dir) = at.parent() {
                            std::fs::create_dir_all(dir)?;
                        }
                        let _ = file.set(open_at_length(&at, f.length, offset, verified)?);
                    } else {
                        verified.remove(offset..offset + f.length);
                    }
                    Span::File { path: at, file }
                }
            };
            spans.push((offset, f.length, span));
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
        for (_, _, span) in &self.spans {
            if let Span::File { file, .. } = span
                && let Some(f) = file.get()
            {
                f.sync_data()?;
            }
        }
        Ok(())
    }

    /// The file of span `i`, made now if it was left out until this write.
    fn file_to_write(&self, i: usize) -> io::Result<Option<&File>> {
        let (offset, length, span) = &self.spans[i];
        let Span::File { path, file } = span else {
            return Ok(None);
        };
        if let Some(f) = file.get() {
            return Ok(Some(f));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let made = open_at_length(path, *length, *offset, &mut RangeSet::new())?;
        // Two first writes at once: one handle is kept, the other dropped.
        let _ = file.set(made);
        Ok(file.get())
    }
}

impl junction_core::swarm::Store for Data {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        for (i, at, from, n) in self.pieces(offset, buf.len())? {
            let part = &mut buf[from..from + n];
            match &self.spans[i].2 {
                Span::File { file, .. } => match file.get() {
                    Some(f) => f.read_exact_at(part, at)?,
                    None => part.fill(0),
                },
                Span::Pad => part.fill(0),
            }
        }
        Ok(())
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        for (i, at, from, n) in self.pieces(offset, data.len())? {
            if let Some(f) = self.file_to_write(i)? {
                junction_core::write_all_at_uncached(f, &data[from..from + n], at)?;
            }
        }
        Ok(())
    }
}

/// Copies the `verified` bytes of the one file at `from` into a new folder `to` of `files`
/// (those `skip` leaves out made only where verified bytes reach into them), for content
/// whose files were learnt after its bytes went into one file.
pub fn split(
    from: &Path,
    to: &Path,
    files: &[FileSpan],
    skip: &[bool],
    verified: &RangeSet,
) -> io::Result<()> {
    use junction_core::swarm::Store;
    let source = File::open(from)?;
    let size = junction_core::layout::total_length(files);
    let data = Data::open(to, files, skip, size, &mut RangeSet::new())?;
    let mut buf = vec![0u8; 1 << 20];
    for r in verified.iter() {
        let mut at = r.start;
        while at < r.end.min(size) {
            let n = buf.len().min((r.end.min(size) - at) as usize);
            source.read_exact_at(&mut buf[..n], at)?;
            data.write_at(&buf[..n], at)?;
            at += n as u64;
        }
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
            urns: Vec::new(),
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
        let data = Data::open(&root, &files, &[], 10, &mut verified).unwrap();
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
        split(&one, &dir.path().join("t"), &files, &[], &RangeSet::full(7)).unwrap();
        assert_eq!(std::fs::read(dir.path().join("t/x/a")).unwrap(), b"ab");
        assert_eq!(std::fs::read(dir.path().join("t/b")).unwrap(), b"defg");
        remove_data(&dir.path().join("t")).unwrap();
        remove_data(&one).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_file_left_out_is_made_only_when_a_shared_piece_writes_into_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        let files = [
            span("a", 4, false),
            span("sub/b", 4, false),
            span("c", 4, false),
        ];
        let skip = [false, true, true];
        let data = Data::open(&root, &files, &skip, 12, &mut RangeSet::new()).unwrap();
        assert!(root.join("a").exists() && !root.join("sub").exists());
        let mut back = [9u8; 4];
        data.read_at(&mut back, 8).unwrap();
        assert_eq!(back, [0; 4], "an unmade file reads as zeros");
        // A piece across a and b: b is made, c is not.
        data.write_at(b"aaaab", 0).unwrap();
        assert_eq!(std::fs::read(root.join("sub/b")).unwrap(), b"b\0\0\0");
        assert!(!root.join("c").exists());
        drop(data);
        let mut verified = RangeSet::full(12);
        Data::open(&root, &files, &skip, 12, &mut verified).unwrap();
        assert_eq!(
            verified,
            std::iter::once(0..8).collect(),
            "a and b are on disk, c holds nothing"
        );
    }

    #[test]
    fn a_file_cut_short_loses_its_verified_bytes_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        let files = [span("a", 4, false), span("b", 4, false)];
        let data = Data::open(&root, &files, &[], 8, &mut RangeSet::new()).unwrap();
        data.write_at(b"abcdefgh", 0).unwrap();
        drop(data);
        let mut verified = RangeSet::full(8);
        Data::open(&root, &files, &[], 8, &mut verified).unwrap();
        assert_eq!(verified, RangeSet::full(8));
        std::fs::write(root.join("b"), b"x").unwrap();
        Data::open(&root, &files, &[], 8, &mut verified).unwrap();
        assert_eq!(verified, std::iter::once(0..5).collect());
    }
}
