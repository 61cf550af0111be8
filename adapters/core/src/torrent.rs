//! A single-file torrent made from hashes computed elsewhere. Every part of Junction
//! builds the info dictionary the same way for the same file, so the gateway knows the
//! info-hash BitTorrent seeds a file under without asking it, and can hand out the
//! `.torrent` itself.
//!
//! With the file's v2 tree it is a v1+v2 hybrid (BEP 52), as libtorrent writes one: the
//! v1 keys as for a v1-only torrent, plus `file tree` (whose `pieces root` names the
//! content across every torrent that holds it) and `meta version`; the `.torrent` adds
//! `piece layers`. Junction speaks v1 on the wire: libtorrent passes a hybrid's pieces on
//! their SHA-1 alone when the v2 layer is not known, as after a magnet.

use sha1::{Digest, Sha1};

use crate::hashing::FileHashes;
use crate::hashing::bt::V2Tree;

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
    /// The file's v2 tree: the torrent is then a v1+v2 hybrid.
    pub v2: Option<&'a V2Tree>,
}

impl<'a> SingleFile<'a> {
    /// The v2 tree, when the torrent can be a hybrid: BEP 52 pieces are a power of two of
    /// at least 16 KiB.
    pub fn hybrid(&self) -> Option<&'a V2Tree> {
        self.v2
            .filter(|_| self.piece_len >= 16 * 1024 && self.piece_len.is_power_of_two())
    }

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
            v2: bt.v2.as_ref(),
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
    if let Some(t) = f.hybrid() {
        // {name: {"": {length, pieces root}}}
        bytes(&mut info, b"file tree");
        info.push(b'd');
        bytes(&mut info, f.name.as_bytes());
        info.extend_from_slice(b"d0:d");
        key_int(&mut info, "length", f.length);
        key_bytes(&mut info, "pieces root", &t.pieces_root);
        info.extend_from_slice(b"eee");
    }
    key_int(&mut info, "length", f.length);
    if f.hybrid().is_some() {
        key_int(&mut info, "meta version", 2);
    }
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
/// `announce-list` with one tier per tracker when there are several, the info, and for a
/// hybrid the `piece layers` of its file (empty for a file of one piece, as libtorrent
/// writes it).
pub fn torrent_file(info: &[u8], trackers: &[String], v2: Option<&V2Tree>) -> Vec<u8> {
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
    if let Some(t) = v2 {
        piece_layers(&mut out, t);
    }
    out.push(b'e');
    out
}

/// The `piece layers` key and value of a single-file hybrid.
pub fn piece_layers(out: &mut Vec<u8>, t: &V2Tree) {
    bytes(out, b"piece layers");
    out.push(b'd');
    if t.piece_layer.len() > 1 {
        bytes(out, &t.pieces_root);
        bytes(out, t.piece_layer.as_flattened());
    }
    out.push(b'e');
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
        let bytes = torrent_file(&info, &["http://127.0.0.1:1/announce".into()], f.hybrid());
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
        // A hybrid: named by its v2 info-hash too, the SHA-256 of the same dictionary.
        assert!(f.hybrid().is_some());
        let btmh: [u8; 32] = sha2::Sha256::digest(&info).into();
        assert_eq!(id.get(crate::HashKind::Btmh), Some(&btmh[..]));
        assert_eq!(
            link.pieces.unwrap().digests.len(),
            data.len().div_ceil(16384)
        );
        // The info dictionary is canonical: decoding and encoding it gives it back.
        let v = crate::bencode::decode(&info).unwrap();
        assert_eq!(v.to_vec(), info);
    }

    /// The hybrid info dictionary libtorrent 2.0 (`create_torrent`, default flags) makes of
    /// the same file, without Junction's `sha1`/`ed2k` keys: the same v1 info-hash.
    #[test]
    fn a_hybrid_is_the_one_libtorrent_makes() {
        for (len, piece_len, want) in [
            (100_000, 16384, "440615701391089496a8a7220bc4e5e11bd79877"),
            (100_000, 32768, "898337d975e93fde8630cefe4d956059f851bd8b"),
            (10_000, 16384, "7974694a6dfd7ae41b68c0b558bd14b70b2fb8c3"),
        ] {
            let data: Vec<u8> = (0..len).map(|i: u32| (i % 251) as u8).collect();
            let want_hashes = Want {
                bt_piece_len: Some(piece_len),
                ..Default::default()
            };
            let h = hash_bytes(&data, want_hashes);
            let bt = h.bt.as_ref().unwrap();
            let name = if len == 10_000 {
                "small.bin"
            } else {
                "a file.bin"
            };
            let f = SingleFile {
                name,
                length: h.size,
                piece_len: bt.piece_len,
                pieces: &bt.pieces,
                private: false,
                sha1: None,
                ed2k: None,
                v2: bt.v2.as_ref(),
            };
            let info = info_dict(&f);
            assert_eq!(
                hex::encode(info_hash(&info)),
                want,
                "{len} bytes, {piece_len}"
            );
            let file = torrent_file(&info, &[], f.hybrid());
            // `piece layers` holds the layer only past one piece (libtorrent: empty dict).
            let tail: &[u8] = if len == 10_000 {
                b"12:piece layersdee"
            } else {
                b"e"
            };
            assert!(file.ends_with(tail));
            if len > 100_000 {
                // libtorrent's `piece layers` dictionary, bencoded, hashes the same.
                let at = file
                    .windows(15)
                    .position(|w| w == b"12:piece layers")
                    .unwrap()
                    + 15;
                let layers = &file[at..file.len() - 1];
                let digest: [u8; 20] = Sha1::digest(layers).into();
                assert_eq!(
                    hex::encode(digest),
                    "6207dc96d425812f419b576b7bcf76d626a983ad"
                );
            }
            assert_eq!(crate::bencode::decode(&file).unwrap().to_vec(), file);
        }
    }
}
