//! `[limits]`: what one remote IP may do on every listening port, and the upload and
//! download caps over all networks together.

use std::time::Duration;

use junction_core::config::kib;
use junction_core::limit::PeerLimits;
use junction_core::rate::{Caps, RateLimit};
use serde::Deserialize;

/// `[limits]`. The per-IP limits hold on every port: eD2k peers and index server,
/// Gnutella, BitTorrent peers, tracker and DHT (the CLI also hands them to the gRPC API
/// and the HTTP fronts). Defaults in `junction.example.toml`, taken from [`PeerLimits`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
    /// Upload over every network together, in KiB/s; 0: unlimited. Each network's own
    /// `upload_limit_kib` still holds beside it.
    pub upload_limit_kib: u64,
    /// Download over every network together, in KiB/s; 0: unlimited.
    pub download_limit_kib: u64,
}

/// A `[limits]` value that would shut every peer out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    #[error("[limits] {0} must be at least 1: 0 would refuse every peer")]
    Zero(&'static str),
    #[error("[limits] backoff_max_secs must be at least backoff_secs")]
    BackoffMax,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = PeerLimits::default();
        LimitsSection {
            connections_per_ip: d.max_conns_per_ip,
            pending_per_ip: d.max_pending_per_ip,
            new_connections_per_sec: d.new_conns_per_sec,
            new_connections_burst: d.new_conns_burst,
            backoff_secs: d.backoff_base.as_secs(),
            backoff_max_secs: d.backoff_max.as_secs(),
            requests_per_sec: d.requests_per_sec,
            requests_burst: d.requests_burst,
            upload_limit_kib: 0,
            download_limit_kib: 0,
        }
    }
}

impl LimitsSection {
    /// The per-IP limits, refusing values that would shut every peer out.
    pub fn peer_limits(&self) -> Result<PeerLimits, LimitsError> {
        let at_least_one = [
            ("connections_per_ip", self.connections_per_ip as u64),
            ("pending_per_ip", self.pending_per_ip as u64),
            (
                "new_connections_per_sec",
                self.new_connections_per_sec.into(),
            ),
            ("new_connections_burst", self.new_connections_burst.into()),
            ("requests_per_sec", self.requests_per_sec.into()),
            ("requests_burst", self.requests_burst.into()),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(LimitsError::Zero(key));
        }
        if self.backoff_max_secs < self.backoff_secs {
            return Err(LimitsError::BackoffMax);
        }
        Ok(PeerLimits {
            max_conns_per_ip: self.connections_per_ip,
            max_pending_per_ip: self.pending_per_ip,
            new_conns_per_sec: self.new_connections_per_sec,
            new_conns_burst: self.new_connections_burst,
            backoff_base: Duration::from_secs(self.backoff_secs),
            backoff_max: Duration::from_secs(self.backoff_max_secs),
            requests_per_sec: self.requests_per_sec,
            requests_burst: self.requests_burst,
            ..Default::default()
        })
    }

    /// The caps over all networks. Each call makes new buckets: build them once and hand
    /// clones to every adapter, so they share one budget.
    pub fn caps(&self) -> Caps {
        Caps {
            upload: RateLimit::new(kib(self.upload_limit_kib)),
            download: RateLimit::new(kib(self.download_limit_kib)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LimitsSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn limits_reach_every_adapter_and_zero_is_refused() {
        let p = parse("connections_per_ip = 3\nbackoff_secs = 5")
            .peer_limits()
            .unwrap();
        assert_eq!(p.max_conns_per_ip, 3);
        assert_eq!(p.backoff_base, Duration::from_secs(5));
        assert_eq!(p.max_pending_per_ip, 16, "the rest keep their defaults");
        let err = parse("pending_per_ip = 0").peer_limits().unwrap_err();
        assert!(err.to_string().contains("pending_per_ip"), "{err}");
        let err = parse("backoff_secs = 10\nbackoff_max_secs = 5").peer_limits();
        assert_eq!(err, Err(LimitsError::BackoffMax));
        let unknown = toml::from_str::<LimitsSection>("per_ip = 3").unwrap_err();
        assert!(unknown.to_string().contains("per_ip"), "{unknown}");
    }

    #[test]
    fn the_caps_are_kib_per_second_and_zero_is_unlimited() {
        let none = parse("").caps();
        assert!(none.upload.is_unlimited() && none.download.is_unlimited());
        let c = parse("upload_limit_kib = 100").caps();
        assert_eq!(c.upload.rate(), Some(100 * 1024));
        assert!(c.download.is_unlimited());
        let c = parse("download_limit_kib = 7\nupload_limit_kib = 0").caps();
        assert_eq!(c.download.rate(), Some(7 * 1024));
        assert!(c.upload.is_unlimited());
    }
}
