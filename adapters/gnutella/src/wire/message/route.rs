//! QRP route-table update messages (0x30): RESET and PATCH.
//! Table semantics live in [`crate::wire::qrp`].

use bytes::{BufMut, Bytes};

use super::take;
use crate::error::{Error, Result};

/// PATCH compressor values.
pub mod qrp_compressor {
    /// Uncompressed.
    pub const NONE: u8 = 0x00;
    /// zlib.
    pub const ZLIB: u8 = 0x01;
}

/// A RESET or PATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTableUpdate {
    /// Variant 0x00: reset the table to `table_len` entries at `infinity`.
    Reset {
        /// Number of entries (a power of two; bounded when applied).
        table_len: u32,
        /// Value meaning "absent".
        infinity: u8,
    },
    /// Variant 0x01: one chunk of a patch sequence.
    Patch {
        /// 1-based position in the sequence.
        seq_no: u8,
        /// Number of chunks in the sequence.
        seq_size: u8,
        /// See [`qrp_compressor`].
        compressor: u8,
        /// Bits per entry: 1, 2, 4 or 8.
        entry_bits: u8,
        /// This chunk of the (possibly compressed) patch.
        data: Bytes,
    },
}

impl RouteTableUpdate {
    /// Decode the payload, checking the fixed fields.
    pub fn decode(mut p: Bytes) -> Result<Self> {
        let [variant] = take::<1>(&mut p, "QRP message")?;
        match variant {
            0x00 => {
                let table_len = u32::from_le_bytes(take(&mut p, "QRP RESET")?);
                let [infinity] = take::<1>(&mut p, "QRP RESET")?;
                if !p.is_empty() {
                    return Err(Error::invalid(
                        "QRP RESET",
                        format!("{} trailing bytes", p.len()),
                    ));
                }
                Ok(RouteTableUpdate::Reset {
                    table_len,
                    infinity,
                })
            }
            0x01 => {
                let [seq_no, seq_size, compressor, entry_bits] = take::<4>(&mut p, "QRP PATCH")?;
                if seq_no == 0 || seq_no > seq_size {
                    return Err(Error::invalid(
                        "QRP PATCH",
                        format!("sequence number {seq_no} of {seq_size}"),
                    ));
                }
                if compressor > qrp_compressor::ZLIB {
                    return Err(Error::invalid(
                        "QRP PATCH",
                        format!("unknown compressor {compressor}"),
                    ));
                }
                if !matches!(entry_bits, 1 | 2 | 4 | 8) {
                    return Err(Error::invalid(
                        "QRP PATCH",
                        format!("entry bits {entry_bits} (want 1, 2, 4 or 8)"),
                    ));
                }
                Ok(RouteTableUpdate::Patch {
                    seq_no,
                    seq_size,
                    compressor,
                    entry_bits,
                    data: p,
                })
            }
            v => Err(Error::invalid(
                "QRP message",
                format!("unknown variant {v:#04x}"),
            )),
        }
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        match self {
            RouteTableUpdate::Reset {
                table_len,
                infinity,
            } => {
                dst.put_u8(0);
                dst.put_u32_le(*table_len);
                dst.put_u8(*infinity);
            }
            RouteTableUpdate::Patch {
                seq_no,
                seq_size,
                compressor,
                entry_bits,
                data,
            } => {
                dst.put_u8(1);
                dst.put_slice(&[*seq_no, *seq_size, *compressor, *entry_bits]);
                dst.put_slice(data);
            }
        }
    }
}
