//! The one error type of the wire layer.

use thiserror::Error;

/// Everything that can go wrong while decoding or encoding eD2k wire data.
///
/// Messages name the offending value and the limit so a log line is enough to act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The first byte of a TCP frame or UDP datagram is not a protocol we speak.
    #[error("unknown protocol byte 0x{0:02X} (expected 0xE3, 0xC5 or 0xD4)")]
    UnknownProtocol(u8),

    /// A frame header announces more bytes than we are willing to buffer.
    #[error("frame length {len} exceeds the {max} byte maximum")]
    FrameTooLarge { len: u64, max: usize },

    /// A frame header announces length 0, which cannot even hold the opcode.
    #[error("frame length 0 cannot hold an opcode")]
    EmptyFrame,

    /// A zlib-packed payload is corrupt.
    #[error("cannot inflate packed payload: {0}")]
    Inflate(String),

    /// A zlib-packed payload inflates beyond the maximum.
    #[error("packed payload inflates beyond the {max} byte maximum")]
    InflatedTooLarge { max: usize },

    /// The input ended in the middle of a field.
    #[error("truncated {what}: need {needed} more bytes, {remaining} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        remaining: usize,
    },

    /// The opcode is not defined for this protocol / direction.
    #[error("unknown opcode 0x{opcode:02X} for protocol 0x{protocol:02X}")]
    UnknownOpcode { protocol: u8, opcode: u8 },

    /// A tag carries a type byte that the spec does not define.
    #[error("unknown tag type 0x{0:02X}")]
    UnknownTagType(u8),

    /// A count read from the wire cannot fit in the bytes that follow (or exceeds a hard cap).
    #[error("{what} count {count} is larger than the {max} that can follow")]
    CountTooLarge {
        what: &'static str,
        count: u64,
        max: u64,
    },

    /// A value is outside what the field allows.
    #[error("invalid {what}: {value}")]
    InvalidValue { what: &'static str, value: u64 },

    /// A byte range has its start after its end.
    #[error("invalid range {start}..{end}: start is after end")]
    InvalidRange { start: u64, end: u64 },

    /// A part-status bitfield does not match the file size.
    #[error("part status has {got} parts, but a file of {size} bytes has {expected}")]
    PartCountMismatch { got: u64, expected: u64, size: u64 },

    /// A search expression nests deeper than we accept.
    #[error("search expression nests deeper than {max} levels")]
    SearchTooDeep { max: usize },

    /// A value is too long to be written in its length field.
    #[error("{what} is {len} long, more than the {max} its length field can hold")]
    TooLongToEncode {
        what: &'static str,
        len: usize,
        max: usize,
    },

    /// A link or URL-like text is malformed.
    #[error("invalid ed2k link: {0}")]
    InvalidLink(String),
}

/// Short alias used throughout the crate.
pub type Result<T, E = WireError> = std::result::Result<T, E>;
