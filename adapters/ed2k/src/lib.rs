//! eDonkey2000 (eD2k) adapter for Junction.
//!
//! * [`Adapter`] implements [`junction_core::Network`]: a cheap handle over tasks that own the
//!   sockets (under `engine/`) — the session with the eD2k server the client logs into
//!   (login, HighID/LowID, keep-alive, reconnect with back-off, offers, searches, source
//!   requests, callbacks), the peer listener, and one orchestrator per download running a
//!   driver per peer (hello, file request, file status, hashset, upload request and queue
//!   rank, 32/64-bit part requests, plain and compressed parts, every 9,728,000-byte part
//!   MD4-verified, bad parts fetched again, the whole ed2k hash checked at the end). Every
//!   connection also serves our shared files with an upload slot limit and a queue.
//! * [`IndexServer`] is the index-server role (HighID/LowID by connect-back, offers, the full
//!   search expression language, sources, callbacks, status, ident, server list).
//! * [`Config`] / [`ServerConfig`] hold ports, servers, limits and every timeout.
//! * The pure, I/O-free layer underneath, [`wire`]: framing with bounded zlib, tags, the
//!   search tree, every client↔server TCP/UDP and client↔client message, [`hash`] (MD4
//!   hashsets, AICH), [`aich`] recovery, [`link`] (`ed2k://`) and [`server_met`].
//!
//! Every decoder is total: malformed input gives a [`WireError`], never a panic, and every
//! length or count from the wire is checked against the bytes present (or a fixed maximum)
//! before anything is allocated. A malformed frame closes only the connection it came on.

mod adapter;
pub mod config;
mod engine;
pub mod error;
pub mod wire;

pub use junction_core::hashing::md4 as fast_md4;
// The codecs' paths from before they moved under `wire/` (issue 14), still used outside
// the crate (`junction_ed2k::hash::ed2k_hash`, `junction_ed2k::link::Ed2kLink`, ...).
pub use wire::{aich, hash, link, server_met};

pub use adapter::Adapter;
pub use config::{Config, ServerConfig};
pub use engine::client::ServerInfo;
pub use engine::index_server::{IndexServer, IndexServerStats};
pub use error::WireError;
