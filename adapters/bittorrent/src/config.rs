//! Typed configuration of the BitTorrent adapter, with its defaults written once. `Config`
//! is also the `[bittorrent]` table of the config file, read through [`File`], the table's
//! shape: `[bittorrent.dht]` gives two fields here, and its address follows the peer port
//! unless set, which needs both keys at once.

use std::net::SocketAddr;
use std::time::Duration;

use junction_core::config::{kib_per_sec, listen_addr, listen_addr_opt};
use serde::Deserialize;

/// Everything the adapter needs to run; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "File")]
pub struct Config {
    /// TCP address peers connect to (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Trackers announced to for every shared torrent, and for fetches without trackers.
    pub trackers: Vec<String>,
    /// UDP address of the DHT node (`None`: no DHT).
    pub dht_listen: Option<SocketAddr>,
    /// DHT nodes to bootstrap from (`host:port`); never public routers by default.
    pub dht_bootstrap: Vec<String>,
    /// Learn info-hashes from DHT nodes (BEP 51 `sample_infohashes`) and fetch their
    /// metadata over ut_metadata into the search index (only with the DHT enabled).
    pub dht_index: bool,
    /// How often DHT nodes are asked for samples (BEP 51 lets nodes ask for up to 6 h).
    pub dht_sample_interval: Duration,
    /// Torznab feeds searched by keyword (Jackett/Prowlarr API URLs, with their `apikey`).
    pub torznab: Vec<String>,
    /// Peers unchoked at once per torrent, besides the optimistic unchoke.
    pub upload_slots: usize,
    /// Upload limit in bytes per second over all torrents (`None`: unlimited).
    pub upload_rate_limit: Option<u64>,
    /// Download limit in bytes per second over all torrents (`None`: unlimited). Reading
    /// from peers pauses when it is spent, so TCP slows the senders down.
    pub download_rate_limit: Option<u64>,
    /// How often each peer is sent a PEX update (BEP 11 allows one a minute).
    pub pex_interval: Duration,
    /// Most connections per torrent.
    pub max_peers_per_torrent: usize,
    /// Handshake, connect and per-message read deadline.
    pub handshake_timeout: Duration,
    /// A peer that sends no data for requested blocks for this long is snubbed.
    pub request_timeout: Duration,
    /// Deadline of one HTTP tracker exchange.
    pub tracker_timeout: Duration,
    /// UDP tracker attempts (BEP 15 back-off 15·2^n s; 9 is the standard maximum).
    pub udp_tracker_attempts: u32,
    /// First UDP retry timeout; BEP 15 says 15 s (tests shorten it).
    pub udp_retry_base: Duration,
    /// Re-announce interval used when a tracker gives none, and the lower bound of its value.
    pub min_announce_interval: Duration,
    /// Piece length of torrents made for shared files (`None`: about 1000–2000 pieces).
    pub share_piece_length: Option<u32>,
    /// Client name sent in the BEP 10 handshake.
    pub client_name: String,
    /// Per-IP limits on incoming peer connections (the BitTorrent handshake is the
    /// handshake), and the rate of requests we refuse (choked, a piece we lack, the queue
    /// full) one peer may make before it is dropped; see [`junction_core::limit::PeerLimits`].
    pub limits: junction_core::limit::PeerLimits,
    /// Upload and download limits shared with every other network (`[limits]`), on top of
    /// this network's own.
    pub caps: junction_core::rate::Caps,
    /// The tracker role, `[bittorrent.tracker]`. The adapter does not start it (it shares
    /// no state with the torrents): `junction_networks::start_all` starts it beside.
    pub tracker: TrackerConfig,
}

/// A small HTTP and UDP tracker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    pub enabled: bool,
    /// TCP for HTTP announces, and the same port over UDP.
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 6969)),
        }
    }
}

/// A config that cannot work, naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("max_peers must be at least 1: 0 would connect to no peer")]
    NoPeers,
}

impl Config {
    /// Refuses values that cannot work (the file is checked as it is read).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_peers_per_torrent == 0 {
            return Err(ConfigError::NoPeers);
        }
        Ok(())
    }
}

/// The `[bittorrent]` table as a user writes it. Its defaults are [`Config`]'s, but for
/// the DHT: a `Config` built in code starts none unless given an address (tests bind only
/// what they ask for), while a gateway joins the DHT on its peer port by default.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct File {
    #[serde(deserialize_with = "listen_addr")]
    listen: SocketAddr,
    trackers: Vec<String>,
    torznab: Vec<String>,
    upload_slots: usize,
    #[serde(rename = "upload_limit_kib", deserialize_with = "kib_per_sec")]
    upload_rate_limit: Option<u64>,
    #[serde(rename = "download_limit_kib", deserialize_with = "kib_per_sec")]
    download_rate_limit: Option<u64>,
    #[serde(rename = "max_peers")]
    max_peers_per_torrent: usize,
    dht: DhtFile,
    tracker: TrackerConfig,
}

/// `[bittorrent.dht]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DhtFile {
    enabled: bool,
    /// UDP; by default the address and port peers reach (`[bittorrent] listen`), as other
    /// clients do, so two gateways on one host differ in both.
    #[serde(deserialize_with = "listen_addr_opt")]
    listen: Option<SocketAddr>,
    /// Nodes to bootstrap from; none by default, so nothing is dialled unasked.
    bootstrap: Vec<String>,
}

impl Default for File {
    fn default() -> Self {
        let d = Config::default();
        File {
            listen: d.listen,
            trackers: d.trackers,
            torznab: d.torznab,
            upload_slots: d.upload_slots,
            upload_rate_limit: d.upload_rate_limit,
            download_rate_limit: d.download_rate_limit,
            max_peers_per_torrent: d.max_peers_per_torrent,
            dht: DhtFile {
                enabled: true,
                listen: None,
                bootstrap: d.dht_bootstrap,
            },
            tracker: d.tracker,
        }
    }
}

impl Default for DhtFile {
    fn default() -> Self {
        File::default().dht
    }
}

impl TryFrom<File> for Config {
    type Error = ConfigError;

    fn try_from(f: File) -> Result<Config, ConfigError> {
        let cfg = Config {
            listen: f.listen,
            trackers: f.trackers,
            dht_listen: f.dht.enabled.then(|| f.dht.listen.unwrap_or(f.listen)),
            dht_bootstrap: f.dht.bootstrap,
            torznab: f.torznab,
            upload_slots: f.upload_slots,
            upload_rate_limit: f.upload_rate_limit,
            download_rate_limit: f.download_rate_limit,
            max_peers_per_torrent: f.max_peers_per_torrent,
            tracker: f.tracker,
            ..Config::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // Peers must reach us; the gRPC API is what stays on loopback.
            listen: SocketAddr::from(([0, 0, 0, 0], 6881)),
            trackers: Vec::new(),
            dht_listen: None,
            dht_bootstrap: Vec::new(),
            dht_index: true,
            dht_sample_interval: Duration::from_secs(60),
            torznab: Vec::new(),
            upload_slots: 4,
            upload_rate_limit: None,
            download_rate_limit: None,
            pex_interval: Duration::from_secs(60),
            max_peers_per_torrent: 50,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            tracker_timeout: Duration::from_secs(15),
            udp_tracker_attempts: 9,
            udp_retry_base: Duration::from_secs(15),
            min_announce_interval: Duration::from_secs(5),
            share_piece_length: None,
            client_name: concat!("Junction ", env!("CARGO_PKG_VERSION")).to_owned(),
            limits: junction_core::limit::PeerLimits::default(),
            caps: junction_core::rate::Caps::default(),
            tracker: TrackerConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_kib_per_second_and_zero_is_unlimited() {
        let c: Config = toml::from_str("upload_limit_kib = 512\nmax_peers = 20").unwrap();
        assert_eq!(c.upload_rate_limit, Some(512 * 1024));
        assert_eq!(c.download_rate_limit, None);
        assert_eq!(c.max_peers_per_torrent, 20);
        let c: Config = toml::from_str("download_limit_kib = 64").unwrap();
        assert_eq!(c.download_rate_limit, Some(64 * 1024));
        let err = toml::from_str::<Config>("max_peers = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_peers"), "{err}");
        let c = Config {
            max_peers_per_torrent: 0,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::NoPeers));
    }

    #[test]
    fn the_dht_listens_on_the_peer_port_unless_told_otherwise() {
        let c: Config = toml::from_str("listen = \"0.0.0.0:7000\"").unwrap();
        assert_eq!(c.dht_listen, Some(c.listen));
        let c: Config =
            toml::from_str("listen = \"0.0.0.0:7000\"\n[dht]\nlisten = \"127.0.0.1:7001\"")
                .unwrap();
        assert_eq!(c.dht_listen, Some("127.0.0.1:7001".parse().unwrap()));
        let c: Config = toml::from_str("[dht]\nenabled = false").unwrap();
        assert_eq!(c.dht_listen, None);
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.dht_listen, Some(SocketAddr::from(([0, 0, 0, 0], 6881))));
    }

    #[test]
    fn an_empty_table_keeps_the_crate_defaults_and_peers_can_reach_us() {
        let c: Config = toml::from_str("").unwrap();
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert!(c.listen.ip().is_unspecified(), "{}", c.listen);
        assert_eq!(c.max_peers_per_torrent, d.max_peers_per_torrent);
        assert_eq!(c.client_name, d.client_name);
        assert_eq!(c.tracker, TrackerConfig::default());
        assert!(!c.tracker.enabled);
    }

    #[test]
    fn unknown_keys_are_refused_by_name_in_every_table() {
        for text in [
            "max_peer = 1",
            "[dht]\nbootstrp = []",
            "[tracker]\ninterval = 5",
        ] {
            let err = toml::from_str::<Config>(text).unwrap_err().to_string();
            let key = text.rsplit('\n').next().unwrap().split(' ').next().unwrap();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
