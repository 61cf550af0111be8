use std::sync::Arc;

use sha1::{Digest, Sha1};

use super::*;
use crate::TransferSink;

const UNIT: u64 = 1024;
const UNITS: u64 = 32;
const SIZE: u64 = UNIT * UNITS;

fn original() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn sha1_units(data: &[u8]) -> UnitHashes {
    UnitHashes::uniform(
        UnitAlgo::Sha1,
        UNIT,
        data.chunks(UNIT as usize)
            .map(|c| Sha1::digest(c).to_vec())
            .collect(),
    )
}

/// A cheap deterministic stream of numbers per thread.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Honest writers, liars and a self-checking writer race over overlapping ranges; every
/// verified byte must be the original byte. (Without claims, honest and lying bytes share
/// units, so who is blamed is tested in the ledger's own tests, not here.)
#[test]
fn racing_writers_never_leave_junk_in_a_verified_range() {
    for round in 0..20u64 {
        let data = Arc::new(original());
        let swarm = Arc::new(Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new()));
        assert!(swarm.learn(sha1_units(&data)).0);
        let mut threads = Vec::new();
        for t in 0..5u64 {
            let (swarm, data) = (swarm.clone(), data.clone());
            threads.push(std::thread::spawn(move || {
                let mut next = rng(round * 31 + t + 1);
                let liar = t >= 3;
                let by = Writer {
                    network: if t % 2 == 0 {
                        NetworkId::GNUTELLA
                    } else {
                        NetworkId::ED2K
                    },
                    source: t,
                };
                for _ in 0..400 {
                    let start = next() % SIZE;
                    let len = 1 + next() % (3 * UNIT);
                    let end = (start + len).min(SIZE);
                    let mut bytes = data[start as usize..end as usize].to_vec();
                    if liar {
                        bytes.iter_mut().for_each(|b| *b ^= 0x5a);
                    }
                    if t == 2 && start.is_multiple_of(2) {
                        // A network that hashed a whole unit in memory.
                        let u = start / UNIT * UNIT;
                        let whole = &data[u as usize..(u + UNIT) as usize];
                        swarm.write_verified(by.network, u, whole).unwrap();
                    } else {
                        swarm.write(by, start, &bytes).unwrap();
                    }
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        let l = swarm.ledger();
        let disk = swarm.store().bytes();
        for r in l.verified().iter() {
            let bad = (r.start..r.end).find(|&i| disk[i as usize] != data[i as usize]);
            assert_eq!(bad, None, "round {round}: junk in verified range {r:?}");
        }
        assert!(
            l.verified().covered() > 0,
            "round {round}: nothing verified"
        );
    }
}

#[test]
fn a_swarm_sink_verifies_what_any_network_wrote() {
    let data = original();
    let swarm = Arc::new(Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new()));
    let ed2k = SwarmSink::new(swarm.clone(), NetworkId::ED2K);
    let gnutella = SwarmSink::new(swarm.clone(), NetworkId::GNUTELLA);
    assert!(ed2k.learn(sha1_units(&data)));
    // A claim covers whole units, as many as fit.
    let wide = gnutella.claim(1, 0..SIZE, 5 * UNIT / 2).unwrap();
    assert_eq!(wide, 0..2 * UNIT, "rounded down to a unit boundary");
    gnutella.release(1, wide);
    let a = gnutella.claim(1, 0..SIZE, UNIT).unwrap();
    assert_eq!(a, 0..UNIT);
    let b = ed2k.claim(1, 0..SIZE, UNIT).unwrap();
    assert_eq!(b, UNIT..2 * UNIT);
    gnutella.write_from(1, 0, &data[..UNIT as usize]).unwrap();
    assert!(
        !gnutella.wanted().iter().any(|r| r.start == 0),
        "unit 0 is verified"
    );
    // A liar's unit fails, and only the liar is banned.
    let mut junk = data[UNIT as usize..2 * UNIT as usize].to_vec();
    junk[5] ^= 1;
    // Another source may not write into source 1's claim…
    ed2k.write_from(9, UNIT, &junk).unwrap();
    assert!(!ed2k.is_banned(9));
    // …and the claimant's own junk gets it banned.
    ed2k.write_from(1, UNIT, &junk).unwrap();
    assert!(ed2k.is_banned(1) && !gnutella.is_banned(1));
    assert_eq!(ed2k.wanted().covered(), SIZE - UNIT);
}

/// Gnutella's THEX nodes check runs of a Tiger tree level; a lie fails only its run.
#[test]
fn tiger_tree_nodes_check_their_runs() {
    let data = original();
    let run = 4 * UNIT;
    let nodes = crate::tiger_tree::level(&data, run as usize);
    let swarm = Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new());
    let hashes = UnitHashes::uniform(
        UnitAlgo::TigerTree,
        run,
        nodes.iter().map(|n| n.to_vec()).collect(),
    );
    assert!(
        !swarm
            .learn(UnitHashes {
                unit_len: 3 * UNIT,
                ..hashes.clone()
            })
            .0
    );
    assert!(swarm.learn(hashes).0);
    let by = |source| Writer {
        network: NetworkId::GNUTELLA,
        source,
    };
    swarm.write(by(1), 0, &data[..run as usize]).unwrap();
    let mut junk = data[run as usize..2 * run as usize].to_vec();
    junk[77] ^= 1;
    swarm.write(by(2), run, &junk).unwrap();
    let l = swarm.ledger();
    assert_eq!(l.verified().iter().collect::<Vec<_>>(), vec![0..run]);
    assert!(l.is_banned(by(2)) && !l.is_banned(by(1)));
}

/// AICH blocks arrive part by part: a part whose blocks are known is checked block by
/// block, the others by the coarser hash alone.
#[test]
fn blocks_known_for_one_part_check_only_that_part() {
    let data = original();
    let (part, block) = (10 * UNIT, 4 * UNIT);
    // Parts 0..10, 10..20, 20..30, 30..32 units; blocks of 4 units inside each.
    let mut digests = vec![Vec::new(); 3 * 3 + 1];
    for (i, b) in data[part as usize..2 * part as usize]
        .chunks(block as usize)
        .enumerate()
    {
        digests[3 + i] = Sha1::digest(b).to_vec();
    }
    let swarm = Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new());
    assert!(
        swarm
            .learn(UnitHashes::in_parts(UnitAlgo::Sha1, part, block, digests))
            .0
    );
    let by = Writer {
        network: NetworkId::ED2K,
        source: 1,
    };
    swarm.write(by, 0, &data).unwrap();
    let verified: Vec<_> = swarm.ledger().verified().iter().collect();
    assert_eq!(verified, vec![part..2 * part]);
}

/// A Tiger level that hashes up to the whole-file root stands for it; one that does not
/// leaves the root to be checked, and a root that disagrees with the bytes fails.
#[test]
fn a_proven_tiger_level_stands_for_its_root() {
    let data = original();
    let run = 4 * UNIT;
    let level = |d: &[u8]| {
        UnitHashes::uniform(
            UnitAlgo::TigerTree,
            run,
            crate::tiger_tree::level(d, run as usize)
                .iter()
                .map(|n| n.to_vec())
                .collect(),
        )
    };
    let by = Writer {
        network: NetworkId::GNUTELLA,
        source: 1,
    };
    for (root_of, complete) in [(data.clone(), true), (vec![0u8; SIZE as usize], false)] {
        let swarm = Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new());
        let root = crate::tiger_tree::root(&root_of);
        assert!(
            swarm
                .learn(UnitHashes::whole(UnitAlgo::TigerTree, SIZE, &root))
                .0
        );
        assert!(swarm.learn(level(&data)).0);
        swarm.write(by, 0, &data).unwrap();
        let l = swarm.ledger();
        assert_eq!(l.verified().covered(), SIZE);
        assert_eq!(l.complete(), complete);
        assert_eq!(l.conflict().is_some(), !complete);
    }
}

/// One file of a multi-file torrent: the pieces that lie wholly inside it check the bytes
/// any network writes there, piece by piece; the head and tail no whole piece covers wait
/// for another hash (here the file's SHA-1, at the end).
#[test]
fn a_run_of_pieces_inside_a_file_checks_its_bytes_and_a_whole_file_hash_the_rest() {
    let data = original();
    // The file starts 300 bytes into a piece: its first whole piece starts at 724.
    let at = UNIT - 300;
    let whole = (SIZE - at) / UNIT;
    let digests = (0..whole)
        .map(|i| {
            let s = (at + i * UNIT) as usize;
            Sha1::digest(&data[s..s + UNIT as usize]).to_vec()
        })
        .collect();
    let swarm = Arc::new(Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new()));
    assert!(
        swarm
            .learn(UnitHashes::run(UnitAlgo::Sha1, at, UNIT, digests))
            .0
    );
    let gnutella = SwarmSink::new(swarm.clone(), NetworkId::GNUTELLA);
    // A piece from Gnutella is verified as soon as it is whole.
    let p1 = (at + UNIT) as usize..(at + 2 * UNIT) as usize;
    gnutella
        .write_from(1, p1.start as u64, &data[p1.clone()])
        .unwrap();
    assert!(
        swarm
            .ledger()
            .verified()
            .contains(p1.start as u64..p1.end as u64)
    );
    // A liar's piece fails and the liar is dropped.
    let mut junk = data[p1.end..p1.end + UNIT as usize].to_vec();
    junk[5] ^= 1;
    gnutella.write_from(2, p1.end as u64, &junk).unwrap();
    assert!(gnutella.is_banned(2) && !gnutella.is_banned(1));
    assert_eq!(swarm.ledger().verified().covered(), UNIT);
    // Everything written by an honest source: every whole piece is verified, the head and
    // the tail are not (no piece covers them).
    gnutella.write_from(1, 0, &data).unwrap();
    let tail = at + whole * UNIT;
    let expect: RangeSet = std::iter::once(at..tail).collect();
    assert_eq!(swarm.ledger().verified(), &expect);
    assert!(!swarm.ledger().complete());
    // The file's SHA-1 checks the rest, and the file is complete.
    let sha = Sha1::digest(&data).to_vec();
    assert!(swarm.learn(UnitHashes::whole(UnitAlgo::Sha1, SIZE, &sha)).0);
    assert!(swarm.ledger().complete(), "{:?}", swarm.ledger().verified());
    assert_eq!(swarm.store().bytes(), data);
}

/// A swarm asked to keep proofs has one for each range that verified, by a check or a
/// self-checked write, and each holds exactly while the store keeps those bytes.
#[test]
fn each_verified_range_leaves_a_proof_of_its_bytes() {
    let data = original();
    let swarm = Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new()).keep_proofs();
    assert!(swarm.learn(sha1_units(&data)).0);
    let by = Writer {
        network: NetworkId::ED2K,
        source: 1,
    };
    // A unit checked against its known hash.
    swarm.write(by, 0, &data[..UNIT as usize]).unwrap();
    // A junk unit fails and proves nothing.
    swarm.write(by, UNIT, &vec![0; UNIT as usize]).unwrap();
    // Two units a network checked itself, in one write.
    let self_checked = 4 * UNIT..6 * UNIT;
    let bytes = &data[self_checked.start as usize..self_checked.end as usize];
    swarm
        .write_verified(NetworkId::BITTORRENT, self_checked.start, bytes)
        .unwrap();
    let proofs = swarm.take_proofs();
    let ranges: Vec<_> = proofs.iter().map(|p| p.range.clone()).collect();
    assert!(
        ranges.contains(&(0..UNIT)) && ranges.contains(&self_checked),
        "{ranges:?}"
    );
    assert!(!ranges.iter().any(|r| r.start == UNIT), "no proof of junk");
    assert!(proofs.iter().all(|p| p.holds(swarm.store())));
    assert!(swarm.take_proofs().is_empty(), "taken once");
    swarm.store().write_at(b"X", 4 * UNIT + 3).unwrap();
    let broken = proofs.iter().find(|p| p.range == self_checked).unwrap();
    assert!(!broken.holds(swarm.store()), "bytes changed under it");
    // A swarm not asked keeps none.
    let plain = Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new());
    plain
        .write_verified(NetworkId::BITTORRENT, 0, &data[..UNIT as usize])
        .unwrap();
    assert!(plain.take_proofs().is_empty());
}
