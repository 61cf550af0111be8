//! Links users paste: `magnet:?…`, `ed2k://|file|…|/`, and `.torrent` files.
//! Each resolves to a [`LinkTarget`]: the content id plus hints for finding it.

mod make;
pub mod percent;
mod v2;

pub use make::{ed2k_link, magnet};

use crate::swarm::{UnitAlgo, UnitHashes};
use sha1::{Digest, Sha1};

use crate::layout::{FileSpan, MAX_FILES};
use crate::{ContentId, ContentIdError, HashKind, bencode};

/// Longest link accepted; magnets with many trackers stay far below.
pub const MAX_LINK_LEN: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    #[error("link is {0} bytes long; the limit is {MAX_LINK_LEN}")]
    TooLong(usize),
    #[error(
        "not a link Junction can fetch (expected magnet:?, ed2k://|file|… or a content id): {0:?}"
    )]
    Unknown(String),
    #[error("magnet link names no hash Junction knows (xt=urn:btih:, urn:sha1:, urn:ed2k:, …)")]
    MagnetWithoutHash,
    #[error("bad ed2k link: {0}")]
    Ed2k(String),
    #[error("ed2k server links are endpoints; add them with `junction endpoint add ed2k LINK`")]
    Ed2kServer,
    #[error("bad .torrent: {0}")]
    Torrent(String),
    #[error(transparent)]
    Id(#[from] ContentIdError),
}

/// What a link points at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkTarget {
    pub id: ContentId,
    pub name: Option<String>,
    /// Peers the link names (`x.pe=`, ed2k `|sources,`): `host:port`.
    pub peers: Vec<String>,
    /// Trackers (`tr=`, announce lists).
    pub trackers: Vec<String>,
    /// eD2k part hashes (`p=`), when given.
    pub part_hashes: Vec<[u8; 16]>,
    /// A single-file torrent's piece hashes, which check bytes from any network.
    pub pieces: Option<UnitHashes>,
    /// A multi-file torrent's files, in the order of their bytes; empty for one file.
    pub files: Vec<FileSpan>,
}

impl LinkTarget {
    /// The hash kind whose peers [`LinkTarget::peers`] are: a torrent's (`btih`, `btmh`)
    /// when the link names one, since `x.pe=` is BitTorrent's (BEP 9); otherwise the
    /// link's first hash in [`HashKind::ALL`] order (an ed2k link's ed2k hash, a magnet's
    /// ed2k hash before its SHA-1). A network that fetches by one of them
    /// ([`crate::Capabilities::fetches`]) takes the peers.
    pub fn peer_kinds(&self) -> Vec<HashKind> {
        let torrent: Vec<HashKind> = [HashKind::Btih, HashKind::Btmh]
            .into_iter()
            .filter(|&k| self.id.get(k).is_some())
            .collect();
        if !torrent.is_empty() {
            return torrent;
        }
        HashKind::ALL
            .into_iter()
            .find(|&k| self.id.get(k).is_some())
            .into_iter()
            .collect()
    }
}

/// Parses a magnet link, an ed2k file link or a bare URN.
pub fn parse_link(text: &str) -> Result<LinkTarget, LinkError> {
    let text = text.trim();
    if text.len() > MAX_LINK_LEN {
        return Err(LinkError::TooLong(text.len()));
    }
    let lower = text.get(..7).unwrap_or("").to_ascii_lowercase();
    if lower.starts_with("magnet:") {
        parse_magnet(text)
    } else if lower.starts_with("ed2k://") {
        parse_ed2k(text)
    } else if lower.starts_with("urn:") {
        Ok(LinkTarget {
            id: ContentId::from_urns(None, [text])?,
            ..Default::default()
        })
    } else {
        Err(LinkError::Unknown(text.chars().take(60).collect()))
    }
}

fn parse_magnet(text: &str) -> Result<LinkTarget, LinkError> {
    let query = text
        .split_once('?')
        .map(|(_, q)| q)
        .ok_or(LinkError::MagnetWithoutHash)?;
    let mut t = LinkTarget::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        // `xt.1`, `xt.2` … carry further hashes of the same content.
        let key = key.split('.').next().unwrap_or(key);
        match key {
            "xt" => {
                if let Err(e) = t.id.add_urn(&value) {
                    // Unknown hash kinds (kzhash, …) are skipped; known ones must be valid.
                    if !matches!(e, ContentIdError::UnknownUrn(_)) {
                        return Err(e.into());
                    }
                }
            }
            "dn" => t.name = Some(value.replace('+', " ")),
            "xl" => t.id.size = value.parse().ok(),
            "tr" => t.trackers.push(value),
            "x" if pair.starts_with("x.pe=") => t.peers.push(value),
            _ => {}
        }
    }
    if !t.id.has_hashes() {
        return Err(LinkError::MagnetWithoutHash);
    }
    Ok(t)
}

/// `ed2k://|file|NAME|SIZE|HASH|[h=AICH|][p=HASH:HASH…|]/[|sources,IP:PORT,…|/]`
fn parse_ed2k(text: &str) -> Result<LinkTarget, LinkError> {
    let body = &text[7..];
    let fields: Vec<&str> = body.split('|').collect();
    match fields.get(1).map(|s| s.to_ascii_lowercase()) {
        Some(k) if k == "file" => {}
        Some(k) if k == "server" || k == "serverlist" => return Err(LinkError::Ed2kServer),
        _ => {
            return Err(LinkError::Ed2k(
                "expected ed2k://|file|NAME|SIZE|HASH|/".into(),
            ));
        }
    }
    let (name, size, hash) = match (fields.get(2), fields.get(3), fields.get(4)) {
        (Some(n), Some(s), Some(h)) => (n, s, h),
        _ => {
            return Err(LinkError::Ed2k(
                "expected ed2k://|file|NAME|SIZE|HASH|/".into(),
            ));
        }
    };
    let size: u64 = size
        .parse()
        .map_err(|_| LinkError::Ed2k(format!("size {size:?} is not a number")))?;
    let digest = HashKind::Ed2k
        .parse_digest(hash)
        .map_err(|_| LinkError::Ed2k(format!("hash {hash:?} is not 32 hex digits")))?;
    let mut t = LinkTarget {
        id: ContentId::new(Some(size)).with(HashKind::Ed2k, &digest),
        name: Some(percent_decode(name)),
        ..Default::default()
    };
    for field in fields.iter().skip(5) {
        if let Some(aich) = field.strip_prefix("h=") {
            let d = HashKind::Aich.parse_digest(aich)?;
            t.id.set(HashKind::Aich, &d);
        } else if let Some(parts) = field.strip_prefix("p=") {
            for p in parts.split(':') {
                let d = HashKind::Ed2k.parse_digest(p).map_err(|_| {
                    LinkError::Ed2k(format!("part hash {p:?} is not 32 hex digits"))
                })?;
                let mut part = [0u8; 16];
                part.copy_from_slice(&d);
                t.part_hashes.push(part);
            }
        } else if let Some(sources) = field.strip_prefix("sources,") {
            t.peers.extend(
                sources
                    .split(',')
                    .filter(|s| s.contains(':'))
                    .map(str::to_owned),
            );
        }
    }
    Ok(t)
}

/// Reads the content id, name and size of a `.torrent`: its v1 info-hash, or for a v2-only
/// torrent its `btmh` (the BitTorrent adapter parses the whole metainfo).
pub fn parse_torrent(bytes: &[u8]) -> Result<LinkTarget, LinkError> {
    let root = bencode::decode(bytes).map_err(|e| LinkError::Torrent(e.to_string()))?;
    let info = root
        .entry("info")
        .ok_or_else(|| LinkError::Torrent("it has no info dictionary".into()))?;
    if info.value.as_dict().is_none() {
        return Err(LinkError::Torrent("its info is not a dictionary".into()));
    }
    let btih: [u8; 20] = Sha1::digest(info.raw).into();
    let name = info
        .value
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let size = match (info.value.get("length"), info.value.get("files")) {
        (Some(len), _) => len.as_int().and_then(|n| u64::try_from(n).ok()),
        (None, Some(files)) => files.as_list().and_then(|fs| {
            fs.iter().try_fold(0u64, |sum, f| {
                let n = f.get("length")?.as_int()?;
                sum.checked_add(u64::try_from(n).ok()?)
            })
        }),
        (None, None) => None,
    };
    let mut trackers: Vec<String> = root
        .get("announce")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(tiers) = root.get("announce-list").and_then(|v| v.as_list()) {
        for url in tiers.iter().filter_map(|t| t.as_list()).flatten() {
            if let Some(u) = url.as_str()
                && !trackers.iter().any(|t| t == u)
            {
                trackers.push(u.to_owned());
            }
        }
    }
    // A v2-only torrent has no SHA-1 swarm: it is named by its btmh, laid out with pads.
    if let Some(v2) = v2::read(&info.value, info.raw)? {
        return Ok(LinkTarget {
            id: v2.id,
            name,
            trackers,
            files: v2.files,
            ..Default::default()
        });
    }
    let mut id = ContentId::new(size).with(HashKind::Btih, &btih);
    // A v1+v2 hybrid is also named by its v2 info-hash (SHA-256 of the same info dict),
    // which v2 clients put in a magnet as `btmh`.
    if info.value.get("meta version").and_then(|v| v.as_int()) == Some(2) {
        let btmh: [u8; 32] = sha2::Sha256::digest(info.raw).into();
        id.set(HashKind::Btmh, &btmh);
    }
    // Hashes of the file some torrents carry (Junction's, Shareaza's): they link networks.
    for (key, kind) in [("sha1", HashKind::Sha1), ("ed2k", HashKind::Ed2k)] {
        if let Some(d) = info.value.get(key).and_then(|v| v.as_bytes())
            && d.len() == kind.digest_len()
        {
            id.set(kind, d);
        }
    }
    let pieces = match (info.value.get("length"), info.value.get("piece length")) {
        (Some(_), Some(len)) => {
            let unit_len = len.as_int().and_then(|n| u64::try_from(n).ok());
            let hashes = info.value.get("pieces").and_then(|v| v.as_bytes());
            match (unit_len, hashes) {
                (Some(unit_len), Some(h)) if unit_len > 0 && h.len() % 20 == 0 => {
                    Some(UnitHashes::uniform(
                        UnitAlgo::Sha1,
                        unit_len,
                        h.chunks(20).map(<[u8]>::to_vec).collect(),
                    ))
                }
                _ => None,
            }
        }
        _ => None,
    };
    let files = match (info.value.get("length"), info.value.get("files")) {
        (None, Some(files)) => torrent_files(files)?,
        _ => Vec::new(),
    };
    Ok(LinkTarget {
        id,
        name,
        trackers,
        pieces: pieces.filter(|p| size.is_some_and(|s| p.fits(s))),
        files,
        ..Default::default()
    })
}

/// A multi-file torrent's `files` list: each file's `path` (its UTF-8 twin preferred),
/// `length`, and whether BEP 47 marks it padding.
fn torrent_files(files: &bencode::Value<'_>) -> Result<Vec<FileSpan>, LinkError> {
    let bad = |why: &str| LinkError::Torrent(format!("its file list {why}"));
    let list = files.as_list().ok_or_else(|| bad("is not a list"))?;
    if list.len() > MAX_FILES {
        return Err(bad(&format!(
            "has {} files; at most {MAX_FILES} are taken",
            list.len()
        )));
    }
    list.iter()
        .map(|f| {
            let length = f
                .get("length")
                .and_then(|v| v.as_int())
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| bad("has a file without a length"))?;
            let path = f
                .get("path.utf-8")
                .or_else(|| f.get("path"))
                .and_then(|v| v.as_list())
                .ok_or_else(|| bad("has a file without a path"))?
                .iter()
                .map(|c| c.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| bad("has a path that is not a list of names"))?;
            // As BitTorrent clients refuse them: a component that climbs out or hides a
            // folder inside it.
            if let Some(c) = path
                .iter()
                .find(|c| c.is_empty() || *c == "." || *c == ".." || c.contains('/'))
            {
                return Err(bad(&format!("has a path with the component {c:?}")));
            }
            let pad = f
                .get("attr")
                .and_then(|v| v.as_bytes())
                .is_some_and(|a| a.contains(&b'p'));
            // The file's own hashes: BEP 47's `sha1`, and `ed2k` as some clients add it.
            let mut id = ContentId::new(Some(length));
            for (key, kind) in [("sha1", HashKind::Sha1), ("ed2k", HashKind::Ed2k)] {
                let digest = f.get(key).and_then(|v| v.as_bytes());
                if let Some(d) = digest.filter(|d| d.len() == kind.digest_len()) {
                    id.set(kind, d);
                }
            }
            let urns = id.urns();
            Ok(FileSpan {
                path,
                length,
                pad,
                urns,
            })
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters (RFC 3986), so a name or URL
/// survives inside a link, a URL and a shell's single quotes.
pub fn percent_encode(s: &str) -> String {
    percent::encode(s.as_bytes())
}

/// `%XX` decoding of text; invalid escapes are kept as written, invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    percent::decode_lossy(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_round_trips_and_keeps_unreserved() {
        let s = "Lab Sunrise/1080p|ü&x=1 ~a-b_c.d";
        let e = percent_encode(s);
        assert_eq!(e, "Lab%20Sunrise%2F1080p%7C%C3%BC%26x%3D1%20~a-b_c.d");
        assert_eq!(percent_decode(&e), s);
    }

    #[test]
    fn magnet_with_several_hashes() {
        let t = parse_link(
            "magnet:?xt=urn:ed2k:31D6CFE0D16AE931B73C59D7E0C089C0&xl=0&dn=zero%20len.fil\
             &xt=urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ&xt=urn:kzhash:abc\
             &tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&x.pe=127.0.0.2:6881",
        )
        .unwrap();
        assert_eq!(t.name.as_deref(), Some("zero len.fil"));
        assert_eq!(t.id.size, Some(0));
        assert!(t.id.get(HashKind::Ed2k).is_some() && t.id.get(HashKind::Sha1).is_some());
        assert_eq!(t.trackers, vec!["http://127.0.0.1:6969/announce"]);
        assert_eq!(t.peers, vec!["127.0.0.2:6881"]);
        // No torrent: the peers are the first hash's (ed2k before SHA-1).
        assert_eq!(t.peer_kinds(), vec![HashKind::Ed2k]);
    }

    #[test]
    fn a_magnets_peers_are_its_torrents() {
        let t = parse_link(
            "magnet:?xt=urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ\
             &xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&x.pe=127.0.0.2:6881",
        )
        .unwrap();
        assert_eq!(t.peer_kinds(), vec![HashKind::Btih]);
        let t = parse_link("magnet:?xt=urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ").unwrap();
        assert_eq!(t.peer_kinds(), vec![HashKind::Sha1]);
    }

    #[test]
    fn ed2k_file_link_with_aich_parts_and_sources() {
        let t = parse_link(
            "ed2k://|file|Big%20File.bin|9728000|FC21D9AF828F92A8DF64BEAC3357425D\
             |h=5D3N4HQHIUMQ7IU7A5QLPLI6RHSWOR7B\
             |p=D7DEF262A127CD79096A108E7A9FC138:31D6CFE0D16AE931B73C59D7E0C089C0|/\
             |sources,127.0.0.1:4662|/",
        )
        .unwrap();
        assert_eq!(t.name.as_deref(), Some("Big File.bin"));
        assert_eq!(t.id.size, Some(9_728_000));
        assert!(t.id.get(HashKind::Aich).is_some());
        assert_eq!(t.part_hashes.len(), 2);
        assert_eq!(t.peers, vec!["127.0.0.1:4662"]);
        assert_eq!(t.peer_kinds(), vec![HashKind::Ed2k]);
    }

    #[test]
    fn bad_links_say_what_is_wrong() {
        for (link, needle) in [
            (
                "ed2k://|file|x|notanumber|31D6CFE0D16AE931B73C59D7E0C089C0|/",
                "size",
            ),
            ("ed2k://|file|x|1|1234|/", "hash"),
            ("ed2k://|server|127.0.0.1|4661|/", "endpoint"),
            ("magnet:?dn=x", "no hash"),
            ("magnet:?xt=urn:btih:zz", "btih"),
            ("http://example.invalid/x", "not a link"),
        ] {
            let e = parse_link(link).unwrap_err().to_string();
            assert!(e.contains(needle), "{link}: {e}");
        }
    }

    #[test]
    fn torrent_info_hash_is_sha1_of_raw_info() {
        let info =
            b"d6:lengthi5e4:name5:a.txt12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAe";
        let torrent = [
            &b"d8:announce30:http://127.0.0.1:6969/announce4:info"[..],
            info,
            b"e",
        ]
        .concat();
        let t = parse_torrent(&torrent).unwrap();
        let want: [u8; 20] = Sha1::digest(info).into();
        assert_eq!(t.id.get(HashKind::Btih), Some(&want[..]));
        assert_eq!(t.id.size, Some(5));
        assert_eq!(t.name.as_deref(), Some("a.txt"));
        assert_eq!(t.trackers, vec!["http://127.0.0.1:6969/announce"]);
        let pieces = t.pieces.expect("a single-file torrent's pieces");
        assert_eq!((pieces.unit_len, pieces.digests.len()), (16384, 1));
        // A torrent's `sha1` and `ed2k` keys name the file on the other networks; pieces
        // that do not fit the length are not kept.
        let info = b"d4:ed2k16:BBBBBBBBBBBBBBBB6:lengthi40000e4:name1:x12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAA4:sha120:CCCCCCCCCCCCCCCCCCCCe";
        let t = parse_torrent(&[&b"d4:info"[..], info, b"e"].concat()).unwrap();
        assert_eq!(t.id.get(HashKind::Sha1), Some(&[b'C'; 20][..]));
        assert_eq!(t.id.get(HashKind::Ed2k), Some(&[b'B'; 16][..]));
        assert!(
            t.pieces.is_none(),
            "3 pieces needed for 40000 bytes, 1 given"
        );
        assert!(
            parse_torrent(b"not bencode")
                .unwrap_err()
                .to_string()
                .contains("bad .torrent")
        );
        assert!(
            parse_torrent(b"d3:foo3:bare")
                .unwrap_err()
                .to_string()
                .contains("no info")
        );
    }

    #[test]
    fn a_multi_file_torrent_lists_its_files_in_order() {
        let info = b"d5:filesld6:lengthi3e4:pathl3:sub5:a.txtee\
d4:attr1:p6:lengthi5e4:pathl4:.pad1:5ee\
d6:lengthi2e4:pathl5:wrong5:b.bine10:path.utf-8l1:bee\
e4:name3:dir12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAe";
        let t = parse_torrent(&[&b"d4:info"[..], info, b"e"].concat()).unwrap();
        assert_eq!(t.id.size, Some(10));
        assert_eq!(t.name.as_deref(), Some("dir"));
        let got: Vec<_> = t
            .files
            .iter()
            .map(|f| (f.path.join("/"), f.length, f.pad))
            .collect();
        assert_eq!(
            got,
            vec![
                ("sub/a.txt".to_owned(), 3, false),
                (".pad/5".to_owned(), 5, true),
                ("b".to_owned(), 2, false),
            ]
        );
        let climbs = b"d4:infod5:filesld6:lengthi3e4:pathl2:..6:passwdeee4:name1:x12:piece lengthi16384e6:pieces0:ee";
        assert!(
            parse_torrent(climbs)
                .unwrap_err()
                .to_string()
                .contains("component \"..\"")
        );
        let no_path = b"d4:infod5:filesld6:lengthi3eee4:name1:x12:piece lengthi16384e6:pieces0:ee";
        assert!(
            parse_torrent(no_path)
                .unwrap_err()
                .to_string()
                .contains("without a path")
        );
    }

    /// A file's own hashes (BEP 47 `sha1`, an `ed2k` key) come with it as URNs; one of
    /// the wrong length is left out.
    #[test]
    fn a_files_own_hashes_come_with_it() {
        let info = [
            &b"d5:filesld4:ed2k16:"[..],
            &[0xE2; 16],
            b"6:lengthi3e4:pathl5:a.txte4:sha120:",
            &[0x51; 20],
            b"ed6:lengthi2e4:pathl5:b.txte4:sha13:abcee",
            b"4:name3:dir12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAe",
        ]
        .concat();
        let t = parse_torrent(&[&b"d4:info"[..], &info, b"e"].concat()).unwrap();
        let a = ContentId::from_urns(Some(3), t.files[0].urns.iter().map(String::as_str)).unwrap();
        assert_eq!(a.get(HashKind::Sha1), Some(&[0x51; 20][..]));
        assert_eq!(a.get(HashKind::Ed2k), Some(&[0xE2; 16][..]));
        assert!(t.files[1].urns.is_empty(), "{:?}", t.files[1].urns);
    }
}
