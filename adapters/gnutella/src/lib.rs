//! Gnutella 0.6 adapter for Junction.
//!
//! * [`wire`] — the **pure wire layer**: decoders and encoders for the 0.6
//!   handshake, the 23-byte descriptor framing and every descriptor type,
//!   GGEP, QRP, the HTTP heads used for transfers, the `GIV` line, URNs and the
//!   contract's query as Gnutella carries it. Nothing there touches sockets, so
//!   fuzzers and property tests call it directly.
//! * [`engine`] — the tasks built on it: links (leaf and ultrapeer, deflate),
//!   routing, searches, HTTP uploads and downloads, push.
//! * [`Adapter`] — the handle implementing [`junction_core::Network`].
//!
//! Every decoder treats its input as hostile: lengths are bounded before
//! anything is allocated, and malformed input yields an [`Error`], never a
//! panic.

pub mod adapter;
pub mod config;
pub mod engine;
pub mod error;
pub mod wire;

pub use adapter::Adapter;
pub use config::Config;
pub use error::{Error, Result};
pub use wire::guid::Guid;
pub use wire::urn::{Sha1Hash, TigerHash, Urn};
