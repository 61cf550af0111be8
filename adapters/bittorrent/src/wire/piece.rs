//! Piece geometry and the validated numbers built from it.
//!
//! A peer's piece index, block offset and block length are untrusted `u32`s. They become
//! [`ValidPieceIndex`] and [`ValidBlock`] only through a [`Geometry`], which knows how many
//! pieces the torrent has and how long each one is, so code that holds one can index
//! without re-checking.

use crate::error::WireError;

/// The block size every current client requests and serves (BEP 3); larger requests are
/// refused, as libtorrent does.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// Piece layout of one torrent: a piece length and a total length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    piece_length: u32,
    total_length: u64,
    piece_count: u32,
    /// BEP 52: the last piece may be asked for up to a whole piece length, the bytes past
    /// the data being zeros (libtorrent pads a v2 torrent's last file to a piece, and asks
    /// so); see [`Geometry::with_padded_tail`].
    padded_tail: bool,
}

/// A piece index known to be below the piece count of the [`Geometry`] that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValidPieceIndex(u32);

/// A block inside one piece: `1..=BLOCK_LEN` bytes that end within the piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValidBlock {
    index: ValidPieceIndex,
    begin: u32,
    length: u32,
}

impl ValidPieceIndex {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl ValidBlock {
    pub fn index(&self) -> ValidPieceIndex {
        self.index
    }
    pub fn begin(&self) -> u32 {
        self.begin
    }
    pub fn length(&self) -> u32 {
        self.length
    }
}

impl Geometry {
    /// `piece_length` must be non-zero and the piece count must fit in a `u32`.
    pub fn new(piece_length: u32, total_length: u64) -> Result<Self, WireError> {
        if piece_length == 0 {
            return Err(WireError::Geometry("piece length is zero"));
        }
        let count = total_length.div_ceil(u64::from(piece_length));
        let piece_count =
            u32::try_from(count).map_err(|_| WireError::Geometry("more than 2^32 pieces"))?;
        Ok(Self {
            piece_length,
            total_length,
            piece_count,
            padded_tail: false,
        })
    }

    /// A v2 torrent's geometry: blocks of the last piece are valid up to the piece length
    /// (the pad after the last file), though the piece's data, and the blocks we ask for,
    /// end with the file.
    #[must_use]
    pub fn with_padded_tail(mut self) -> Self {
        self.padded_tail = true;
        self
    }

    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Checks an index received from a peer.
    pub fn index(&self, index: u32) -> Result<ValidPieceIndex, WireError> {
        if index < self.piece_count {
            Ok(ValidPieceIndex(index))
        } else {
            Err(WireError::PieceIndexOutOfRange {
                index,
                count: self.piece_count,
            })
        }
    }

    /// Every piece index in order.
    pub fn indices(&self) -> impl Iterator<Item = ValidPieceIndex> + use<> {
        (0..self.piece_count).map(ValidPieceIndex)
    }

    /// Byte offset of the piece within the torrent's data.
    pub fn piece_offset(&self, index: ValidPieceIndex) -> u64 {
        u64::from(index.0) * u64::from(self.piece_length)
    }

    /// Length of the piece: `piece_length`, except for a shorter last piece.
    pub fn piece_len(&self, index: ValidPieceIndex) -> u32 {
        let rest = self.total_length.saturating_sub(self.piece_offset(index));
        // Fits: it is at most piece_length, a u32.
        rest.min(u64::from(self.piece_length)) as u32
    }

    /// Checks a request, cancel, reject or piece header received from a peer.
    pub fn block(&self, index: u32, begin: u32, length: u32) -> Result<ValidBlock, WireError> {
        let index = self.index(index)?;
        let piece_len = match self.padded_tail {
            true => self.piece_length,
            false => self.piece_len(index),
        };
        let end = u64::from(begin) + u64::from(length);
        if length == 0 || length > BLOCK_LEN || end > u64::from(piece_len) {
            return Err(WireError::BadBlock {
                index: index.0,
                begin,
                length,
                piece_len,
            });
        }
        Ok(ValidBlock {
            index,
            begin,
            length,
        })
    }

    /// The blocks of a piece, in order, as a downloader requests them.
    pub fn blocks(&self, index: ValidPieceIndex) -> impl Iterator<Item = ValidBlock> + use<> {
        let piece_len = self.piece_len(index);
        (0..piece_len.div_ceil(BLOCK_LEN)).map(move |i| {
            let begin = i * BLOCK_LEN;
            ValidBlock {
                index,
                begin,
                length: (piece_len - begin).min(BLOCK_LEN),
            }
        })
    }
}

/// Which pieces a peer has: one bit per piece, piece 0 in the most significant bit of
/// byte 0 (BEP 3). Bits past the last piece are always zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    count: u32,
}

impl Bitfield {
    fn byte_len(count: u32) -> usize {
        count.div_ceil(8) as usize
    }

    /// No pieces.
    pub fn empty(count: u32) -> Self {
        Self {
            bits: vec![0; Self::byte_len(count)],
            count,
        }
    }

    /// Every piece (a seeder, or a Fast `have all`).
    pub fn full(count: u32) -> Self {
        let mut bf = Self {
            bits: vec![0xFF; Self::byte_len(count)],
            count,
        };
        bf.clear_spare();
        bf
    }

    /// Validates a received `bitfield` payload against the torrent's piece count: exact
    /// length, and the spare bits of the last byte must be zero (BEP 3).
    pub fn from_payload(payload: &[u8], count: u32) -> Result<Self, WireError> {
        let expected = Self::byte_len(count);
        if payload.len() != expected {
            return Err(WireError::BitfieldLength {
                got: payload.len(),
                expected,
                count,
            });
        }
        let bf = Self {
            bits: payload.to_vec(),
            count,
        };
        let mut cleared = bf.clone();
        cleared.clear_spare();
        if cleared != bf {
            return Err(WireError::BitfieldSpareBits);
        }
        Ok(bf)
    }

    fn clear_spare(&mut self) {
        let spare = (8 - self.count % 8) % 8;
        if let Some(last) = self.bits.last_mut() {
            *last &= 0xFFu8 << spare;
        }
    }

    pub fn piece_count(&self) -> u32 {
        self.count
    }

    pub fn get(&self, index: ValidPieceIndex) -> bool {
        let i = index.0 as usize;
        self.bits
            .get(i / 8)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }

    pub fn set(&mut self, index: ValidPieceIndex, have: bool) {
        if index.0 >= self.count {
            return; // an index from another torrent's geometry; nothing of ours to set
        }
        let i = index.0 as usize;
        if let Some(b) = self.bits.get_mut(i / 8) {
            let mask = 0x80 >> (i % 8);
            if have {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }

    pub fn count_ones(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    pub fn is_complete(&self) -> bool {
        self.count_ones() == self.count
    }

    /// Clears every piece `other` has (of the same geometry), a byte at a time.
    pub fn clear_all_of(&mut self, other: &Bitfield) {
        for (b, o) in self.bits.iter_mut().zip(&other.bits) {
            *b &= !o;
        }
    }

    /// The wire payload of a `bitfield` message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_piece_is_short_and_blocks_cover_it() {
        let g = Geometry::new(40_000, 100_000).unwrap();
        assert_eq!(g.piece_count(), 3);
        let last = g.index(2).unwrap();
        assert_eq!(g.piece_len(last), 20_000);
        let blocks: Vec<_> = g.blocks(last).map(|b| (b.begin(), b.length())).collect();
        assert_eq!(blocks, vec![(0, 16384), (16384, 3616)]);
        assert!(g.index(3).is_err());
    }

    #[test]
    fn blocks_are_checked_against_the_piece() {
        let g = Geometry::new(32768, 40_000).unwrap();
        assert!(g.block(0, 16384, 16384).is_ok());
        assert!(g.block(0, 16385, 16384).is_err());
        assert!(g.block(0, 0, 16385).is_err());
        assert!(g.block(0, 0, 0).is_err());
        assert!(g.block(1, 0, 7232).is_ok());
        assert!(g.block(1, 1, 7232).is_err());
        assert!(g.block(1, u32::MAX, 1).is_err());
        assert_eq!(
            g.block(2, 0, 1),
            Err(WireError::PieceIndexOutOfRange { index: 2, count: 2 })
        );
        assert!(Geometry::new(0, 1).is_err());
        assert!(Geometry::new(1, u64::MAX).is_err());
    }

    #[test]
    fn clearing_one_bitfield_by_another_keeps_the_rest() {
        let mut have = Bitfield::full(10);
        let out = Bitfield::from_payload(&[0b1000_0001, 0b0100_0000], 10).unwrap();
        have.clear_all_of(&out);
        assert_eq!(have.as_bytes(), &[0b0111_1110, 0b1000_0000]);
        assert_eq!(have.count_ones(), 7);
    }

    #[test]
    fn bitfield_spare_bits_and_length() {
        assert_eq!(Bitfield::full(10).as_bytes(), &[0xFF, 0xC0]);
        assert!(Bitfield::from_payload(&[0xFF, 0xC0], 10).is_ok());
        assert_eq!(
            Bitfield::from_payload(&[0xFF, 0xE0], 10),
            Err(WireError::BitfieldSpareBits)
        );
        assert!(matches!(
            Bitfield::from_payload(&[0xFF], 10),
            Err(WireError::BitfieldLength { .. })
        ));
        let g = Geometry::new(1, 10).unwrap();
        let mut bf = Bitfield::empty(10);
        bf.set(g.index(9).unwrap(), true);
        assert_eq!(bf.as_bytes(), &[0, 0x40]);
        assert!(bf.get(g.index(9).unwrap()));
        assert!(!bf.get(g.index(0).unwrap()));
        assert_eq!(bf.count_ones(), 1);
        assert!(Bitfield::full(16).is_complete());
        assert!(Bitfield::from_payload(&[], 0).is_ok());
    }
}
