//! The host cache: addresses learnt from configuration, `add_endpoint`,
//! `X-Try-Ultrapeers` and pongs. Bounded; the newest first.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddrV4;

/// Bounded, de-duplicated list of hosts to try.
#[derive(Debug)]
pub struct HostCache {
    hosts: VecDeque<SocketAddrV4>,
    set: HashSet<SocketAddrV4>,
    cap: usize,
}

impl HostCache {
    /// A cache of at most `cap` hosts.
    pub fn new(cap: usize) -> Self {
        HostCache {
            hosts: VecDeque::new(),
            set: HashSet::new(),
            cap: cap.max(1),
        }
    }

    /// Add (or refresh) a host; port 0 and unspecified/broadcast addresses are ignored.
    pub fn add(&mut self, a: SocketAddrV4) {
        if a.port() == 0
            || a.ip().is_unspecified()
            || a.ip().is_broadcast()
            || a.ip().is_multicast()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
