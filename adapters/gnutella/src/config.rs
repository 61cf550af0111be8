//! Servent configuration, with its defaults written once: `Config` is also the
//! `[gnutella]` table of the config file (the keys a user sets; the rest is
//! `#[serde(skip)]` and keeps its default).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use junction_core::config::{kib_per_sec, listen_addr};
use serde::Deserialize;

/// How the Gnutella servent runs; `[gnutella]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// TCP address for Gnutella links, HTTP uploads and `GIV` callbacks.
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// Run as an ultrapeer (accept leaves and ultrapeers) instead of a leaf.
    pub ultrapeer: bool,
    /// Hosts to bootstrap from (`ip:port` or `host:port`); no web caches are used.
    pub peers: Vec<String>,
    /// Leaves accepted as ultrapeer.
    #[serde(skip)]
    pub max_leaves: usize,
    /// Ultrapeer connections: kept as ultrapeer, or the ultrapeers a leaf keeps.
    #[serde(skip)]
    pub max_ultrapeers: usize,
    /// Concurrent uploads; further requests get `503`.
    pub upload_slots: usize,
    /// Upload rate limit in bytes per second over all uploads; `None` (or 0) = unlimited.
    #[serde(rename = "upload_limit_kib", deserialize_with = "kib_per_sec")]
    pub upload_limit: Option<u64>,
    /// Highest TTL we send or relay (incoming TTLs are trimmed to it).
    #[serde(skip)]
    pub max_ttl: u8,
    /// `User-Agent` / `Server`.
    #[serde(skip)]
    pub user_agent: String,
    /// Address announced in hits, pongs and pushes; by default the listening
    /// address, or what peers report in `Remote-IP` when listening on 0.0.0.0.
    #[serde(skip)]
    pub advertised: Option<SocketAddrV4>,
    /// Whether we are reachable from outside: `None` guesses (firewalled until
    /// someone connects to us), `Some` forces it (e.g. after a port forward).
    #[serde(skip)]
    pub firewalled: Option<bool>,
    /// How long a search stream stays open.
    #[serde(skip)]
    pub search_timeout: Duration,
    /// Dynamic querying stops widening once this many results came back.
    #[serde(skip)]
    pub wanted_hits: u32,
    /// Concurrent sources per download.
    #[serde(skip)]
    pub download_sources: usize,
    /// Bytes asked per `Range` request.
    #[serde(skip)]
    pub chunk_size: u64,
    /// Per-IP limits on incoming connections (links, HTTP and `GIV`), and the rate of
    /// HTTP requests one connection may make before it is dropped (see
    /// [`junction_core::limit::PeerLimits`] for the defaults).
    #[serde(skip)]
    pub limits: junction_core::limit::PeerLimits,
    /// Upload and download limits shared with every other network (`[limits]`), on top of
    /// this network's own.
    #[serde(skip)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_limit_is_kib_per_second_and_zero_is_unlimited() {
        let c: Config = toml::from_str("upload_limit_kib = 128").unwrap();
        assert_eq!(c.upload_limit, Some(128 * 1024));
        let c: Config = toml::from_str("upload_limit_kib = 0").unwrap();
        assert_eq!(c.upload_limit, None);
        assert_eq!(Config::default().upload_limit, None);
    }

    #[test]
    fn an_empty_table_is_the_default_and_unknown_keys_are_refused() {
        assert_eq!(toml::from_str::<Config>("").unwrap(), Config::default());
        let c: Config = toml::from_str(
            "ultrapeer = true
peers = [\"192.0.2.1:6346\"]",
        )
        .unwrap();
        assert!(c.ultrapeer);
        assert_eq!(c.peers, ["192.0.2.1:6346"]);
        assert_eq!(c.max_leaves, Config::default().max_leaves);
        for key in ["max_ttl", "ultrapear"] {
            let err = toml::from_str::<Config>(&format!("{key} = 1")).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
