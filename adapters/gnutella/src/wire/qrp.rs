//! Query Routing Protocol: the hash function, keyword extraction and route
//! tables (built from our library, or rebuilt from a peer's RESET + PATCH
//! sequence).
//!
//! The hash (QRP 1.0 appendix A) XORs the low 8 bits of each UTF-16 code unit
//! of the lower-cased keyword into a 32-bit word, little-endian groups of 4,
//! multiplies by 0x4F1BBCDC and keeps the top `bits` bits.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::wire::inflate;
use crate::wire::message::{RouteTableUpdate, qrp_compressor};
use crate::wire::urn::Urn;

/// Smallest table accepted (2^3: the spec's own examples use 8 slots).
pub const MIN_TABLE_BITS: u8 = 3;
/// Largest table accepted: 2^21 slots (gtk-gnutella's limit).
pub const MAX_TABLE_BITS: u8 = 21;
/// Words shorter than this (in characters) are not routed on.
pub const MIN_WORD_LEN: usize = 3;
/// Value of a present slot in tables we build.
pub const PRESENT: u8 = 1;

/// QRP hash of `word` into a table of 2^`bits` slots.
pub fn hash(word: &str, bits: u8) -> u32 {
    let mut x: u32 = 0;
    let mut j = 0u32;
    for c in word.chars().flat_map(char::to_lowercase) {
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            x ^= u32::from(*u & 0xFF) << (8 * j);
            j = (j + 1) % 4;
        }
    }
    let product = x.wrapping_mul(0x4F1B_BCDC);
    match bits {
        0 => 0,
        1..=31 => product >> (32 - u32::from(bits)),
        _ => product,
    }
}

/// Lower-cased words of `text` split on non-alphanumerics, keeping those of
/// at least [`MIN_WORD_LEN`] characters (query side).
pub fn keywords(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= MIN_WORD_LEN)
        .map(str::to_lowercase)
        .collect()
}

/// The words a file name contributes to our table: its keywords plus, as
/// gtk-gnutella does, the prefixes obtained by dropping 1 to 5 trailing
/// characters while at least 4 remain ("gnutcap" → gnutca, gnutc, gnut), so
/// that partial words typed by users still route to us.
pub fn table_words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in keywords(name) {
        let chars: Vec<char> = w.chars().collect();
        for cut in 1..=5usize {
            if chars.len() < cut + 4 {
                break;
            }
            out.push(chars[..chars.len() - cut].iter().collect());
        }
        out.push(w);
    }
    out
}

/// A route table: one value per slot; a slot is present when its value is
/// below `infinity`.
#[derive(Clone, PartialEq, Eq)]
pub struct QrpTable {
    bits: u8,
    infinity: u8,
    slots: Vec<u8>,
}

impl std::fmt::Debug for QrpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrpTable")
            .field("len", &self.slots.len())
            .field("infinity", &self.infinity)
            .field("present", &self.present_count())
            .finish()
    }
}

impl QrpTable {
    /// An empty table (every slot at `infinity`). `table_len` must be a
    /// power of two between 2^3 and 2^21, `infinity` at least 1.
    pub fn new(table_len: u32, infinity: u8) -> Result<Self> {
        let bits = Self::check(table_len, infinity)?;
        Ok(QrpTable {
            bits,
            infinity,
            slots: vec![infinity; table_len as usize],
        })
    }

    /// Checks a table size and infinity as [`new`](Self::new) does, without allocating;
    /// returns the size in bits.
    pub fn check(table_len: u32, infinity: u8) -> Result<u8> {
        if !table_len.is_power_of_two() {
            return Err(Error::invalid(
                "QRP table size",
                format!("{table_len} is not a power of two"),
            ));
        }
        let bits = table_len.trailing_zeros() as u8;
        if bits > MAX_TABLE_BITS {
            return Err(Error::too_large(
                "QRP table size",
                table_len,
                1u32 << MAX_TABLE_BITS,
            ));
        }
        if bits < MIN_TABLE_BITS {
            return Err(Error::invalid(
                "QRP table size",
                format!("{table_len} is below {}", 1u32 << MIN_TABLE_BITS),
            ));
        }
        if infinity == 0 {
            return Err(Error::invalid("QRP infinity", "must be at least 1"));
        }
        Ok(bits)
    }

    /// A table holding `words` (see [`table_words`] for file names).
    pub fn from_words<I, S>(words: I, table_len: u32, infinity: u8) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut t = Self::new(table_len, infinity)?;
        for w in words {
            t.insert(w.as_ref());
        }
        Ok(t)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Never true (tables have at least 8 slots); for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// log2 of the size.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// The "absent" value.
    pub fn infinity(&self) -> u8 {
        self.infinity
    }

    /// Raw slot values.
    pub fn slots(&self) -> &[u8] {
        &self.slots
    }

    /// Mark `word` present.
    pub fn insert(&mut self, word: &str) {
        let h = hash(word, self.bits) as usize;
        if let Some(s) = self.slots.get_mut(h) {
            *s = (*s).min(PRESENT.min(self.infinity - 1));
        }
    }

    /// Mark a URN present (LimeWire-style tables hash the URN text).
    pub fn insert_urn(&mut self, urn: &Urn) {
        self.insert(&urn.to_string());
    }

    /// Whether slot `h` is present.
    pub fn contains_slot(&self, h: usize) -> bool {
        self.slots.get(h).is_some_and(|&v| v < self.infinity)
    }

    /// Whether `word` hashes to a present slot.
    pub fn contains_word(&self, word: &str) -> bool {
        self.contains_slot(hash(word, self.bits) as usize)
    }

    /// Whether the URN's text hashes to a present slot.
    pub fn contains_urn(&self, urn: &Urn) -> bool {
        self.contains_word(&urn.to_string())
    }

    /// Whether a keyword query may match: it has at least one routable
    /// keyword and **all** of them are present.
    pub fn matches_keywords(&self, text: &str) -> bool {
        let words = keywords(text);
        !words.is_empty() && words.iter().all(|w| self.contains_word(w))
    }

    /// Indices of present slots.
    pub fn present_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, v)| **v < self.infinity)
            .map(|(i, _)| i)
    }

    /// Mark slot `h` present (ignored when out of range).
    pub fn set_slot(&mut self, h: usize) {
        let present = PRESENT.min(self.infinity - 1);
        if let Some(s) = self.slots.get_mut(h) {
            *s = (*s).min(present);
        }
    }

    /// Add every word `other` may hold, whatever its size: a slot of a larger
    /// table folds onto `slot >> d`, a slot of a smaller one covers the
    /// `2^d` slots it stands for (the hash keeps the top bits), so a query
    /// routed by `other` is routed by the union too.
    pub fn merge(&mut self, other: &QrpTable) {
        let (mine, theirs) = (self.bits, other.bits);
        let present: Vec<usize> = other.present_slots().collect();
        for s in present {
            if theirs >= mine {
                self.set_slot(s >> (theirs - mine));
            } else {
                let d = mine - theirs;
                for t in (s << d)..((s + 1) << d) {
                    self.set_slot(t);
                }
            }
        }
    }

    /// Number of present slots.
    pub fn present_count(&self) -> usize {
        self.present_slots().count()
    }

    /// RESET followed by the PATCH messages that send this whole table
    /// (4-bit entries when they fit, zlib, chunks of at most `max_chunk`
    /// bytes).
    pub fn to_messages(&self, max_chunk: usize) -> Result<Vec<RouteTableUpdate>> {
        let mut v = vec![RouteTableUpdate::Reset {
            table_len: self.slots.len() as u32,
            infinity: self.infinity,
        }];
        v.extend(self.patch_from(None, max_chunk)?);
        Ok(v)
    }

    /// The PATCH messages turning `previous` (or an empty table) into this
    /// one; no RESET, as gtk-gnutella does for incremental updates.
    pub fn patch_from(
        &self,
        previous: Option<&QrpTable>,
        max_chunk: usize,
    ) -> Result<Vec<RouteTableUpdate>> {
        if let Some(p) = previous
            && (p.slots.len() != self.slots.len() || p.infinity != self.infinity)
        {
            return Err(Error::invalid(
                "QRP patch",
                "previous table has another size or infinity: send a RESET",
            ));
        }
        // An entry holds at most an 8-bit signed delta: a slot that moves further (a
        // received table with an infinity above 128, or values far apart) cannot be sent
        // as one patch, and a clamped delta would rebuild another table.
        let old = |i: usize| previous.map_or(self.infinity, |p| p.slots[i]);
        if let Some(i) = (0..self.slots.len())
            .find(|&i| !(-128..=127).contains(&(i16::from(self.slots[i]) - i16::from(old(i)))))
        {
            return Err(Error::invalid(
                "QRP patch",
                format!(
                    "slot {i} goes from {} to {}: more than an 8-bit entry changes",
                    old(i),
                    self.slots[i]
                ),
            ));
        }
        let raw = self.raw_patch(previous);
        let data = inflate::zlib(&raw.bytes);
        let chunk = max_chunk.max(1);
        let n = data.len().div_ceil(chunk).max(1);
        let seq_size =
            u8::try_from(n).map_err(|_| Error::too_large("QRP patch chunks", n, u8::MAX))?;
        let data = Bytes::from(data);
        Ok((0..n)
            .map(|i| RouteTableUpdate::Patch {
                seq_no: (i + 1) as u8,
                seq_size,
                compressor: qrp_compressor::ZLIB,
                entry_bits: raw.entry_bits,
                data: data.slice(i * chunk..((i + 1) * chunk).min(data.len())),
            })
            .collect())
    }

    /// The uncompressed patch: per-slot `new - old`, 4 bits when every
    /// delta fits in -8..=7 (high nibble = lower index), else 8 bits (a delta
    /// outside -128..=127 is clamped; [`patch_from`](Self::patch_from) refuses those).
    pub fn raw_patch(&self, previous: Option<&QrpTable>) -> RawPatch {
        let old = |i: usize| previous.map_or(self.infinity, |p| p.slots[i]);
        let deltas: Vec<i16> = (0..self.slots.len())
            .map(|i| i16::from(self.slots[i]) - i16::from(old(i)))
            .collect();
        if deltas.iter().all(|d| (-8..=7).contains(d)) {
            let bytes = deltas
                .chunks(2)
                .map(|p| {
                    let hi = (p[0] as u8) & 0x0F;
                    let lo = (p.get(1).copied().unwrap_or(0) as u8) & 0x0F;
                    (hi << 4) | lo
                })
                .collect();
            RawPatch {
                entry_bits: 4,
                bytes,
            }
        } else {
            RawPatch {
                entry_bits: 8,
                bytes: deltas
                    .iter()
                    .map(|&d| d.clamp(-128, 127) as i8 as u8)
                    .collect(),
            }
        }
    }

    /// Apply a complete, uncompressed patch.
    fn apply_raw(&mut self, entry_bits: u8, raw: &[u8]) -> Result<()> {
        let per_byte = 8 / usize::from(entry_bits);
        let want = self.slots.len() / per_byte;
        if raw.len() != want {
            return Err(Error::invalid(
                "QRP patch",
                format!(
                    "{} bytes for {} slots of {entry_bits} bits (want {want})",
                    raw.len(),
                    self.slots.len()
                ),
            ));
        }
        let infinity = self.infinity;
        let mask = (1u16 << entry_bits) - 1;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let byte = raw[i / per_byte];
            let shift = 8 - usize::from(entry_bits) * (i % per_byte + 1);
            let v = (u16::from(byte) >> shift) & mask;
            if entry_bits == 1 {
                // A set bit flips the slot between present and absent.
                if v == 1 {
                    *slot = if *slot < infinity {
                        infinity
                    } else {
                        PRESENT.min(infinity - 1)
                    };
                }
                continue;
            }
            // Sign-extend the entry.
            let delta = if v >> (entry_bits - 1) == 1 {
                i16::try_from(v).unwrap_or(0) - (1i16 << entry_bits)
            } else {
                i16::try_from(v).unwrap_or(0)
            };
            *slot = (i16::from(*slot) + delta).clamp(0, i16::from(u8::MAX)) as u8;
        }
        Ok(())
    }
}

/// An uncompressed patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPatch {
    /// 4 or 8.
    pub entry_bits: u8,
    /// Packed entries.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Pending {
    seq_size: u8,
    next: u8,
    compressor: u8,
    entry_bits: u8,
    data: Vec<u8>,
}

/// Rebuilds a peer's table from its RESET / PATCH messages. Later PATCH
/// sequences without a new RESET update the current table, as gtk-gnutella
/// sends them when its library changes.
///
/// A RESET only records the size: the table (up to 2 MiB) is allocated when the first
/// PATCH sequence is complete, so a peer sending RESETs alone costs nothing. Until then
/// there is no table (an empty one would match nothing anyway).
#[derive(Debug, Clone, Default)]
pub struct QrpReceiver {
    table: Option<QrpTable>,
    /// Size and infinity of the last RESET, while no PATCH has completed since.
    reset: Option<(u32, u8)>,
    pending: Option<Pending>,
}

impl QrpReceiver {
    /// No table yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last complete table.
    pub fn table(&self) -> Option<&QrpTable> {
        self.table.as_ref()
    }

    /// Feed one message; `Ok(true)` when a patch sequence completed and the
    /// table was updated. Errors leave no half-applied patch behind.
    pub fn apply(&mut self, msg: &RouteTableUpdate) -> Result<bool> {
        match msg {
            RouteTableUpdate::Reset {
                table_len,
                infinity,
            } => {
                QrpTable::check(*table_len, *infinity)?;
                self.pending = None;
                self.table = None;
                self.reset = Some((*table_len, *infinity));
                Ok(false)
            }
            RouteTableUpdate::Patch {
                seq_no,
                seq_size,
                compressor,
                entry_bits,
                data,
            } => {
                let Some(table_len) = self
                    .table
                    .as_ref()
                    .map(QrpTable::len)
                    .or(self.reset.map(|(len, _)| len as usize))
                else {
                    return Err(Error::invalid("QRP PATCH", "received before any RESET"));
                };
                if *seq_no == 1 {
                    self.pending = Some(Pending {
                        seq_size: *seq_size,
                        next: 1,
                        compressor: *compressor,
                        entry_bits: *entry_bits,
                        data: Vec::new(),
                    });
                }
                let raw_len = table_len * usize::from(*entry_bits) / 8;
                // zlib never expands by more than a few bytes per 16 KiB block.
                let max_wire = raw_len + raw_len / 8 + 1024;
                let result =
                    self.push_chunk(*seq_no, *seq_size, *compressor, *entry_bits, data, max_wire);
                let done = match result {
                    Ok(d) => d,
                    Err(e) => {
                        self.pending = None;
                        return Err(e);
                    }
                };
                let Some(p) = done else {
                    return Ok(false);
                };
                let raw = if p.compressor == qrp_compressor::ZLIB {
                    inflate::zlib_bounded(&p.data, raw_len, "QRP patch")?
                } else {
                    p.data
                };
                // Apply to a copy so a bad patch leaves the table intact.
                let mut next = match (&self.table, self.reset) {
                    (Some(t), _) => t.clone(),
                    (None, Some((len, infinity))) => QrpTable::new(len, infinity)?,
                    (None, None) => {
                        return Err(Error::invalid("QRP PATCH", "received before any RESET"));
                    }
                };
                next.apply_raw(p.entry_bits, &raw)?;
                self.table = Some(next);
                self.reset = None;
                Ok(true)
            }
        }
    }

    fn push_chunk(
        &mut self,
        seq_no: u8,
        seq_size: u8,
        compressor: u8,
        entry_bits: u8,
        data: &[u8],
        max_wire: usize,
    ) -> Result<Option<Pending>> {
        let Some(p) = self.pending.as_mut() else {
            return Err(Error::invalid(
                "QRP PATCH",
                format!("chunk {seq_no}/{seq_size} without chunk 1"),
            ));
        };
        if seq_no != p.next
            || seq_size != p.seq_size
            || compressor != p.compressor
            || entry_bits != p.entry_bits
        {
            return Err(Error::invalid(
                "QRP PATCH",
                format!(
                    "chunk {seq_no}/{seq_size} does not continue the sequence (expected {}/{})",
                    p.next, p.seq_size
                ),
            ));
        }
        if p.data.len() + data.len() > max_wire {
            return Err(Error::too_large(
                "QRP patch",
                p.data.len() + data.len(),
                max_wire,
            ));
        }
        p.data.extend_from_slice(data);
        p.next = p.next.wrapping_add(1);
        if seq_no == seq_size {
            Ok(self.pending.take())
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests;
