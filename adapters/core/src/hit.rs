//! What networks report: search hits and the sources that hold content.

use crate::{ContentId, NetworkId};

/// One search result from one network.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub network: NetworkId,
    pub id: ContentId,
    pub name: String,
    pub size: u64,
    /// Peers that have the content (or part of it), as far as the network knows.
    pub sources: u32,
    /// Peers with the whole content (complete sources, seeders), when known.
    pub complete_sources: Option<u32>,
    /// Concrete peers, when the hit names them (Gnutella hits do).
    pub locations: Vec<Source>,
    /// A link that fetches it on this network (`ed2k://…`, `magnet:…`), when there is one.
    pub link: Option<String>,
}

impl Hit {
    pub fn new(network: NetworkId, id: ContentId, name: impl Into<String>, size: u64) -> Self {
        Hit {
            network,
            id,
            name: name.into(),
            size,
            sources: 0,
            complete_sources: None,
            locations: Vec::new(),
            link: None,
        }
    }
}

/// A peer that holds content, as its network addresses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    pub network: NetworkId,
    /// `host:port`, or whatever the network needs to reach the peer (a push route…).
    pub address: String,
    /// Network-specific detail, e.g. a Gnutella servent GUID or a file index.
    pub detail: Option<String>,
}
