//! Pure routing state: GUID de-duplication, reverse paths for replies, push
//! routes, and the TTL/hops rules. No I/O, so it is unit-tested directly.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::wire::descriptor_header::{Header, kind};

use crate::wire::guid::Guid;

/// A connection id inside the servent.
pub type ConnId = u64;

/// Hard limit on `ttl + hops` for anything we accept (gtk-gnutella's `hard_ttl_limit`).
pub const HARD_TTL_LIMIT: u16 = 15;

/// Where a message came from, so its replies can be sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// We originated it.
    Local,
    /// It came in on this connection.
    Peer(ConnId),
}

/// A map bounded by insertion order: the oldest key goes when full.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    /// An empty map holding at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Insert or replace; evicts the oldest entries beyond the bound.
    pub fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.map.len() > self.cap {
                let Some(old) = self.order.pop_front() else {
                    break;
                };
                self.map.remove(&old);
            }
        }
    }

    /// The value for `k`.
    pub fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    /// Mutable value for `k`.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k)
    }

    /// Whether `k` is present.
    pub fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The class a message's GUID is remembered under: replies look up their request.
fn class(kind: u8) -> u8 {
    match kind {
        kind::PONG => kind::PING,
        kind::QUERY_HIT => kind::QUERY,
        k => k,
    }
}

/// What to do with an incoming broadcast descriptor's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Process it; the header has its TTL trimmed to our maximum.
    Accept(Header),
    /// Already seen: drop.
    Duplicate,
    /// Against the TTL rules: drop.
    BadTtl,
}

/// GUID routing tables.
#[derive(Debug)]
pub struct Router {
    seen: Bounded<(Guid, u8), Route>,
    pushes: Bounded<Guid, ConnId>,
    max_ttl: u8,
}

impl Router {
    /// Tables remembering `cap` GUIDs each; relayed TTLs trimmed to `max_ttl`.
    pub fn new(cap: usize, max_ttl: u8) -> Self {
        Router {
            seen: Bounded::new(cap),
            pushes: Bounded::new(cap),
            max_ttl: max_ttl.max(1),
        }
    }

    /// Remember a message we originate, so its replies come to us.
    pub fn originate(&mut self, guid: Guid, kind: u8) {
        self.seen.insert((guid, class(kind)), Route::Local);
    }

    /// Check an incoming broadcast (Ping, Query): TTL rules, then de-duplication.
    /// Accepted GUIDs are remembered with `from` as their reverse path.
    pub fn inbound(&mut self, h: &Header, from: ConnId) -> Inbound {
        if h.ttl == 0 || u16::from(h.ttl) + u16::from(h.hops) > HARD_TTL_LIMIT {
            return Inbound::BadTtl;
        }
        let key = (h.guid, class(h.kind));
        if self.seen.contains(&key) {
            return Inbound::Duplicate;
        }
        self.seen.insert(key, Route::Peer(from));
        let mut out = *h;
        out.ttl = out.ttl.min(self.max_ttl);
        Inbound::Accept(out)
    }

    /// Where a reply (Pong, QueryHit) to `guid` must go.
    pub fn reply_route(&self, guid: Guid, reply_kind: u8) -> Option<Route> {
        self.seen.get(&(guid, class(reply_kind))).copied()
    }

    /// A QueryHit from `servent` came in on `from`: Pushes for it go there.
    pub fn learn_push(&mut self, servent: Guid, from: ConnId) {
        if let Some(c) = self.pushes.get_mut(&servent) {
            *c = from;
        } else {
            self.pushes.insert(servent, from);
        }
    }

    /// The connection towards `servent`, learnt from its hits.
    pub fn push_route(&self, servent: Guid) -> Option<ConnId> {
        self.pushes.get(&servent).copied()
    }

    /// GUIDs remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The header for relaying `h` one hop further (`ttl - 1`, `hops + 1`), or
/// `None` when its TTL is used up.
pub fn next_hop(h: &Header) -> Option<Header> {
    let ttl = h.ttl.checked_sub(1).filter(|t| *t > 0)?;
    let mut out = *h;
    out.ttl = ttl;
    out.hops = h.hops.saturating_add(1);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(g: u8, ttl: u8, hops: u8) -> Header {
        Header::new(Guid([g; 16]), kind::QUERY, ttl, hops, 0)
    }

    #[test]
    fn duplicates_are_dropped_and_replies_routed_back() {
        let mut r = Router::new(8, 4);
        assert!(matches!(r.inbound(&q(1, 3, 0), 7), Inbound::Accept(_)));
        assert_eq!(r.inbound(&q(1, 3, 0), 9), Inbound::Duplicate);
        assert_eq!(
            r.reply_route(Guid([1; 16]), kind::QUERY_HIT),
            Some(Route::Peer(7))
        );
        assert_eq!(r.reply_route(Guid([1; 16]), kind::PONG), None);
        r.originate(Guid([2; 16]), kind::PING);
        assert_eq!(r.reply_route(Guid([2; 16]), kind::PONG), Some(Route::Local));
    }

    #[test]
    fn ttl_rules() {
        let mut r = Router::new(8, 4);
        assert_eq!(r.inbound(&q(1, 0, 2), 1), Inbound::BadTtl);
        assert_eq!(r.inbound(&q(2, 10, 6), 1), Inbound::BadTtl);
        let Inbound::Accept(h) = r.inbound(&q(3, 9, 1), 1) else {
            panic!("accepted");
        };
        assert_eq!(h.ttl, 4, "trimmed to max TTL");
        let n = next_hop(&h).unwrap();
        assert_eq!((n.ttl, n.hops), (3, 2));
        assert!(next_hop(&q(4, 1, 0)).is_none());
    }

    proptest::proptest! {
        #[test]
        fn inbound_rules_hold_for_any_header(
            msgs in proptest::collection::vec((0u8..32, 0u8..=255, 0u8..=255, 0u64..4), 0..200),
        ) {
            let mut r = Router::new(16, 4);
            for (g, ttl, hops, from) in msgs {
                let h = Header::new(Guid([g; 16]), kind::QUERY, ttl, hops, 0);
                if let Inbound::Accept(out) = r.inbound(&h, from) {
                    proptest::prop_assert!(out.ttl >= 1 && out.ttl <= 4);
                    proptest::prop_assert!(u16::from(ttl) + u16::from(hops) <= HARD_TTL_LIMIT);
                    proptest::prop_assert_eq!(r.inbound(&h, from), Inbound::Duplicate);
                    if let Some(n) = next_hop(&out) {
                        proptest::prop_assert!(n.ttl < out.ttl && n.hops == out.hops.saturating_add(1));
                    }
                }
                proptest::prop_assert!(r.len() <= 16);
            }
        }
    }

    #[test]
    fn tables_are_bounded() {
        let mut r = Router::new(4, 4);
        for g in 0..100u8 {
            r.inbound(&q(g, 2, 0), 1);
        }
        assert_eq!(r.len(), 4);
        assert!(r.reply_route(Guid([99; 16]), kind::QUERY_HIT).is_some());
        assert!(r.reply_route(Guid([0; 16]), kind::QUERY_HIT).is_none());
        r.learn_push(Guid([5; 16]), 3);
        r.learn_push(Guid([5; 16]), 4);
        assert_eq!(r.push_route(Guid([5; 16])), Some(4));
    }
}
