//! A byte-rate limit (token bucket) that many connections share.
//!
//! [`RateLimit`] is cheap to clone: every clone draws from the same bucket, so one limit
//! given to all uploads of an adapter caps them together. [`RateLimit::and`] joins two
//! limits, so a network's own limit and the [`Caps`] shared by every network both hold.
//! Unlimited limits never sleep.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The smallest burst, so small writes do not each sleep.
const MIN_BURST: u64 = 16 * 1024;

/// A shared limit of bytes per second; `None` (or a rate of 0) is unlimited.
#[derive(Debug, Clone, Default)]
pub struct RateLimit {
    /// Every bucket a byte must pass; none: unlimited.
    buckets: Vec<Arc<Mutex<Bucket>>>,
}

/// The upload and download limits over all networks together (`[limits]` in the config);
/// each adapter joins them to its own with [`RateLimit::and`]. Unlimited by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    pub upload: RateLimit,
    pub download: RateLimit,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes per second (at least 1).
    rate: u64,
    /// Most tokens saved up while idle: about 1/8 s of the rate, at least [`MIN_BURST`].
    burst: f64,
    /// Bytes that may go now; negative when callers reserved ahead (they are sleeping it off).
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    /// A limit of `bytes_per_sec`; `None` or `Some(0)` is unlimited.
    pub fn new(bytes_per_sec: Option<u64>) -> Self {
        let buckets = bytes_per_sec.filter(|&r| r > 0).map(|rate| {
            let burst = (rate / 8).max(MIN_BURST) as f64;
            Arc::new(Mutex::new(Bucket {
                rate,
                burst,
                tokens: burst,
                last: Instant::now(),
            }))
        });
        RateLimit {
            buckets: buckets.into_iter().collect(),
        }
    }

    /// No limit at all.
    pub fn unlimited() -> Self {
        RateLimit::default()
    }

    /// A limit that holds both `self` and `other`: every byte passes each bucket, and the
    /// buckets stay shared with every other clone of either.
    #[must_use]
    pub fn and(&self, other: &RateLimit) -> RateLimit {
        let mut buckets = self.buckets.clone();
        for b in &other.buckets {
            if !buckets.iter().any(|mine| Arc::ptr_eq(mine, b)) {
                buckets.push(Arc::clone(b));
            }
        }
        RateLimit { buckets }
    }

    /// The rate in bytes per second (the smallest of the joined limits), `None` when
    /// unlimited.
    pub fn rate(&self) -> Option<u64> {
        self.buckets
            .iter()
            .map(|b| b.lock().unwrap_or_else(PoisonError::into_inner).rate)
            .min()
    }

    pub fn is_unlimited(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Waits until `n` more bytes may go. Returns at once when unlimited, or when the
    /// bucket holds enough. Large `n` is taken in pieces of at most one second of the rate,
    /// so each sleep here stays short (about a second, plus what other holders of the limit
    /// reserved before); dropping the future mid-way only forfeits what was already reserved.
    /// Takes `n` bytes at once (possibly into debt) and says how long the caller should
    /// pause to repay it: for loops that cannot sleep in place, such as a peer that keeps
    /// reading while its uploads wait. Zero when unlimited.
    pub fn reserve(&self, n: u64) -> Duration {
        self.buckets
            .iter()
            .map(|b| b.lock().unwrap_or_else(PoisonError::into_inner).reserve(n))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Joined limits are passed one after another: while a caller sleeps off one, the next
    /// refills, so the wait is about that of the tightest, not the sum.
    pub async fn take(&self, n: u64) {
        for bucket in &self.buckets {
            take_from(bucket, n).await;
        }
    }
}

/// Waits until `n` more bytes may pass `bucket`, in pieces of at most a second's rate.
async fn take_from(bucket: &Mutex<Bucket>, n: u64) {
    let mut left = n;
    while left > 0 {
        let wait = {
            let mut b = bucket.lock().unwrap_or_else(PoisonError::into_inner);
            let piece = left.min(b.rate);
            left -= piece;
            b.reserve(piece)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Two limits are equal when they draw from the same buckets (clones of each other).
impl PartialEq for RateLimit {
    fn eq(&self, other: &Self) -> bool {
        self.buckets.len() == other.buckets.len()
            && self
                .buckets
                .iter()
                .zip(&other.buckets)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for RateLimit {}

impl Bucket {
    /// Takes `n` tokens (possibly into debt); returns how long until the debt is paid.
    fn reserve(&mut self, n: u64) -> Duration {
        let now = Instant::now();
        let rate = self.rate as f64;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(self.burst);
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        // Bounded by the callers in debt; clamp anyway so it can never panic.
        Duration::try_from_secs_f64(-self.tokens / rate).unwrap_or(Duration::from_secs(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: u64 = 1 << 20;

    async fn pass(limit: &RateLimit, total: u64, write: u64) -> Duration {
        let t0 = Instant::now();
        let mut left = total;
        while left > 0 {
            let n = left.min(write);
            limit.take(n).await;
            left -= n;
        }
        t0.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn rate_holds_for_small_writes() {
        let limit = RateLimit::new(Some(R));
        let took = pass(&limit, 3 * R, 16 * 1024).await.as_secs_f64();
        assert!(
            (2.0..=3.0).contains(&took),
            "3R bytes at R/s took {took:.3}s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_holds_for_one_huge_take() {
        let limit = RateLimit::new(Some(R));
        let took = pass(&limit, 3 * R, 3 * R).await.as_secs_f64();
        assert!(
            (2.0..=3.0).contains(&took),
            "3R bytes at R/s took {took:.3}s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_is_shared_by_clones() {
        let limit = RateLimit::new(Some(R));
        let (a, b) = (limit.clone(), limit.clone());
        let t0 = Instant::now();
        tokio::join!(
            pass(&a, 3 * R / 2, 64 * 1024),
            pass(&b, 3 * R / 2, 64 * 1024)
        );
        let took = t0.elapsed().as_secs_f64();
        assert!(
            (2.0..=3.0).contains(&took),
            "3R bytes at R/s took {took:.3}s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_sleeps_stay_bounded() {
        // One call's single sleep never exceeds about a second, however much it takes.
        let limit = RateLimit::new(Some(1000));
        {
            let mut b = limit.buckets[0].lock().unwrap();
            let burst = b.burst as u64;
            assert_eq!(
                b.reserve(burst),
                Duration::ZERO,
                "a full bucket lets a burst go"
            );
            let piece = b.rate;
            let wait = b.reserve(piece);
            assert!(wait <= Duration::from_secs(1), "{wait:?}");
        }
        // And a huge n neither panics nor sleeps without end per step.
        let t = tokio::time::timeout(Duration::from_secs(5), limit.take(u64::MAX)).await;
        assert!(t.is_err(), "u64::MAX bytes at 1000 B/s cannot finish");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_unlimited_never_waits() {
        for limit in [
            RateLimit::new(None),
            RateLimit::new(Some(0)),
            RateLimit::default(),
        ] {
            assert!(limit.is_unlimited() && limit.rate().is_none());
            let t0 = Instant::now();
            limit.take(u64::MAX).await;
            pass(&limit, 1 << 30, 1 << 16).await;
            assert_eq!(t0.elapsed(), Duration::ZERO);
        }
        assert_eq!(RateLimit::new(Some(5)).rate(), Some(5));
    }

    #[tokio::test(start_paused = true)]
    async fn joined_limits_hold_the_tighter_and_share_the_cap() {
        // Two networks, each with its own 2R limit, under one cap of R: together they get R.
        let cap = RateLimit::new(Some(R));
        let a = RateLimit::new(Some(2 * R)).and(&cap);
        let b = RateLimit::new(Some(2 * R)).and(&cap);
        assert_eq!(a.rate(), Some(R));
        let t0 = Instant::now();
        tokio::join!(
            pass(&a, 3 * R / 2, 64 * 1024),
            pass(&b, 3 * R / 2, 64 * 1024)
        );
        let took = t0.elapsed().as_secs_f64();
        assert!(
            (2.0..=3.2).contains(&took),
            "3R bytes under a cap of R/s took {took:.3}s"
        );
        // The tighter own limit holds alone, and an unlimited cap adds nothing.
        let own = RateLimit::new(Some(R)).and(&RateLimit::unlimited());
        let took = pass(&own, 3 * R, 16 * 1024).await.as_secs_f64();
        assert!((2.0..=3.0).contains(&took), "{took:.3}s");
        assert!(
            RateLimit::unlimited()
                .and(&RateLimit::unlimited())
                .is_unlimited()
        );
        // Joining a limit with itself does not halve it.
        let took = pass(&cap.and(&cap), 2 * R, 16 * 1024).await.as_secs_f64();
        assert!((1.0..=2.0).contains(&took), "{took:.3}s");
    }
}
