//! The `[ed2k]`, `[gnutella]` and `[bittorrent]` config sections, and starting each adapter.
//! Only the keys a user sets are here; everything else keeps the adapter's default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use junction_core::DynNetwork;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ed2kSection {
    pub enabled: bool,
    /// Peer TCP port.
    #[serde(deserialize_with = "gateway::config::listen_addr")]
    pub listen: SocketAddr,
    /// eD2k servers, `host:port`.
    pub servers: Vec<String>,
    pub shared: Vec<PathBuf>,
    pub upload_slots: usize,
    /// Upload limit over all uploads, in KiB/s; 0: unlimited.
    pub upload_limit_kib: u64,
    pub server: Ed2kServerSection,
    /// A file caching the eD2k adapter's own hashes of shared files across restarts. The
    /// gateway hands every network the hashes it keeps in its database (one read for all
    /// networks), so `serve` needs none; it serves an eD2k adapter run on its own.
    pub hash_cache: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ed2kServerSection {
    /// Run the index-server role too.
    pub enabled: bool,
    #[serde(deserialize_with = "gateway::config::listen_addr")]
    pub listen: SocketAddr,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GnutellaSection {
    pub enabled: bool,
    #[serde(deserialize_with = "gateway::config::listen_addr")]
    pub listen: SocketAddr,
    pub ultrapeer: bool,
    /// Hosts to connect to, `host:port` (no web caches are used).
    pub peers: Vec<String>,
    pub shared: Vec<PathBuf>,
    pub upload_slots: usize,
    /// Upload limit over all uploads, in KiB/s; 0: unlimited.
    pub upload_limit_kib: u64,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BittorrentSection {
    pub enabled: bool,
    #[serde(deserialize_with = "gateway::config::listen_addr")]
    pub listen: SocketAddr,
    pub trackers: Vec<String>,
    pub dht: DhtSection,
    /// Torznab feeds (Jackett, Prowlarr): `http://…/api?apikey=…`.
    pub torznab: Vec<String>,
    pub shared: Vec<PathBuf>,
    pub upload_slots: usize,
    /// Upload limit over all torrents, in KiB/s; 0: unlimited.
    pub upload_limit_kib: u64,
    /// Download limit over all torrents, in KiB/s; 0: unlimited.
    pub download_limit_kib: u64,
    /// Most connections per torrent.
    pub max_peers: usize,
    pub tracker: TrackerSection,
}

/// `[limits]`: what one remote IP may do on every listening port (eD2k peers and index
/// server, Gnutella, BitTorrent peers, tracker and DHT; the CLI also hands them to the gRPC
/// API and the HTTP fronts). Defaults in `junction.example.toml`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub connections_per_ip: usize,
    /// Connections from one IP still in their handshake.
    pub pending_per_ip: usize,
    pub new_connections_per_sec: u32,
    pub new_connections_burst: u32,
    /// First back-off of an IP that connects faster than that; it doubles up to the max.
    pub backoff_secs: u64,
    pub backoff_max_secs: u64,
    /// Requests one connection may make per second (eD2k upload requests, Gnutella HTTP
    /// requests, BitTorrent requests refused); a peer above it is dropped. Also the
    /// datagrams one IP may send the DHT (queries) and the UDP tracker per second, and the
    /// requests one IP may make of the gRPC API and the HTTP fronts (429 over it).
    pub requests_per_sec: u32,
    pub requests_burst: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = junction_core::limit::PeerLimits::default();
        LimitsSection {
            connections_per_ip: d.max_conns_per_ip,
            pending_per_ip: d.max_pending_per_ip,
            new_connections_per_sec: d.new_conns_per_sec,
            new_connections_burst: d.new_conns_burst,
            backoff_secs: d.backoff_base.as_secs(),
            backoff_max_secs: d.backoff_max.as_secs(),
            requests_per_sec: d.requests_per_sec,
            requests_burst: d.requests_burst,
        }
    }
}

impl LimitsSection {
    /// The adapters' limits, refusing values that would shut every peer out.
    pub fn peer_limits(&self) -> Result<junction_core::limit::PeerLimits> {
        let zero = [
            ("connections_per_ip", self.connections_per_ip as u64),
            ("pending_per_ip", self.pending_per_ip as u64),
            (
                "new_connections_per_sec",
                u64::from(self.new_connections_per_sec),
            ),
            (
                "new_connections_burst",
                u64::from(self.new_connections_burst),
            ),
            ("requests_per_sec", u64::from(self.requests_per_sec)),
            ("requests_burst", u64::from(self.requests_burst)),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, v)| *v == 0) {
            anyhow::bail!("[limits] {key} must be at least 1: 0 would refuse every peer");
        }
        if self.backoff_max_secs < self.backoff_secs {
            anyhow::bail!("[limits] backoff_max_secs must be at least backoff_secs");
        }
        Ok(junction_core::limit::PeerLimits {
            max_conns_per_ip: self.connections_per_ip,
            max_pending_per_ip: self.pending_per_ip,
            new_conns_per_sec: self.new_connections_per_sec,
            new_conns_burst: self.new_connections_burst,
            backoff_base: std::time::Duration::from_secs(self.backoff_secs),
            backoff_max: std::time::Duration::from_secs(self.backoff_max_secs),
            requests_per_sec: self.requests_per_sec,
            requests_burst: self.requests_burst,
            ..Default::default()
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DhtSection {
    pub enabled: bool,
    /// UDP; by default the address and port BitTorrent peers reach (`[bittorrent]
    /// listen`), as other clients do, so two gateways on one host differ in both.
    #[serde(deserialize_with = "gateway::config::listen_addr_opt")]
    pub listen: Option<SocketAddr>,
    /// Nodes to bootstrap from; none by default, so nothing is dialled unasked.
    pub bootstrap: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerSection {
    /// Run a small HTTP tracker too.
    pub enabled: bool,
    #[serde(deserialize_with = "gateway::config::listen_addr")]
    pub listen: SocketAddr,
}

impl Default for Ed2kSection {
    fn default() -> Self {
        let d = ed2k::Config::default();
        Ed2kSection {
            enabled: true,
            listen: d
                .listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 4662))),
            servers: d.servers,
            shared: Vec::new(),
            upload_slots: d.upload_slots,
            upload_limit_kib: d.upload_limit.map_or(0, |r| r / 1024),
            server: Ed2kServerSection::default(),
            hash_cache: d.hash_cache,
        }
    }
}

impl Default for Ed2kServerSection {
    fn default() -> Self {
        let d = ed2k::ServerConfig::default();
        Ed2kServerSection {
            enabled: d.enabled,
            listen: d.listen,
        }
    }
}

impl Default for GnutellaSection {
    fn default() -> Self {
        let d = gnutella::Config::default();
        GnutellaSection {
            enabled: true,
            listen: d.listen,
            ultrapeer: d.ultrapeer,
            peers: d.peers,
            shared: Vec::new(),
            upload_slots: d.upload_slots,
            upload_limit_kib: d.upload_limit.map_or(0, |r| r / 1024),
        }
    }
}

impl Default for BittorrentSection {
    fn default() -> Self {
        let d = bittorrent::Config::default();
        BittorrentSection {
            enabled: true,
            // Peers must reach us; the gRPC API is what stays on loopback.
            listen: SocketAddr::from(([0, 0, 0, 0], d.listen.port())),
            trackers: d.trackers,
            dht: DhtSection::default(),
            torznab: d.torznab,
            shared: Vec::new(),
            upload_slots: d.upload_slots,
            upload_limit_kib: d.upload_rate_limit.map_or(0, |r| r / 1024),
            download_limit_kib: d.download_rate_limit.map_or(0, |r| r / 1024),
            max_peers: d.max_peers_per_torrent,
            tracker: TrackerSection::default(),
        }
    }
}

/// A rate in KiB/s from the config as bytes/s for an adapter; 0: unlimited (`None`).
fn kib(k: u64) -> Option<u64> {
    (k > 0).then(|| k.saturating_mul(1024))
}

impl Ed2kSection {
    /// The adapter's configuration.
    fn adapter_config(&self) -> ed2k::Config {
        let mut cfg = ed2k::Config {
            listen: Some(self.listen),
            servers: self.servers.clone(),
            upload_slots: self.upload_slots,
            upload_limit: kib(self.upload_limit_kib),
            hash_cache: self.hash_cache.clone(),
            ..Default::default()
        };
        cfg.server.enabled = self.server.enabled;
        cfg.server.listen = self.server.listen;
        cfg
    }
}

impl GnutellaSection {
    /// The adapter's configuration.
    fn adapter_config(&self) -> gnutella::Config {
        gnutella::Config {
            listen: self.listen,
            ultrapeer: self.ultrapeer,
            peers: self.peers.clone(),
            upload_slots: self.upload_slots,
            upload_limit: kib(self.upload_limit_kib),
            ..Default::default()
        }
    }
}

impl BittorrentSection {
    /// Where the DHT listens: `[bittorrent.dht] listen`, else the peer port's address.
    pub fn dht_listen(&self) -> SocketAddr {
        self.dht.listen.unwrap_or(self.listen)
    }

    /// The adapter's configuration, refusing values that cannot work.
    fn adapter_config(&self) -> Result<bittorrent::Config> {
        if self.max_peers == 0 {
            anyhow::bail!("[bittorrent] max_peers must be at least 1");
        }
        Ok(bittorrent::Config {
            listen: self.listen,
            trackers: self.trackers.clone(),
            dht_listen: self.dht.enabled.then(|| self.dht_listen()),
            dht_bootstrap: self.dht.bootstrap.clone(),
            torznab: self.torznab.clone(),
            upload_slots: self.upload_slots,
            upload_rate_limit: kib(self.upload_limit_kib),
            download_rate_limit: kib(self.download_limit_kib),
            max_peers_per_torrent: self.max_peers,
            ..Default::default()
        })
    }
}

impl Default for DhtSection {
    fn default() -> Self {
        DhtSection {
            enabled: true,
            listen: None,
            bootstrap: Vec::new(),
        }
    }
}

impl Default for TrackerSection {
    fn default() -> Self {
        TrackerSection {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 6969)),
        }
    }
}

/// The started networks, each with the folders it shares, and the roles that run beside them.
pub struct Started {
    pub networks: Vec<(Arc<dyn DynNetwork>, Vec<PathBuf>)>,
    /// Kept alive for as long as the gateway runs.
    pub tracker: Option<bittorrent::TrackerServer>,
}

/// Starts every enabled network, each with the per-IP `limits`.
pub async fn start(
    e: &Ed2kSection,
    g: &GnutellaSection,
    b: &BittorrentSection,
    limits: &LimitsSection,
) -> Result<Started> {
    let limits = limits.peer_limits()?;
    let mut out: Vec<(Arc<dyn DynNetwork>, Vec<PathBuf>)> = Vec::new();
    if e.enabled {
        let mut cfg = e.adapter_config();
        cfg.limits = limits.clone();
        cfg.server.limits = limits.clone();
        let a = ed2k::Adapter::start(cfg).await.with_context(|| {
            format!(
                "ed2k on {} (set [ed2k] listen, or enabled = false)",
                e.listen
            )
        })?;
        out.push((Arc::new(a), e.shared.clone()));
    }
    if g.enabled {
        let mut cfg = g.adapter_config();
        cfg.limits = limits.clone();
        let a = gnutella::Adapter::start(cfg).await.with_context(|| {
            format!(
                "gnutella on {} (set [gnutella] listen, or enabled = false)",
                g.listen
            )
        })?;
        out.push((Arc::new(a), g.shared.clone()));
    }
    if b.enabled {
        let mut cfg = b.adapter_config()?;
        cfg.limits = limits.clone();
        let a = bittorrent::Adapter::start(cfg).await.with_context(|| {
            format!(
                "bittorrent on {} (set [bittorrent] listen, or enabled = false)",
                b.listen
            )
        })?;
        out.push((Arc::new(a), b.shared.clone()));
    }
    let tracker = match b.tracker.enabled {
        true => {
            let (listen, udp) = (b.tracker.listen, Some(b.tracker.listen));
            let t = bittorrent::TrackerServer::bind_with_limits(listen, udp, 60, &limits)
                .await
                .with_context(|| format!("BitTorrent tracker on {}", b.tracker.listen))?;
            tracing::info!(url = %t.announce_url(), "tracker running");
            Some(t)
        }
        false => None,
    };
    Ok(Started {
        networks: out,
        tracker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bittorrent_limits_are_kib_per_second_and_zero_is_unlimited() {
        let b: BittorrentSection =
            toml::from_str("upload_limit_kib = 512\nmax_peers = 20").expect("parses");
        let cfg = b.adapter_config().unwrap();
        assert_eq!(cfg.upload_rate_limit, Some(512 * 1024));
        assert_eq!(cfg.download_rate_limit, None);
        assert_eq!(cfg.max_peers_per_torrent, 20);
        let none: BittorrentSection = toml::from_str("max_peers = 0").unwrap();
        let err = none.adapter_config().unwrap_err().to_string();
        assert!(err.contains("max_peers"), "{err}");
    }

    #[test]
    fn ed2k_and_gnutella_upload_limits_are_kib_per_second_and_zero_is_unlimited() {
        let e: Ed2kSection = toml::from_str("upload_limit_kib = 256").expect("parses");
        assert_eq!(e.adapter_config().upload_limit, Some(256 * 1024));
        let e: Ed2kSection = toml::from_str("upload_limit_kib = 0").expect("parses");
        assert_eq!(e.adapter_config().upload_limit, None);
        assert_eq!(Ed2kSection::default().adapter_config().upload_limit, None);
        let g: GnutellaSection = toml::from_str("upload_limit_kib = 128").expect("parses");
        assert_eq!(g.adapter_config().upload_limit, Some(128 * 1024));
        let g: GnutellaSection = toml::from_str("upload_limit_kib = 0").expect("parses");
        assert_eq!(g.adapter_config().upload_limit, None);
        assert_eq!(
            GnutellaSection::default().adapter_config().upload_limit,
            None
        );
    }

    #[test]
    fn the_dht_listens_on_the_peer_port_unless_told_otherwise() {
        let b: BittorrentSection = toml::from_str("listen = \"0.0.0.0:7000\"").unwrap();
        assert_eq!(b.adapter_config().unwrap().dht_listen, Some(b.listen));
        let b: BittorrentSection =
            toml::from_str("listen = \"0.0.0.0:7000\"\n[dht]\nlisten = \"127.0.0.1:7001\"")
                .unwrap();
        let dht = b.adapter_config().unwrap().dht_listen;
        assert_eq!(dht, Some("127.0.0.1:7001".parse().unwrap()));
        let b: BittorrentSection = toml::from_str("[dht]\nenabled = false").unwrap();
        assert_eq!(b.adapter_config().unwrap().dht_listen, None);
        assert_eq!(BittorrentSection::default().dht_listen().port(), 6881);
    }

    #[test]
    fn limits_reach_every_adapter_and_zero_is_refused() {
        let l: LimitsSection = toml::from_str("connections_per_ip = 3\nbackoff_secs = 5").unwrap();
        let p = l.peer_limits().unwrap();
        assert_eq!(p.max_conns_per_ip, 3);
        assert_eq!(p.backoff_base, std::time::Duration::from_secs(5));
        assert_eq!(p.max_pending_per_ip, 16, "the rest keep their defaults");
        let zero: LimitsSection = toml::from_str("pending_per_ip = 0").unwrap();
        let err = zero.peer_limits().unwrap_err().to_string();
        assert!(err.contains("pending_per_ip"), "{err}");
        let unknown = toml::from_str::<LimitsSection>("per_ip = 3").unwrap_err();
        assert!(unknown.to_string().contains("per_ip"), "{unknown}");
    }
}
