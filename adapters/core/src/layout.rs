//! Content that is several files laid end to end, as a multi-file torrent is: which file
//! holds which bytes, and a path for each under the transfer's folder that stays inside it
//! whatever the peer that named them wrote.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

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
///
/// A path is never both a file and a folder (`a` and `a/b`, in either order): as with two
/// files on one path, what comes first in the list keeps its name and the later one is
/// numbered. A later file on an earlier folder's path becomes `a (1)`; a later folder on
/// an earlier file's path becomes `a (1)/`, and every later file in that folder follows it
/// there. Paths that clash with nothing are placed as they are.
pub fn place(files: &[FileSpan]) -> Vec<(u64, Option<PathBuf>)> {
    // Placed files, and placed folders (every folder a placed file lies in).
    let mut taken: HashSet<PathBuf> = HashSet::new();
    let mut folders: HashSet<PathBuf> = HashSet::new();
    // (placed parent, sanitized name) → where that folder was placed.
    let mut moved: HashMap<(PathBuf, String), PathBuf> = HashMap::new();
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
        let name = parts.pop().unwrap_or_default();
        let mut dir = PathBuf::new();
        for part in parts {
            let key = (dir, part);
            let placed = match moved.get(&key) {
                Some(placed) => placed.clone(),
                None => {
                    let (parent, part) = &key;
                    let placed = free(parent, part, false, |p| !taken.contains(p));
                    folders.insert(placed.clone());
                    moved.insert(key, placed.clone());
                    placed
                }
            };
            dir = placed;
        }
        let path = free(&dir, &name, true, |p| {
            !taken.contains(p) && !folders.contains(p)
        });
        taken.insert(path.clone());
        out.push((at, Some(path)));
    }
    out
}

/// `dir/name` if `ok` takes it, else the first of `dir/name (1)`, `dir/name (2)`… that
/// it takes; a file keeps its extension last (`movie (1).avi`), a folder has none.
fn free(dir: &Path, name: &str, file: bool, ok: impl Fn(&Path) -> bool) -> PathBuf {
    let path = dir.join(name);
    if ok(&path) {
        return path;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if file && !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    (1u64..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| ok(p))
        .unwrap_or(path)
}

/// The total length of the files.
pub fn total_length(files: &[FileSpan]) -> u64 {
    files.iter().fold(0u64, |s, f| s.saturating_add(f.length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Component;

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

    fn placed(files: &[FileSpan]) -> Vec<PathBuf> {
        place(files).into_iter().filter_map(|(_, p)| p).collect()
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_later_folder_on_a_files_path_is_numbered_and_its_files_follow_it() {
        let files = [
            span(&["a"], 1),
            span(&["a", "b"], 1),
            span(&["a", "c.txt"], 1),
            span(&["a (1)"], 1),
        ];
        assert_eq!(
            placed(&files),
            paths(&["a", "a (1)/b", "a (1)/c.txt", "a (1) (1)"])
        );
    }

    #[test]
    fn a_later_file_on_a_folders_path_is_numbered() {
        let files = [
            span(&["a", "b"], 1),
            span(&["a"], 1),
            span(&["x.d", "y"], 1),
            span(&["x.d"], 1),
            span(&["a", "e"], 1),
        ];
        assert_eq!(
            placed(&files),
            paths(&["a/b", "a (1)", "x.d/y", "x (1).d", "a/e"])
        );
    }

    #[test]
    fn clashes_deep_down_and_after_sanitizing_are_numbered_too() {
        let files = [
            span(&["s", "t", "u"], 1),
            span(&["s", "t", "u", "v"], 1),
            span(&["s", "t"], 1),
            span(&["s", "t", "w"], 1),
            // "a:b" and "a/b" both sanitize to "a_b".
            span(&["a:b"], 1),
            span(&["a_b", "c"], 1),
            span(&["a/b", "d"], 1),
        ];
        assert_eq!(
            placed(&files),
            paths(&[
                "s/t/u",
                "s/t/u (1)/v",
                "s/t (1)",
                "s/t/w",
                "a_b",
                "a_b (1)/c",
                "a_b (1)/d",
            ])
        );
    }

    proptest! {
        #[test]
        fn no_placed_file_lies_in_or_on_another(
            list in prop::collection::vec(
                prop::collection::vec(
                    prop::sample::select(vec!["a", "b", "a (1)", "a:b", "a_b", "c.d", "c (1).d"]),
                    0..5,
                ),
                0..12,
            )
        ) {
            let files: Vec<FileSpan> = list.iter().map(|p| span(p, 1)).collect();
            let out = placed(&files);
            prop_assert_eq!(out.len(), files.len());
            prop_assert_eq!(&placed(&files), &out, "not deterministic");
            for (i, p) in out.iter().enumerate() {
                prop_assert!(p.components().all(|c| matches!(c, Component::Normal(_))), "{:?}", p);
                prop_assert_eq!(p.components().count(), list[i].len().max(1), "{:?}", p);
                for (j, q) in out.iter().enumerate() {
                    // Equal, or one a folder the other lies in.
                    prop_assert!(i == j || !p.starts_with(q), "{:?} and {:?}", p, q);
                }
            }
            // Paths that clash with nothing once sanitized are placed as they are.
            let plain: Vec<PathBuf> = files
                .iter()
                .map(|f| {
                    let mut p: PathBuf = f.path.iter().map(|c| sanitize_file_name(c)).collect();
                    if f.path.is_empty() {
                        p.push(sanitize_file_name(""));
                    }
                    p
                })
                .collect();
            let clash = plain
                .iter()
                .enumerate()
                .any(|(i, p)| plain.iter().enumerate().any(|(j, q)| i != j && p.starts_with(q)));
            if !clash {
                prop_assert_eq!(out, plain);
            }
        }
    }
}
