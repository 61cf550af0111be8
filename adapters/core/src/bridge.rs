//! Bridging on demand: a network's own clients (aMule, gtk-gnutella) reach, through
//! Junction, content that only the other networks have and Junction does not hold yet.
//!
//! The gateway implements [`Bridge`] and attaches it to every network
//! ([`crate::Network::attach_bridge`]). A network that serves legacy clients (eD2k's index
//! server, Gnutella's ultrapeer) asks it to search the other networks, and, when a client
//! asks for one of the results, to fetch it.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::{ContentId, HashKind, NetworkError, NetworkId};

/// One file another network has, with every hash known for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgedItem {
    pub name: String,
    /// Size, and every hash the hits and the identity graph give.
    pub id: ContentId,
    /// Sources seen on the other networks.
    pub sources: u32,
}

/// What the gateway does for a network's legacy clients.
pub trait Bridge: Send + Sync + std::fmt::Debug + 'static {
    /// Searches every network but `asking` for `keywords` and returns, within the
    /// gateway's bridge deadline, the files whose `needs` hash is known (never invented).
    fn search(
        &self,
        asking: NetworkId,
        keywords: Vec<String>,
        needs: HashKind,
    ) -> BoxFuture<'_, Vec<BridgedItem>>;

    /// A legacy client of `asking` asks for `item` (one [`Bridge::search`] gave): start a
    /// transfer of it over every network, or join the one running. The network serves it
    /// once it is shared, as every finished download is.
    fn fetch(
        &self,
        asking: NetworkId,
        item: BridgedItem,
    ) -> BoxFuture<'_, Result<(), NetworkError>>;
}

/// The bridge a network holds; none until the gateway attaches one.
#[derive(Debug, Default)]
pub struct BridgeSlot(std::sync::RwLock<Option<Arc<dyn Bridge>>>);

impl BridgeSlot {
    pub fn set(&self, bridge: Arc<dyn Bridge>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(bridge);
    }

    pub fn get(&self) -> Option<Arc<dyn Bridge>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
