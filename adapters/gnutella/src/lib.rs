//! Gnutella 0.6 adapter for Junction.
//!
//! This crate currently holds the **pure wire layer** ([`wire`]): decoders and
//! encoders for the 0.6 handshake, the 23-byte descriptor framing and every
//! descriptor type, GGEP, QRP, the HTTP heads used for transfers and the `GIV`
//! line. Nothing here touches sockets or a runtime, so fuzzers and property
//! tests call it directly. The servent (connections, routing, transfers) is
//! built on top of it.
//!
//! Every decoder treats its input as hostile: lengths are bounded before
//! anything is allocated, and malformed input yields an [`Error`], never a
//! panic.

pub mod error;
pub mod urn;
pub mod wire;

pub use error::{Error, Result};
pub use urn::{Sha1Hash, TigerHash, Urn};
pub use wire::header::Guid;
