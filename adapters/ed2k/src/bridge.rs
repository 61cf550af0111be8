//! Bridging on demand, eD2k's side: what Junction's index server offers aMule on behalf of
//! the other networks, and what Junction's client then serves.
//!
//! A search on the index server also goes to the gateway's other networks. A result with a
//! real ed2k hash is listed with Junction's own client as its source. When a client asks
//! the server for that file's sources, or asks Junction's client for the file, the gateway
//! fetches it; Junction's client queues the asker until the file is complete and shared
//! (aMule needs the part-hash set before any byte, and that needs every byte).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use junction_core::{BridgeSlot, BridgedItem, HashKind, NetworkId};

use crate::wire::{Hash16, SearchExpr};

/// Bridged results remembered for source requests and file requests.
const MAX_OFFERED: usize = 4096;
/// How long a bridged result stays askable after the search that gave it.
const OFFER_TIME: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
pub(crate) struct OnDemand {
    pub slot: BridgeSlot,
    /// The adapter's own user hash: the index server lists that client as the source.
    pub own_user_hash: Hash16,
    offered: Mutex<HashMap<Hash16, Offered>>,
}

#[derive(Debug)]
struct Offered {
    item: BridgedItem,
    at: Instant,
    fetching: bool,
}

impl OnDemand {
    pub fn new(own_user_hash: Hash16) -> Arc<OnDemand> {
        Arc::new(OnDemand {
            own_user_hash,
            ..Default::default()
        })
    }

    fn offered(&self) -> MutexGuard<'_, HashMap<Hash16, Offered>> {
        self.offered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Searches the other networks for an eD2k search; remembers what it gives.
    pub async fn search(&self, expr: &SearchExpr) -> Vec<(Hash16, BridgedItem)> {
        let Some(bridge) = self.slot.get() else {
            return Vec::new();
        };
        let words = keywords(expr);
        if words.is_empty() {
            return Vec::new();
        }
        let items = bridge.search(NetworkId::ED2K, words, HashKind::Ed2k).await;
        let found: Vec<(Hash16, BridgedItem)> = items
            .into_iter()
            .filter_map(|i| {
                let h: Hash16 = i.id.get(HashKind::Ed2k)?.try_into().ok()?;
                Some((h, i))
            })
            .collect();
        let mut offered = self.offered();
        offered.retain(|_, o| o.at.elapsed() < OFFER_TIME);
        for (h, item) in &found {
            if offered.len() >= MAX_OFFERED && !offered.contains_key(h) {
                break;
            }
            let e = offered.entry(*h).or_insert_with(|| Offered {
                item: item.clone(),
                at: Instant::now(),
                fetching: false,
            });
            e.at = Instant::now();
        }
        found
    }

    /// The bridged result with this hash, if one was offered.
    pub fn get(&self, hash: &Hash16) -> Option<BridgedItem> {
        self.offered()
            .get(hash)
            .filter(|o| o.at.elapsed() < OFFER_TIME)
            .map(|o| o.item.clone())
    }

    /// A client wants this bridged file: the gateway fetches it (once). Returns the item.
    pub fn want(&self, hash: &Hash16) -> Option<BridgedItem> {
        let item = {
            let mut offered = self.offered();
            let o = offered
                .get_mut(hash)
                .filter(|o| o.at.elapsed() < OFFER_TIME)?;
            if o.fetching {
                return Some(o.item.clone());
            }
            o.fetching = true;
            o.item.clone()
        };
        if let Some(bridge) = self.slot.get() {
            let it = item.clone();
            tokio::spawn(async move {
                let name = it.name.clone();
                match bridge.fetch(NetworkId::ED2K, it).await {
                    Ok(()) => {
                        tracing::info!(%name, "fetching a bridged file an eD2k client asked for")
                    }
                    Err(e) => tracing::warn!(%name, error = %e, "bridged file not fetched"),
                }
            });
        }
        Some(item)
    }
}

/// The words a search looks for: every keyword and file-name term outside a NOT branch.
/// (The gateway ANDs them; the server's own evaluator then applies the whole expression.)
pub(crate) fn keywords(expr: &SearchExpr) -> Vec<String> {
    let mut out = Vec::new();
    collect(expr, &mut out);
    out
}

fn collect(expr: &SearchExpr, out: &mut Vec<String>) {
    match expr {
        SearchExpr::And(a, b) | SearchExpr::Or(a, b) => {
            collect(a, out);
            collect(b, out);
        }
        SearchExpr::Not(a, _) => collect(a, out),
        SearchExpr::Keywords(k) => out.extend(k.to_string().split_whitespace().map(str::to_owned)),
        SearchExpr::MetaString { value, tag }
            if *tag == crate::wire::TagName::Id(crate::wire::tag::ft::FILENAME) =>
        {
            out.push(value.to_string())
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> Box<SearchExpr> {
        Box::new(SearchExpr::Keywords(s.into()))
    }

    #[test]
    fn keywords_skip_what_a_not_excludes() {
        let e = SearchExpr::Not(
            Box::new(SearchExpr::And(kw("big buck"), kw("bunny"))),
            kw("trailer"),
        );
        assert_eq!(keywords(&e), ["big", "buck", "bunny"]);
    }
}
