//! The lab: a self-contained eD2k, Gnutella and BitTorrent world on 127.0.0.1, made of
//! Junction's own protocol code, with a gateway attached. `junction lab` runs it for people
//! without P2P connectivity; the end-to-end tests run on it.

mod catalog;
mod world;

use std::net::SocketAddr;
use std::path::PathBuf;

use gateway::{Gateway, GatewayConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use catalog::LabFile;
pub use world::World;

/// What the lab generates and how its peers behave.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The sample content is generated from this seed.
    pub seed: u64,
    /// Holds the sample files (`world/`) and the gateway's data (`gateway/`).
    pub dir: PathBuf,
    /// Size of the large sample file.
    pub large_size: u64,
    /// Upload limit of every seeder on all three networks (the eD2k peers, the Gnutella
    /// leaves and ultrapeer, the BitTorrent seeders), each capped separately at this many
    /// bytes per second (`None`: unlimited).
    pub seed_rate_limit: Option<u64>,
    /// One network whose first peer serves corrupt bytes under the right hashes (its copy
    /// of every file is damaged after it was shared), for tests of bad sources.
    pub liar: Option<junction_core::NetworkId>,
}

impl LabConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LabConfig {
            seed: 1,
            dir: dir.into(),
            large_size: 128 * 1024 * 1024,
            seed_rate_limit: None,
            liar: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("lab: {0}")]
    Start(String),
    #[error("lab: {0}")]
    Io(#[from] std::io::Error),
    #[error("lab: {0}")]
    Network(#[from] junction_core::NetworkError),
    #[error("lab: {0}")]
    Gateway(#[from] gateway::GatewayError),
    #[error("lab: {0}")]
    Networks(#[from] networks::StartError),
}

/// The world plus a gateway serving gRPC on `addr`.
pub struct Lab {
    pub world: World,
    pub gateway: Gateway,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Lab {
    /// Starts the world, then a gateway attached to it listening on `listen`.
    pub async fn start(cfg: &LabConfig, listen: SocketAddr) -> Result<Lab, LabError> {
        let world = World::start(cfg).await?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let networks = world.gateway_networks().await?;
        let gateway = Gateway::open(
            GatewayConfig {
                listen: addr,
                data_dir: cfg.dir.join("gateway"),
                ..Default::default()
            },
            networks,
        )
        .await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let served = gateway.clone();
        let server = tokio::spawn(async move {
            let until = async {
                let _ = stopped.await;
            };
            if let Err(e) = gateway::api::serve(served, listener, until).await {
                tracing::error!(error = %e, "lab gateway stopped");
            }
        });
        Ok(Lab {
            world,
            gateway,
            addr,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// Three commands that work as printed against this lab: a search, a download by
    /// eD2k link, and streaming a file from a magnet while it downloads.
    pub fn example_commands(&self) -> Vec<String> {
        let server = match self.addr.port() {
            4470 if self.addr.ip().is_loopback() => String::new(),
            _ => format!(" --server http://{}", self.addr),
        };
        let on_all = self
            .world
            .files
            .iter()
            .find(|f| f.networks().count() == 3 && f.size < 64 * 1024 * 1024)
            .or(self.world.files.first());
        let large = self.world.files.iter().find(|f| f.large);
        let mut out = vec![format!("junction{server} search 'lab sunrise'")];
        if let Some(link) = on_all.and_then(LabFile::ed2k_link) {
            out.push(format!("junction{server} get '{link}' --wait"));
        }
        if let Some(f) = large
            && let Some(m) = f.magnet(self.world.tracker_url())
        {
            out.push(format!("junction{server} cat '{m}' -o lab-large.mkv"));
        }
        out
    }

    /// Stops the gateway (persisting its transfers), then the world.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
        self.gateway.shutdown().await;
        self.world.shutdown().await;
    }
}
