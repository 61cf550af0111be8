//! Every pure codec of BitTorrent: bytes in, values out, values in, bytes out. Nothing here
//! opens a socket, spawns a task or reads the clock, so fuzzers and property tests call it
//! directly.
//!
//! * [`metainfo`]: `.torrent` files (v1, v2, hybrid), info-hashes, creating a torrent.
//! * [`magnet`]: magnet links, including the other networks' hashes they carry.
//! * The peer wire protocol (BEP 3): a connection starts with a [`Handshake`] each way, then
//!   a stream of length-prefixed [`Message`]s decoded by [`MessageDecoder`]. Extended
//!   messages (BEP 10) carry their own payloads, decoded by the types in [`extension`]
//!   (BEP 9 `ut_metadata`, BEP 11 `ut_pex`).
//! * [`fast_ext`]: the BEP 6 Fast extension's allowed-fast set.
//! * [`hashes`]: BEP 52 hash request, hashes and hash reject, and the Merkle proofs they carry.
//! * [`piece`]: piece geometry, bitfields and the validated piece and block numbers.
//! * [`tracker`]: HTTP (BEP 3/7/23/48) and UDP (BEP 15) tracker messages.
//! * [`krpc`]: DHT messages (BEP 5, 32, 51) and node-id arithmetic.
//! * [`http`]: the HTTP client's URLs and responses; [`torznab`]: Torznab feed answers.
//! * [`compact`]: compact peer addresses; [`id`]: info-hashes and peer ids;
//!   [`percent`]: percent-encoding.

pub(crate) mod benc;
pub mod compact;
pub mod extension;
pub mod fast_ext;
pub mod handshake;
pub mod hashes;
pub mod http;
pub mod id;
pub mod krpc;
pub mod magnet;
pub mod message;
pub mod metainfo;
pub mod percent;
pub mod piece;
pub mod torznab;
pub mod tracker;

pub use extension::{ExtendedHandshake, MetadataMessage, PexFlags, PexMessage};
pub use handshake::{Handshake, Reserved};
pub use message::{BlockRequest, Message, MessageDecoder, PieceBlock};

#[cfg(test)]
mod tests;
