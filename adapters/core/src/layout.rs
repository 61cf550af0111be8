//! Content that is several files laid end to end, as a multi-file torrent is: which file
//! holds which bytes, and a path for each under the transfer's folder that stays inside it
//! whatever the peer that named them wrote.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::sanitize_file_name;

/// Most files one content may have; a torrent with more is refused rather than laid out.
pub const MAX_FILES: usize = 100_000;
/// Most folders deep a file may lie; deeper ones are flattened into the last folder.
pub const MAX_DEPTH: usize = 32;

/// One file of a content made of several, in the order their bytes follow each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileSpan {
    /// Folders and file name, as the content's maker wrote them (not yet made safe).
    pub path: Vec<String>,
    pub length: u64,
    /// Padding (BEP 47): zeros that align the next file, never written to disk.
    pub pad: bool,
    /// The file's own hashes as URNs, when the torrent gives them (BEP 47 `sha1`, and
    /// `ed2k` as some clients add it), so other networks can fetch the file by them.
    pub urns: Vec<String>,
}

/// Where each file of `files` goes, relative to the transfer's folder, with its offset in
/// the content: every component is made a safe file name, and two files that would land
/// on one path after that get numbered names, so no file overwrites another. Padding
/// gets `None`.
pub fn place(files: &[FileSpan]) -> Vec<(u64, Option<PathBuf>)> {
    let mut taken: HashSet<PathBuf> = HashSet::new();
    let mut offset = 0u64;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let at = offset;
        offset = offset.saturating_add(f.length);
        if f.pad {
            out.push((at, None));
            continue;
        }
        let mut parts: Vec<String> = f.path.iter().map(|p| sanitize_file_name(p)).collect();
        if parts.is_empty() {
            parts.push(sanitize_file_name(""));
        }
        if parts.len() > MAX_DEPTH {
            let name = parts.pop().unwrap_or_default();
            parts.truncate(MAX_DEPTH - 1);
            parts.push(name);
        }
        let mut path: PathBuf = parts.iter().collect();
        let mut n = 1;
        while !taken.insert(path.clone()) {
            let name = parts.last().map(String::as_str).unwrap_or_default();
            let (stem, ext) = match name.rsplit_once('.') {
                Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
                _ => (name, String::new()),
            };
            path.set_file_name(format!("{stem} ({n}){ext}"));
            n += 1;
        }
        out.push((at, Some(path)));
    }
    out
}

/// The total length of the files.
pub fn total_length(files: &[FileSpan]) -> u64 {
    files.iter().fold(0u64, |s, f| s.saturating_add(f.length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    fn span(path: &[&str], length: u64) -> FileSpan {
        FileSpan {
            path: path.iter().map(|s| s.to_string()).collect(),
            length,
            pad: false,
            urns: Vec::new(),
        }
    }

    #[test]
    fn files_follow_each_other_and_padding_has_no_path() {
        let mut pad = span(&[".pad", "7"], 7);
        pad.pad = true;
        let files = [span(&["a.txt"], 5), pad, span(&["sub", "b.bin"], 3)];
        let placed = place(&files);
        assert_eq!(
            placed,
            vec![
                (0, Some(PathBuf::from("a.txt"))),
                (5, None),
                (12, Some(PathBuf::from("sub/b.bin"))),
            ]
        );
        assert_eq!(total_length(&files), 15);
    }

    #[test]
    fn hostile_paths_stay_inside_and_never_collide() {
        let files = [
            span(&["..", "..", "etc", "passwd"], 1),
            span(&["/abs"], 1),
            span(&["a/b"], 1),
            span(&["a_b"], 1),
            span(&[], 1),
            span(&["CON"], 1),
            span(&["x"; 40], 1),
        ];
        let placed = place(&files);
        let mut seen = HashSet::new();
        for (_, p) in &placed {
            let p = p.as_ref().unwrap();
            assert!(p.is_relative(), "{p:?}");
            assert!(
                p.components().all(|c| matches!(c, Component::Normal(_))),
                "{p:?}"
            );
            assert!(p.components().count() <= MAX_DEPTH, "{p:?}");
            assert!(seen.insert(p.clone()), "two files on {p:?}");
        }
        assert_eq!(placed[2].1.as_deref(), Some(Path::new("a_b")));
        assert_eq!(placed[3].1.as_deref(), Some(Path::new("a_b (1)")));
    }
}
