//! Links out: the forms a user hands to a friend on any network. An `ed2k://` link with
//! its part hashes and AICH root (eMule's export form), and a magnet with every hash, so
//! aMule (`urn:ed2k` + `xl`), gtk-gnutella (`urn:sha1`, `urn:tree:tiger`) and libtorrent
//! (`urn:btih`) each find what they read.

use super::percent_encode;
use crate::{ContentId, HashKind};

/// `ed2k://|file|NAME|SIZE|HASH|[p=PART:PART…|][h=AICH|]/`, or `None` without an ed2k
/// hash and a size. Part hashes are written for files of more than one part.
pub fn ed2k_link(name: &str, id: &ContentId, parts: &[[u8; 16]]) -> Option<String> {
    let (hash, size) = (id.get(HashKind::Ed2k)?, id.size?);
    let mut out = format!(
        "ed2k://|file|{}|{size}|{}|",
        percent_encode(name),
        HashKind::Ed2k.format(hash).to_ascii_uppercase()
    );
    if parts.len() > 1 {
        let hex: Vec<String> = parts.iter().map(hex::encode_upper).collect();
        out.push_str(&format!("p={}|", hex.join(":")));
    }
    if let Some(aich) = id.get(HashKind::Aich) {
        out.push_str(&format!("h={}|", HashKind::Aich.format(aich)));
    }
    out.push('/');
    Some(out)
}

/// `magnet:?xt=…&xl=SIZE&dn=NAME&tr=…` with one `xt` per hash, the info-hash first.
pub fn magnet(name: &str, id: &ContentId, trackers: &[String]) -> String {
    let mut urns = id.urns();
    urns.sort_by_key(|u| !u.starts_with("urn:btih:"));
    let mut parts: Vec<String> = urns.into_iter().map(|u| format!("xt={u}")).collect();
    if let Some(size) = id.size {
        parts.push(format!("xl={size}"));
    }
    if !name.is_empty() {
        parts.push(format!("dn={}", percent_encode(name)));
    }
    parts.extend(trackers.iter().map(|t| format!("tr={}", percent_encode(t))));
    format!("magnet:?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{Want, hash_bytes};
    use crate::link::parse_link;

    #[test]
    fn links_out_read_back_with_every_hash() {
        let data: Vec<u8> = (0..9_728_000 + 5000u32).map(|i| (i % 251) as u8).collect();
        let h = hash_bytes(&data, Want::all(data.len() as u64));
        let mut id = h.content_id();
        id.set(HashKind::Btih, &[7; 20]);
        let parts = &h.ed2k.as_ref().unwrap().parts;
        let name = "a film (2026) & more.mkv";
        let ed2k = ed2k_link(name, &id, parts).unwrap();
        assert!(ed2k.starts_with("ed2k://|file|a%20film%20%282026%29%20%26%20more.mkv|9733000|"));
        assert!(ed2k.contains("|p=") && ed2k.contains("|h="), "{ed2k}");
        let back = parse_link(&ed2k).unwrap();
        assert_eq!(back.name.as_deref(), Some(name));
        assert_eq!(&back.part_hashes, parts);
        assert_eq!(back.id.get(HashKind::Aich), id.get(HashKind::Aich));

        let m = magnet(name, &id, &["http://127.0.0.1:6969/announce".into()]);
        assert!(m.starts_with("magnet:?xt=urn:btih:0707"), "{m}");
        let back = parse_link(&m).unwrap();
        assert_eq!(back.id, id, "every hash and the size come back");
        assert_eq!(back.name.as_deref(), Some(name));
        assert_eq!(
            back.trackers,
            vec!["http://127.0.0.1:6969/announce".to_string()]
        );
    }

    #[test]
    fn an_ed2k_link_needs_a_hash_and_a_size() {
        let id = ContentId::new(None).with(HashKind::Ed2k, &[1; 16]);
        assert_eq!(ed2k_link("x", &id, &[]), None);
        let one_part = ContentId::new(Some(5)).with(HashKind::Ed2k, &[1; 16]);
        assert_eq!(
            ed2k_link("x", &one_part, &[[1; 16]]).unwrap(),
            "ed2k://|file|x|5|01010101010101010101010101010101|/"
        );
    }
}
