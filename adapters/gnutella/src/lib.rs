//! Gnutella 0.6 adapter for Junction.
//!
//! * [`wire`] — the **pure wire layer**: decoders and encoders for the 0.6
//!   handshake, the 23-byte descriptor framing and every descriptor type,
//!   GGEP, QRP, the HTTP heads used for transfers and the `GIV` line. Nothing
//!   there touches sockets, so fuzzers and property tests call it directly.
//! * [`servent`] — the servent built on it: links (leaf and ultrapeer, deflate),
//!   routing, searches, HTTP uploads and downloads, push.
//! * [`Adapter`] — the handle implementing [`junction_core::Network`].
//!
//! Every decoder treats its input as hostile: lengths are bounded before
//! anything is allocated, and malformed input yields an [`Error`], never a
//! panic.

pub mod adapter;
pub mod config;
pub mod error;
pub mod search;
pub mod servent;
pub mod urn;
pub mod wire;

pub use adapter::Adapter;
pub use config::Config;
pub use error::{Error, Result};
pub use urn::{Sha1Hash, TigerHash, Urn};
pub use wire::header::Guid;
