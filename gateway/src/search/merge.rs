//! Merging hits into items by content identity, and ranking them.
//!
//! A hit joins an item when a hash both carry matches and nothing conflicts
//! ([`ContentId::relation`]); otherwise it starts a new item. Hits without any hash are
//! never merged: a name and a size alone do not prove two files are the same.

use std::collections::{BTreeMap, HashMap};

use junction_core::query::{FileType, text_contains};
use junction_core::{ContentId, HashKind, Hit, Identity, NetworkId, Source};

/// One merged result, as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub content: ContentId,
    pub availability: Vec<Availability>,
    pub other_names: Vec<String>,
    pub score: f64,
    pub file_type: Option<FileType>,
    pub links: Vec<String>,
    /// Peers the hits named, for starting a transfer.
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub network: NetworkId,
    pub sources: u32,
    pub complete_sources: Option<u32>,
}

#[derive(Debug, Default)]
struct NetAvail {
    /// Highest count any hit reported.
    reported: u32,
    complete: Option<u32>,
    /// Distinct peers named by hits (Gnutella reports one peer per hit).
    located: Vec<Source>,
}

#[derive(Debug)]
struct Entry {
    id: String,
    content: ContentId,
    size: u64,
    /// name → how many hits used it
    names: BTreeMap<String, u32>,
    nets: BTreeMap<NetworkId, NetAvail>,
    links: Vec<String>,
}

/// What adding a hit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    New(usize),
    Updated(usize),
}

/// Bounds per item, so one chatty network cannot grow an item without end.
const MAX_NAMES: usize = 16;
const MAX_LOCATIONS: usize = 256;
const MAX_LINKS: usize = 8;

pub struct Merger {
    prefix: String,
    terms: Vec<String>,
    entries: Vec<Entry>,
    /// (kind, digest) → entry index
    index: HashMap<(HashKind, Vec<u8>), usize>,
}

impl Merger {
    /// `prefix` makes item ids unique across searches; `terms` drive relevance.
    pub fn new(prefix: impl Into<String>, terms: Vec<String>) -> Self {
        Merger {
            prefix: prefix.into(),
            terms,
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a hit; `None` when it would start an item beyond `max_items`.
    pub fn add(&mut self, hit: Hit, max_items: usize) -> Option<Merged> {
        let found = hit
            .id
            .hashes()
            .filter_map(|(k, d)| self.index.get(&(k, d.to_vec())).copied())
            .find(|&i| self.entries[i].content.relation(&hit.id) == Identity::Same);
        let (i, merged) = match found {
            Some(i) => (i, Merged::Updated(i)),
            None => {
                if self.entries.len() >= max_items {
                    return None;
                }
                let i = self.entries.len();
                self.entries.push(Entry {
                    id: format!("{}-{}", self.prefix, i + 1),
                    content: ContentId::new(Some(hit.size)),
                    size: hit.size,
                    names: BTreeMap::new(),
                    nets: BTreeMap::new(),
                    links: Vec::new(),
                });
                (i, Merged::New(i))
            }
        };
        let e = &mut self.entries[i];
        e.content.absorb(&hit.id);
        for (k, d) in hit.id.hashes() {
            // A digest already indexed to another item stays there (first come wins).
            self.index.entry((k, d.to_vec())).or_insert(i);
        }
        if e.names.len() < MAX_NAMES || e.names.contains_key(&hit.name) {
            *e.names.entry(hit.name).or_default() += 1;
        }
        if let Some(link) = hit.link
            && e.links.len() < MAX_LINKS
            && !e.links.contains(&link)
        {
            e.links.push(link);
        }
        let net = e.nets.entry(hit.network).or_default();
        net.reported = net.reported.max(hit.sources);
        net.complete = match (net.complete, hit.complete_sources) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for loc in hit.locations {
            if net.located.len() < MAX_LOCATIONS && !net.located.contains(&loc) {
                net.located.push(loc);
            }
        }
        Some(merged)
    }

    /// The item at `i` as the client sees it, with its current score.
    pub fn item(&self, i: usize) -> Item {
        let e = &self.entries[i];
        let mut names: Vec<(&String, &u32)> = e.names.iter().collect();
        // Most used name first; ties by name so the choice is stable.
        names.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let name = names.first().map(|(n, _)| (*n).clone()).unwrap_or_default();
        let availability: Vec<Availability> = e
            .nets
            .iter()
            .map(|(net, a)| Availability {
                network: *net,
                sources: a.reported.max(a.located.len() as u32),
                complete_sources: a.complete,
            })
            .collect();
        let total_names: u32 = e.names.values().sum();
        let consensus = names
            .first()
            .map_or(0.0, |(_, c)| f64::from(**c) / f64::from(total_names.max(1)));
        Item {
            id: e.id.clone(),
            score: score(&self.terms, &name, &availability, consensus),
            file_type: FileType::of_name(&name),
            other_names: names.iter().skip(1).map(|(n, _)| (*n).clone()).collect(),
            name,
            size: e.size,
            content: e.content.clone(),
            availability,
            links: e.links.clone(),
            sources: e
                .nets
                .values()
                .flat_map(|a| a.located.iter().cloned())
                .collect(),
        }
    }

    /// Every item, best first; ties keep arrival order.
    pub fn ranked(&self) -> Vec<Item> {
        let mut items: Vec<Item> = (0..self.entries.len()).map(|i| self.item(i)).collect();
        items.sort_by(|a, b| b.score.total_cmp(&a.score));
        items
    }
}

/// Relevance (share of query terms in the name) weighs most, then availability across
/// networks, then how much the sources agree on the name.
fn score(terms: &[String], name: &str, avail: &[Availability], consensus: f64) -> f64 {
    let relevance = if terms.is_empty() {
        1.0
    } else {
        terms.iter().filter(|t| text_contains(name, t)).count() as f64 / terms.len() as f64
    };
    let sources: u32 = avail.iter().map(|a| a.sources).sum();
    let complete: u32 = avail.iter().filter_map(|a| a.complete_sources).sum();
    let spread = avail.len().saturating_sub(1) as f64;
    relevance * 100.0
        + f64::from(sources).ln_1p() * 4.0
        + f64::from(complete).ln_1p() * 2.0
        + spread * 3.0
        + consensus
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED2K: NetworkId = NetworkId::ED2K;
    const GNUT: NetworkId = NetworkId::GNUTELLA;
    const BT: NetworkId = NetworkId::BITTORRENT;

    fn hit(net: NetworkId, name: &str, size: u64, hashes: &[(HashKind, u8)], sources: u32) -> Hit {
        let mut id = ContentId::new(Some(size));
        for &(k, b) in hashes {
            id.set(k, &vec![b; k.digest_len()]);
        }
        let mut h = Hit::new(net, id, name, size);
        h.sources = sources;
        h
    }

    #[test]
    fn same_sha1_from_two_networks_is_one_item() {
        let mut m = Merger::new("s", vec!["movie".into()]);
        let a = m.add(hit(GNUT, "movie.mkv", 10, &[(HashKind::Sha1, 1)], 1), 100);
        let b = m.add(
            hit(
                ED2K,
                "Movie.mkv",
                10,
                &[(HashKind::Sha1, 1), (HashKind::Ed2k, 7)],
                5,
            ),
            100,
        );
        assert_eq!((a, b), (Some(Merged::New(0)), Some(Merged::Updated(0))));
        // The ed2k hash learnt from the second hit now merges a third, ed2k-only hit.
        let c = m.add(hit(ED2K, "movie.mkv", 10, &[(HashKind::Ed2k, 7)], 9), 100);
        assert_eq!(c, Some(Merged::Updated(0)));
        let item = m.item(0);
        assert_eq!(item.availability.len(), 2);
        assert_eq!(
            item.availability
                .iter()
                .find(|a| a.network == ED2K)
                .unwrap()
                .sources,
            9
        );
        assert_eq!(item.name, "movie.mkv");
        assert_eq!(item.other_names, vec!["Movie.mkv"]);
        assert!(
            item.content.get(HashKind::Ed2k).is_some()
                && item.content.get(HashKind::Sha1).is_some()
        );
    }

    #[test]
    fn conflicting_hashes_never_merge() {
        let mut m = Merger::new("s", vec![]);
        m.add(
            hit(
                GNUT,
                "a",
                10,
                &[(HashKind::Sha1, 1), (HashKind::Ed2k, 1)],
                1,
            ),
            100,
        );
        // Same sha1, different ed2k: a conflict, so a separate item.
        let r = m.add(
            hit(
                ED2K,
                "a",
                10,
                &[(HashKind::Sha1, 1), (HashKind::Ed2k, 2)],
                1,
            ),
            100,
        );
        assert_eq!(r, Some(Merged::New(1)));
        // Same sha1 but another size: also a conflict.
        let r = m.add(hit(ED2K, "a", 11, &[(HashKind::Sha1, 1)], 1), 100);
        assert_eq!(r, Some(Merged::New(2)));
    }

    #[test]
    fn name_and_size_alone_never_merge() {
        let mut m = Merger::new("s", vec![]);
        m.add(hit(GNUT, "same.iso", 10, &[], 1), 100);
        assert_eq!(
            m.add(hit(BT, "same.iso", 10, &[], 1), 100),
            Some(Merged::New(1))
        );
        assert_eq!(
            m.add(hit(BT, "same.iso", 10, &[(HashKind::Btih, 3)], 1), 100),
            Some(Merged::New(2))
        );
    }

    #[test]
    fn max_items_bounds_new_items_but_not_updates() {
        let mut m = Merger::new("s", vec![]);
        m.add(hit(GNUT, "a", 1, &[(HashKind::Sha1, 1)], 1), 1);
        assert_eq!(m.add(hit(GNUT, "b", 1, &[(HashKind::Sha1, 2)], 1), 1), None);
        assert_eq!(
            m.add(hit(ED2K, "a", 1, &[(HashKind::Sha1, 1)], 1), 1),
            Some(Merged::Updated(0))
        );
    }

    #[test]
    fn ranking_prefers_relevance_then_availability() {
        let mut m = Merger::new("s", vec!["ubuntu".into(), "iso".into()]);
        m.add(hit(GNUT, "ubuntu.img", 1, &[(HashKind::Sha1, 1)], 500), 100);
        m.add(hit(GNUT, "ubuntu.iso", 1, &[(HashKind::Sha1, 2)], 1), 100);
        m.add(
            hit(GNUT, "ubuntu desktop.iso", 1, &[(HashKind::Sha1, 3)], 1),
            100,
        );
        m.add(
            hit(ED2K, "ubuntu desktop.iso", 1, &[(HashKind::Sha1, 3)], 3),
            100,
        );
        let names: Vec<String> = m.ranked().into_iter().map(|i| i.name).collect();
        assert_eq!(
            names,
            vec!["ubuntu desktop.iso", "ubuntu.iso", "ubuntu.img"]
        );
    }

    #[test]
    fn locations_count_as_sources() {
        let mut m = Merger::new("s", vec![]);
        for port in [1, 2, 2, 3] {
            let mut h = hit(GNUT, "a", 1, &[(HashKind::Sha1, 1)], 1);
            h.locations.push(Source {
                network: GNUT,
                address: std::net::SocketAddr::from(([127, 0, 0, 1], port)).into(),
                detail: None,
            });
            m.add(h, 100);
        }
        assert_eq!(m.item(0).availability[0].sources, 3);
        assert_eq!(m.item(0).sources.len(), 3);
    }
}
