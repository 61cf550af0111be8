//! eDonkey2000 (eD2k) adapter for Junction.
//!
//! * [`Adapter`] implements [`junction_core::Network`]: a cheap handle over tasks that own the
//!   sockets — the server session ([`client`]: login, HighID/LowID, keep-alive, reconnect with
//!   back-off, offers, searches, source requests, callbacks), the peer listener, and one
//!   orchestrator per download running a driver per peer (hello, file request, file status,
//!   hashset, upload request and queue rank, 32/64-bit part requests, plain and compressed
//!   parts, every 9,728,000-byte part MD4-verified, bad parts fetched again, the whole ed2k
//!   hash checked at the end). Every connection also serves our shared files with an upload
//!   slot limit and a queue.
//! * [`IndexServer`] is the index-server role (HighID/LowID by connect-back, offers, the full
//!   search expression language, sources, callbacks, status, ident, server list).
//! * [`Config`] / [`ServerConfig`] hold ports, servers, limits and every timeout.
//! * The pure, I/O-free layer underneath: [`wire`] (framing with bounded zlib, tags, search
//!   tree, every client↔server TCP/UDP and client↔client message), [`hash`] (MD4 hashsets,
//!   AICH), [`link`] (`ed2k://`), [`server_met`].
//!
//! Every decoder is total: malformed input gives a [`WireError`], never a panic, and every
//! length or count from the wire is checked against the bytes present (or a fixed maximum)
//! before anything is allocated. A malformed frame closes only the connection it came on.

mod adapter;
pub mod aich;
mod bridge;
pub mod client;
pub mod config;
pub mod error;
pub use junction_core::hashing::md4 as fast_md4;
pub mod hash;
pub mod hash_cache;
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
