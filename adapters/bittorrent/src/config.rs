//! Typed configuration of the BitTorrent adapter. Flags and files are read by the CLI.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything the adapter needs to run; every field has a default.
#[derive(Debug, Clone)]
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 6881)),
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
        }
    }
}
