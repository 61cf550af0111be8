use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn limits() -> PeerLimits {
    PeerLimits {
        max_conns_per_ip: 4,
        max_pending_per_ip: 2,
        new_conns_per_sec: 10,
        new_conns_burst: 20,
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(8),
        max_tracked_ips: 16,
        ..PeerLimits::default()
    }
}

#[test]
fn caps_connections_and_pending_handshakes_per_ip() {
    let l = ConnLimiter::new(limits());
    let now = Instant::now();
    let mut a = l.admit_at(ip(1), now).unwrap();
    let _b = l.admit_at(ip(1), now).unwrap();
    // Two handshakes in progress: a third waits for one of them.
    assert_eq!(
        l.admit_at(ip(1), now).unwrap_err(),
        Refused::TooManyPending { pending: 2 }
    );
    a.handshake_done();
    let mut c = l.admit_at(ip(1), now).unwrap();
    c.handshake_done();
    let mut d = l.admit_at(ip(1), now).unwrap();
    d.handshake_done();
    assert_eq!(l.open(ip(1)), 4);
    assert_eq!(
        l.admit_at(ip(1), now).unwrap_err(),
        Refused::TooMany { open: 4 }
    );
    // Another address is not affected.
    let _other = l.admit_at(ip(2), now).unwrap();
    drop(a);
    assert_eq!(l.open(ip(1)), 3);
    let _e = l.admit_at(ip(1), now).unwrap();
    assert_eq!(l.stats().refused, 2);
}

#[test]
fn a_fast_ip_is_backed_off_for_a_growing_time() {
    let l = ConnLimiter::new(limits());
    let t0 = Instant::now();
    // The burst of 20 goes through (each closed at once).
    for _ in 0..20 {
        drop(l.admit_at(ip(1), t0).unwrap());
    }
    let first = l.admit_at(ip(1), t0).unwrap_err();
    assert_eq!(
        first,
        Refused::BackedOff {
            left: Duration::from_secs(1)
        }
    );
    // Still refused during the back-off, and the others still come in.
    assert!(matches!(
        l.admit_at(ip(1), t0 + Duration::from_millis(500)),
        Err(Refused::BackedOff { .. })
    ));
    drop(l.admit_at(ip(2), t0).unwrap());
    // After it, the bucket has refilled 10 per second; emptying it again doubles the wait.
    let t1 = t0 + Duration::from_secs(1);
    for _ in 0..10 {
        drop(l.admit_at(ip(1), t1).unwrap());
    }
    let mut waits = Vec::new();
    let mut t = t1;
    for _ in 0..6 {
        match l.admit_at(ip(1), t) {
            Err(Refused::BackedOff { left }) => {
                waits.push(left.as_secs());
                t += left;
            }
            other => panic!("expected a back-off, got {other:?}"),
        }
        // Use up what refilled during the wait.
        while l.admit_at(ip(1), t).is_ok() {}
    }
    assert_eq!(waits, [2, 4, 8, 8, 8, 8]);
    // A long quiet spell forgets the strikes.
    let later = t + Duration::from_secs(60);
    for _ in 0..20 {
        drop(l.admit_at(ip(1), later).unwrap());
    }
    assert_eq!(
        l.admit_at(ip(1), later).unwrap_err(),
        Refused::BackedOff {
            left: Duration::from_secs(1)
        }
    );
}

#[test]
fn the_table_is_bounded_and_swept() {
    let l = ConnLimiter::new(limits());
    let t0 = Instant::now();
    let held: Vec<_> = (0..16).map(|i| l.admit_at(ip(i), t0).unwrap()).collect();
    assert_eq!(l.admit_at(ip(100), t0).unwrap_err(), Refused::Full);
    // Addresses with connections open stay; once closed and refilled they are forgotten.
    drop(held);
    let later = t0 + Duration::from_secs(5);
    let _p = l.admit_at(ip(100), later).unwrap();
    assert_eq!(l.stats().tracked_ips, 1);
}

#[test]
fn a_full_table_gives_an_idle_address_place_to_a_newcomer() {
    let l = ConnLimiter::new(limits());
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    // 15 addresses hold a connection; the 16th came and went (its bucket is refilling, so
    // the table remembers it).
    let held: Vec<_> = (0..15)
        .map(|i| l.admit_at(ip(i), at(u64::from(i))).unwrap())
        .collect();
    drop(l.admit_at(ip(15), at(15)).unwrap());
    // A newcomer takes the idle address's place, not a busy one's.
    let _new = l.admit_at(ip(100), at(20)).unwrap();
    let tracked = |i: u8| l.lock().ips.contains_key(&ip(i));
    assert!(!tracked(15), "the idle address gave way");
    assert_eq!(l.stats().tracked_ips, 16);
    // Now every address in the table has a connection open: the next newcomer is refused
    // and none of them is forgotten.
    assert_eq!(l.admit_at(ip(101), at(21)).unwrap_err(), Refused::Full);
    assert!((0..15).all(|i| l.open(ip(i)) == 1));
    assert!(tracked(100));
    drop(held);
}

#[test]
fn newcomers_to_a_full_table_get_one_address_rate_and_spare_back_offs() {
    let l = ConnLimiter::new(limits());
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    // Address 0 empties its bucket and is backed off for 1 s; 1 to 15 come and go.
    for _ in 0..20 {
        drop(l.admit_at(ip(0), t0).unwrap());
    }
    assert!(matches!(
        l.admit_at(ip(0), t0),
        Err(Refused::BackedOff { .. })
    ));
    for i in 1..16 {
        drop(l.admit_at(ip(i), at(u64::from(i))).unwrap());
    }
    // 20 newcomers (the burst of one address) take places: the quietest of those not
    // backed off first (1 to 15, then the first newcomers), never address 0's.
    for n in 0..20u8 {
        drop(l.admit_at(ip(100 + n), at(20 + u64::from(n))).unwrap());
    }
    let tracked = |i: u8| l.lock().ips.contains_key(&ip(i));
    assert!((1..16).all(|i| !tracked(i)));
    assert!(tracked(0), "a backed-off address was forgotten");
    assert_eq!(l.stats().tracked_ips, 16);
    // Beyond one address's burst, newcomers wait for its rate (10 a second).
    assert_eq!(l.admit_at(ip(200), at(40)).unwrap_err(), Refused::Full);
    drop(l.admit_at(ip(200), at(140)).unwrap());
    assert!(matches!(
        l.admit_at(ip(0), at(500)),
        Err(Refused::BackedOff { .. })
    ));
}

#[test]
fn breaking_the_request_rate_backs_the_address_off() {
    let l = ConnLimiter::new(PeerLimits {
        requests_per_sec: 10,
        requests_burst: 5,
        ..limits()
    });
    let t0 = Instant::now();
    let p = l.admit_at(ip(1), t0).unwrap();
    let mut rate = p.request_rate();
    assert!((0..5).all(|_| rate.allow_at(t0)));
    assert!(!rate.allow_at(t0));
    // Dropped for it, the peer may not come straight back.
    drop(p);
    assert_eq!(
        l.admit_at(ip(1), t0).unwrap_err(),
        Refused::BackedOff {
            left: Duration::from_secs(1)
        }
    );
    // Doing it again after the back-off doubles it (one strike per connection, however
    // often it asks).
    let t1 = t0 + Duration::from_secs(1);
    let p = l.admit_at(ip(1), t1).unwrap();
    let mut rate = p.request_rate();
    while rate.allow_at(t1) {}
    assert!(!rate.allow_at(t1));
    drop(p);
    assert_eq!(
        l.admit_at(ip(1), t1).unwrap_err(),
        Refused::BackedOff {
            left: Duration::from_secs(2)
        }
    );
    // A connection within its rate costs its address nothing.
    let p = l.admit_at(ip(2), t0).unwrap();
    let mut rate = p.request_rate();
    assert!((0..5).all(|_| rate.allow_at(t0)));
    drop(p);
    drop(l.admit_at(ip(2), t0).unwrap());
}

#[test]
fn unlimited_admits_everything_and_tracks_nothing() {
    let l = ConnLimiter::new(PeerLimits::unlimited());
    let now = Instant::now();
    let held: Vec<_> = (0..10_000)
        .map(|_| l.admit_at(ip(1), now).unwrap())
        .collect();
    assert_eq!(held.len(), 10_000);
    assert_eq!(l.stats().tracked_ips, 0);
    let mut r = PeerLimits::unlimited().request_rate();
    assert!((0..100_000).all(|_| r.allow_at(now)));
}

#[test]
fn request_rate_allows_the_burst_then_the_rate() {
    let mut r = RequestRate::new(10, 5);
    let t0 = Instant::now();
    assert!((0..5).all(|_| r.allow_at(t0)));
    assert!(!r.allow_at(t0));
    let t1 = t0 + Duration::from_millis(300);
    assert!(r.allow_at(t1) && r.allow_at(t1) && r.allow_at(t1));
    assert!(!r.allow_at(t1));
}

#[test]
fn ip_rates_limit_each_address_on_its_own() {
    let mut r = IpRates::new(10, 5, 16);
    let t0 = Instant::now();
    assert!((0..5).all(|_| r.allow_at(ip(1), t0)));
    assert!(!r.allow_at(ip(1), t0), "beyond the burst");
    // Another address has its own bucket.
    assert!((0..5).all(|_| r.allow_at(ip(2), t0)));
    // 10 a second refill.
    let t1 = t0 + Duration::from_millis(200);
    assert!(r.allow_at(ip(1), t1) && r.allow_at(ip(1), t1));
    assert!(!r.allow_at(ip(1), t1));
    assert_eq!(r.stats().refused, 2);
}

#[test]
fn ip_rates_table_is_bounded_and_swept() {
    let mut r = IpRates::new(10, 5, 16);
    let t0 = Instant::now();
    for i in 0..16 {
        assert!(r.allow_at(ip(i), t0));
    }
    // While it is full, new addresses take tracked ones' places, 5 (a burst) and then
    // 10 a second for all of them together, as spoofed sources would.
    assert!((100..105).all(|i| r.allow_at(ip(i), t0)));
    assert!(
        !r.allow_at(ip(105), t0),
        "newcomers beyond one address's rate while the table is full"
    );
    assert_eq!(r.stats().tracked_ips, 16);
    assert!(r.allow_at(ip(105), t0 + Duration::from_millis(100)));
    // Once the buckets have refilled (0.5 s) the idle addresses are forgotten.
    let later = t0 + Duration::from_secs(2);
    assert!(r.allow_at(ip(106), later));
    assert_eq!(r.stats().tracked_ips, 1);
    // The minute sweep forgets idle addresses even when the table is not full.
    assert!(r.allow_at(ip(1), later));
    assert!(r.allow_at(ip(2), later + Duration::from_secs(61)));
    assert_eq!(r.stats().tracked_ips, 1);
    let mut none = PeerLimits::unlimited().ip_rates();
    assert!((0..100_000).all(|_| none.allow_at(ip(1), t0)));
    assert_eq!(none.stats().tracked_ips, 0);
}

#[test]
fn ip_rates_evict_the_address_quiet_for_longest() {
    let mut r = IpRates::new(10, 5, 16);
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    for i in 0..16 {
        assert!(r.allow_at(ip(i), at(u64::from(i))));
    }
    // Address 0 talks again, so 1 is now the quietest; each newcomer evicts the quietest.
    assert!(r.allow_at(ip(0), at(20)));
    for (n, newcomer) in (100..104).enumerate() {
        assert!(r.allow_at(ip(newcomer), at(21 + n as u64)));
    }
    let tracked = |r: &IpRates, i: u8| r.ips.contains_key(&ip(i));
    assert!((1..5).all(|i| !tracked(&r, i)), "1 to 4 were the quietest");
    assert!(
        tracked(&r, 0),
        "the address that talked again kept its bucket"
    );
    assert!((5..16).chain(100..104).all(|i| tracked(&r, i)));
    assert_eq!(r.stats().tracked_ips, 16);
}

#[derive(Debug, Clone)]
enum Op {
    Admit(u8),
    Done(usize),
    Drop(usize),
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4).prop_map(Op::Admit),
        1 => any::<usize>().prop_map(Op::Done),
        2 => any::<usize>().prop_map(Op::Drop),
        1 => (0u16..3000).prop_map(Op::Wait),
    ]
}

proptest! {
    /// Against a model that counts permits: no IP ever holds more than its caps, the
    /// limiter's counts equal the live permits, and everything is given back at the end.
    #[test]
    fn counts_match_the_live_permits(ops in proptest::collection::vec(op(), 0..300)) {
        let lim = limits();
        let l = ConnLimiter::new(lim.clone());
        let mut now = Instant::now();
        let mut live: Vec<ConnPermit> = Vec::new();
        for o in ops {
            match o {
                Op::Admit(i) => {
                    let open = live.iter().filter(|p| p.ip() == ip(i)).count();
                    let pending = live.iter().filter(|p| p.ip() == ip(i) && p.pending).count();
                    match l.admit_at(ip(i), now) {
                        Ok(p) => {
                            prop_assert!(open < lim.max_conns_per_ip);
                            prop_assert!(pending < lim.max_pending_per_ip);
                            live.push(p);
                        }
                        Err(Refused::TooMany { open: n }) => {
                            prop_assert_eq!(n, open);
                            prop_assert_eq!(n, lim.max_conns_per_ip);
                        }
                        Err(Refused::TooManyPending { pending: n }) => {
                            prop_assert_eq!(n, pending);
                        }
                        Err(Refused::BackedOff { left }) => {
                            prop_assert!(left <= lim.backoff_max);
                        }
                        Err(Refused::Full) => prop_assert!(false, "only 4 addresses"),
                    }
                }
                Op::Done(k) if !live.is_empty() => {
                    let n = live.len();
                    live[k % n].handshake_done();
                }
                Op::Drop(k) if !live.is_empty() => {
                    let n = live.len();
                    drop(live.swap_remove(k % n));
                }
                Op::Wait(ms) => now += Duration::from_millis(u64::from(ms)),
                _ => {}
            }
            for i in 0..4 {
                prop_assert_eq!(l.open(ip(i)), live.iter().filter(|p| p.ip() == ip(i)).count());
            }
        }
        live.clear();
        for i in 0..4 {
            prop_assert_eq!(l.open(ip(i)), 0);
        }
    }
}
