//! THEX (Tree Hash EXchange): the Tiger tree of a file as servents serve it at
//! `/uri-res/N2X?urn:sha1:…`, and the tree geometry both sides agree on.
//!
//! The answer is a DIME message of two records, as gtk-gnutella sends it
//! (`thex_upload.c`, capture 06k):
//!
//! 1. `text/xml`: `<hashtree>` with `<file size=… segmentsize="1024"/>`,
//!    `<digest algorithm="http://open-content.net/spec/digest/tiger" outputsize="24"/>` and
//!    `<serializedtree depth=… type="http://open-content.net/spec/thex/breadthfirst" uri="uuid:…"/>`;
//! 2. type URI `…/thex/breadthfirst`, id = that `uuid:`: the nodes, 24 bytes each, root
//!    first, level by level down to `depth`.
//!
//! Depth `d` has one node per run of `1024 × 2^(full − d)` bytes (`full` = the depth of
//! the 1024-byte leaves), the file's last run shorter: the node is the Tiger tree root of
//! exactly those bytes, so a level is a grid of independently checkable units.
//! gtk-gnutella serves and uses the depth of `tt_good_depth` (0 under 256 KiB, one more
//! per doubling, at most 11), and reads a deeper tree only down to that depth.

use bytes::Bytes;
use junction_core::tiger_tree::{self, LEAF_LEN, TigerTree};

use crate::error::{Error, Result};
use crate::wire::dime::{self, Record};
use crate::wire::urn::TigerHash;

/// `segmentsize` (bytes per leaf).
pub const SEGMENT_SIZE: u64 = LEAF_LEN as u64;
/// The digest algorithm URI.
pub const DIGEST_TIGER: &str = "http://open-content.net/spec/digest/tiger";
/// The serialization type URI.
pub const BREADTH_FIRST: &str = "http://open-content.net/spec/thex/breadthfirst";
/// The DOCTYPE system id.
pub const DTD: &str = "http://open-content.net/spec/thex/thex.dtd";
/// Largest answer we read: gtk-gnutella's own limit (`THEX_DOWNLOAD_MAX_SIZE`, 260 KiB),
/// room for a tree of depth 12.
pub const MAX_ANSWER: usize = 260 * 1024;
/// Largest XML record we look into.
pub const MAX_XML: usize = 16 * 1024;
/// Deepest level we ever take from a tree (2^16 units).
pub const MAX_DEPTH: u32 = 16;

/// Blocks of 1024 bytes (the last one shorter); an empty file has one (empty) leaf.
pub fn leaf_count(size: u64) -> u64 {
    size.div_ceil(SEGMENT_SIZE).max(1)
}

/// Depth of the leaves: how many halvings (rounding up) bring the leaves to one root.
pub fn full_depth(size: u64) -> u32 {
    let mut n = leaf_count(size);
    let mut d = 0;
    while n > 1 {
        n = n.div_ceil(2);
        d += 1;
    }
    d
}

/// The depth gtk-gnutella serves (`tt_good_depth`): 0 below 256 KiB, then one more
/// level per doubling up to 64 MiB, 9 below 256 MiB, 10 below 1 GiB, 11 beyond.
pub fn good_depth(size: u64) -> u32 {
    const THRESHOLDS: [u64; 11] = [
        256 << 10,
        512 << 10,
        1 << 20,
        2 << 20,
        4 << 20,
        8 << 20,
        16 << 20,
        32 << 20,
        64 << 20,
        256 << 20,
        1 << 30,
    ];
    THRESHOLDS
        .iter()
        .position(|&t| size < t)
        .unwrap_or(THRESHOLDS.len()) as u32
}

/// The depth we serve: gtk-gnutella's, never below the leaves.
pub fn served_depth(size: u64) -> u32 {
    good_depth(size).min(full_depth(size))
}

/// Nodes at `depth` (≤ the full depth).
pub fn node_count(size: u64, depth: u32) -> u64 {
    let mut n = leaf_count(size);
    let m = 1u64.checked_shl(depth).unwrap_or(u64::MAX);
    while n > m {
        n = n.div_ceil(2);
    }
    n
}

/// Bytes each node at `depth` covers (the last one fewer); `None` if that does not fit a
/// `u64` or `depth` is below the leaves.
pub fn unit_len(size: u64, depth: u32) -> Option<u64> {
    let shift = full_depth(size).checked_sub(depth)?;
    SEGMENT_SIZE.checked_mul(1u64.checked_shl(shift)?)
}

/// The `uuid:` gtk-gnutella names the tree record with: the root's first 16 bytes read
/// as little-endian fields.
pub fn tree_uuid(root: &TigerHash) -> String {
    let r = &root.0;
    let le32 = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
    let le16 = |i: usize| u16::from_le_bytes([r[i], r[i + 1]]);
    format!(
        "uuid:{:08x}-{:04x}-{:04x}-{:04x}-{:08x}{:04x}",
        le32(0),
        le16(4),
        le16(6),
        le16(8),
        le32(10),
        le16(14)
    )
}

/// One level of a tree: the unit grid it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Depth below the root.
    pub depth: u32,
    /// Bytes per node (the last node fewer).
    pub unit_len: u64,
    /// The nodes, in file order.
    pub nodes: Vec<TigerHash>,
}

impl Level {
    /// The root these nodes hash up to.
    pub fn root(&self) -> Option<TigerHash> {
        let raw: Vec<tiger_tree::TigerHash> = self.nodes.iter().map(|n| n.0).collect();
        tiger_tree::root_of(&raw).map(TigerHash)
    }
}

/// Computes the root and the nodes at the served depth in one pass over the file.
#[derive(Clone)]
pub struct LevelHasher {
    depth: u32,
    unit_len: u64,
    unit: TigerTree,
    in_unit: u64,
    nodes: Vec<TigerHash>,
}

impl LevelHasher {
    /// For a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        let depth = served_depth(size);
        LevelHasher {
            depth,
            // The served depth is at most 11 levels above the leaves' depth ≤ 54.
            unit_len: unit_len(size, depth).unwrap_or(u64::MAX),
            unit: TigerTree::new(),
            in_unit: 0,
            nodes: Vec::new(),
        }
    }

    /// Feed the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.unit_len - self.in_unit;
            let take = usize::try_from(room).map_or(data.len(), |r| r.min(data.len()));
            self.unit.update(&data[..take]);
            self.in_unit += take as u64;
            data = &data[take..];
            if self.in_unit == self.unit_len {
                let done = std::mem::take(&mut self.unit);
                self.nodes.push(TigerHash(done.finish()));
                self.in_unit = 0;
            }
        }
    }

    /// The level (and so the root).
    pub fn finish(mut self) -> Level {
        if self.in_unit > 0 || self.nodes.is_empty() {
            self.nodes.push(TigerHash(self.unit.finish()));
        }
        Level {
            depth: self.depth,
            unit_len: self.unit_len,
            nodes: self.nodes,
        }
    }
}

/// Every level from the root down to `level`, breadth-first (root first).
fn breadth_first(level: &[TigerHash]) -> Vec<u8> {
    let mut levels: Vec<Vec<tiger_tree::TigerHash>> = vec![level.iter().map(|n| n.0).collect()];
    while let Some(top) = levels.last().filter(|l| l.len() > 1) {
        let up = tiger_tree::parents(top);
        levels.push(up);
    }
    let mut out = Vec::with_capacity(levels.iter().map(Vec::len).sum::<usize>() * 24);
    for l in levels.iter().rev() {
        for n in l {
            out.extend_from_slice(n);
        }
    }
    out
}

/// The XML record's text, byte for byte as gtk-gnutella writes it.
pub fn xml(size: u64, depth: u32, uuid: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <!DOCTYPE hashtree SYSTEM \"{DTD}\">\r\n\
         <hashtree>\r\n\
         <file size=\"{size}\" segmentsize=\"{SEGMENT_SIZE}\"/>\r\n\
         <digest algorithm=\"{DIGEST_TIGER}\" outputsize=\"24\"/>\r\n\
         <serializedtree depth=\"{depth}\" type=\"{BREADTH_FIRST}\" uri=\"{uuid}\"/>\r\n\
         </hashtree>\r\n"
    )
}

/// The whole answer for a file of `size` bytes whose nodes at `level.depth` are
/// `level.nodes`.
pub fn encode_answer(size: u64, level: &Level) -> Result<Vec<u8>> {
    let root = level
        .root()
        .ok_or_else(|| Error::invalid("THEX level", "no nodes"))?;
    let uuid = tree_uuid(&root);
    let records = [
        Record::new(
            dime::TYPE_MEDIA,
            "text/xml",
            "",
            xml(size, level.depth, &uuid).into_bytes(),
        ),
        Record::new(
            dime::TYPE_URI,
            BREADTH_FIRST,
            &uuid,
            breadth_first(&level.nodes),
        ),
    ];
    let mut out = Vec::with_capacity(records.iter().map(Record::encoded_len).sum());
    dime::encode_message(&records, &mut out)?;
    Ok(out)
}

/// What an answer's XML says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// `file/@size`.
    pub size: u64,
    /// `serializedtree/@depth`.
    pub depth: u32,
    /// `serializedtree/@uri`: the id of the tree record.
    pub uri: Option<String>,
}

/// Read the XML record: the file size, leaf size, digest and serialization must be
/// the ones THEX defines.
pub fn parse_xml(xml: &[u8]) -> Result<Description> {
    if xml.len() > MAX_XML {
        return Err(Error::too_large("THEX XML", xml.len(), MAX_XML));
    }
    let xml = std::str::from_utf8(xml).map_err(|e| Error::invalid("THEX XML", e))?;
    let need = |attrs: &[(&str, &str)], key: &str, what: &'static str| -> Result<String> {
        attrs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
            .ok_or_else(|| Error::invalid(what, format!("no {key} attribute")))
    };
    if element(xml, "hashtree").is_none() {
        return Err(Error::invalid("THEX XML", "no hashtree element"));
    }
    let file = element(xml, "file").ok_or_else(|| Error::invalid("THEX XML", "no file"))?;
    let size = need(&file, "size", "THEX file")?
        .parse::<u64>()
        .map_err(|e| Error::invalid("THEX file size", e))?;
    if need(&file, "segmentsize", "THEX file")? != SEGMENT_SIZE.to_string() {
        return Err(Error::invalid("THEX file", "segment size is not 1024"));
    }
    let digest = element(xml, "digest").ok_or_else(|| Error::invalid("THEX XML", "no digest"))?;
    if need(&digest, "algorithm", "THEX digest")? != DIGEST_TIGER
        || need(&digest, "outputsize", "THEX digest")? != "24"
    {
        return Err(Error::invalid(
            "THEX digest",
            "not Tiger with 24-byte output",
        ));
    }
    let tree = element(xml, "serializedtree")
        .ok_or_else(|| Error::invalid("THEX XML", "no serializedtree"))?;
    if need(&tree, "type", "THEX serializedtree")? != BREADTH_FIRST {
        return Err(Error::invalid("THEX serializedtree", "not breadth-first"));
    }
    let depth = need(&tree, "depth", "THEX serializedtree")?
        .parse::<u16>()
        .map_err(|e| Error::invalid("THEX depth", e))?;
    Ok(Description {
        size,
        depth: u32::from(depth),
        uri: tree
            .iter()
            .find(|(k, _)| *k == "uri")
            .map(|(_, v)| (*v).to_owned()),
    })
}

/// The attributes of the first `<name …>` element (no entity decoding: THEX values
/// are plain ASCII).
fn element<'a>(xml: &'a str, name: &str) -> Option<Vec<(&'a str, &'a str)>> {
    let mut from = 0;
    let rest = loop {
        let at = from + xml.get(from..)?.find('<')?;
        let after = &xml[at + 1..];
        from = at + 1;
        if let Some(r) = after.strip_prefix(name)
            && r.starts_with(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        {
            break r;
        }
    };
    let mut attrs = Vec::new();
    let mut s = rest;
    loop {
        s = s.trim_start();
        if s.is_empty() || s.starts_with('/') || s.starts_with('>') {
            return Some(attrs);
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim();
        s = s[eq + 1..].trim_start();
        let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &s[1..];
        let end = body.find(quote)?;
        attrs.push((key, &body[..end]));
        s = &body[end + 1..];
        if attrs.len() > 32 {
            return Some(attrs);
        }
    }
}

/// Decode a THEX answer for a file of `size` bytes whose root is `root` (known before
/// asking anyone), and return its deepest level that hashes up to that root. Every
/// length is checked before anything is sliced; nothing is trusted that does not hash
/// up to `root`.
pub fn decode_answer(body: &Bytes, size: u64, root: &TigerHash) -> Result<Level> {
    if body.len() > MAX_ANSWER {
        return Err(Error::too_large("THEX answer", body.len(), MAX_ANSWER));
    }
    let records = dime::decode_message(body)?;
    let xml = records
        .iter()
        .find(|r| r.is_kind("text/xml"))
        .ok_or_else(|| Error::invalid("THEX answer", "no text/xml record"))?;
    let desc = parse_xml(&xml.data)?;
    if desc.size != size {
        return Err(Error::invalid(
            "THEX file size",
            format!("{} for a file of {size} bytes", desc.size),
        ));
    }
    let full = full_depth(size);
    if desc.depth > full {
        return Err(Error::invalid(
            "THEX depth",
            format!("{} below the leaves ({full})", desc.depth),
        ));
    }
    let trees = || records.iter().filter(|r| r.is_kind(BREADTH_FIRST));
    // By the id the XML names; BearShare garbles it, so any tree record will do.
    let tree = desc
        .uri
        .as_deref()
        .and_then(|u| trees().find(|r| r.id.eq_ignore_ascii_case(u.as_bytes())))
        .or_else(|| trees().next())
        .ok_or_else(|| Error::invalid("THEX answer", "no breadth-first tree record"))?;
    let data = &tree.data;
    if data.is_empty() || data.len() % 24 != 0 {
        return Err(Error::invalid(
            "THEX tree",
            format!("{} bytes is not a run of 24-byte nodes", data.len()),
        ));
    }
    let n_nodes = (data.len() / 24) as u64;
    if data[..24] != root.0 {
        return Err(Error::invalid("THEX tree", "its root is not the known one"));
    }
    // The deepest level served whole, down to the declared depth at most.
    let (mut depth, mut start, mut count, mut seen) = (0u32, 0u64, 1u64, 1u64);
    for d in 1..=desc.depth.min(MAX_DEPTH) {
        let c = node_count(size, d);
        if seen + c > n_nodes {
            break;
        }
        (depth, start, count) = (d, seen, c);
        seen += c;
    }
    let lo = usize::try_from(start * 24).map_err(|_| Error::truncated("THEX tree"))?;
    let hi = usize::try_from((start + count) * 24).map_err(|_| Error::truncated("THEX tree"))?;
    let nodes: Vec<TigerHash> = data
        .get(lo..hi)
        .ok_or_else(|| Error::truncated("THEX tree"))?
        .chunks_exact(24)
        .filter_map(|c| <[u8; 24]>::try_from(c).ok().map(TigerHash))
        .collect();
    let level = Level {
        depth,
        unit_len: unit_len(size, depth)
            .ok_or_else(|| Error::invalid("THEX depth", "unit does not fit 64 bits"))?,
        nodes,
    };
    if level.root() != Some(*root) {
        return Err(Error::invalid(
            "THEX tree",
            format!("the nodes at depth {depth} do not hash up to the root"),
        ));
    }
    Ok(level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn geometry_matches_gtk_gnutella() {
        assert_eq!((full_depth(0), good_depth(0), node_count(0, 0)), (0, 0, 1));
        assert_eq!(full_depth(65536), 6);
        assert_eq!(served_depth(65536), 0);
        assert_eq!(served_depth(256 << 10), 1);
        assert_eq!(served_depth(1 << 20), 3);
        assert_eq!(served_depth(2 << 30), 11);
        // 2 MiB: depth 4, 16 units of 128 KiB.
        assert_eq!((served_depth(2 << 20), node_count(2 << 20, 4)), (4, 16));
        assert_eq!(unit_len(2 << 20, 4), Some(128 << 10));
        // 100000 bytes = 98 blocks (full depth 7): depth 2 has 4 nodes of 32 KiB.
        assert_eq!(
            (node_count(100_000, 2), unit_len(100_000, 2)),
            (4, Some(32 << 10))
        );
        assert_eq!(unit_len(u64::MAX, 0), None);
    }

    #[test]
    fn level_hasher_agrees_with_the_core_tree() {
        let data: Vec<u8> = (0..(600u32 << 10) + 77)
            .map(|i| (i * 7 + 3) as u8)
            .collect();
        for split in [1usize, 1000, 4096, 1 << 20] {
            let mut h = LevelHasher::new(data.len() as u64);
            for c in data.chunks(split) {
                h.update(c);
            }
            let l = h.finish();
            assert_eq!(l.depth, 2);
            assert_eq!(l.unit_len, 256 << 10);
            let want: Vec<TigerHash> = tiger_tree::level(&data, 256 << 10)
                .into_iter()
                .map(TigerHash)
                .collect();
            assert_eq!(l.nodes, want);
            assert_eq!(l.root(), Some(TigerHash(tiger_tree::root(&data))));
        }
        let e = LevelHasher::new(0).finish();
        assert_eq!(
            e.root().unwrap().to_base32(),
            "LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ"
        );
    }

    #[test]
    fn uuid_of_the_capture() {
        let root = TigerHash::from_base32("V3OIMCCWACJQAKJCKCPXT5RM3QKWCZYT6C7SGBA").unwrap();
        assert_eq!(
            tree_uuid(&root),
            "uuid:0886dcae-0056-0093-2229-f6799f50dc2c"
        );
    }

    fn answer_for(data: &[u8]) -> (Level, Bytes) {
        let mut h = LevelHasher::new(data.len() as u64);
        h.update(data);
        let l = h.finish();
        let a = encode_answer(data.len() as u64, &l).unwrap();
        (l, Bytes::from(a))
    }

    #[test]
    fn decodes_what_it_encodes_and_refuses_lies() {
        let data: Vec<u8> = (0..(1u32 << 20) + 5).map(|i| (i % 251) as u8).collect();
        let size = data.len() as u64;
        let (l, a) = answer_for(&data);
        // 1025 leaves: depth 3 has four 256 KiB units and a last one of 5 bytes.
        assert_eq!((l.depth, l.nodes.len(), l.unit_len), (3, 5, 256 << 10));
        let root = l.root().unwrap();
        assert_eq!(decode_answer(&a, size, &root).unwrap(), l);
        // Another root, another size: refused.
        assert!(decode_answer(&a, size, &TigerHash([1; 24])).is_err());
        assert!(decode_answer(&a, size + 1, &root).is_err());
        // A node flipped at the deepest level: its root no longer matches.
        let mut bad = a.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let e = decode_answer(&Bytes::from(bad), size, &root).unwrap_err();
        assert!(e.to_string().contains("do not hash up"), "{e}");
        // Every truncation is an error, never a panic.
        for cut in 0..a.len() {
            let _ = decode_answer(&a.slice(..cut), size, &root);
        }
        // Only the root and the first level: the deepest whole level is used.
        let xml_len = dime::decode_message(&a).unwrap()[0].encoded_len();
        let mut short = a[..xml_len].to_vec();
        let mut rec = dime::decode_message(&a).unwrap().remove(1);
        rec.data = rec.data.slice(..3 * 24);
        rec.encode(false, true, &mut short).unwrap();
        let got = decode_answer(&Bytes::from(short), size, &root).unwrap();
        assert_eq!((got.depth, got.nodes.len(), got.unit_len), (1, 2, 1 << 20));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn round_trip(size in 0u64..(3u64 << 30), seed in any::<u64>()) {
            // Nodes need not come from real data: any level has a root.
            let depth = served_depth(size);
            let n = node_count(size, depth);
            let mut x = seed | 1;
            let nodes: Vec<TigerHash> = (0..n).map(|_| {
                let mut h = [0u8; 24];
                for b in &mut h { x ^= x << 13; x ^= x >> 7; x ^= x << 17; *b = x as u8; }
                TigerHash(h)
            }).collect();
            let level = Level { depth, unit_len: unit_len(size, depth).unwrap(), nodes };
            let root = level.root().unwrap();
            let a = Bytes::from(encode_answer(size, &level).unwrap());
            prop_assert!(a.len() <= MAX_ANSWER);
            prop_assert_eq!(decode_answer(&a, size, &root).unwrap(), level);
        }
    }
}
