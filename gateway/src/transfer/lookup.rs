//! What the networks are asked about a link before its transfer starts, through their
//! [`Capabilities`] alone: which of them take the peers the link names, and which learns
//! its size. A magnet without `xl=` names a torrent but not its size, and a transfer's
//! file needs one. A network that says it can
//! ([`Capabilities::identify_ids`], BitTorrent from a torrent's metadata) is asked through
//! [`DynNetwork::identify`] and reports the size and hashes it found.
//!
//! [`Capabilities`]: junction_core::Capabilities
//! [`Capabilities::identify_ids`]: junction_core::Capabilities::identify_ids

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::layout::FileSpan;
use junction_core::{
    ContentId, DynNetwork, FetchEvent, FetchRequest, HashKind, NetworkError, PeerAddr, Source,
};

use super::StartSpec;
use crate::error::{GatewayError, Result};

/// How long a metadata lookup may take before the start is refused.
pub const LOOKUP_TIME: Duration = Duration::from_secs(60);

/// Peers a link names (`x.pe=`, an ed2k link's sources), not tied to a network yet: each
/// running network that fetches by one of `kinds` ([`Capabilities::fetches`]) takes them
/// as its sources.
///
/// [`Capabilities::fetches`]: junction_core::Capabilities::fetches
#[derive(Debug, Clone, Default)]
pub struct LinkPeers {
    pub addresses: Vec<PeerAddr>,
    /// The hash kinds whose peers they are ([`junction_core::link::LinkTarget::peer_kinds`]).
    pub kinds: Vec<HashKind>,
}

impl LinkPeers {
    /// The peers as sources of each network in `networks` that fetches by one of the kinds.
    pub fn sources(&self, networks: &[Arc<dyn DynNetwork>]) -> Vec<Source> {
        let takers = networks.iter().filter(|n| {
            let caps = n.capabilities();
            self.kinds.iter().any(|&k| caps.fetches(k))
        });
        takers
            .flat_map(|n| {
                self.addresses.iter().map(|a| Source {
                    network: n.id(),
                    address: a.clone(),
                    detail: None,
                })
            })
            .collect()
    }
}

/// The first of `networks` that can learn the size of `content` from its hashes.
pub fn identifier(
    networks: &[Arc<dyn DynNetwork>],
    content: &ContentId,
) -> Option<Arc<dyn DynNetwork>> {
    networks
        .iter()
        .find(|n| n.capabilities().identifies(content))
        .cloned()
}

/// Whether `spec` needs its size looked up first: no size, no `.torrent` that gives it,
/// and one of `networks` to ask.
pub fn needs_size(spec: &StartSpec, networks: &[Arc<dyn DynNetwork>]) -> bool {
    spec.size.or(spec.content.size).is_none()
        && spec.torrent.is_none()
        && identifier(networks, &spec.content).is_some()
}

/// What a metadata lookup learnt: the hashes with the size, the name, and the files when
/// there are several.
pub type Found = (ContentId, Option<String>, Vec<FileSpan>);

/// Asks `net` what `spec`'s metadata says (see [`identifier`]).
pub async fn size_of(net: Arc<dyn DynNetwork>, spec: &StartSpec, limit: Duration) -> Result<Found> {
    let req = FetchRequest {
        id: spec.content.clone(),
        name: spec.name.clone(),
        size: 0,
        sources: spec.sources.clone(),
        trackers: spec.trackers.clone(),
        torrent: None,
    };
    let failed = |source| GatewayError::Network {
        network: net.id().to_string(),
        source,
    };
    let lookup = async {
        let mut events = net.identify(req).await.map_err(failed)?;
        let mut found = None;
        let mut name = None;
        let mut files = Vec::new();
        while let Some(ev) = events.next().await {
            match ev {
                FetchEvent::Identified(id) if id.size.is_some() => found = Some(id),
                FetchEvent::Named(n) => name = Some(n),
                // Sent before the hashes.
                FetchEvent::Files(f) => files = f,
                _ => {}
            }
            // The name follows the hashes at once; the stream ends right after.
            if found.is_some() && name.is_some() {
                break;
            }
        }
        if let Some(id) = found {
            return Ok((id, name, files));
        }
        Err(failed(NetworkError::Unreachable(
            "no peer sent the content's metadata (its size is needed to start); add xl=SIZE to the link, or try again when its peers are reachable".into(),
        )))
    };
    tokio::time::timeout(limit, lookup).await.unwrap_or_else(|_| {
        Err(failed(NetworkError::Timeout(format!(
            "no peer sent the content's metadata within {} s (its size is needed to start); add xl=SIZE to the link, or try again",
            limit.as_secs()
        ))))
    })
}
