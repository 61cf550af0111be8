//! Which parts a peer has (the part-status bitfield) and the byte ranges data messages carry.

use bytes::{Buf, BufMut};

use crate::error::{Result, WireError};
use crate::wire::codec::{count_as, get_bytes, get_u16};
use crate::wire::hash::{MAX_FILE_SIZE, PART_SIZE};

/// `ed2kPartCount = size / PARTSIZE + 1`: the number of entries in a part-status bitfield,
/// one more than the data parts when the size is an exact multiple of `PARTSIZE`.
pub fn ed2k_part_count(size: u64) -> u64 {
    size / PART_SIZE + 1
}

/// A part-status bitfield (`OP_FILESTATUS`, extended file requests): part `i` is bit `i % 8`
/// (LSB first) of byte `i / 8`; set = complete. Unused bits of the last byte are always 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartStatus {
    count: u16,
    bits: Vec<u8>,
}

impl PartStatus {
    /// `count` parts, none complete. A count of 0 means "complete file" from an uploader and
    /// "no parts" from a downloader.
    pub fn new(count: u16) -> Self {
        Self {
            count,
            bits: vec![0; usize::from(count).div_ceil(8)],
        }
    }
    /// An all-empty status sized for a file of `size` bytes.
    pub fn for_file_size(size: u64) -> Result<Self> {
        let n = ed2k_part_count(size);
        let count = u16::try_from(n).map_err(|_| WireError::InvalidValue {
            what: "file size for a part status",
            value: size,
        })?;
        Ok(Self::new(count))
    }
    /// From one flag per part.
    pub fn from_bools(parts: &[bool]) -> Result<Self> {
        let count: u16 = count_as(parts.len(), "part status", usize::from(u16::MAX))?;
        let mut s = Self::new(count);
        for (i, &p) in parts.iter().enumerate() {
            s.set(i, p);
        }
        Ok(s)
    }
    /// Number of parts.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }
    /// True for the count-0 form.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Whether part `i` is complete (false when out of range).
    pub fn get(&self, i: usize) -> bool {
        i < self.len()
            && self
                .bits
                .get(i / 8)
                .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
    /// Sets part `i`; ignored when out of range.
    pub fn set(&mut self, i: usize, complete: bool) {
        if i >= self.len() {
            return;
        }
        if let Some(b) = self.bits.get_mut(i / 8) {
            if complete {
                *b |= 1 << (i % 8);
            } else {
                *b &= !(1 << (i % 8));
            }
        }
    }
    /// Every part's flag in order.
    pub fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
    /// Number of complete parts.
    pub fn complete_count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }
    /// Checks the count against a file of `size` bytes (0 is accepted as the "whole file / no
    /// parts" form).
    pub fn check_for_size(&self, size: u64) -> Result<()> {
        let expected = ed2k_part_count(size);
        if self.count != 0 && u64::from(self.count) != expected {
            return Err(WireError::PartCountMismatch {
                got: self.count.into(),
                expected,
                size,
            });
        }
        Ok(())
    }
    pub fn decode(buf: &mut impl Buf) -> Result<Self> {
        let count = get_u16(buf, "part status")?;
        let mut bits = get_bytes(buf, usize::from(count).div_ceil(8), "part status")?.to_vec();
        // Normalise padding so equal statuses compare equal.
        let rem = count % 8;
        if rem != 0
            && let Some(last) = bits.last_mut()
        {
            *last &= (1u8 << rem) - 1;
        }
        Ok(Self { count, bits })
    }
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u16_le(self.count);
        dst.put_slice(&self.bits);
    }
}

/// A byte range `start..end`, end exclusive (eMule writes `EndOffset + 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// A validated range: `start <= end <= MAX_FILE_SIZE`.
    pub fn new(start: u64, end: u64) -> Result<Self> {
        if start > end {
            return Err(WireError::InvalidRange { start, end });
        }
        if end > MAX_FILE_SIZE {
            return Err(WireError::InvalidValue {
                what: "offset beyond the 256 GiB maximum file size",
                value: end,
            });
        }
        Ok(Self { start, end })
    }
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// Unused `OP_REQUESTPARTS` slots are `0..0`.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}
