//! Making a v1 single-file `.torrent` (a v1+v2 hybrid when the v2 tree is known) for
//! content Junction already has, apart from the parsing in `metainfo`, which never needs it.

use sha1::{Digest, Sha1};

use super::{MAX_PIECE_LENGTH, MIN_V2_PIECE_LENGTH, Result, component, invalid};
use crate::error::MetainfoError;
use crate::wire::benc;

/// A piece length giving roughly 1000–2000 pieces: a power of two from 16 KiB to 16 MiB.
pub fn piece_length_for(total_length: u64) -> u32 {
    // Core picks it, so a torrent the gateway makes from its own hashes is this one.
    let len = junction_core::hashing::bt::piece_len_for(total_length);
    u32::try_from(len).unwrap_or(MIN_V2_PIECE_LENGTH)
}

/// Hashes content piece by piece as it is read, so a file is never held whole in memory.
#[derive(Debug, Clone)]
pub struct PieceHasher {
    piece_length: u32,
    current: Sha1,
    in_piece: u32,
    pieces: Vec<[u8; 20]>,
    total_length: u64,
}

impl PieceHasher {
    pub fn new(piece_length: u32) -> Result<Self> {
        if piece_length == 0 || piece_length > MAX_PIECE_LENGTH {
            return Err(invalid("piece length", "zero or above 256 MiB"));
        }
        Ok(Self {
            piece_length,
            current: Sha1::new(),
            in_piece: 0,
            pieces: Vec::new(),
            total_length: 0,
        })
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total_length += data.len() as u64;
        while !data.is_empty() {
            let room = (self.piece_length - self.in_piece) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.current.update(now);
            self.in_piece += now.len() as u32;
            if self.in_piece == self.piece_length {
                let done = std::mem::replace(&mut self.current, Sha1::new());
                self.pieces.push(done.finalize().into());
                self.in_piece = 0;
            }
            data = rest;
        }
    }

    /// The piece hashes (the last piece may be short) and the total length.
    pub fn finish(mut self) -> (Vec<[u8; 20]>, u64) {
        if self.in_piece > 0 {
            self.pieces.push(self.current.finalize().into());
        }
        (self.pieces, self.total_length)
    }
}

/// Builds a v1 single-file `.torrent` for content Junction holds, so it can seed it.
#[derive(Debug, Clone, Default)]
pub struct TorrentBuilder {
    pub name: String,
    pub piece_length: u32,
    /// Tiers of tracker URLs; the first URL also becomes `announce`.
    pub trackers: Vec<Vec<String>>,
    pub web_seeds: Vec<String>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    pub private: bool,
    /// Whole-file SHA-1 and eD2k hash written into the info dictionary (`sha1`, `ed2k`).
    pub sha1: Option<[u8; 20]>,
    pub ed2k: Option<[u8; 16]>,
    /// The file's v2 tree: the torrent is then a v1+v2 hybrid (core's `torrent` module).
    pub v2: Option<junction_core::hashing::bt::V2Tree>,
}

impl TorrentBuilder {
    pub fn new(name: impl Into<String>, piece_length: u32) -> Self {
        Self {
            name: name.into(),
            piece_length,
            ..Self::default()
        }
    }

    /// Hashes `data` (pieces, and the whole-file SHA-1 unless one is set) and builds the
    /// torrent.
    pub fn build_from_bytes(&self, data: &[u8]) -> Result<Vec<u8>> {
        let mut hasher = PieceHasher::new(self.piece_length)?;
        hasher.update(data);
        let (pieces, length) = hasher.finish();
        let mut b = self.clone();
        b.sha1 = b.sha1.or_else(|| Some(Sha1::digest(data).into()));
        if b.v2.is_none() {
            let mut v2 = junction_core::hashing::bt::V2Hasher::new();
            v2.update(data);
            b.v2 = v2.finish(u64::from(self.piece_length));
        }
        b.build(&pieces, length)
    }

    /// Builds the torrent from piece hashes computed elsewhere (e.g. by [`PieceHasher`]
    /// while the file was stored).
    pub fn build(&self, pieces: &[[u8; 20]], length: u64) -> Result<Vec<u8>> {
        component(self.name.as_bytes())?;
        if self.piece_length == 0 || self.piece_length > MAX_PIECE_LENGTH {
            return Err(invalid("piece length", "zero or above 256 MiB"));
        }
        let expected = length.div_ceil(u64::from(self.piece_length));
        if pieces.len() as u64 != expected || length > i64::MAX as u64 {
            return Err(MetainfoError::PieceCount {
                got: pieces.len() as u64,
                expected,
                total: length,
                piece_length: u64::from(self.piece_length),
            });
        }
        // Core builds it, so the gateway makes the same info dictionary for the same file.
        let file = junction_core::torrent::SingleFile {
            name: &self.name,
            length,
            piece_len: u64::from(self.piece_length),
            pieces,
            private: self.private,
            sha1: self.sha1,
            ed2k: self.ed2k,
            v2: self.v2.as_ref(),
        };
        let info = junction_core::torrent::info_dict(&file);

        let mut out = vec![b'd'];
        let first = self.trackers.iter().flatten().next();
        if let Some(url) = first {
            benc::key_bytes(&mut out, "announce", url.as_bytes());
        }
        if self.trackers.iter().map(Vec::len).sum::<usize>() > 1 {
            benc::bytes(&mut out, b"announce-list");
            out.push(b'l');
            for tier in self.trackers.iter().filter(|t| !t.is_empty()) {
                out.push(b'l');
                tier.iter()
                    .for_each(|u| benc::bytes(&mut out, u.as_bytes()));
                out.push(b'e');
            }
            out.push(b'e');
        }
        if let Some(c) = &self.comment {
            benc::key_bytes(&mut out, "comment", c.as_bytes());
        }
        if let Some(c) = &self.created_by {
            benc::key_bytes(&mut out, "created by", c.as_bytes());
        }
        if let Some(d) = self.creation_date {
            benc::key_int(&mut out, "creation date", d);
        }
        benc::bytes(&mut out, b"info");
        out.extend_from_slice(&info);
        if let Some(t) = file.hybrid() {
            junction_core::torrent::piece_layers(&mut out, t);
        }
        if !self.web_seeds.is_empty() {
            benc::bytes(&mut out, b"url-list");
            out.push(b'l');
            self.web_seeds
                .iter()
                .for_each(|u| benc::bytes(&mut out, u.as_bytes()));
            out.push(b'e');
        }
        out.push(b'e');
        Ok(out)
    }
}
