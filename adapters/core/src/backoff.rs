//! [`Backoff`]: the growing wait of a loop that retries one thing (a server session, a
//! transfer's round of fetches) after it fails.

use std::time::Duration;

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
}
