//! The host cache: addresses learnt from configuration, `add_endpoint`,
//! `X-Try-Ultrapeers` and pongs. Bounded; the newest first. Hosts the user removed
//! are not learnt again until added again.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddrV4;

/// Bounded, de-duplicated list of hosts to try.
#[derive(Debug)]
pub struct HostCache {
    hosts: VecDeque<SocketAddrV4>,
    set: HashSet<SocketAddrV4>,
    cap: usize,
    /// Removed by the user (`remove_endpoint`): never cached again until allowed; the
    /// oldest removal is let go past `cap`.
    removed: VecDeque<SocketAddrV4>,
}

impl HostCache {
    /// A cache of at most `cap` hosts.
    pub fn new(cap: usize) -> Self {
        HostCache {
            hosts: VecDeque::new(),
            set: HashSet::new(),
            cap: cap.max(1),
            removed: VecDeque::new(),
        }
    }

    /// Add (or refresh) a host; port 0, unspecified/broadcast addresses and removed
    /// hosts are ignored.
    pub fn add(&mut self, a: SocketAddrV4) {
        if a.port() == 0
            || a.ip().is_unspecified()
            || a.ip().is_broadcast()
            || a.ip().is_multicast()
            || self.is_removed(&a)
        {
            return;
        }
        if self.set.contains(&a) {
            self.hosts.retain(|h| *h != a);
        } else {
            self.set.insert(a);
        }
        self.hosts.push_front(a);
        while self.hosts.len() > self.cap {
            if let Some(old) = self.hosts.pop_back() {
                self.set.remove(&old);
            }
        }
    }

    /// Forget a host (e.g. it refused us).
    pub fn remove(&mut self, a: &SocketAddrV4) {
        if self.set.remove(a) {
            self.hosts.retain(|h| h != a);
        }
    }

    /// The user removed a host: forget it, and learn it no more (from pongs and
    /// `X-Try-Ultrapeers`) until [`allow`](Self::allow)ed.
    pub fn forget(&mut self, a: SocketAddrV4) {
        self.remove(&a);
        if !self.is_removed(&a) {
            self.removed.push_back(a);
            if self.removed.len() > self.cap {
                self.removed.pop_front();
            }
        }
    }

    /// The host is cached.
    pub fn contains(&self, a: &SocketAddrV4) -> bool {
        self.set.contains(a)
    }

    /// The user added a host again: it may be learnt again.
    pub fn allow(&mut self, a: &SocketAddrV4) {
        self.removed.retain(|r| r != a);
    }

    /// The user removed it (and did not add it again).
    pub fn is_removed(&self, a: &SocketAddrV4) -> bool {
        self.removed.contains(a)
    }

    /// Hosts, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &SocketAddrV4> {
        self.hosts.iter()
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// No host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// The `X-Try-Ultrapeers` list: `candidates` in order, each address once, none of
/// `exclude` (our own addresses and the peer's), no unusable address, at most `max`.
pub fn try_list(
    candidates: impl IntoIterator<Item = SocketAddrV4>,
    exclude: &[SocketAddrV4],
    max: usize,
) -> Vec<SocketAddrV4> {
    let mut seen: HashSet<SocketAddrV4> = exclude.iter().copied().collect();
    candidates
        .into_iter()
        .filter(|a| a.port() != 0 && !a.ip().is_unspecified() && !a.ip().is_multicast())
        .filter(|a| seen.insert(*a))
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    /// Issue 12: gtk-gnutella saw duplicates and Junction itself in `X-Try-Ultrapeers`.
    #[test]
    fn try_list_is_deduplicated_and_excludes_us_and_the_peer() {
        let me = a("10.0.0.1:6346");
        let peer = a("10.0.0.9:6346");
        let cands = [
            a("10.0.0.2:6346"),
            me,
            a("10.0.0.2:6346"),
            peer,
            a("10.0.0.3:6346"),
            a("0.0.0.0:6346"),
            a("10.0.0.4:0"),
            a("10.0.0.3:6346"),
            a("10.0.0.2:6347"),
        ];
        let v = try_list(cands, &[me, peer], 10);
        assert_eq!(
            v,
            vec![a("10.0.0.2:6346"), a("10.0.0.3:6346"), a("10.0.0.2:6347")]
        );
        assert_eq!(try_list(cands, &[me, peer], 2).len(), 2);
        // The list gtk-gnutella reads back: "ip:port,ip:port".
        let text: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(text.join(","), "10.0.0.2:6346,10.0.0.3:6346,10.0.0.2:6347");
    }

    #[test]
    fn bounded_and_deduplicated() {
        let mut c = HostCache::new(3);
        for p in 1..=5u16 {
            c.add(SocketAddrV4::new([127, 0, 0, 1].into(), p));
        }
        c.add(SocketAddrV4::new([127, 0, 0, 1].into(), 4));
        c.add(SocketAddrV4::new([0, 0, 0, 0].into(), 4));
        let v: Vec<u16> = c.iter().map(|a| a.port()).collect();
        assert_eq!(v, vec![4, 5, 3]);
    }

    #[test]
    fn removed_hosts_are_not_learnt_again_until_allowed() {
        let mut c = HostCache::new(2);
        let h = a("10.0.0.2:6346");
        c.add(h);
        assert!(c.contains(&h));
        c.forget(h);
        assert!(c.is_empty() && c.is_removed(&h) && !c.contains(&h));
        c.add(h);
        assert!(c.is_empty(), "a removed host is not learnt again");
        c.forget(h);
        assert!(c.is_removed(&h), "removed once");
        c.allow(&h);
        assert!(!c.is_removed(&h));
        c.add(h);
        assert_eq!(c.iter().copied().collect::<Vec<_>>(), vec![h]);
        // Bounded: past `cap` removals the oldest is let go.
        for p in 1..=3u16 {
            c.forget(SocketAddrV4::new([10, 0, 0, 9].into(), p));
        }
        assert!(!c.is_removed(&a("10.0.0.9:1")) && c.is_removed(&a("10.0.0.9:3")));
    }
}
