//! eDonkey2000 (eD2k) adapter for Junction.
//!
//! This crate currently holds the pure, I/O-free layer the networking is built on:
//!
//! * [`wire`] — TCP/UDP framing (with bounded zlib inflation), tags, the search expression tree,
//!   and every client↔server TCP ([`wire::ServerMessage`]), client↔server UDP
//!   ([`wire::ServerUdpMessage`]) and client↔client ([`wire::PeerMessage`]) message.
//! * [`hash`] — MD4 ed2k hashsets and AICH (SHA-1 Merkle) roots, both incremental.
//! * [`link`] — `ed2k://` links (file, server, server list).
//! * [`server_met`] — the `server.met` file format.
//!
//! Every decoder is total: malformed input gives a [`WireError`], never a panic, and every
//! length or count from the wire is checked against the bytes present (or a fixed maximum)
//! before anything is allocated.

mod adapter;
pub mod client;
pub mod config;
pub mod error;
pub mod hash;
pub mod link;
pub mod meta;
pub mod net;
pub mod server;
pub mod server_met;
pub mod wire;

pub use adapter::Adapter;
pub use client::ServerInfo;
pub use config::{Config, ServerConfig};
pub use error::WireError;
pub use server::IndexServer;
