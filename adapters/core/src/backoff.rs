//! [`Backoff`]: the growing wait of a loop that retries one thing (a server session, a
//! transfer's round of fetches) after it fails; [`Redials`]: the same for many keys at
//! once (the peers a network dials), each with its own count.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// An exponential back-off: `first`, then each wait double the one before, at most `max`.
///
/// [`Backoff::next`] gives the wait to do now and doubles the one after;
/// [`Backoff::reset`] starts again from `first` (after a success). The first wait is `first`
/// as given, even when it is above `max`; every later one is capped. It only counts; the
/// caller sleeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// A back-off whose next wait is `first`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            current: first,
        }
    }

    /// The wait to do now; the one after it is twice as long, at most the maximum.
    #[allow(clippy::should_implement_trait)] // it never ends: an Iterator would only add unwraps
    pub fn next(&mut self) -> Duration {
        let now = self.current;
        self.current = now.saturating_mul(2).min(self.max);
        now
    }

    /// The next wait is `first` again.
    pub fn reset(&mut self) {
        self.current = self.first;
    }
}

/// When each key (a peer's address) may be tried again: `first` after its first failure,
/// doubled for each failure since, at most `max`. It only counts; the caller skips keys
/// that are not [`ready`](Redials::ready).
#[derive(Debug, Clone)]
pub struct Redials<K> {
    first: Duration,
    max: Duration,
    keys: HashMap<K, (Instant, u32)>,
}

impl<K: Eq + Hash> Redials<K> {
    pub fn new(first: Duration, max: Duration) -> Self {
        Redials {
            first,
            max,
            keys: HashMap::new(),
        }
    }

    /// Another failure of `key`: it waits `first`, doubled for each failure before this
    /// one, at most `max`. Returns the wait.
    pub fn failed(&mut self, key: K, now: Instant) -> Duration {
        let e = self.keys.entry(key).or_insert((now, 0));
        e.1 = e.1.saturating_add(1);
        let wait = self
            .first
            .saturating_mul(1 << (e.1 - 1).min(30))
            .min(self.max);
        e.0 = now + wait;
        wait
    }

    /// `key` worked: it is free now, and its next failure waits `first` again.
    pub fn succeeded(&mut self, key: &K) {
        self.keys.remove(key);
    }

    /// Not before `until`, whatever its failures (a dial still in flight, a link that just
    /// closed); the count of failures stays.
    pub fn hold(&mut self, key: K, until: Instant) {
        self.keys.entry(key).or_insert((until, 0)).0 = until;
    }

    /// Whether `key` may be tried at `now`.
    pub fn ready(&self, key: &K, now: Instant) -> bool {
        self.keys.get(key).is_none_or(|(at, _)| *at <= now)
    }

    /// When `key` may be tried again, if it is held.
    pub fn until(&self, key: &K) -> Option<Instant> {
        self.keys.get(key).map(|(at, _)| *at)
    }

    /// Failures of `key` since it last worked.
    pub fn failures(&self, key: &K) -> u32 {
        self.keys.get(key).map_or(0, |(_, n)| *n)
    }

    /// Keys held, free or not.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Forgets the keys that are free again (and their counts), once more than `most` are
    /// kept: a long run meets many addresses.
    pub fn prune(&mut self, now: Instant, most: usize) {
        if self.keys.len() > most {
            self.keys.retain(|_, (at, _)| *at > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_up_to_the_maximum() {
        let mut b = Backoff::new(S, 10 * S);
        let waits: Vec<_> = (0..6).map(|_| b.next()).collect();
        assert_eq!(waits, [S, 2 * S, 4 * S, 8 * S, 10 * S, 10 * S]);
    }

    #[test]
    fn reset_starts_again_from_the_first() {
        let mut b = Backoff::new(S, 30 * S);
        b.next();
        b.next();
        b.reset();
        assert_eq!(b.next(), S);
        assert_eq!(b.next(), 2 * S);
    }

    #[test]
    fn first_above_the_maximum_is_waited_once() {
        let mut b = Backoff::new(4 * S, S);
        assert_eq!(b.next(), 4 * S);
        assert_eq!(b.next(), S);
        assert_eq!(b.next(), S);
    }

    #[test]
    fn a_huge_maximum_saturates_instead_of_overflowing() {
        let mut b = Backoff::new(Duration::MAX / 2 + S, Duration::MAX);
        b.next();
        assert_eq!(b.next(), Duration::MAX);
        assert_eq!(b.next(), Duration::MAX);
    }

    #[test]
    fn each_key_counts_its_own_failures() {
        let t0 = Instant::now();
        let mut r = Redials::new(2 * S, 10 * S);
        assert!(r.ready(&"a", t0) && r.is_empty());
        let waits: Vec<_> = (0..4).map(|_| r.failed("a", t0)).collect();
        assert_eq!(waits, [2 * S, 4 * S, 8 * S, 10 * S]);
        assert_eq!(r.failures(&"a"), 4);
        assert!(!r.ready(&"a", t0 + 9 * S) && r.ready(&"a", t0 + 10 * S));
        assert_eq!(r.failed("b", t0), 2 * S, "another key starts afresh");
        r.succeeded(&"a");
        assert!(r.ready(&"a", t0) && r.failures(&"a") == 0);
        assert_eq!(r.failed("a", t0), 2 * S);
        // A hold keeps the count; pruning drops only free keys, past the bound.
        r.hold("a", t0 + 100 * S);
        assert_eq!((r.until(&"a"), r.failures(&"a")), (Some(t0 + 100 * S), 1));
        r.prune(t0 + 50 * S, 5);
        assert_eq!(r.len(), 2, "under the bound nothing goes");
        r.prune(t0 + 50 * S, 1);
        assert_eq!(r.len(), 1, "b was free again");
        assert!(!r.ready(&"a", t0 + 50 * S));
        // Many failures never overflow.
        for _ in 0..100 {
            r.failed("c", t0);
        }
        assert_eq!(r.until(&"c"), Some(t0 + 10 * S));
    }
}
