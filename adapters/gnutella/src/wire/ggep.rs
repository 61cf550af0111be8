//! GGEP 0.51 extension blocks.
//!
//! ```text
//! block     = 0xC3 extension+
//! extension = flags(1) id(1..15) length(1..3) data
//! flags     = last(0x80) | cobs(0x40) | deflate(0x20) | reserved(0x10, must be 0) | id length(0x0F)
//! length    = bytes MLxxxxxx, most significant 6 bits first, L marks the last byte
//! ```
//! An [`Extension`] keeps its data **as it was on the wire** (possibly
//! deflated and COBS-encoded), so decoding then encoding is byte-exact;
//! [`Extension::data`] undoes the encodings (un-COBS, then a bounded inflate).

use std::borrow::Cow;
use std::fmt;

use bytes::{Buf, BufMut, Bytes};

use crate::error::{Error, Result};
use crate::wire::{cobs, inflate};

pub mod ids;
mod length;
mod payloads;
#[cfg(test)]
mod tests;

pub use length::{decode_length, encode_length};
use length::{decode_length_width, encode_length_width, length_len};
pub use payloads::{
    Hash, Scp, UltrapeerSlots, VendorCode, encode_ip_ports, encode_vlint, parse_ip_ports,
    parse_vlint,
};

/// GGEP block magic byte.
pub const MAGIC: u8 = 0xC3;
/// Largest length the 3-byte length field can express.
pub const MAX_DATA_LEN: usize = (1 << 18) - 1;
/// Largest inflated size we accept for a deflated extension.
pub const MAX_INFLATED_LEN: usize = 64 * 1024;
/// Most extensions accepted in one block.
pub const MAX_EXTENSIONS: usize = 64;

const F_LAST: u8 = 0x80;
const F_COBS: u8 = 0x40;
const F_DEFLATE: u8 = 0x20;
const F_RESERVED: u8 = 0x10;
const F_IDLEN: u8 = 0x0F;

/// One GGEP extension: id, encoding flags and raw (wire) data.
#[derive(Clone, PartialEq, Eq)]
pub struct Extension {
    id: Bytes,
    cobs: bool,
    deflate: bool,
    raw: Bytes,
    /// Width of the length field as received (senders may use more bytes
    /// than needed); kept so re-encoding is byte-exact.
    len_width: u8,
}

impl fmt::Debug for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extension")
            .field("id", &String::from_utf8_lossy(&self.id))
            .field("cobs", &self.cobs)
            .field("deflate", &self.deflate)
            .field("raw", &self.raw)
            .finish()
    }
}

fn check_id(id: &[u8]) -> Result<()> {
    if id.is_empty() || id.len() > 15 {
        return Err(Error::invalid(
            "GGEP id",
            format!("length {} not in 1..=15", id.len()),
        ));
    }
    if id.contains(&0) {
        return Err(Error::invalid("GGEP id", "contains a NUL byte"));
    }
    Ok(())
}

impl Extension {
    /// An extension with plain data (no COBS, no deflate).
    pub fn new(id: impl AsRef<[u8]>, data: impl Into<Bytes>) -> Result<Self> {
        let id = id.as_ref();
        check_id(id)?;
        let raw = data.into();
        if raw.len() > MAX_DATA_LEN {
            return Err(Error::too_large("GGEP data", raw.len(), MAX_DATA_LEN));
        }
        Ok(Extension {
            id: Bytes::copy_from_slice(id),
            cobs: false,
            deflate: false,
            len_width: length_len(raw.len()) as u8,
            raw,
        })
    }

    /// An extension whose data is COBS-encoded when it contains a NUL, as
    /// gtk-gnutella does for data inside QueryHit records.
    pub fn new_nul_free(id: impl AsRef<[u8]>, data: &[u8]) -> Result<Self> {
        if data.contains(&0) {
            Self::with_encoding(id, data, true, false)
        } else {
            Self::new(id, Bytes::copy_from_slice(data))
        }
    }

    /// An extension with explicit encodings (deflate first, then COBS).
    pub fn with_encoding(
        id: impl AsRef<[u8]>,
        data: &[u8],
        cobs: bool,
        deflate: bool,
    ) -> Result<Self> {
        let mut raw = if deflate {
            inflate::zlib(data)
        } else {
            data.to_vec()
        };
        if cobs {
            raw = cobs::encode(&raw);
        }
        let mut e = Self::new(id, raw)?;
        e.cobs = cobs;
        e.deflate = deflate;
        Ok(e)
    }

    /// The id bytes (compared byte-exactly).
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The id as text (ids are ASCII in practice).
    pub fn id_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.id)
    }

    /// Whether the data is COBS-encoded on the wire.
    pub fn is_cobs(&self) -> bool {
        self.cobs
    }

    /// Whether the data is deflated on the wire.
    pub fn is_deflated(&self) -> bool {
        self.deflate
    }

    /// The data as on the wire.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The payload with COBS and deflate undone (inflation bounded by
    /// [`MAX_INFLATED_LEN`]).
    pub fn data(&self) -> Result<Cow<'_, [u8]>> {
        let mut d: Cow<'_, [u8]> = Cow::Borrowed(&self.raw);
        if self.cobs {
            d = Cow::Owned(cobs::decode(&d)?);
        }
        if self.deflate {
            d = Cow::Owned(inflate::zlib_bounded(&d, MAX_INFLATED_LEN, "GGEP data")?);
        }
        Ok(d)
    }

    /// Bytes this extension takes on the wire.
    pub fn encoded_len(&self) -> usize {
        1 + self.id.len() + self.width() + self.raw.len()
    }

    fn encode(&self, last: bool, dst: &mut impl BufMut) {
        let mut flags = self.id.len() as u8 & F_IDLEN;
        if last {
            flags |= F_LAST;
        }
        if self.cobs {
            flags |= F_COBS;
        }
        if self.deflate {
            flags |= F_DEFLATE;
        }
        dst.put_u8(flags);
        dst.put_slice(&self.id);
        encode_length_width(self.raw.len(), self.width(), dst);
        dst.put_slice(&self.raw);
    }

    fn width(&self) -> usize {
        usize::from(self.len_width).clamp(length_len(self.raw.len()), 3)
    }
}

/// A GGEP block: one or more extensions after the 0xC3 magic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// Extensions in wire order.
    pub extensions: Vec<Extension>,
}

impl Block {
    /// A block of `extensions` (must not be empty when encoded).
    pub fn new(extensions: Vec<Extension>) -> Self {
        Block { extensions }
    }

    /// Decode a block at the start of `buf` (which must begin with 0xC3),
    /// advancing past it.
    pub fn decode(buf: &mut Bytes) -> Result<Self> {
        if buf.first() != Some(&MAGIC) {
            return Err(Error::invalid("GGEP block", "missing 0xC3 magic"));
        }
        buf.advance(1);
        let mut extensions = Vec::new();
        loop {
            if extensions.len() >= MAX_EXTENSIONS {
                return Err(Error::too_large(
                    "GGEP extensions",
                    extensions.len() + 1,
                    MAX_EXTENSIONS,
                ));
            }
            if !buf.has_remaining() {
                return Err(Error::truncated("GGEP block"));
            }
            let flags = buf.get_u8();
            if flags & F_RESERVED != 0 {
                return Err(Error::invalid(
                    "GGEP flags",
                    format!("reserved bit set in {flags:#04x}"),
                ));
            }
            let id_len = usize::from(flags & F_IDLEN);
            if id_len == 0 {
                return Err(Error::invalid("GGEP flags", "id length 0"));
            }
            if buf.remaining() < id_len {
                return Err(Error::truncated("GGEP id"));
            }
            let id = buf.split_to(id_len);
            check_id(&id)?;
            let (len, len_width) = decode_length_width(buf)?;
            if buf.remaining() < len {
                return Err(Error::truncated("GGEP data"));
            }
            let raw = buf.split_to(len);
            extensions.push(Extension {
                id,
                cobs: flags & F_COBS != 0,
                deflate: flags & F_DEFLATE != 0,
                raw,
                len_width,
            });
            if flags & F_LAST != 0 {
                return Ok(Block { extensions });
            }
        }
    }

    /// Decode a block from a slice that holds exactly one block.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut b = Bytes::copy_from_slice(data);
        let block = Self::decode(&mut b)?;
        if !b.is_empty() {
            return Err(Error::invalid(
                "GGEP block",
                format!("{} trailing bytes", b.len()),
            ));
        }
        Ok(block)
    }

    /// Write the block (the last extension gets the "last" flag).
    pub fn encode(&self, dst: &mut impl BufMut) {
        if self.extensions.is_empty() {
            return;
        }
        dst.put_u8(MAGIC);
        let n = self.extensions.len();
        for (i, e) in self.extensions.iter().enumerate() {
            e.encode(i + 1 == n, dst);
        }
    }

    /// Bytes this block takes on the wire.
    pub fn encoded_len(&self) -> usize {
        if self.extensions.is_empty() {
            return 0;
        }
        1 + self
            .extensions
            .iter()
            .map(Extension::encoded_len)
            .sum::<usize>()
    }

    /// The first extension with this id.
    pub fn get(&self, id: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.id() == id.as_bytes())
    }

    /// Append an extension.
    pub fn push(&mut self, e: Extension) {
        self.extensions.push(e);
    }
}
