//! Bridging on demand: a network's own clients (aMule, gtk-gnutella) reach, through
//! Junction, content that only the other networks have and Junction does not hold yet.
//!
//! The gateway implements [`Bridge`] and attaches it to every network
//! ([`crate::Network::attach_bridge`]). A network that serves legacy clients (eD2k's index
//! server, Gnutella's ultrapeer) asks it to search the other networks, and, when a client
//! asks for one of the results, to fetch it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

    /// Searches every network but `asking` for the content `id` names by its hashes (a
    /// Gnutella query by `urn:sha1`), with every hash the identity graph links to them,
    /// and returns the files that are that content and whose `needs` hash is known.
    fn search_id(
        &self,
        _asking: NetworkId,
        _id: ContentId,
        _needs: HashKind,
    ) -> BoxFuture<'_, Vec<BridgedItem>> {
        Box::pin(async { Vec::new() })
    }

    /// A legacy client of `asking` asks for `item` (one [`Bridge::search`] gave): start a
    /// transfer of it over every network, or join the one running. The network serves it
    /// once it is shared, as every finished download is.
    fn fetch(&self, asking: NetworkId, item: BridgedItem) -> Result<(), NetworkError>;

    /// The verified bytes of `item` while the gateway fetches it, for a network that can
    /// serve a file before it is complete (Gnutella's partial sharing). `None` when no
    /// transfer of it runs.
    fn bytes(&self, _item: &BridgedItem) -> Option<Arc<dyn BridgedBytes>> {
        None
    }
}

/// A file the gateway is fetching, as far as it is verified.
pub trait BridgedBytes: Send + Sync {
    fn size(&self) -> u64;
    /// The verified ranges.
    fn verified(&self) -> crate::RangeSet;
    /// Verified bytes from `offset` on, up to `max`; `None` when `offset` is not verified.
    fn read_verified(&self, offset: u64, max: usize) -> std::io::Result<Option<bytes::Bytes>>;
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

/// Bridged results remembered for the requests that follow a search.
const MAX_OFFERED: usize = 4096;
/// How long a bridged result stays askable after the search that gave it.
const OFFER_TIME: Duration = Duration::from_secs(3600);
/// Bridged searches one network runs at once: each fans out over every other network, so
/// a client flooding searches must not multiply that work.
const MAX_SEARCHES: usize = 4;
/// Bridged files one network's clients may have the gateway fetch within [`OFFER_TIME`]:
/// each is a transfer on the operator's disk and links.
const MAX_FETCHES: usize = 32;

/// What one network offered its legacy clients on behalf of the others, by the hash its
/// clients name files by (an ed2k hash, a SHA-1), so that their later requests for it
/// start the gateway's transfer.
#[derive(Debug)]
pub struct BridgeOffers<K> {
    network: NetworkId,
    slot: BridgeSlot,
    offered: Mutex<HashMap<K, Offered>>,
    searching: std::sync::atomic::AtomicUsize,
}

/// One bridged search in flight, counted until dropped.
struct Searching<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Searching<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What a legacy client searched for.
enum Ask {
    Keywords(Vec<String>),
    Id(ContentId),
}

#[derive(Debug)]
struct Offered {
    item: BridgedItem,
    at: Instant,
    fetching: bool,
}

impl<K: Hash + Eq + Copy> BridgeOffers<K> {
    pub fn new(network: NetworkId) -> Self {
        BridgeOffers {
            network,
            slot: BridgeSlot::default(),
            offered: Mutex::new(HashMap::new()),
            searching: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn attach(&self, bridge: Arc<dyn Bridge>) {
        self.slot.set(bridge);
    }

    /// Whether the gateway attached a bridge.
    pub fn attached(&self) -> bool {
        self.slot.get().is_some()
    }

    fn offered(&self) -> MutexGuard<'_, HashMap<K, Offered>> {
        self.offered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Searches the other networks for `keywords`; keeps and returns the items `key` names.
    pub async fn search(
        &self,
        keywords: Vec<String>,
        needs: HashKind,
        key: impl Fn(&BridgedItem) -> Option<K>,
    ) -> Vec<(K, BridgedItem)> {
        if keywords.is_empty() {
            return Vec::new();
        }
        self.ask(Ask::Keywords(keywords), needs, key).await
    }

    /// Searches the other networks for the content `id` names; keeps and returns the
    /// items `key` names.
    pub async fn search_id(
        &self,
        id: ContentId,
        needs: HashKind,
        key: impl Fn(&BridgedItem) -> Option<K>,
    ) -> Vec<(K, BridgedItem)> {
        if id.hashes().next().is_none() {
            return Vec::new();
        }
        self.ask(Ask::Id(id), needs, key).await
    }

    async fn ask(
        &self,
        ask: Ask,
        needs: HashKind,
        key: impl Fn(&BridgedItem) -> Option<K>,
    ) -> Vec<(K, BridgedItem)> {
        let Some(bridge) = self.slot.get() else {
            return Vec::new();
        };
        let order = std::sync::atomic::Ordering::Relaxed;
        if self.searching.fetch_add(1, order) >= MAX_SEARCHES {
            self.searching.fetch_sub(1, order);
            tracing::debug!(network = %self.network, "bridged search refused: too many at once");
            return Vec::new();
        }
        let _searching = Searching(&self.searching);
        let items = match ask {
            Ask::Keywords(words) => bridge.search(self.network, words, needs).await,
            Ask::Id(id) => bridge.search_id(self.network, id, needs).await,
        };
        let found: Vec<(K, BridgedItem)> = items
            .into_iter()
            .filter_map(|i| Some((key(&i)?, i)))
            .collect();
        let mut offered = self.offered();
        offered.retain(|_, o| o.at.elapsed() < OFFER_TIME);
        for (k, item) in &found {
            if offered.len() >= MAX_OFFERED && !offered.contains_key(k) {
                break;
            }
            let o = offered.entry(*k).or_insert_with(|| Offered {
                item: item.clone(),
                at: Instant::now(),
                fetching: false,
            });
            o.at = Instant::now();
        }
        found
    }

    /// The bridged result named `k`, if one was offered.
    pub fn get(&self, k: &K) -> Option<BridgedItem> {
        self.offered()
            .get(k)
            .filter(|o| o.at.elapsed() < OFFER_TIME)
            .map(|o| o.item.clone())
    }

    /// What the gateway has verified of the bridged file `k` so far.
    pub fn bytes(&self, k: &K) -> Option<Arc<dyn BridgedBytes>> {
        let item = self.get(k)?;
        self.slot.get()?.bytes(&item)
    }

    /// A client asks for the bridged file `k`: the gateway fetches it (asked once).
    pub fn want(&self, k: &K) -> Option<BridgedItem> {
        let item = {
            let mut offered = self.offered();
            let o = offered.get_mut(k).filter(|o| o.at.elapsed() < OFFER_TIME)?;
            if o.fetching {
                return Some(o.item.clone());
            }
            let item = o.item.clone();
            if offered.values().filter(|o| o.fetching).count() >= MAX_FETCHES {
                tracing::warn!(network = %self.network, name = %item.name, "bridged fetch refused: {MAX_FETCHES} started within the hour");
                return None;
            }
            if let Some(o) = offered.get_mut(k) {
                o.fetching = true;
            }
            item
        };
        if let Some(bridge) = self.slot.get() {
            match bridge.fetch(self.network, item.clone()) {
                Ok(()) => {
                    tracing::info!(network = %self.network, name = %item.name, "fetching a bridged file a client asked for")
                }
                Err(e) => {
                    tracing::warn!(network = %self.network, name = %item.name, error = %e, "bridged file not fetched")
                }
            }
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Fake {
        fetched: Mutex<Vec<String>>,
    }

    impl Bridge for Fake {
        fn search(
            &self,
            _asking: NetworkId,
            keywords: Vec<String>,
            _needs: HashKind,
        ) -> BoxFuture<'_, Vec<BridgedItem>> {
            let items = keywords
                .into_iter()
                .map(|k| BridgedItem {
                    name: k,
                    id: ContentId::default(),
                    sources: 1,
                })
                .collect();
            Box::pin(async move { items })
        }

        /// The content itself, named "by id".
        fn search_id(
            &self,
            _asking: NetworkId,
            id: ContentId,
            _needs: HashKind,
        ) -> BoxFuture<'_, Vec<BridgedItem>> {
            let item = BridgedItem {
                name: "by id".into(),
                id,
                sources: 1,
            };
            Box::pin(async move { vec![item] })
        }

        fn fetch(&self, _asking: NetworkId, item: BridgedItem) -> Result<(), NetworkError> {
            self.fetched.lock().unwrap().push(item.name);
            Ok(())
        }
    }

    /// A search by hash is offered as a search by keywords is; one with no hash is none.
    #[tokio::test]
    async fn a_search_by_hash_is_offered_and_fetched() {
        let offers: BridgeOffers<usize> = BridgeOffers::new(NetworkId::GNUTELLA);
        let fake = Arc::new(Fake::default());
        offers.attach(fake.clone());
        let key = |i: &BridgedItem| i.id.get(HashKind::Sha1).map(|d| usize::from(d[0]));
        let none = offers.search_id(ContentId::new(Some(5)), HashKind::Sha1, key);
        assert!(none.await.is_empty());
        let mut id = ContentId::new(None);
        id.set(HashKind::Sha1, &[9; 20]);
        let found = offers.search_id(id, HashKind::Sha1, key).await;
        assert_eq!(found.len(), 1);
        assert_eq!(offers.want(&9).map(|i| i.name), Some("by id".to_string()));
        assert_eq!(*fake.fetched.lock().unwrap(), ["by id"]);
    }

    /// A bridge whose searches never end.
    #[derive(Debug)]
    struct Stuck;

    impl Bridge for Stuck {
        fn search(
            &self,
            _: NetworkId,
            _: Vec<String>,
            _: HashKind,
        ) -> BoxFuture<'_, Vec<BridgedItem>> {
            Box::pin(futures::future::pending())
        }
        fn fetch(&self, _: NetworkId, _: BridgedItem) -> Result<(), NetworkError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn searches_at_once_are_bounded() {
        let offers: BridgeOffers<usize> = BridgeOffers::new(NetworkId::GNUTELLA);
        offers.attach(Arc::new(Stuck));
        let key = |_: &BridgedItem| Some(0);
        let mut running: Vec<_> = (0..MAX_SEARCHES)
            .map(|_| Box::pin(offers.search(vec!["x".into()], HashKind::Sha1, key)))
            .collect();
        for f in &mut running {
            assert!(futures::poll!(f).is_pending());
        }
        let refused = offers.search(vec!["x".into()], HashKind::Sha1, key);
        assert_eq!(futures::FutureExt::now_or_never(refused), Some(Vec::new()));
        // One ends: another may start.
        running.pop();
        let mut next = Box::pin(offers.search(vec!["x".into()], HashKind::Sha1, key));
        assert!(futures::poll!(&mut next).is_pending());
    }

    #[tokio::test]
    async fn an_offer_is_fetched_once_and_only_when_asked_for() {
        let offers: BridgeOffers<usize> = BridgeOffers::new(NetworkId::ED2K);
        let none = offers
            .search(vec!["a".into()], HashKind::Ed2k, |i| Some(i.name.len()))
            .await;
        assert!(none.is_empty(), "no bridge attached yet");
        let fake = Arc::new(Fake::default());
        offers.attach(fake.clone());
        let found = offers
            .search(vec!["a".into(), "bb".into()], HashKind::Ed2k, |i| {
                (i.name != "a").then_some(i.name.len())
            })
            .await;
        assert_eq!(found.len(), 1, "an item without the key is not offered");
        assert!(offers.get(&2).is_some() && offers.get(&1).is_none());
        assert!(
            fake.fetched.lock().unwrap().is_empty(),
            "a search fetches nothing"
        );
        assert_eq!(offers.want(&2).map(|i| i.name), Some("bb".to_string()));
        assert!(offers.want(&2).is_some());
        assert_eq!(*fake.fetched.lock().unwrap(), ["bb"], "asked once");
        assert!(offers.want(&7).is_none(), "never offered");
        // Past the bound within the hour, a new fetch is refused.
        let many: Vec<String> = (100..100 + MAX_FETCHES).map(|n| n.to_string()).collect();
        offers
            .search(many, HashKind::Ed2k, |i| i.name.parse().ok())
            .await;
        let fetched = (100..100 + MAX_FETCHES)
            .filter(|n| offers.want(n).is_some())
            .count();
        assert_eq!(fetched, MAX_FETCHES - 1, "one fetch ran already");
        assert_eq!(fake.fetched.lock().unwrap().len(), MAX_FETCHES);
    }
}
