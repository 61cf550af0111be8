//! Endpoints added through the API (servers, hosts, trackers, DHT nodes): kept in the
//! store and added again when the gateway starts, listed, and removed.

use std::sync::Arc;

use junction_core::NetworkError;
use serde::{Deserialize, Serialize};

use crate::Networks;
use crate::error::{GatewayError, Result};
use crate::store::{Store, Table};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub network: String,
    pub address: String,
}

/// What removing an endpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The running network stopped using it (otherwise it does until a restart).
    pub stopped: bool,
    /// In words, for the user.
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct Endpoints {
    store: Arc<Store>,
    networks: Networks,
}

fn key(network: &str, address: &str) -> String {
    format!("{network}\t{address}")
}

impl Endpoints {
    pub(crate) fn new(store: Arc<Store>, networks: Networks) -> Self {
        Endpoints { store, networks }
    }

    /// Hands the endpoint to its network and, once the network took it, keeps it.
    /// Refused input changes nothing.
    pub async fn add(&self, network: &str, address: &str) -> Result<()> {
        let net = crate::network_in(&self.networks, network)?;
        let address = address.trim();
        if address.is_empty() {
            return Err(GatewayError::Invalid(
                "the endpoint address is empty".into(),
            ));
        }
        net.add_endpoint(address.to_owned())
            .await
            .map_err(|source| GatewayError::Network {
                network: network.to_owned(),
                source,
            })?;
        let record = EndpointRecord {
            network: network.to_owned(),
            address: address.to_owned(),
        };
        self.store
            .put(Table::Endpoints, &key(network, address), &record)
    }

    /// Every kept endpoint, by network then address.
    pub fn list(&self) -> Result<Vec<EndpointRecord>> {
        let mut all: Vec<EndpointRecord> = self
            .store
            .all(Table::Endpoints)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        all.sort_by(|a, b| (&a.network, &a.address).cmp(&(&b.network, &b.address)));
        Ok(all)
    }

    /// Forgets an endpoint, so a restart does not add it again, and asks its network to
    /// stop using it now; the reply says whether it could.
    pub async fn remove(&self, network: &str, address: &str) -> Result<Removal> {
        let net = crate::network_in(&self.networks, network)?;
        let address = address.trim();
        let k = key(network, address);
        if self
            .store
            .get::<EndpointRecord>(Table::Endpoints, &k)?
            .is_none()
        {
            let kept: Vec<String> = self
                .list()?
                .into_iter()
                .filter(|r| r.network == network)
                .map(|r| r.address)
                .collect();
            return Err(GatewayError::NotFound(if kept.is_empty() {
                format!("no {network} endpoint was added; `junction endpoint list` shows them")
            } else {
                format!(
                    "no {network} endpoint {address:?} was added; the {network} ones are: {}",
                    kept.join(", ")
                )
            }));
        }
        let removal = match net.remove_endpoint(address.to_owned()).await {
            Ok(()) => Removal {
                stopped: true,
                note: format!("{network} stopped using {address}"),
            },
            Err(NetworkError::Unsupported(why)) => Removal {
                stopped: false,
                note: format!("{why}; it is not added again after a restart"),
            },
            Err(e) => Removal {
                stopped: false,
                note: format!(
                    "{network} could not drop it now ({e}); it is not added again after a restart"
                ),
            },
        };
        self.store.remove(Table::Endpoints, &k)?;
        Ok(removal)
    }

    /// Adds every kept endpoint to its network again (at start-up). One that fails now
    /// (a name that no longer resolves) stays kept, for the next start.
    pub async fn restore_all(&self) {
        let Ok(all) = self.list() else { return };
        for r in all {
            let Some(net) = self.networks.iter().find(|n| n.id().as_str() == r.network) else {
                tracing::info!(network = %r.network, address = %r.address,
                    "endpoint of a network this gateway does not run; kept, not added");
                continue;
            };
            match net.add_endpoint(r.address.clone()).await {
                Ok(()) => {
                    tracing::info!(network = %r.network, address = %r.address, "endpoint added again")
                }
                Err(e) => tracing::warn!(network = %r.network, address = %r.address, error = %e,
                    "could not add a kept endpoint again"),
            }
        }
    }
}
