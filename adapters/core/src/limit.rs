//! Limits on what one remote address may cost us: concurrent connections, handshakes in
//! progress and new connections per second per IP (with a growing back-off), and a
//! per-connection request rate.
//!
//! One [`ConnLimiter`] sits in front of each listener: the accept loop calls
//! [`ConnLimiter::admit`] with the peer's IP and closes the socket at once when it is refused.
//! The [`ConnPermit`] it gets otherwise lives as long as the connection; it counts as a
//! pending handshake until [`ConnPermit::handshake_done`].
//!
//! Every attempt from an IP, refused or not, takes a token from that IP's bucket
//! ([`PeerLimits::new_conns_per_sec`], [`PeerLimits::new_conns_burst`]). An IP that empties
//! its bucket is refused outright for [`PeerLimits::backoff_base`], doubling with every
//! further strike up to [`PeerLimits::backoff_max`]; strikes are forgotten after a quiet
//! spell of twice the longest back-off. Attempts during a back-off are refused without
//! counting, so a flood costs an `accept` and a `close` each.
//!
//! Datagram services (a DHT, a UDP tracker) have no connection to hold a [`RequestRate`]:
//! their receive loop keeps an [`IpRates`], one bucket per source IP
//! ([`PeerLimits::requests_per_sec`], [`PeerLimits::requests_burst`]), and drops what an IP
//! sends beyond it.
//!
//! Loopback is not exempt: the defaults are generous enough for tests and labs that run
//! many peers on 127.0.0.1, and a caller who wants no limit uses [`PeerLimits::unlimited`].
//! The table of IPs is bounded ([`PeerLimits::max_tracked_ips`]); idle entries are swept.
//! While it is full, a new IP takes the place of one with no connection open (one not in
//! a back-off first, the one quiet for longest), at one IP's connection rate for all new
//! IPs together; an IP with a connection open is never forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How much one remote IP may use of a listener. A zero in any count means "no limit".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLimits {
    /// Connections open at once from one IP (default 64).
    pub max_conns_per_ip: usize,
    /// Connections from one IP that have not finished their handshake (default 16).
    pub max_pending_per_ip: usize,
    /// New connections per second one IP may open, sustained (default 32).
    pub new_conns_per_sec: u32,
    /// New connections one IP may open in a burst (default 256).
    pub new_conns_burst: u32,
    /// First back-off of an IP that opened connections faster than allowed (default 2 s).
    pub backoff_base: Duration,
    /// Longest back-off (default 5 min).
    pub backoff_max: Duration,
    /// Requests per second one connection may make, sustained; what a request is depends on
    /// the network (an eD2k upload request, a Gnutella HTTP request, a BitTorrent request we
    /// refuse). A peer above it is dropped (default 100).
    pub requests_per_sec: u32,
    /// Requests one connection may make in a burst (default 1000).
    pub requests_burst: u32,
    /// Remote IPs remembered at once (default 65,536). While the table is full, a new IP
    /// takes the place of one with no connection open, at [`new_conns_per_sec`] and
    /// [`new_conns_burst`] for all new IPs together; it is refused while every IP in it
    /// has a connection open.
    ///
    /// [`new_conns_per_sec`]: Self::new_conns_per_sec
    /// [`new_conns_burst`]: Self::new_conns_burst
    pub max_tracked_ips: usize,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self {
            max_conns_per_ip: 64,
            max_pending_per_ip: 16,
            new_conns_per_sec: 32,
            new_conns_burst: 256,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            requests_per_sec: 100,
            requests_burst: 1000,
            max_tracked_ips: 65_536,
        }
    }
}

impl PeerLimits {
    /// No limit at all.
    pub fn unlimited() -> Self {
        Self {
            max_conns_per_ip: 0,
            max_pending_per_ip: 0,
            new_conns_per_sec: 0,
            new_conns_burst: 0,
            backoff_base: Duration::ZERO,
            backoff_max: Duration::ZERO,
            requests_per_sec: 0,
            requests_burst: 0,
            max_tracked_ips: 0,
        }
    }

    /// A request-rate bucket for one connection, from these limits.
    pub fn request_rate(&self) -> RequestRate {
        RequestRate::new(self.requests_per_sec, self.requests_burst)
    }

    /// Per-IP request-rate buckets for a datagram service, from these limits.
    pub fn ip_rates(&self) -> IpRates {
        IpRates::new(
            self.requests_per_sec,
            self.requests_burst,
            self.max_tracked_ips,
        )
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    #[error("{open} connections from this address already")]
    TooMany { open: usize },
    #[error("{pending} handshakes from this address in progress")]
    TooManyPending { pending: usize },
    #[error("this address opens connections too fast: backed off for {left:?}")]
    BackedOff { left: Duration },
    #[error("too many remote addresses tracked")]
    Full,
}

/// Per-IP admission for one listener; clones share the table.
#[derive(Debug, Clone)]
pub struct ConnLimiter {
    table: Arc<Mutex<Table>>,
}

#[derive(Debug)]
struct Table {
    limits: PeerLimits,
    ips: HashMap<IpAddr, Entry>,
    /// What new IPs may take, together, while the table is full.
    newcomers: RequestRate,
    last_sweep: Instant,
    refused: u64,
}

#[derive(Debug)]
struct Entry {
    open: usize,
    pending: usize,
    tokens: f64,
    last: Instant,
    banned_until: Option<Instant>,
    strikes: u32,
    last_strike: Instant,
}

/// What an admitted connection holds; dropping it gives its place back.
#[derive(Debug)]
#[must_use = "the connection counts only while its permit lives"]
pub struct ConnPermit {
    table: Arc<Mutex<Table>>,
    ip: IpAddr,
    pending: bool,
}

/// Counters of a limiter, for status and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimiterStats {
    /// IPs in the table.
    pub tracked_ips: usize,
    /// Connections refused since the start.
    pub refused: u64,
}

impl ConnLimiter {
    pub fn new(limits: PeerLimits) -> Self {
        let now = Instant::now();
        Self {
            table: Arc::new(Mutex::new(Table {
                newcomers: RequestRate::new(limits.new_conns_per_sec, limits.new_conns_burst),
                limits,
                ips: HashMap::new(),
                last_sweep: now,
                refused: 0,
            })),
        }
    }

    /// Admits a new connection from `ip`, or says why not (the caller closes it at once).
    pub fn admit(&self, ip: IpAddr) -> Result<ConnPermit, Refused> {
        self.admit_at(ip, Instant::now())
    }

    /// [`admit`](Self::admit) at a given time (for tests).
    pub fn admit_at(&self, ip: IpAddr, now: Instant) -> Result<ConnPermit, Refused> {
        let mut t = self.lock();
        let r = t.admit(ip, now);
        if let Err(e) = &r {
            t.refused += 1;
            tracing::debug!(%ip, reason = %e, "connection refused");
        }
        r.map(|()| ConnPermit {
            table: self.table.clone(),
            ip,
            pending: true,
        })
    }

    /// Connections open from `ip` now.
    pub fn open(&self, ip: IpAddr) -> usize {
        self.lock().ips.get(&ip).map_or(0, |e| e.open)
    }

    pub fn stats(&self) -> LimiterStats {
        let t = self.lock();
        LimiterStats {
            tracked_ips: t.ips.len(),
            refused: t.refused,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ConnLimiter {
    fn default() -> Self {
        Self::new(PeerLimits::default())
    }
}

impl Table {
    fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        let l = &self.limits;
        let (rate, burst) = (f64::from(l.new_conns_per_sec), f64::from(l.new_conns_burst));
        let counting = l.max_conns_per_ip > 0 || l.max_pending_per_ip > 0;
        if !counting && (rate == 0.0 || burst == 0.0) {
            return Ok(());
        }
        let since_sweep = now.saturating_duration_since(self.last_sweep);
        if since_sweep >= Duration::from_secs(60) {
            self.sweep(now);
        }
        if self.limits.max_tracked_ips > 0 && !self.ips.contains_key(&ip) {
            if self.ips.len() >= self.limits.max_tracked_ips
                && since_sweep >= Duration::from_secs(1)
            {
                self.sweep(now);
            }
            if self.ips.len() >= self.limits.max_tracked_ips && !self.make_room(now) {
                return Err(Refused::Full);
            }
        }
        let l = &self.limits;
        let e = self.ips.entry(ip).or_insert_with(|| Entry {
            open: 0,
            pending: 0,
            tokens: burst,
            last: now,
            banned_until: None,
            strikes: 0,
            last_strike: now,
        });
        if let Some(until) = e.banned_until {
            if now < until {
                return Err(Refused::BackedOff { left: until - now });
            }
            e.banned_until = None;
        }
        if rate > 0.0 && burst > 0.0 {
            let elapsed = now.saturating_duration_since(e.last).as_secs_f64();
            e.tokens = (e.tokens + elapsed * rate).min(burst);
            e.last = now;
            if e.tokens < 1.0 {
                let left = e.strike(l, now);
                tracing::info!(%ip, strikes = e.strikes, ?left, "address backed off: too many new connections");
                return Err(Refused::BackedOff { left });
            }
            e.tokens -= 1.0;
        }
        if l.max_conns_per_ip > 0 && e.open >= l.max_conns_per_ip {
            return Err(Refused::TooMany { open: e.open });
        }
        if l.max_pending_per_ip > 0 && e.pending >= l.max_pending_per_ip {
            return Err(Refused::TooManyPending { pending: e.pending });
        }
        e.open += 1;
        e.pending += 1;
        Ok(())
    }

    /// In a full table, forgets one IP with no connection open for a newcomer: one whose
    /// back-off is over before one still backed off (so a flood rotating through addresses
    /// does not lift its own bans first), then the one quiet for longest. All newcomers
    /// together get one IP's connection rate, which also bounds this scan; false when
    /// there is no token or every IP has a connection open.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.limits.new_conns_per_sec == 0 || self.limits.new_conns_burst == 0 {
            // No rate: idle entries keep nothing and go at the next sweep.
            return false;
        }
        if !self.newcomers.allow_at(now) {
            return false;
        }
        let idle = self
            .ips
            .iter()
            .filter(|(_, e)| e.open == 0)
            .min_by_key(|(_, e)| (e.banned_until.filter(|&u| u > now), e.last))
            .map(|(ip, _)| *ip);
        match idle {
            Some(ip) => {
                self.ips.remove(&ip);
                true
            }
            None => false,
        }
    }

    /// Forgets IPs with nothing open, no back-off running and a full bucket.
    fn sweep(&mut self, now: Instant) {
        self.last_sweep = now;
        let l = &self.limits;
        let refill = if l.new_conns_per_sec > 0 {
            Duration::from_secs_f64(f64::from(l.new_conns_burst) / f64::from(l.new_conns_per_sec))
        } else {
            Duration::ZERO
        };
        let memory = l.backoff_max * 2;
        self.ips.retain(|_, e| {
            e.open > 0
                || e.banned_until.is_some_and(|u| u > now)
                || now.saturating_duration_since(e.last) < refill
                || (e.strikes > 0 && now.saturating_duration_since(e.last_strike) <= memory)
        });
    }

    fn release(&mut self, ip: IpAddr, pending: bool) {
        if let Some(e) = self.ips.get_mut(&ip) {
            e.open = e.open.saturating_sub(1);
            if pending {
                e.pending = e.pending.saturating_sub(1);
            }
        }
    }
}

impl Entry {
    /// One more strike (those of an earlier spell forgotten): the IP is refused for the
    /// back-off it brings, from `now`.
    fn strike(&mut self, l: &PeerLimits, now: Instant) -> Duration {
        if now.saturating_duration_since(self.last_strike) > l.backoff_max * 2 {
            self.strikes = 0;
        }
        self.strikes = self.strikes.saturating_add(1);
        self.last_strike = now;
        let left = backoff(l, self.strikes);
        self.banned_until = Some(now + left);
        left
    }
}

/// The back-off after `strikes` strikes: base · 2^(strikes-1), at most the maximum.
fn backoff(l: &PeerLimits, strikes: u32) -> Duration {
    let factor = 1u32 << strikes.saturating_sub(1).min(20);
    l.backoff_base
        .checked_mul(factor)
        .unwrap_or(l.backoff_max)
        .min(l.backoff_max)
}

impl ConnPermit {
    /// The handshake is over: the connection no longer counts as pending.
    pub fn handshake_done(&mut self) {
        if std::mem::replace(&mut self.pending, false) {
            let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = t.ips.get_mut(&self.ip) {
                e.pending = e.pending.saturating_sub(1);
            }
        }
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The request-rate bucket of this connection ([`PeerLimits::request_rate`] of the
    /// limiter's limits); the first request over it also gives the IP a back-off strike,
    /// as opening connections too fast does, so a peer dropped for flooding requests
    /// cannot reconnect at once and flood again.
    pub fn request_rate(&self) -> RequestRate {
        let t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rate = t.limits.request_rate();
        rate.strike = Some(Box::new(Strike {
            table: self.table.clone(),
            ip: self.ip,
        }));
        rate
    }
}

/// The IP of a connection, to be struck once it breaks its request rate.
#[derive(Clone)]
struct Strike {
    table: Arc<Mutex<Table>>,
    ip: IpAddr,
}

impl std::fmt::Debug for Strike {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Strike").field(&self.ip).finish()
    }
}

impl Strike {
    fn at(&self, now: Instant) {
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let t = &mut *t;
        // The connection's permit keeps its entry; an IP forgotten meanwhile is let be.
        if let Some(e) = t.ips.get_mut(&self.ip) {
            let left = e.strike(&t.limits, now);
            tracing::info!(ip = %self.ip, strikes = e.strikes, ?left, "address backed off: too many requests");
        }
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        t.release(self.ip, self.pending);
    }
}

/// A request-rate bucket of one connection: [`allow`](Self::allow) is false once the peer
/// asks faster than the rate (after its burst), and the caller drops it.
#[derive(Debug, Clone)]
pub struct RequestRate {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
    /// Struck (once) when a request is over the rate: see [`ConnPermit::request_rate`].
    /// (Boxed: the datagram services keep one bucket per IP, most without it.)
    strike: Option<Box<Strike>>,
}

impl RequestRate {
    /// `per_sec` sustained with bursts of `burst`; either being 0 means unlimited.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let (rate, burst) = if per_sec == 0 || burst == 0 {
            (0.0, 0.0)
        } else {
            (f64::from(per_sec), f64::from(burst))
        };
        Self {
            rate,
            burst,
            tokens: burst,
            last: None,
            strike: None,
        }
    }

    /// Counts one request now; false when it is over the limit.
    pub fn allow(&mut self) -> bool {
        self.allow_at(Instant::now())
    }

    /// [`allow`](Self::allow) at a given time (for tests).
    pub fn allow_at(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let last = *self.last.get_or_insert(now);
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = Some(now);
        if self.tokens < 1.0 {
            if let Some(s) = self.strike.take() {
                s.at(now);
            }
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Request rates per source IP, for a datagram service's receive loop: every datagram from
/// an IP takes a token from its bucket, and [`allow`](Self::allow) is false when there is
/// none (the caller drops the datagram unanswered). At most `max_ips` IPs are remembered;
/// those whose bucket has refilled are forgotten. While the table is full of busy ones
/// (a flood from spoofed sources fills it at once), a new IP takes the place of the one
/// quiet for longest, but only at one IP's rate for all newcomers together: new peers
/// still get in, and the flood gets no more work than one more IP would.
#[derive(Debug, Clone)]
pub struct IpRates {
    per_sec: u32,
    burst: u32,
    max_ips: usize,
    ips: HashMap<IpAddr, RequestRate>,
    /// What new IPs may take, together, while the table is full.
    newcomers: RequestRate,
    last_sweep: Option<Instant>,
    dropped: u64,
}

impl IpRates {
    /// `per_sec` sustained with bursts of `burst` per IP (either 0: unlimited), for at most
    /// `max_ips` IPs at once (0: no cap).
    pub fn new(per_sec: u32, burst: u32, max_ips: usize) -> Self {
        Self {
            per_sec,
            burst,
            max_ips,
            ips: HashMap::new(),
            newcomers: RequestRate::new(per_sec, burst),
            last_sweep: None,
            dropped: 0,
        }
    }

    /// Counts one datagram from `ip` now; false when it is over the limit.
    pub fn allow(&mut self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    /// [`allow`](Self::allow) at a given time (for tests).
    pub fn allow_at(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.per_sec == 0 || self.burst == 0 {
            return true;
        }
        let last = *self.last_sweep.get_or_insert(now);
        let since_sweep = now.saturating_duration_since(last);
        let full = |r: &Self| r.max_ips > 0 && r.ips.len() >= r.max_ips && !r.ips.contains_key(&ip);
        if since_sweep >= Duration::from_secs(60)
            || (full(self) && since_sweep >= Duration::from_secs(1))
        {
            self.sweep(now);
        }
        if full(self) {
            if !self.newcomers.allow_at(now) {
                self.dropped += 1;
                return false;
            }
            // The IP quiet for longest gives way: a peer talking to us now keeps its bucket,
            // and a flood rotating through addresses evicts its own. This scan runs at
            // most at one IP's rate (the newcomers' bucket above).
            let quietest = self
                .ips
                .iter()
                .min_by_key(|(_, r)| r.last)
                .map(|(ip, _)| *ip);
            if let Some(old) = quietest {
                self.ips.remove(&old);
            }
        }
        let (per_sec, burst) = (self.per_sec, self.burst);
        let ok = self
            .ips
            .entry(ip)
            .or_insert_with(|| RequestRate::new(per_sec, burst))
            .allow_at(now);
        if !ok {
            self.dropped += 1;
        }
        ok
    }

    /// Forgets the IPs whose bucket is full again.
    fn sweep(&mut self, now: Instant) {
        self.last_sweep = Some(now);
        let refill = Duration::from_secs_f64(f64::from(self.burst) / f64::from(self.per_sec));
        self.ips.retain(|_, r| {
            r.last
                .is_some_and(|t| now.saturating_duration_since(t) < refill)
        });
    }

    pub fn stats(&self) -> LimiterStats {
        LimiterStats {
            tracked_ips: self.ips.len(),
            refused: self.dropped,
        }
    }
}

#[cfg(test)]
#[path = "limit_tests.rs"]
mod tests;
