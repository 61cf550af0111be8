//! Bridging on demand: the gateway's side of [`junction_core::Bridge`]. A network's legacy
//! clients search the other networks through it, and a file they ask for is fetched as
//! any transfer is; once complete, the download bridge offers it on every network.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use junction_core::{
    Bridge, BridgedBytes, BridgedItem, ContentId, HashKind, Identity, NetworkError, NetworkId,
};

use super::recent::Recent;
use crate::identity::IdentityIndex;
use crate::search::{SearchEvent, SearchHub, SearchParams};
use crate::transfer::{StartSpec, WeakTransfers};

/// Most items one bridged search returns.
const MAX_ITEMS: u32 = 200;
/// Most keywords taken from a legacy client's query.
const MAX_KEYWORDS: usize = 8;

/// The gateway's bridge. It holds the gateway's parts weakly, as the networks that hold
/// it are held by the gateway.
#[derive(Debug, Clone)]
pub struct OnDemand {
    pub(crate) hub: Weak<SearchHub>,
    pub(crate) identities: Weak<IdentityIndex>,
    pub(crate) transfers: WeakTransfers,
    pub(crate) networks: Vec<NetworkId>,
    pub(crate) deadline: Duration,
    /// Searches by hash, remembered and joined.
    pub(crate) recent: Arc<Recent>,
}

impl OnDemand {
    async fn run_search(
        &self,
        asking: NetworkId,
        keywords: Vec<String>,
        needs: HashKind,
    ) -> Vec<BridgedItem> {
        self.bridged(asking, query_text(&keywords), needs, |_| true)
            .await
    }

    /// The files that are the content `id` names, searched by every hash the identity
    /// graph links to its own; a hash asked for again soon is answered from memory.
    async fn run_search_id(
        &self,
        asking: NetworkId,
        id: ContentId,
        needs: HashKind,
    ) -> Vec<BridgedItem> {
        let Some(identities) = self.identities.upgrade() else {
            return Vec::new();
        };
        let id = identities.complete(&id);
        drop(identities);
        let key = format!("{asking} {needs:?} {}", id.urns().join(" "));
        let me = self.clone();
        let search = move || {
            async move {
                let query = id_query(&id);
                me.bridged(asking, query, needs, |c| c.relation(&id) == Identity::Same)
                    .await
            }
            .boxed()
        };
        self.recent.answer(key, search).await
    }

    /// Runs `query` on every network but `asking` and returns the items `keep` accepts
    /// whose `needs` hash is known.
    async fn bridged(
        &self,
        asking: NetworkId,
        query: String,
        needs: HashKind,
        keep: impl Fn(&ContentId) -> bool,
    ) -> Vec<BridgedItem> {
        let networks: Vec<String> = self
            .networks
            .iter()
            .filter(|n| **n != asking)
            .map(|n| n.to_string())
            .collect();
        let (Some(hub), Some(identities)) = (self.hub.upgrade(), self.identities.upgrade()) else {
            return Vec::new();
        };
        if query.is_empty() || networks.is_empty() {
            return Vec::new();
        }
        let params = SearchParams {
            query: query.clone(),
            networks,
            timeout: Some(self.deadline),
            max_items: Some(MAX_ITEMS),
        };
        let mut rx = match hub.start(params) {
            Ok(rx) => rx,
            Err(e) => {
                tracing::debug!(%query, error = %e, "bridged search not started");
                return Vec::new();
            }
        };
        drop(hub);
        let mut items = HashMap::new();
        let collect = async {
            while let Some(e) = rx.recv().await {
                match e {
                    SearchEvent::Item(i) | SearchEvent::Update(i) => {
                        items.insert(i.id.clone(), i);
                    }
                    SearchEvent::Finished { .. } => break,
                    SearchEvent::Progress(_) => {}
                }
            }
        };
        // The hub keeps its own deadline; this one only guards against a stuck network.
        let _ = tokio::time::timeout(self.deadline + Duration::from_secs(1), collect).await;
        let mut out: Vec<BridgedItem> = items
            .into_values()
            .filter_map(|i| {
                let mut id = identities.complete(&i.content);
                id.size = Some(i.size);
                // Never invent a hash: only what hits or the identity graph gave.
                (i.size > 0 && id.get(needs).is_some() && keep(&id)).then(|| BridgedItem {
                    name: i.name,
                    sources: i.availability.iter().map(|a| a.sources).sum(),
                    id,
                })
            })
            .collect();
        out.sort_by(|a, b| b.sources.cmp(&a.sources).then(a.name.cmp(&b.name)));
        tracing::info!(%asking, %query, items = out.len(), "bridged search");
        out
    }

    fn start(&self, asking: NetworkId, item: BridgedItem) -> Result<(), NetworkError> {
        let (Some(transfers), Some(identities)) =
            (self.transfers.upgrade(), self.identities.upgrade())
        else {
            return Err(NetworkError::Shutdown);
        };
        let content = identities.complete(&item.id);
        let Some(size) = content.size.filter(|&s| s > 0) else {
            return Err(NetworkError::NotFound(format!(
                "no size is known for {:?}",
                item.name
            )));
        };
        let spec = StartSpec {
            name: item.name,
            size: Some(size),
            content,
            ..Default::default()
        };
        match transfers.start(spec) {
            Ok(t) => {
                tracing::info!(%asking, id = %t.id, name = %t.name, "bridged transfer for a legacy client");
                Ok(())
            }
            Err(e) => Err(NetworkError::Invalid(e.to_string())),
        }
    }
}

impl Bridge for OnDemand {
    fn search(
        &self,
        asking: NetworkId,
        keywords: Vec<String>,
        needs: HashKind,
    ) -> BoxFuture<'_, Vec<BridgedItem>> {
        Box::pin(self.run_search(asking, keywords, needs))
    }

    fn search_id(
        &self,
        asking: NetworkId,
        id: ContentId,
        needs: HashKind,
    ) -> BoxFuture<'_, Vec<BridgedItem>> {
        Box::pin(self.run_search_id(asking, id, needs))
    }

    fn fetch(&self, asking: NetworkId, item: BridgedItem) -> Result<(), NetworkError> {
        self.start(asking, item)
    }

    fn bytes(&self, item: &BridgedItem) -> Option<std::sync::Arc<dyn BridgedBytes>> {
        let transfers = self.transfers.upgrade()?;
        let sink = transfers.partial(&item.id)?;
        Some(sink)
    }
}

/// The keywords as a gateway query: words only, so nothing in a legacy client's query
/// is read as query syntax (`net:`, `-`, quotes).
fn query_text(keywords: &[String]) -> String {
    keywords
        .iter()
        .flat_map(|k| k.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .take(MAX_KEYWORDS)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An id as a gateway query: a magnet with every hash (and the size), which the query
/// parser reads as one id, so each network searches by the hashes it knows.
fn id_query(id: &ContentId) -> String {
    let mut q = String::from("magnet:?");
    let xts: Vec<String> = id.urns().iter().map(|u| format!("xt={u}")).collect();
    q.push_str(&xts.join("&"));
    if let Some(size) = id.size {
        q.push_str(&format!("&xl={size}"));
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_become_plain_words() {
        let k = vec!["net:ed2k".to_string(), "-x".into(), "\"two words\"".into()];
        assert_eq!(query_text(&k), "net ed2k x two words");
        assert_eq!(query_text(&[]), "");
        let many: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
        assert_eq!(query_text(&many).split(' ').count(), MAX_KEYWORDS);
    }

    #[test]
    fn an_id_becomes_a_query_for_that_id() {
        let mut id = ContentId::new(Some(42));
        id.set(HashKind::Sha1, &[3; 20]);
        id.set(HashKind::Ed2k, &[4; 16]);
        let q = junction_core::query::parse(&id_query(&id)).unwrap();
        match &q.expr {
            junction_core::query::Expr::Id(parsed) => assert_eq!(parsed, &id),
            other => panic!("{other:?}"),
        }
        let mut sha1 = ContentId::new(None);
        sha1.set(HashKind::Sha1, &[3; 20]);
        assert!(junction_core::query::parse(&id_query(&sha1)).is_ok());
    }
}
