//! Junction's gateway: the search hub, the transfer manager, the content store and the
//! gRPC service, as a library the CLI and the tests embed.

pub mod api;
pub mod bridge;
pub mod config;
pub mod endpoints;
mod error;
pub mod http;
pub mod identity;
pub mod links;
pub mod search;
pub mod share;
mod store;
pub mod transfer;

use std::sync::Arc;
use std::time::Duration;

use junction_core::DynNetwork;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::GatewayConfig;
pub use error::{GatewayError, Result};

use endpoints::Endpoints;
use identity::IdentityIndex;
use search::{ResultCache, SearchHub};
use share::ShareIndex;
use store::Store;
use transfer::TransferManager;

/// The networks a gateway runs, in a fixed order.
pub type Networks = Arc<[Arc<dyn DynNetwork>]>;

/// Items remembered across searches for `StartTransfer(item_id)`.
const RESULT_CACHE_ITEMS: usize = 50_000;

/// A running gateway; cheap to clone.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub config: GatewayConfig,
    pub networks: Networks,
    pub hub: Arc<SearchHub>,
    pub transfers: TransferManager,
    pub shares: ShareIndex,
    /// Endpoints added through the API, kept across restarts.
    pub endpoints: Endpoints,
    pub identities: Arc<IdentityIndex>,
    /// Cancelled when the gateway stops, so endless streams (watches, reads) end.
    pub closing: CancellationToken,
    /// Background work (sharing again at start-up, the bridge), waited for on shutdown so
    /// the database is free when `shutdown` returns.
    background: TaskTracker,
}

impl Gateway {
    /// Opens the data directory and resumes unfinished transfers.
    pub async fn open(
        config: GatewayConfig,
        networks: Vec<Arc<dyn DynNetwork>>,
    ) -> Result<Gateway> {
        config.validate().map_err(GatewayError::Invalid)?;
        std::fs::create_dir_all(&config.data_dir)?;
        let store = Arc::new(Store::open(&config.data_dir.join("junction.redb"))?);
        // Counted for /metrics (searches, hits, failures), otherwise passed through.
        let networks: Networks = http::metrics::instrument(networks).into();
        let identities = Arc::new(IdentityIndex::open(store.clone())?);
        let hub = Arc::new(SearchHub::new(
            networks.clone(),
            identities.clone(),
            Arc::new(ResultCache::new(RESULT_CACHE_ITEMS)),
            Duration::from_secs(config.search_timeout_secs),
            config.max_search_items,
        ));
        let transfers = TransferManager::open(
            &config.data_dir,
            store.clone(),
            networks.clone(),
            identities.clone(),
            config.transfer_give_up(),
        )?;
        let closing = CancellationToken::new();
        let endpoints = Endpoints::new(store.clone(), networks.clone());
        let shares = ShareIndex::new(store, networks.clone(), identities.clone(), closing.clone());
        let gw = Gateway {
            config,
            networks,
            hub,
            transfers,
            shares,
            endpoints,
            identities,
            closing,
            background: TaskTracker::new(),
        };
        let offer_on = bridge::offer_networks(&gw)?;
        if gw.config.bridge_on_demand {
            let on_demand = Arc::new(bridge::OnDemand {
                hub: Arc::downgrade(&gw.hub),
                identities: Arc::downgrade(&gw.identities),
                transfers: gw.transfers.downgrade(),
                networks: gw.networks.iter().map(|n| n.id()).collect(),
                deadline: Duration::from_secs(gw.config.bridge_search_secs),
                recent: Default::default(),
            });
            for net in gw.networks.iter() {
                net.attach_bridge(on_demand.clone());
            }
        }
        let again = gw.clone();
        gw.background.spawn(async move {
            let closing = again.closing.clone();
            let restore = async {
                again.endpoints.restore_all().await;
                again.shares.reshare_all().await;
            };
            tokio::select! {
                () = restore => bridge::run(again, offer_on).await,
                () = closing.cancelled() => {}
            }
        });
        Ok(gw)
    }

    /// Starts a transfer (or returns the one running for the same content). Content this
    /// gateway shares is taken from the local copy, checked by the share's whole-file hashes,
    /// rather than waited for from the networks.
    pub fn start_transfer(&self, mut spec: transfer::StartSpec) -> Result<transfer::TransferInfo> {
        if let Some(r) = self.shares.find(&spec.content) {
            let known = r.content();
            // Only with a hash the gateway checks itself: the copy is verified, not trusted.
            if [junction_core::HashKind::Sha1, junction_core::HashKind::Tth]
                .iter()
                .any(|k| known.get(*k).is_some())
            {
                spec.content.absorb(&known);
                spec.size = spec.size.or(known.size);
                spec.local = Some(r.path);
            }
        }
        self.transfers.start(spec)
    }

    pub fn network(&self, id: &str) -> Result<Arc<dyn DynNetwork>> {
        network_in(&self.networks, id)
    }

    /// Stops transfers (persisting them) and every network, in that order.
    pub async fn shutdown(&self) {
        self.closing.cancel();
        self.background.close();
        self.background.wait().await;
        self.transfers.shutdown().await;
        for net in self.networks.iter() {
            net.shutdown().await;
        }
    }
}

/// The network `id` among `networks`; an unknown one is an error listing those there are.
pub(crate) fn network_in(networks: &Networks, id: &str) -> Result<Arc<dyn DynNetwork>> {
    networks
        .iter()
        .find(|n| n.id().as_str() == id)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = networks.iter().map(|n| n.id().as_str()).collect();
            GatewayError::Invalid(format!(
                "unknown network {id:?}; this gateway runs: {}",
                known.join(", ")
            ))
        })
}
