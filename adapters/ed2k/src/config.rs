//! Adapter configuration, with its defaults written once: `Config` is also the `[ed2k]`
//! table of the config file (the keys a user sets; the rest is `#[serde(skip)]` and keeps
//! its default). Every timeout a peer or server wait uses is here, so tests can shorten them.

use std::net::SocketAddr;
use std::time::Duration;

use junction_core::config::{kib_per_sec, listen_addr, listen_addr_opt};
use junction_core::limit::PeerLimits;
use serde::Deserialize;

use crate::wire::Hash16;

/// Settings of the index-server role; `[ed2k.server]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Whether to run the index server at all.
    pub enabled: bool,
    /// TCP address it listens on.
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// Shown to clients in `OP_SERVERIDENT`.
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub description: String,
    /// Sent as `OP_SERVERMESSAGE` after login.
    #[serde(skip)]
    pub motd: String,
    /// Connect back to a client's port before giving it a HighID (what real servers do).
    /// When off, every client gets a LowID.
    #[serde(skip)]
    pub connect_back: bool,
    /// How long the connect-back may take.
    #[serde(skip)]
    pub connect_back_timeout: Duration,
    /// Clients logging in with one of these ports always get a LowID (labs and tests that
    /// need a firewalled peer on loopback).
    #[serde(skip)]
    pub low_id_ports: Vec<u16>,
    /// Clients at once.
    #[serde(skip)]
    pub max_clients: usize,
    /// Files one client may offer.
    #[serde(skip)]
    pub max_files_per_client: usize,
    /// Files the index holds in total.
    #[serde(skip)]
    pub max_files: usize,
    /// Results per search answer.
    #[serde(skip)]
    pub max_results: usize,
    /// Other servers handed out in `OP_SERVERLIST`.
    #[serde(skip)]
    pub known_servers: Vec<std::net::SocketAddrV4>,
    /// A client that sends nothing for this long is dropped.
    #[serde(skip)]
    pub idle_timeout: Duration,
    /// Per-IP limits on client connections (logins count as handshakes); see
    /// [`junction_core::limit::PeerLimits`] for the defaults.
    #[serde(skip)]
    pub limits: PeerLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 4661)),
            name: "Junction index".into(),
            description: "Junction eD2k index server".into(),
            motd: "Welcome to the Junction eD2k index".into(),
            connect_back: true,
            connect_back_timeout: Duration::from_secs(3),
            low_id_ports: Vec::new(),
            max_clients: 1024,
            max_files_per_client: 20_000,
            max_files: 1_000_000,
            max_results: 200,
            known_servers: Vec::new(),
            idle_timeout: Duration::from_secs(2 * 3600),
            limits: PeerLimits::default(),
        }
    }
}

/// Settings of the eD2k adapter; `[ed2k]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Peer TCP listener. `None` = no listener: the adapter is firewalled and gets a LowID,
    /// uploading only through server callbacks.
    /// The file cannot say `None`: its `listen` key is an address.
    #[serde(deserialize_with = "listen_addr_opt")]
    pub listen: Option<SocketAddr>,
    /// eD2k servers (`host:port`), tried in order with back-off.
    pub servers: Vec<String>,
    /// The index-server role.
    pub server: ServerConfig,
    /// Upload slots; further requesters wait in a queue.
    pub upload_slots: usize,
    /// Upload rate limit in bytes per second over all uploads; `None` (or 0) = unlimited.
    #[serde(rename = "upload_limit_kib", deserialize_with = "kib_per_sec")]
    pub upload_limit: Option<u64>,
    /// Our user hash; random when `None`.
    #[serde(skip)]
    pub user_hash: Option<Hash16>,
    #[serde(skip)]
    pub nick: String,
    /// Peer connections used at once by one download.
    #[serde(skip)]
    pub max_peers_per_download: usize,
    /// TCP connect to a peer or server.
    #[serde(skip)]
    pub connect_timeout: Duration,
    /// Waiting for one answer from a peer (hello, file status, hashset, data).
    #[serde(skip)]
    pub peer_timeout: Duration,
    /// Waiting in a peer's upload queue for a slot.
    #[serde(skip)]
    pub queue_timeout: Duration,
    /// Waiting for a server answer (login, search, sources).
    #[serde(skip)]
    pub server_timeout: Duration,
    /// Waiting for a LowID source to call back.
    #[serde(skip)]
    pub callback_timeout: Duration,
    /// A fetch with no usable source for this long ends.
    #[serde(skip)]
    pub fetch_idle_timeout: Duration,
    /// How often a running fetch asks the server for sources again.
    #[serde(skip)]
    pub source_requery: Duration,
    /// Keep-alive towards the server.
    #[serde(skip)]
    pub keepalive: Duration,
    /// Longest back-off between server reconnects.
    #[serde(skip)]
    pub max_backoff: Duration,
    /// Where shared files' hashes are cached across restarts (keyed by path, size and
    /// mtime); `None` = hash every shared file at every start.
    pub hash_cache: Option<std::path::PathBuf>,
    /// Per-IP limits on incoming peer connections (the hello is the handshake), and the
    /// rate of requests (file, hash set, AICH, upload and part requests) one peer
    /// connection may make before it is dropped; see [`junction_core::limit::PeerLimits`].
    #[serde(skip)]
    pub limits: PeerLimits,
    /// Upload and download limits shared with every other network (`[limits]`), on top of
    /// this network's own.
    #[serde(skip)]
    pub caps: junction_core::rate::Caps,
    /// Test hook: an uploader that flips one byte in every block it sends from this offset on.
    #[doc(hidden)]
    #[serde(skip)]
    pub corrupt_uploads_from: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 4662))),
            servers: Vec::new(),
            server: ServerConfig::default(),
            upload_slots: 4,
            upload_limit: None,
            user_hash: None,
            nick: "junction".into(),
            max_peers_per_download: 8,
            connect_timeout: Duration::from_secs(10),
            peer_timeout: Duration::from_secs(30),
            queue_timeout: Duration::from_secs(600),
            server_timeout: Duration::from_secs(30),
            callback_timeout: Duration::from_secs(30),
            fetch_idle_timeout: Duration::from_secs(600),
            source_requery: Duration::from_secs(60),
            keepalive: Duration::from_secs(300),
            max_backoff: Duration::from_secs(120),
            hash_cache: None,
            limits: PeerLimits::default(),
            caps: junction_core::rate::Caps::default(),
            corrupt_uploads_from: None,
        }
    }
}

/// A user hash the way eMule makes one: random, with bytes 5 and 14 marked.
pub fn new_user_hash() -> Hash16 {
    let mut h: Hash16 = rand::random();
    h[5] = 14;
    h[14] = 111;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_limit_is_kib_per_second_and_zero_is_unlimited() {
        let c: Config = toml::from_str("upload_limit_kib = 256").unwrap();
        assert_eq!(c.upload_limit, Some(256 * 1024));
        let c: Config = toml::from_str("upload_limit_kib = 0").unwrap();
        assert_eq!(c.upload_limit, None);
        assert_eq!(Config::default().upload_limit, None);
    }

    #[test]
    fn the_table_sets_its_keys_and_the_rest_keeps_the_defaults() {
        let c: Config = toml::from_str(
            "listen = \"127.0.0.1:4700\"\nservers = [\"192.0.2.1:4661\"]\n\
             [server]\nenabled = true\nlisten = \"127.0.0.1:4701\"",
        )
        .unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:4700".parse().unwrap()));
        assert_eq!(c.servers, ["192.0.2.1:4661"]);
        assert!(c.server.enabled);
        assert_eq!(c.server.listen, "127.0.0.1:4701".parse().unwrap());
        let d = Config::default();
        assert_eq!((c.nick, c.upload_slots), (d.nick, d.upload_slots));
        assert_eq!(c.server.max_clients, d.server.max_clients);
        // An empty table is the default, peers reaching us on every interface.
        let empty: Config = toml::from_str("").unwrap();
        assert_eq!(empty.listen, Some(SocketAddr::from(([0, 0, 0, 0], 4662))));
        assert_eq!(empty.listen, d.listen);
    }

    #[test]
    fn unknown_and_internal_keys_are_refused_by_name() {
        for text in [
            "nick = \"x\"",
            "uplaod_slots = 2",
            "[server]\nmotd = \"hi\"",
        ] {
            let err = toml::from_str::<Config>(text).unwrap_err().to_string();
            let key = text.rsplit('\n').next().unwrap().split(' ').next().unwrap();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
