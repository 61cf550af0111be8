//! The peer wire protocol (BEP 3) and its extensions (BEP 6, 9, 10, 11).
//!
//! A connection starts with a [`Handshake`] each way, then a stream of length-prefixed
//! [`Message`]s decoded by [`MessageDecoder`]. Extended messages (BEP 10) carry their own
//! payloads, decoded by the types in [`extension`].

pub mod extension;
pub mod handshake;
pub mod message;

pub use extension::{ExtendedHandshake, MetadataMessage, PexFlags, PexMessage};
pub use handshake::{Handshake, Reserved};
pub use message::{BlockRequest, Message, MessageDecoder, PieceBlock};

#[cfg(test)]
mod tests;
