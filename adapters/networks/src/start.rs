//! Starting every enabled network, with `[limits]` handed to each.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use junction_core::limit::PeerLimits;
use junction_core::{DynNetwork, NetworkError};

use crate::{LimitsError, NetworksConfig};

/// Why the networks did not start. Each names the table to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Limits(#[from] LimitsError),
    #[error("[bittorrent] {0}")]
    Bittorrent(#[from] bittorrent::config::ConfigError),
    #[error("{network} on {at} (set [{network}] listen, or enabled = false)")]
    Network {
        network: &'static str,
        at: String,
        #[source]
        source: NetworkError,
    },
    #[error("the BitTorrent tracker on {at} (set [bittorrent.tracker] listen)")]
    Tracker {
        at: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The started networks and the roles beside them. Dropping it stops the tracker; the
/// adapters stop with [`Started::shutdown`] (or the gateway's own shutdown).
#[derive(Default)]
pub struct Started {
    /// Each started network with the folders its table shares, in the order of the tables.
    pub networks: Vec<(Arc<dyn DynNetwork>, Vec<PathBuf>)>,
    /// The same adapters, typed, for callers that wait on one (an eD2k login).
    pub ed2k: Option<ed2k::Adapter>,
    pub gnutella: Option<gnutella::Adapter>,
    pub bittorrent: Option<bittorrent::Adapter>,
    /// `[bittorrent.tracker]`, kept alive for as long as this is.
    pub tracker: Option<bittorrent::TrackerServer>,
}

impl Started {
    /// The networks alone, for `Gateway::open`.
    pub fn dyn_networks(&self) -> Vec<Arc<dyn DynNetwork>> {
        self.networks.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Stops every adapter (in turn: each bounds its own goodbye) and the tracker.
    pub async fn shutdown(self) {
        for (n, _) in &self.networks {
            n.shutdown().await;
        }
    }
}

/// How often the tracker asks peers to announce again, in seconds.
const TRACKER_INTERVAL: u32 = 60;

/// Starts every enabled network with the `[limits]` per-IP limits and the one set of
/// caps all of them share, then the BitTorrent tracker if enabled. On an error, what had
/// started is stopped again.
pub async fn start_all(cfg: &NetworksConfig) -> Result<Started, StartError> {
    let mut out = Started::default();
    match start_into(cfg, &mut out).await {
        Ok(()) => Ok(out),
        Err(e) => {
            out.shutdown().await;
            Err(e)
        }
    }
}

/// Each adapter's config as [`start_all`] hands it over: `[limits]` filled in, and one set
/// of caps whose buckets every adapter shares.
pub(crate) struct Prepared {
    pub ed2k: ed2k::Config,
    pub gnutella: gnutella::Config,
    pub bittorrent: bittorrent::Config,
    pub limits: PeerLimits,
}

pub(crate) fn prepare(cfg: &NetworksConfig) -> Result<Prepared, StartError> {
    let limits = cfg.limits.peer_limits()?;
    // Built once: every adapter's clone draws from the same buckets.
    let caps = cfg.limits.caps();
    let mut e = cfg.ed2k.config.clone();
    e.limits = limits.clone();
    e.server.limits = limits.clone();
    e.caps = caps.clone();
    let mut g = cfg.gnutella.config.clone();
    g.limits = limits.clone();
    g.caps = caps.clone();
    let mut b = cfg.bittorrent.config.clone();
    b.validate()?;
    b.limits = limits.clone();
    b.caps = caps;
    Ok(Prepared {
        ed2k: e,
        gnutella: g,
        bittorrent: b,
        limits,
    })
}

async fn start_into(cfg: &NetworksConfig, out: &mut Started) -> Result<(), StartError> {
    let p = prepare(cfg)?;
    let failed = |network: &'static str, at: String| {
        move |source| StartError::Network {
            network,
            at,
            source,
        }
    };
    let (e, g, b) = (&cfg.ed2k, &cfg.gnutella, &cfg.bittorrent);
    if e.enabled {
        let at = p
            .ed2k
            .listen
            .map_or("no port".to_owned(), |a| a.to_string());
        let a = ed2k::Adapter::start(p.ed2k)
            .await
            .map_err(failed("ed2k", at))?;
        out.networks.push((Arc::new(a.clone()), e.shared.clone()));
        out.ed2k = Some(a);
    }
    if g.enabled {
        let at = p.gnutella.listen.to_string();
        let a = gnutella::Adapter::start(p.gnutella)
            .await
            .map_err(failed("gnutella", at))?;
        out.networks.push((Arc::new(a.clone()), g.shared.clone()));
        out.gnutella = Some(a);
    }
    if b.enabled {
        let at = p.bittorrent.listen.to_string();
        let a = bittorrent::Adapter::start(p.bittorrent)
            .await
            .map_err(failed("bittorrent", at))?;
        out.networks.push((Arc::new(a.clone()), b.shared.clone()));
        out.bittorrent = Some(a);
    }
    // The tracker serves other peers' swarms: it runs whether or not our peer does.
    let t = &b.config.tracker;
    if t.enabled {
        let tracker = bittorrent::TrackerServer::bind_with_limits(
            t.listen,
            Some(t.listen),
            TRACKER_INTERVAL,
            &p.limits,
        )
        .await
        .map_err(|source| StartError::Tracker {
            at: t.listen,
            source,
        })?;
        tracing::info!(url = %tracker.announce_url(), "tracker running");
        out.tracker = Some(tracker);
    }
    Ok(())
}
