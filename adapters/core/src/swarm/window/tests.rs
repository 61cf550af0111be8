use sha1::{Digest, Sha1};

use super::*;
use crate::NetworkId;
use crate::swarm::{MemStore, Swarm, SwarmSink, UnitAlgo};

const SIZE: u64 = 10_000;
const AT: u64 = 4096;
const LEN: u64 = 3000;

fn content() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 13 + i / 97) as u8).collect()
}

fn transfer() -> (Arc<Swarm<MemStore>>, Arc<dyn TransferSink>) {
    let swarm = Arc::new(Swarm::new(MemStore::new(SIZE), SIZE, RangeSet::new()));
    let sink: Arc<dyn TransferSink> = SwarmSink::new(swarm.clone(), NetworkId::GNUTELLA);
    (swarm, sink)
}

fn window(sink: &Arc<dyn TransferSink>, index: usize) -> WindowSink {
    WindowSink::new(sink.clone(), AT, LEN, index)
}

/// The file's own SHA-1 checks the file's bytes where the content has them, and nothing
/// else: a liar's copy is not verified, the honest one is, and only that range.
#[test]
fn a_files_own_hash_verifies_its_bytes_in_place() {
    let data = content();
    let file = &data[AT as usize..(AT + LEN) as usize];
    let (swarm, sink) = transfer();
    let w = window(&sink, 0);
    assert_eq!(w.size(), LEN);
    assert_eq!(w.wanted(), RangeSet::full(LEN));
    assert!(w.learn(UnitHashes::whole(UnitAlgo::Sha1, LEN, &Sha1::digest(file))));

    let mut junk = file.to_vec();
    junk[1234] ^= 1;
    w.write_from(7, 0, &junk).unwrap();
    assert_eq!(swarm.ledger().verified().covered(), 0, "junk verified");
    assert!(w.is_banned(7), "the liar was not dropped");

    w.write_from(8, 0, file).unwrap();
    let verified = swarm.ledger().verified().clone();
    let mut window = RangeSet::new();
    window.insert(AT..AT + LEN);
    assert_eq!(verified, window, "{verified:?}");
    assert!(w.wanted().iter().next().is_none());
    assert_eq!(w.read(0, LEN as usize).unwrap(), file);
    // Out of the window: refused, not written elsewhere.
    assert!(w.write(LEN - 1, b"ab").is_err());
    assert!(w.read(LEN, 1).is_err());
}

/// Claims and what a peer has are moved into the content and back; a reader's position
/// is seen only inside the window.
#[test]
fn claims_move_with_the_window() {
    let (_swarm, sink) = transfer();
    let w = window(&sink, 0);
    let r = w.claim(1, 0..LEN, 1000).unwrap();
    assert!(r.end <= LEN && r.end - r.start <= 1000, "{r:?}");
    // The same bytes are taken in the content.
    assert!(!sink.claim_whole(98, AT + r.start..AT + r.end));
    assert!(w.claim_whole(2, 2500..2600));
    assert!(!sink.claim_whole(97, AT + 2500..AT + 2600));
    assert!(
        sink.claim_whole(97, AT + LEN..AT + LEN + 100),
        "outside the window"
    );
    assert_eq!(w.priority(), None);
}

/// Two windows' source 3 are two writers: a strike in one does not reach the other.
#[test]
fn sources_of_two_windows_stay_apart() {
    let (_swarm, sink) = transfer();
    let (a, b) = (window(&sink, 0), window(&sink, 1));
    assert_eq!(a.strike(&[3]), vec![3]);
    assert!(a.is_banned(3));
    assert!(!b.is_banned(3), "a strike crossed windows");
}

/// A grid is taken only when it lands on the content unchanged; equal units whose last
/// one would reach into the next file end with a unit of their own.
#[test]
fn a_grid_moves_only_when_it_fits() {
    let (_swarm, sink) = transfer();
    let w = window(&sink, 0);
    let units = |unit_len: u64, n: usize| {
        UnitHashes::uniform(UnitAlgo::Md4, unit_len, vec![vec![1u8; 16]; n])
    };
    // 3000 bytes in units of 1000: three whole units, one run.
    assert_eq!(w.moved(units(1000, 3)).len(), 1);
    // Units of 1024: two whole ones, then the last 952 bytes on their own.
    let split = w.moved(units(1024, 3));
    assert_eq!(split.len(), 2);
    assert_eq!(
        (split[1].at, split[1].unit_len),
        (Some(AT + 2048), LEN - 2048)
    );
    // The wrong number of units for the file: nothing.
    assert!(w.moved(units(1024, 4)).is_empty());
    // The file ends where the content ends: one run, clipped by the content.
    let last = WindowSink::new(sink.clone(), SIZE - LEN, LEN, 2);
    assert_eq!(last.moved(units(1024, 3)).len(), 1);
    // A Tiger tree below the root does not move.
    let tiger = UnitHashes::uniform(UnitAlgo::TigerTree, 1024, vec![vec![1u8; 24]; 3]);
    assert!(w.moved(tiger).is_empty());
}

/// eD2k-like part hashes of a file in the middle of the content check its bytes there,
/// the last short part included.
#[test]
fn parts_of_a_file_in_the_middle_check_it_to_its_end() {
    use crate::hashing::md4::Md4;
    let data = content();
    let file = &data[AT as usize..(AT + LEN) as usize];
    let (swarm, sink) = transfer();
    let w = window(&sink, 0);
    let parts = UnitHashes::uniform(
        UnitAlgo::Md4,
        1024,
        file.chunks(1024).map(|c| Md4::digest(c).to_vec()).collect(),
    );
    assert!(w.learn(parts));
    w.write_from(1, 0, file).unwrap();
    let mut window = RangeSet::new();
    window.insert(AT..AT + LEN);
    assert_eq!(swarm.ledger().verified(), &window);
}
