use super::*;
use crate::swarm::UnitAlgo;

const A: Writer = Writer {
    network: NetworkId::ED2K,
    source: 1,
};
const B: Writer = Writer {
    network: NetworkId::GNUTELLA,
    source: 7,
};
const C: Writer = Writer {
    network: NetworkId::GNUTELLA,
    source: 8,
};

fn grid(unit: u64, n: usize) -> UnitHashes {
    UnitHashes::uniform(UnitAlgo::Sha1, unit, vec![vec![0; 20]; n])
}

fn write(l: &mut Ledger, by: Writer, r: Range<u64>) -> RangeSet {
    let g = l.begin_write(by, r, Instant::now());
    l.end_write(&g);
    g
}

/// A small file's own hash (a run shorter than a piece) does not cut claims outside that
/// file: there the pieces decide.
#[test]
fn outside_a_run_claims_end_on_the_next_grid() {
    let now = Instant::now();
    let mut l = Ledger::new(100, RangeSet::new());
    assert!(l.learn(grid(30, 4)));
    assert!(l.learn(UnitHashes::run(UnitAlgo::Sha1, 35, 10, vec![vec![0; 20]])));
    // From 60 on, past the run's file (35..45): up to 35 bytes end on the piece at 90.
    assert_eq!(l.claim(A, 60..100, 35, None, now), Some(60..90));
}

#[test]
fn a_claim_is_given_once_and_ends_at_a_unit_boundary() {
    let now = Instant::now();
    let mut l = Ledger::new(100, RangeSet::new());
    assert!(l.learn(grid(30, 4)));
    assert_eq!(l.claim(A, 0..100, 50, None, now), Some(0..30));
    assert_eq!(l.claim(B, 0..100, 50, None, now), Some(30..60));
    // A reader's position comes first.
    assert_eq!(l.claim(B, 0..100, 5, Some(95), now), Some(95..100));
    assert_eq!(
        l.claim(A, 0..30, 50, None, now),
        None,
        "0..30 is claimed already"
    );
    l.release(A, 0..30);
    assert_eq!(l.claim(C, 0..100, 10, None, now), Some(0..10));
    // A stalled claim is taken back.
    let later = now + CLAIM_STALL + Duration::from_secs(1);
    assert_eq!(l.claim(A, 30..60, 100, None, later), Some(30..60));
}

#[test]
fn bytes_land_only_where_the_writer_may_write() {
    let now = Instant::now();
    let mut l = Ledger::new(100, RangeSet::new());
    assert_eq!(l.claim(A, 0..100, 50, None, now), Some(0..50));
    // B may not write into A's claim, only past it.
    let g = write(&mut l, B, 40..60);
    assert_eq!(g.iter().collect::<Vec<_>>(), vec![50..60]);
    assert_eq!(l.figures()[&NetworkId::GNUTELLA].discarded, 10);
    // Verified bytes are never written again.
    l.attest(NetworkId::GNUTELLA, 50..60, true);
    assert!(write(&mut l, A, 50..55).is_empty());
    // Nor bytes being checked.
    assert!(l.learn(grid(10, 10)));
    write(&mut l, A, 0..10);
    let checks = l.ready(0..10);
    assert_eq!(checks.len(), 1);
    assert!(write(&mut l, A, 0..10).is_empty());
    assert!(l.finish(&checks[0], true).is_empty());
    assert!(l.verified().contains(0..10));
}

#[test]
fn a_failed_unit_blames_only_those_who_wrote_it() {
    let mut l = Ledger::new(40, RangeSet::new());
    assert!(l.learn(grid(20, 2)));
    // Unit 0 written by B alone, unit 1 by B and C.
    write(&mut l, B, 0..20);
    let c0 = l.ready(0..20);
    assert_eq!(
        l.finish(&c0[0], false),
        vec![B],
        "a sole writer of a bad unit is banned"
    );
    assert!(l.is_banned(B));
    assert!(l.claim(B, 0..40, 10, None, Instant::now()).is_none());
    write(&mut l, C, 20..30);
    write(&mut l, A, 30..40);
    let c1 = l.ready(20..40);
    assert!(
        l.finish(&c1[0], false).is_empty(),
        "shared blame is a strike"
    );
    assert!(!l.is_banned(A) && !l.is_banned(C));
    // The unit is refetched by one writer alone.
    let now = Instant::now();
    assert_eq!(l.claim(A, 20..40, 5, None, now), Some(20..25));
    assert_eq!(l.claim(C, 20..40, 5, None, now), None);
    assert_eq!(l.figures()[&NetworkId::GNUTELLA].discarded, 30);
    // Two failed checks had Gnutella bytes in them, one eD2k bytes.
    assert_eq!(l.figures()[&NetworkId::GNUTELLA].failed_checks, 2);
    assert_eq!(l.figures()[&NetworkId::ED2K].failed_checks, 1);
}

#[test]
fn a_coarse_unit_is_checked_once_the_fine_ones_around_it_pass() {
    let mut l = Ledger::new(40, RangeSet::new());
    assert!(l.learn(grid(40, 1)));
    assert!(l.learn(grid(10, 4)));
    write(&mut l, B, 0..40);
    let fine = l.ready(0..40);
    assert_eq!(fine.len(), 4, "the fine units first: {fine:?}");
    for c in &fine[..3] {
        assert!(l.ready(c.range.clone()).is_empty());
        l.finish(c, true);
    }
    l.finish(&fine[3], true);
    assert!(l.verified().contains(0..40));
    let whole = l.ready(0..40);
    assert_eq!(whole.len(), 1, "the whole-file hash, once more");
    l.finish(&whole[0], true);
    assert!(l.ready(0..40).is_empty(), "nothing is left to check");
    assert_eq!(l.figures()[&NetworkId::GNUTELLA].verified, 40);
}

#[test]
fn hashes_that_do_not_fit_are_refused() {
    let mut l = Ledger::new(40, RangeSet::new());
    assert!(!l.learn(grid(10, 3)));
    assert!(!l.knows_hashes());
}

#[test]
fn in_the_end_game_idle_networks_take_on_the_newest_claims_of_others() {
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(1);
    let mut l = Ledger::new(40, RangeSet::new());
    assert!(l.learn(grid(10, 4)));
    assert_eq!(l.claim(A, 0..40, 10, None, t0), Some(0..10));
    assert!(
        l.claim_whole(C, 20..40, later),
        "claimed last, so taken on first"
    );
    assert_eq!(l.claim(A, 0..40, 10, None, t0), Some(10..20));
    // Nothing is free: B (Gnutella) takes on A's claims, not C's (its own network)…
    assert_eq!(l.claim(B, 0..40, 10, None, later), Some(0..10));
    l.release(B, 0..10);
    // …and A (eD2k) takes on C's, the newest.
    let a = l.claim(A, 0..40, 10, None, later);
    assert_eq!(a, Some(20..30));
    // Both may now write it; the first verified copy wins.
    assert_eq!(write(&mut l, A, 20..30).covered(), 10);
    let checks = l.ready(20..30);
    l.finish(&checks[0], true);
    assert!(l.verified().contains(20..30));
    assert!(
        write(&mut l, C, 20..30).is_empty(),
        "the late copy is dropped"
    );
    // While anything is free, no one takes on others' claims.
    let mut l = Ledger::new(40, RangeSet::new());
    assert!(l.claim_whole(C, 0..10, t0));
    assert_eq!(l.claim(A, 0..10, 10, None, later), None);
}

#[test]
fn a_whole_file_hash_is_checked_once_more_when_finer_ones_passed_it_all() {
    let mut l = Ledger::new(20, RangeSet::new());
    assert!(l.learn(grid(10, 2)));
    assert!(l.learn(grid(20, 1)));
    write(&mut l, B, 0..20);
    let fine = l.ready(0..20);
    assert_eq!(fine.len(), 2);
    l.finish(&fine[0], true);
    l.finish(&fine[1], true);
    assert!(
        l.verified().contains(0..20) && !l.complete(),
        "the whole hash is still due"
    );
    let whole = l.ready(0..20);
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].range, 0..20);
    l.finish(&whole[0], true);
    assert!(l.complete() && l.conflict().is_none());
    assert!(l.ready(0..20).is_empty());
    // The same, but the whole-file hash disagrees: a conflict, and never complete.
    let mut l = Ledger::new(20, RangeSet::full(20));
    assert!(l.learn(grid(20, 1)));
    let whole = l.ready(0..20);
    l.finish(&whole[0], false);
    assert!(!l.complete() && l.conflict().is_some());
    assert!(l.verified().contains(0..20), "verified bytes stay verified");
}

#[test]
fn a_reader_gets_its_next_bytes_then_the_end_of_the_file() {
    use super::claims::{STREAM_AHEAD, STREAM_TAIL};
    const MIB: u64 = 1 << 20;
    let now = Instant::now();
    let size = 64 * MIB;
    let mut l = Ledger::new(size, RangeSet::new());
    let at = 10 * MIB;
    let ahead = l.claim(A, 0..size, STREAM_AHEAD, Some(at), now).unwrap();
    assert_eq!(ahead, at..at + STREAM_AHEAD);
    let tail = l.claim(B, 0..size, MIB, Some(at), now).unwrap();
    assert_eq!(tail, size - STREAM_TAIL..size - STREAM_TAIL + MIB);
    let tail = l.claim(B, 0..size, 4 * MIB, Some(at), now).unwrap();
    assert_eq!(tail, size - MIB..size);
    // Then onwards from the reader, and without a reader from the start.
    let next = l.claim(C, 0..size, MIB, Some(at), now).unwrap();
    assert_eq!(next, at + STREAM_AHEAD..at + STREAM_AHEAD + MIB);
    assert_eq!(l.claim(C, 0..size, MIB, None, now), Some(0..MIB));
}

#[test]
fn claims_go_to_a_reader_then_the_tail_then_the_rarest_bytes() {
    use super::claims::{STREAM_AHEAD, STREAM_TAIL};
    let now = Instant::now();
    let size = 64 << 20;
    let part = 8 << 20;
    let mut l = Ledger::new(size, RangeSet::new());
    assert!(l.learn(grid(part, 8)));
    // Source 1 has every part; source 2 all but parts 5 and 6; source 3 all but 6.
    let all: RangeSet = std::iter::once(0..size).collect();
    let mut most = all.clone();
    most.remove(5 * part..7 * part);
    let mut nearly = all.clone();
    nearly.remove(6 * part..7 * part);
    let src = |n| Writer {
        network: NetworkId::ED2K,
        source: n,
    };
    l.set_availability(src(1), Some(all.clone()));
    l.set_availability(src(2), Some(most));
    l.set_availability(src(3), Some(nearly));
    // No reader: the part only one source has, then the one two have.
    assert_eq!(
        l.claim(A, 0..size, part, None, now),
        Some(6 * part..7 * part)
    );
    assert_eq!(
        l.claim(A, 0..size, part, None, now),
        Some(5 * part..6 * part)
    );
    // A reader at part 1: its next bytes, then the end of the file, come first.
    let reader = Some(part);
    let got = l.claim(B, 0..size, STREAM_AHEAD, reader, now).unwrap();
    assert_eq!(got, part..part + STREAM_AHEAD);
    let got = l.claim(B, 0..size, STREAM_AHEAD, reader, now).unwrap();
    assert_eq!(got.start, size - STREAM_TAIL, "the tail");
    // The rest is equally common: onwards from the reader.
    let got = l.claim(B, 0..size, 1 << 20, reader, now).unwrap();
    assert_eq!(got.start, part + STREAM_AHEAD);
    // Inside the parts a peer has, rarest first too: source 2 lacks parts 5 and 6.
    l.release(A, 0..size);
    let mut has2: RangeSet = std::iter::once(0..size).collect();
    has2.remove(5 * part..7 * part);
    l.set_availability(src(1), None);
    // Now part 5 is held by source 3 alone (6 by nobody); source 2 may not fetch them.
    let got = l.claim_in(src(2), &has2, 1 << 20, None, now).unwrap();
    assert!(got.end <= 5 * part || got.start >= 7 * part, "{got:?}");
    let got = l.claim_in(src(3), &all, part, None, now).unwrap();
    assert_eq!(got, 6 * part..7 * part, "nobody else has part 6");
}

#[test]
fn bytes_left_out_are_never_claimed_and_not_needed_to_complete() {
    let now = Instant::now();
    let mut l = Ledger::new(100, RangeSet::new());
    l.set_skipped(std::iter::once(40..80).collect());
    assert_eq!(l.claim(A, 0..100, 100, Some(40), now), Some(80..100));
    assert_eq!(l.claim(B, 0..100, 100, None, now), Some(0..40));
    // Only 40..80 is unclaimed: C gets an end-game copy of A's claim, never 40..80.
    let c = l.claim(C, 0..100, 100, None, now);
    assert!(
        c.clone().is_none_or(|r| r.end <= 40 || r.start >= 80),
        "{c:?}"
    );
    // A piece wholly left out is refused; one reaching into wanted bytes is granted.
    assert!(!l.claim_whole(C, 50..70, now));
    let piece = l.begin_verified_write(0..50).unwrap();
    l.end_verified_write(NetworkId::BITTORRENT, 0..50, &piece);
    assert!(!l.complete());
    let rest = l.begin_verified_write(80..100).unwrap();
    l.end_verified_write(NetworkId::BITTORRENT, 80..100, &rest);
    assert!(l.complete(), "40..80 is left out");
    l.set_skipped(RangeSet::new());
    assert!(!l.complete(), "wanted again");
    assert_eq!(l.wanted(), std::iter::once(50..80).collect());
}
