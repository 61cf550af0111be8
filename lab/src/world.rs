//! The peers of the lab, per network, all on 127.0.0.1, made of Junction's own protocol
//! code: an eD2k index server with two peers, a Gnutella ultrapeer with two leaves, and a
//! BitTorrent tracker, DHT bootstrap node and two seeders.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use junction_core::{HashKind, Network, NetworkId, SharedItem};
use tracing::info;

use crate::catalog::{self, LabFile};
use crate::{LabConfig, LabError};

struct Ed2kSide {
    server: ed2k::IndexServer,
    peers: Vec<ed2k::Adapter>,
}

struct GnutellaSide {
    ultrapeer: gnutella::Adapter,
    leaves: Vec<gnutella::Adapter>,
}

struct BtSide {
    tracker: bittorrent::TrackerServer,
    dht: bittorrent::Adapter,
    seeders: Vec<bittorrent::Adapter>,
}

/// Everything the lab runs except the gateway.
pub struct World {
    pub files: Vec<LabFile>,
    ed2k: Option<Ed2kSide>,
    gnutella: Option<GnutellaSide>,
    bittorrent: Option<BtSide>,
    /// Kept after the BitTorrent side stops, for the links printed at start.
    tracker_url: String,
    ed2k_server: SocketAddr,
    ultrapeer: SocketAddr,
    dht_node: SocketAddr,
    /// The network whose peer 0 lies, and where its damaged copies live.
    liar: Option<(NetworkId, std::path::PathBuf)>,
}

/// Flips one byte in every 16 KiB, so every piece, part or chunk served from the file is
/// wrong while the hashes announced for it stay right.
fn damage(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = f.metadata()?.len();
    let mut b = [0u8; 1];
    let mut off = 0;
    while off < len {
        f.read_exact_at(&mut b, off)?;
        b[0] ^= 0x5a;
        f.write_all_at(&b, off)?;
        off += 16 * 1024;
    }
    f.sync_all()
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn item(f: &LabFile) -> SharedItem {
    SharedItem {
        path: f.path.clone(),
        name: f.name.clone(),
        size: f.size,
        id: f.id.clone(),
        hashes: None,
    }
}

async fn wait_for(what: &str, limit: Duration, ok: impl Fn() -> bool) -> Result<(), LabError> {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > limit {
            return Err(LabError::Start(format!(
                "{what} did not happen within {limit:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

impl World {
    /// Generates the sample files and starts every peer, each sharing its files.
    pub async fn start(cfg: &LabConfig) -> Result<World, LabError> {
        let dir = cfg.dir.join("world");
        let (seed, large) = (cfg.seed, cfg.large_size);
        let files = tokio::task::spawn_blocking(move || catalog::generate(&dir, seed, large))
            .await
            .map_err(|e| LabError::Start(e.to_string()))??;
        let mut world = World {
            files,
            ed2k: None,
            gnutella: None,
            bittorrent: None,
            tracker_url: String::new(),
            ed2k_server: loopback(),
            ultrapeer: loopback(),
            dht_node: loopback(),
            liar: cfg
                .liar
                .map(|n| (n, cfg.dir.join("world").join(format!("liar-{n}")))),
        };
        // Every seeder, on each network, is capped separately at the same rate.
        let rate = cfg.seed_rate_limit;
        world.start_ed2k(rate).await?;
        world.start_gnutella(rate).await?;
        world.start_bittorrent(rate).await?;
        Ok(world)
    }

    async fn start_ed2k(&mut self, rate: Option<u64>) -> Result<(), LabError> {
        let server = ed2k::IndexServer::start(ed2k::ServerConfig {
            enabled: true,
            listen: loopback(),
            name: "Junction lab".into(),
            ..Default::default()
        })
        .await?;
        self.ed2k_server = server.local_addr();
        let mut peers = Vec::new();
        for n in 0..2 {
            let peer = ed2k::Adapter::start(ed2k::Config {
                listen: Some(loopback()),
                servers: vec![server.local_addr().to_string()],
                nick: format!("lab-ed2k-{n}"),
                upload_limit: rate,
                ..Default::default()
            })
            .await?;
            if !peer.wait_logged_in(Duration::from_secs(15)).await {
                return Err(LabError::Start(format!("eD2k peer {n} did not log in")));
            }
            peers.push(peer);
        }
        self.share_on(NetworkId::ED2K, &peers).await?;
        self.ed2k = Some(Ed2kSide { server, peers });
        info!(server = %self.ed2k_server, "lab eD2k side up");
        Ok(())
    }

    async fn start_gnutella(&mut self, rate: Option<u64>) -> Result<(), LabError> {
        let ultrapeer = gnutella::Adapter::start(gnutella::Config {
            listen: loopback(),
            ultrapeer: true,
            upload_limit: rate,
            ..Default::default()
        })
        .await?;
        self.ultrapeer = ultrapeer.local_addr();
        let mut leaves = Vec::new();
        for _ in 0..2 {
            let leaf = gnutella::Adapter::start(gnutella::Config {
                listen: loopback(),
                peers: vec![self.ultrapeer.to_string()],
                upload_limit: rate,
                ..Default::default()
            })
            .await?;
            leaves.push(leaf);
        }
        self.share_on(NetworkId::GNUTELLA, &leaves).await?;
        for leaf in &leaves {
            wait_for(
                "a Gnutella leaf connecting",
                Duration::from_secs(15),
                || leaf.status().peers > 0,
            )
            .await?;
        }
        self.gnutella = Some(GnutellaSide { ultrapeer, leaves });
        info!(ultrapeer = %self.ultrapeer, "lab Gnutella side up");
        Ok(())
    }

    async fn start_bittorrent(&mut self, rate: Option<u64>) -> Result<(), LabError> {
        let tracker = bittorrent::TrackerServer::bind(loopback(), None, 5).await?;
        self.tracker_url = tracker.announce_url();
        let dht = bittorrent::Adapter::start(bittorrent::Config {
            listen: loopback(),
            dht_listen: Some(loopback()),
            dht_index: false,
            ..Default::default()
        })
        .await?;
        self.dht_node = dht
            .dht_addr()
            .ok_or_else(|| LabError::Start("the DHT node has no address".into()))?;
        let mut seeders = Vec::new();
        for _ in 0..2 {
            seeders.push(
                bittorrent::Adapter::start(bittorrent::Config {
                    listen: loopback(),
                    trackers: vec![self.tracker_url.clone()],
                    dht_listen: Some(loopback()),
                    dht_bootstrap: vec![self.dht_node.to_string()],
                    dht_index: false,
                    upload_rate_limit: rate,
                    ..Default::default()
                })
                .await?,
            );
        }
        for s in &seeders {
            wait_for("a seeder joining the DHT", Duration::from_secs(15), || {
                s.status().dht_nodes > 0
            })
            .await?;
        }
        self.share_on(NetworkId::BITTORRENT, &seeders).await?;
        self.bittorrent = Some(BtSide {
            tracker,
            dht,
            seeders,
        });
        info!(tracker = %self.tracker_url, dht = %self.dht_node, "lab BitTorrent side up");
        Ok(())
    }

    /// Shares each file on the peers the catalog names, and keeps the ids they report
    /// (BitTorrent adds the info-hash of the torrent it made).
    async fn share_on<N: Network>(&mut self, net: NetworkId, peers: &[N]) -> Result<(), LabError> {
        for f in &mut self.files {
            let sharers = f.peers_on(net).to_vec();
            for p in sharers {
                let liar = match &self.liar {
                    Some((n, dir)) if *n == net && p == 0 => Some(dir.join(&f.name)),
                    _ => None,
                };
                let mut it = item(f);
                if let Some(copy) = &liar {
                    std::fs::create_dir_all(copy.parent().unwrap_or(copy))?;
                    std::fs::copy(&f.path, copy)?;
                    it.path = copy.clone();
                }
                let id = peers[p].share(it).await?;
                if let Some(copy) = &liar {
                    damage(copy)?;
                }
                if let Some(btih) = id.get(HashKind::Btih) {
                    // Each seeder makes the same torrent from the same bytes and settings.
                    f.id.set(HashKind::Btih, btih);
                }
            }
        }
        Ok(())
    }

    /// Fresh adapters for a gateway, each pointed at this world: an eD2k client of the
    /// index server, a Gnutella leaf of the ultrapeer, a BitTorrent peer using the tracker
    /// and the DHT node (and indexing what the DHT announces). Started as `junction serve`
    /// starts its own, by `networks::start_all`.
    pub async fn gateway_networks(
        &self,
    ) -> Result<Vec<Arc<dyn junction_core::DynNetwork>>, LabError> {
        let mut cfg = networks::NetworksConfig::default();
        cfg.ed2k.config = ed2k::Config {
            listen: Some(loopback()),
            servers: vec![self.ed2k_server.to_string()],
            nick: "lab-gateway".into(),
            source_requery: Duration::from_secs(5),
            ..Default::default()
        };
        cfg.gnutella.config = gnutella::Config {
            listen: loopback(),
            peers: vec![self.ultrapeer.to_string()],
            ..Default::default()
        };
        cfg.bittorrent.config = bittorrent::Config {
            listen: loopback(),
            trackers: vec![self.tracker_url.clone()],
            dht_listen: Some(loopback()),
            dht_bootstrap: vec![self.dht_node.to_string()],
            dht_index: true,
            dht_sample_interval: Duration::from_secs(5),
            ..Default::default()
        };
        let started = networks::start_all(&cfg).await?;
        // Searches right after start should find something: wait for each to be linked.
        if let Some(ed2k) = &started.ed2k {
            let _ = ed2k.wait_logged_in(Duration::from_secs(15)).await;
        }
        if let Some(gnutella) = &started.gnutella {
            let _ = wait_for(
                "the gateway's Gnutella leaf",
                Duration::from_secs(15),
                || gnutella.status().peers > 0,
            )
            .await;
        }
        Ok(started.dyn_networks())
    }

    /// Bytes the world's peers of one network have uploaded so far.
    pub fn bytes_served(&self, net: NetworkId) -> u64 {
        let out = |s: junction_core::NetworkStatus| s.bytes_out;
        if net == NetworkId::ED2K {
            self.ed2k
                .as_ref()
                .map_or(0, |s| s.peers.iter().map(|p| out(p.status())).sum())
        } else if net == NetworkId::GNUTELLA {
            self.gnutella
                .as_ref()
                .map_or(0, |s| s.leaves.iter().map(|p| out(p.status())).sum())
        } else if net == NetworkId::BITTORRENT {
            self.bittorrent
                .as_ref()
                .map_or(0, |s| s.seeders.iter().map(|p| out(p.status())).sum())
        } else {
            0
        }
    }

    /// Peer `i` of one network (eD2k peers, Gnutella leaves, BitTorrent seeders), for
    /// tests that act as a user of that network's own client.
    pub fn peer(&self, net: NetworkId, i: usize) -> Option<&dyn junction_core::DynNetwork> {
        if net == NetworkId::ED2K {
            let p = self.ed2k.as_ref()?.peers.get(i)?;
            Some(p)
        } else if net == NetworkId::GNUTELLA {
            let p = self.gnutella.as_ref()?.leaves.get(i)?;
            Some(p)
        } else if net == NetworkId::BITTORRENT {
            let p = self.bittorrent.as_ref()?.seeders.get(i)?;
            Some(p)
        } else {
            None
        }
    }

    /// The tracker's announce URL.
    pub fn tracker_url(&self) -> &str {
        &self.tracker_url
    }

    /// Stops every peer of one network, as if that network went away.
    pub async fn stop_network(&mut self, net: NetworkId) {
        if net == NetworkId::ED2K
            && let Some(side) = self.ed2k.take()
        {
            side.server.shutdown();
            for p in side.peers {
                p.shutdown().await;
            }
        } else if net == NetworkId::GNUTELLA
            && let Some(side) = self.gnutella.take()
        {
            for l in side.leaves {
                l.shutdown().await;
            }
            side.ultrapeer.shutdown().await;
        } else if net == NetworkId::BITTORRENT
            && let Some(side) = self.bittorrent.take()
        {
            side.tracker.shutdown();
            for s in side.seeders {
                s.shutdown().await;
            }
            side.dht.shutdown().await;
        }
    }

    pub async fn shutdown(mut self) {
        for net in [NetworkId::ED2K, NetworkId::GNUTELLA, NetworkId::BITTORRENT] {
            self.stop_network(net).await;
        }
    }
}
