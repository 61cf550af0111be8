//! The give-up clock: how long a running transfer has had no source on any network.
//!
//! It counts only while the transfer runs (not while paused or while the gateway is
//! down), is kept in the database so a restart does not start it over, and any source
//! (a network reporting a peer, or bytes arriving) sets it back to zero.

use std::time::{Duration, Instant};

/// How far the clock may move before it is written again, so a restart loses little.
const SAVE_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SourceClock {
    without: Duration,
    /// When it last moved; None: the next look only starts it (after a restart).
    last: Option<Instant>,
    /// What the database holds.
    saved: Duration,
}

impl SourceClock {
    /// A clock as the database kept it.
    pub(super) fn restored(without: Duration) -> SourceClock {
        SourceClock {
            without,
            last: None,
            saved: without,
        }
    }

    /// How long the transfer has had no source.
    pub(super) fn without(&self) -> Duration {
        self.without
    }

    /// A look at the running transfer at `now`: it has a source or not. The time since
    /// the last look counts as without one unless it has one now. True when it has gone
    /// `give_up` without a source (never when `give_up` is None).
    pub(super) fn advance(
        &mut self,
        now: Instant,
        has_source: bool,
        give_up: Option<Duration>,
    ) -> bool {
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |l| now.saturating_duration_since(l));
        self.last = Some(now);
        if has_source {
            self.without = Duration::ZERO;
        } else {
            self.without = self.without.saturating_add(elapsed);
        }
        give_up.is_some_and(|g| self.without >= g)
    }

    /// Starts over at `now` (a resume): the time before does not count.
    pub(super) fn reset(&mut self, now: Instant) {
        self.without = Duration::ZERO;
        self.last = Some(now);
    }

    /// Whether the clock moved far enough from what the database holds to be written;
    /// if so it counts as written.
    pub(super) fn take_save(&mut self) -> bool {
        let moved = self.without.abs_diff(self.saved);
        let due = moved >= SAVE_EVERY || (self.without.is_zero() && !self.saved.is_zero());
        if due {
            self.saved = self.without;
        }
        due
    }

    /// Marks the clock as written (the whole record was).
    pub(super) fn saved(&mut self) {
        self.saved = self.without;
    }
}

/// A duration as a user reads it, rounded down to its largest unit: `7 days`, `1 hour`,
/// `2 seconds`.
pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = [(86_400, "day"), (3600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(u, _)| s >= *u)
        .map_or((s, "second"), |(u, name)| (s / u, name));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const GIVE_UP: Option<Duration> = Some(Duration::from_secs(10));

    /// Looks once a second from `at`, `n` times; whether it gave up at the last look.
    fn looks(c: &mut SourceClock, at: &mut Instant, n: u32, has_source: bool) -> bool {
        let mut gave_up = false;
        for _ in 0..n {
            *at += SEC;
            gave_up = c.advance(*at, has_source, GIVE_UP);
        }
        gave_up
    }

    #[test]
    fn gives_up_only_after_the_whole_time_without_a_source() {
        let mut at = Instant::now();
        let mut c = SourceClock::default();
        c.reset(at);
        assert!(!looks(&mut c, &mut at, 9, false));
        assert_eq!(c.without(), 9 * SEC);
        assert!(looks(&mut c, &mut at, 1, false), "10 s without a source");
    }

    #[test]
    fn any_source_sets_it_back_to_zero() {
        let mut at = Instant::now();
        let mut c = SourceClock::default();
        c.reset(at);
        looks(&mut c, &mut at, 9, false);
        assert!(!looks(&mut c, &mut at, 1, true));
        assert_eq!(c.without(), Duration::ZERO);
        assert!(
            !looks(&mut c, &mut at, 9, false),
            "the old 9 s still counted"
        );
        assert!(looks(&mut c, &mut at, 1, false));
    }

    #[test]
    fn never_gives_up_without_a_limit() {
        let at = Instant::now();
        let mut c = SourceClock::default();
        c.reset(at);
        assert!(!c.advance(at + Duration::from_secs(365 * 86_400), false, None));
    }

    #[test]
    fn a_restored_clock_goes_on_from_where_it_was_not_counting_the_time_down() {
        let mut at = Instant::now();
        let mut c = SourceClock::restored(9 * SEC);
        // The first look after a restart only starts it: the gateway was not running.
        assert!(!c.advance(at + Duration::from_secs(3600), false, GIVE_UP));
        at += Duration::from_secs(3600);
        assert_eq!(c.without(), 9 * SEC);
        assert!(looks(&mut c, &mut at, 1, false));
    }

    #[test]
    fn a_reset_starts_over_and_the_time_before_it_does_not_count() {
        let mut at = Instant::now();
        let mut c = SourceClock::default();
        c.reset(at);
        looks(&mut c, &mut at, 10, false);
        // Resumed half a second before the next look.
        c.reset(at + SEC / 2);
        at += SEC;
        assert!(!c.advance(at, false, GIVE_UP));
        assert_eq!(c.without(), SEC / 2);
        assert!(!looks(&mut c, &mut at, 9, false));
        assert!(looks(&mut c, &mut at, 1, false));
    }

    #[test]
    fn saved_once_a_minute_and_on_a_reset() {
        let mut at = Instant::now();
        let mut c = SourceClock::default();
        c.reset(at);
        at += 59 * SEC;
        c.advance(at, false, None);
        assert!(!c.take_save());
        looks(&mut c, &mut at, 1, false);
        assert!(c.take_save(), "a minute moved");
        assert!(!c.take_save(), "already written");
        looks(&mut c, &mut at, 1, true);
        assert!(c.take_save(), "a source reset it: the database must learn");
        assert!(!c.take_save());
        // Nothing to write while it stays at zero.
        looks(&mut c, &mut at, 1, true);
        assert!(!c.take_save());
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(human(Duration::from_secs(7 * 86_400)), "7 days");
        assert_eq!(human(Duration::from_secs(86_400 + 5)), "1 day");
        assert_eq!(human(Duration::from_secs(7200)), "2 hours");
        assert_eq!(human(Duration::from_secs(60)), "1 minute");
        assert_eq!(human(Duration::from_secs(2)), "2 seconds");
        assert_eq!(human(Duration::from_millis(1500)), "1 second");
    }
}
