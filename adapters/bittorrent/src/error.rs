//! Errors of the BitTorrent format layer.
//!
//! One enum per area, all `#[non_exhaustive]` so new checks can be added without breaking
//! callers. Messages say what was wrong with the input, so a log line is enough to act on.

use junction_core::bencode::BencodeError;

/// A compact peer or node list whose length is not a whole number of entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compact list of {len} bytes is not a multiple of the {entry}-byte entry size")]
pub struct CompactError {
    pub len: usize,
    pub entry: usize,
}

/// A `.torrent` file or `info` dictionary that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetainfoError {
    #[error("torrent is not valid canonical bencode: {0}")]
    Bencode(#[from] BencodeError),
    #[error("torrent lacks the required key `{0}`")]
    Missing(&'static str),
    #[error("torrent key `{key}` is invalid: {why}")]
    Invalid {
        key: &'static str,
        why: &'static str,
    },
    #[error("unsafe file path component {0:?}: empty, `.`, `..` or containing a separator")]
    UnsafePath(String),
    #[error(
        "`pieces` holds {got} hashes, but {total} bytes at {piece_length} bytes per piece need {expected}"
    )]
    PieceCount {
        got: u64,
        expected: u64,
        total: u64,
        piece_length: u64,
    },
    #[error("unsupported `meta version` {0}: only v1 (no key) and 2 are known")]
    MetaVersion(i64),
    #[error("hybrid torrent's v1 and v2 file lists describe different files")]
    HybridMismatch,
    #[error("the info dictionary hashes to {got}, not the expected {expected}")]
    HashMismatch { expected: String, got: String },
}

/// A magnet link that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MagnetError {
    #[error("not a magnet link: it must start with `magnet:?`")]
    NotMagnet,
    #[error("magnet link has no `xt` topic this client can use (urn:btih or urn:btmh)")]
    NoTopic,
    #[error("magnet topic {0:?} is malformed")]
    BadTopic(String),
    #[error("magnet parameter `{0}` has a malformed percent-escape or is not UTF-8")]
    BadEscape(String),
    #[error("magnet parameter `{key}` has an invalid value {value:?}")]
    BadValue { key: String, value: String },
}

/// Peer wire input that breaks the protocol; the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("peer announced a {len}-byte message; the limit is {max} bytes")]
    MessageTooLong { len: u32, max: u32 },
    #[error("message id {id} must not have a {len}-byte payload")]
    BadLength { id: u8, len: usize },
    #[error("bad handshake: {0}")]
    BadHandshake(&'static str),
    #[error("piece index {index} is out of range: the torrent has {count} pieces")]
    PieceIndexOutOfRange { index: u32, count: u32 },
    #[error(
        "block {begin}+{length} is not valid for piece {index} of {piece_len} bytes (blocks are 1..=16384 bytes)"
    )]
    BadBlock {
        index: u32,
        begin: u32,
        length: u32,
        piece_len: u32,
    },
    #[error("bitfield is {got} bytes, {expected} are needed for {count} pieces")]
    BitfieldLength {
        got: usize,
        expected: usize,
        count: u32,
    },
    #[error("bitfield has bits set past the last piece")]
    BitfieldSpareBits,
    #[error("invalid torrent geometry: {0}")]
    Geometry(&'static str),
    #[error("extension message is not valid canonical bencode: {0}")]
    Bencode(#[from] BencodeError),
    #[error("extension message key `{key}` is invalid: {why}")]
    Invalid {
        key: &'static str,
        why: &'static str,
    },
    #[error("ut_metadata message type {0} is unknown (BEP 9 says to ignore it)")]
    UnknownMetadataType(i64),
    #[error(transparent)]
    Compact(#[from] CompactError),
}

/// A tracker response (HTTP or UDP) that cannot be used, or a tracker-reported failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    #[error("tracker refused the request: {0}")]
    Failure(String),
    #[error("tracker response is not valid canonical bencode: {0}")]
    Bencode(#[from] BencodeError),
    #[error("tracker response lacks `{0}`")]
    Missing(&'static str),
    #[error("tracker response key `{key}` is invalid: {why}")]
    Invalid {
        key: &'static str,
        why: &'static str,
    },
    #[error("UDP tracker packet of {got} bytes is shorter than the {need} bytes required")]
    ShortPacket { need: usize, got: usize },
    #[error("UDP tracker packet has unknown action {0}")]
    UnknownAction(u32),
    #[error("UDP tracker packet has invalid field `{0}`")]
    BadField(&'static str),
    #[error(transparent)]
    Compact(#[from] CompactError),
}

/// A DHT (KRPC) message that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KrpcError {
    #[error("KRPC message is not valid canonical bencode: {0}")]
    Bencode(#[from] BencodeError),
    #[error("KRPC message lacks `{0}`")]
    Missing(&'static str),
    #[error("KRPC key `{key}` is invalid: {why}")]
    Invalid {
        key: &'static str,
        why: &'static str,
    },
    #[error(transparent)]
    Compact(#[from] CompactError),
}
