//! A single-file torrent made from hashes computed elsewhere. Every part of Junction
//! builds the info dictionary the same way for the same file, so the gateway knows the
//! info-hash BitTorrent seeds a file under without asking it, and can hand out the
//! `.torrent` itself.

use sha1::{Digest, Sha1};

use crate::hashing::FileHashes;

/// The fields of a single-file v1 info dictionary, with the whole-file `sha1` and `ed2k`
/// keys that let other networks' clients (and Junction) link the torrent to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleFile<'a> {
    pub name: &'a str,
    pub length: u64,
    pub piece_len: u64,
    pub pieces: &'a [[u8; 20]],
    pub private: bool,
    pub sha1: Option<[u8; 20]>,
    pub ed2k: Option<[u8; 16]>,
}

impl<'a> SingleFile<'a> {
    /// The torrent of a file hashed by [`crate::hashing`], under `name`. `None` when the
    /// BitTorrent hashes were not computed.
    pub fn from_hashes(name: &'a str, h: &'a FileHashes) -> Option<SingleFile<'a>> {
        let bt = h.bt.as_ref()?;
        Some(SingleFile {
            name,
            length: h.size,
            piece_len: bt.piece_len,
            pieces: &bt.pieces,
            private: false,
            sha1: h.sha1,
            ed2k: h.ed2k.as_ref().map(|e| e.root),
        })
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

fn key_bytes(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    bytes(out, key.as_bytes());
    bytes(out, value);
}

fn key_int(out: &mut Vec<u8>, key: &str, value: u64) {
    bytes(out, key.as_bytes());
    out.push(b'i');
    out.extend_from_slice(value.to_string().as_bytes());
    out.push(b'e');
}

/// The bencoded info dictionary, keys in sorted order as canonical bencode requires.
pub fn info_dict(f: &SingleFile<'_>) -> Vec<u8> {
    let mut info = vec![b'd'];
    if let Some(h) = &f.ed2k {
        key_bytes(&mut info, "ed2k", h);
    }
    key_int(&mut info, "length", f.length);
    key_bytes(&mut info, "name", f.name.as_bytes());
    key_int(&mut info, "piece length", f.piece_len);
    key_bytes(&mut info, "pieces", f.pieces.as_flattened());
    if f.private {
        key_int(&mut info, "private", 1);
    }
    if let Some(h) = &f.sha1 {
        key_bytes(&mut info, "sha1", h);
    }
    info.push(b'e');
    info
}

/// The v1 info-hash of an info dictionary.
pub fn info_hash(info: &[u8]) -> [u8; 20] {
    Sha1::digest(info).into()
}

/// A `.torrent` around an info dictionary: `announce` (the first tracker), an
/// `announce-list` with one tier per tracker when there are several, and the info.
pub fn torrent_file(info: &[u8], trackers: &[String]) -> Vec<u8> {
    let mut out = vec![b'd'];
    if let Some(first) = trackers.first() {
        key_bytes(&mut out, "announce", first.as_bytes());
    }
    if trackers.len() > 1 {
        bytes(&mut out, b"announce-list");
        out.push(b'l');
        for t in trackers {
            out.push(b'l');
            bytes(&mut out, t.as_bytes());
            out.push(b'e');
        }
        out.push(b'e');
    }
    bytes(&mut out, b"info");
    out.extend_from_slice(info);
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{Want, hash_bytes};

    #[test]
    fn a_torrent_made_from_hashes_reads_back() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let h = hash_bytes(&data, Want::all(data.len() as u64));
        let f = SingleFile::from_hashes("a file.bin", &h).unwrap();
        let info = info_dict(&f);
        let bytes = torrent_file(&info, &["http://127.0.0.1:1/announce".into()]);
        let link = crate::link::parse_torrent(&bytes).unwrap();
        assert_eq!(link.name.as_deref(), Some("a file.bin"));
        assert_eq!(link.id.size, Some(data.len() as u64));
        let id = &link.id;
        assert_eq!(id.get(crate::HashKind::Btih), Some(&info_hash(&info)[..]));
        assert_eq!(
            id.get(crate::HashKind::Sha1),
            h.sha1.as_ref().map(|s| &s[..])
        );
        let ed2k = h.ed2k.as_ref().map(|e| &e.root[..]);
        assert_eq!(id.get(crate::HashKind::Ed2k), ed2k);
        assert_eq!(
            link.pieces.unwrap().digests.len(),
            data.len().div_ceil(16384)
        );
        // The info dictionary is canonical: decoding and encoding it gives it back.
        let v = crate::bencode::decode(&info).unwrap();
        assert_eq!(v.to_vec(), info);
    }
}
