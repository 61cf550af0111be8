//! Servent configuration: a plain typed struct; flags and files are the CLI's business.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// How the Gnutella servent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// TCP address for Gnutella links, HTTP uploads and `GIV` callbacks.
    pub listen: SocketAddr,
    /// Run as an ultrapeer (accept leaves and ultrapeers) instead of a leaf.
    pub ultrapeer: bool,
    /// Hosts to bootstrap from (`ip:port` or `host:port`); no web caches are used.
    pub peers: Vec<String>,
    /// Leaves accepted as ultrapeer.
    pub max_leaves: usize,
    /// Ultrapeer connections: kept as ultrapeer, or the ultrapeers a leaf keeps.
    pub max_ultrapeers: usize,
    /// Concurrent uploads; further requests get `503`.
    pub upload_slots: usize,
    /// Upload rate limit in bytes per second over all uploads; `None` (or 0) = unlimited.
    pub upload_limit: Option<u64>,
    /// Highest TTL we send or relay (incoming TTLs are trimmed to it).
    pub max_ttl: u8,
    /// `User-Agent` / `Server`.
    pub user_agent: String,
    /// Address announced in hits, pongs and pushes; by default the listening
    /// address, or what peers report in `Remote-IP` when listening on 0.0.0.0.
    pub advertised: Option<SocketAddrV4>,
    /// Whether we are reachable from outside: `None` guesses (firewalled until
    /// someone connects to us), `Some` forces it (e.g. after a port forward).
    pub firewalled: Option<bool>,
    /// How long a search stream stays open.
    pub search_timeout: Duration,
    /// Dynamic querying stops widening once this many results came back.
    pub wanted_hits: u32,
    /// Concurrent sources per download.
    pub download_sources: usize,
    /// Bytes asked per `Range` request.
    pub chunk_size: u64,
    /// Per-IP limits on incoming connections (links, HTTP and `GIV`), and the rate of
    /// HTTP requests one connection may make before it is dropped (see
    /// [`junction_core::limit::PeerLimits`] for the defaults).
    pub limits: junction_core::limit::PeerLimits,
    /// Upload and download limits shared with every other network (`[limits]`), on top of
    /// this network's own.
    pub caps: junction_core::rate::Caps,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6346)),
            ultrapeer: false,
            peers: Vec::new(),
            max_leaves: 32,
            max_ultrapeers: 3,
            upload_slots: 4,
            upload_limit: None,
            max_ttl: 4,
            user_agent: concat!("Junction/", env!("CARGO_PKG_VERSION")).to_owned(),
            advertised: None,
            firewalled: None,
            search_timeout: Duration::from_secs(30),
            wanted_hits: 64,
            download_sources: 4,
            chunk_size: 4 << 20,
            limits: junction_core::limit::PeerLimits::default(),
            caps: junction_core::rate::Caps::default(),
        }
    }
}
