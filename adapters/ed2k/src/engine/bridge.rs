//! Bridging on demand, eD2k's side: what Junction's index server offers aMule on behalf of
//! the other networks, and what Junction's client then serves.
//!
//! A search on the index server also goes to the gateway's other networks. A result with a
//! real ed2k hash is listed with Junction's own client as its source. When a client asks
//! the server for that file's sources, or asks Junction's client for the file, the gateway
//! fetches it; Junction's client queues the asker until the file is complete and shared
//! (aMule needs the part-hash set before any byte, and that needs every byte).

use junction_core::{BridgeOffers, BridgedItem, HashKind, NetworkId};

use crate::wire::{Hash16, SearchExpr};

/// The files the index server offered from the other networks, and the adapter's own
/// user hash: the index server lists that client as their source.
#[derive(Debug)]
pub(crate) struct OnDemand {
    pub offers: BridgeOffers<Hash16>,
    pub own_user_hash: Hash16,
}

impl OnDemand {
    pub fn new(own_user_hash: Hash16) -> std::sync::Arc<OnDemand> {
        std::sync::Arc::new(OnDemand {
            offers: BridgeOffers::new(NetworkId::ED2K),
            own_user_hash,
        })
    }

    /// Searches the other networks for an eD2k search.
    pub async fn search(&self, expr: &SearchExpr) -> Vec<(Hash16, BridgedItem)> {
        let key = |i: &BridgedItem| i.id.get(HashKind::Ed2k)?.try_into().ok();
        self.offers
            .search(keywords(expr), HashKind::Ed2k, key)
            .await
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
