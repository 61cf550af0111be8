//! A v2-only `.torrent` (BEP 52) as the gateway needs it: its `btmh`, and its files laid out
//! the way BitTorrent peers number its pieces, each file from a piece boundary with BEP 47
//! pad files between them (the BitTorrent adapter lays it out the same, so the transfer's
//! size and the adapter's agree).

use sha2::{Digest, Sha256};

use super::LinkError;
use crate::bencode::Value;
use crate::layout::{FileSpan, MAX_FILES};
use crate::{ContentId, HashKind};

/// A file of the tree: its path, length and `pieces root` (none when empty).
type TreeFile = (Vec<String>, u64, Option<[u8; 32]>);

/// What a v2-only torrent gives the gateway.
pub(super) struct V2Only {
    pub id: ContentId,
    /// Its files and pads for a multi-file torrent; empty for a single file.
    pub files: Vec<FileSpan>,
}

/// `None` for a torrent with v1 hashes (a v1 or hybrid torrent: the caller reads its v1
/// half); an error for a v2 file tree that is not one.
pub(super) fn read(info: &Value<'_>, raw: &[u8]) -> Result<Option<V2Only>, LinkError> {
    if info.get("meta version").and_then(Value::as_int) != Some(2) || info.get("pieces").is_some() {
        return Ok(None);
    }
    let bad = |why: &str| LinkError::Torrent(format!("its v2 file tree {why}"));
    let piece_length = info
        .get("piece length")
        .and_then(Value::as_int)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n >= 16 * 1024 && n.is_power_of_two())
        .ok_or_else(|| bad("has no valid piece length"))?;
    let tree = info.get("file tree").ok_or_else(|| bad("is missing"))?;
    let mut found = Vec::new();
    walk(tree, &mut Vec::new(), &mut found)?;
    if found.is_empty() {
        return Err(bad("has no files"));
    }
    let name = info.get("name").and_then(Value::as_str).unwrap_or_default();
    let single = matches!(found.as_slice(), [(p, _, _)] if p.len() == 1 && p[0] == name);
    let mut files = Vec::new();
    let mut offset = 0u64;
    let last = found.len() - 1;
    for (i, (path, length, _)) in found.iter().enumerate() {
        files.push(FileSpan {
            path: path.clone(),
            length: *length,
            pad: false,
            urns: Vec::new(),
        });
        offset = offset
            .checked_add(*length)
            .ok_or_else(|| bad("is too long"))?;
        let pad = offset.next_multiple_of(piece_length) - offset;
        if i < last && pad > 0 {
            files.push(FileSpan {
                path: vec![".pad".into(), pad.to_string()],
                length: pad,
                pad: true,
                urns: Vec::new(),
            });
            offset += pad;
        }
    }
    let btmh: [u8; 32] = Sha256::digest(raw).into();
    let mut id = ContentId::new(Some(offset)).with(HashKind::Btmh, &btmh);
    if single && let Some(root) = found[0].2 {
        id.set(HashKind::BtRoot, &root);
    }
    Ok(Some(V2Only {
        id,
        files: if single { Vec::new() } else { files },
    }))
}

/// The files of a `file tree`: directories are dicts of names, a file is a dict whose only
/// key is `""`. Depth is bounded by the bencode decoder, the count by `MAX_FILES`.
fn walk(
    node: &Value<'_>,
    path: &mut Vec<String>,
    out: &mut Vec<TreeFile>,
) -> Result<(), LinkError> {
    let bad = |why: &str| LinkError::Torrent(format!("its v2 file tree {why}"));
    let entries = node
        .as_dict()
        .ok_or_else(|| bad("has a node that is not a dictionary"))?;
    for e in entries {
        let name = std::str::from_utf8(e.key)
            .ok()
            .filter(|c| !c.is_empty() && *c != "." && *c != ".." && !c.contains(['/', '\\']))
            .ok_or_else(|| bad("has an unsafe name"))?;
        path.push(name.to_owned());
        match e.value.get("") {
            Some(file) => {
                if out.len() >= MAX_FILES {
                    return Err(bad(&format!("has over {MAX_FILES} files")));
                }
                let length = file
                    .get("length")
                    .and_then(Value::as_int)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| bad("has a file without a length"))?;
                let root = file
                    .get("pieces root")
                    .and_then(Value::as_bytes)
                    .and_then(|r| r.try_into().ok());
                out.push((path.clone(), length, root));
            }
            None => walk(&e.value, path, out)?,
        }
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse_torrent;
    use crate::HashKind;

    /// A v2-only torrent of `files` (path, length) in a folder, piece length 16 KiB.
    fn torrent(name: &str, files: &[(&str, u64)]) -> Vec<u8> {
        let mut t = b"d4:infod9:file treed".to_vec();
        for (path, len) in files {
            t.extend_from_slice(
                format!("{}:{path}d0:d6:lengthi{len}e11:pieces root32:", path.len()).as_bytes(),
            );
            t.extend_from_slice(&[7; 32]);
            t.extend_from_slice(b"ee");
        }
        t.extend_from_slice(
            format!(
                "e12:meta versioni2e4:name{}:{name}12:piece lengthi16384ee",
                name.len()
            )
            .as_bytes(),
        );
        t.extend_from_slice(b"e");
        t
    }

    #[test]
    fn a_v2_only_folder_is_laid_out_with_pads_and_named_by_its_btmh() {
        let bytes = torrent("dir", &[("a", 20_000), ("b", 5), ("c", 40_000)]);
        let t = parse_torrent(&bytes).unwrap();
        assert_eq!(t.id.get(HashKind::Btih), None, "no v1 swarm");
        assert_eq!(t.id.get(HashKind::Btmh).map(<[u8]>::len), Some(32));
        // a: 2 pieces, b: 1, c from 49,152.
        assert_eq!(t.id.size, Some(49_152 + 40_000));
        let spans: Vec<(u64, bool)> = t.files.iter().map(|f| (f.length, f.pad)).collect();
        assert_eq!(
            spans,
            vec![
                (20_000, false),
                (12_768, true),
                (5, false),
                (16_379, true),
                (40_000, false)
            ]
        );
        // One file: no layout, its pieces root names it.
        let one = parse_torrent(&torrent("f.bin", &[("f.bin", 70_000)])).unwrap();
        assert_eq!(one.id.size, Some(70_000));
        assert!(one.files.is_empty());
        assert_eq!(one.id.get(HashKind::BtRoot), Some(&[7u8; 32][..]));
    }
}
