//! The tasks: everything that owns a socket, a task or a timer.
//!
//! * [`client`]: Junction's eD2k client, with the session with the eD2k server it logs into
//!   (`client::server_session`), the peer listener and connections, downloads, uploads,
//!   searches and shared files.
//! * [`index_server`]: Junction's own eD2k index server, which eMule/aMule clients log into.
//! * [`net`]: the framed reader and writer every TCP connection uses, and the byte counters.
//! * [`bridge`]: what the index server offers on behalf of the other networks, and what the
//!   client then serves.
//! * [`hash_cache`]: the shared files' hashes kept on disk across restarts.

pub(crate) mod bridge;
pub(crate) mod client;
pub(crate) mod hash_cache;
pub(crate) mod index_server;
pub(crate) mod net;
