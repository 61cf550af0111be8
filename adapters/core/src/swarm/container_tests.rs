use sha1::{Digest, Sha1};

use super::*;
use crate::NetworkId;
use crate::swarm::{MemStore, Swarm, SwarmSink};

const TOTAL: u64 = 10_000;
const PIECE: u64 = 1024;

fn content() -> Vec<u8> {
    (0..TOTAL).map(|i| (i * 7 + i / 89) as u8).collect()
}

fn pieces(data: &[u8]) -> UnitHashes {
    let digests = data
        .chunks(PIECE as usize)
        .map(|p| Sha1::digest(p).to_vec())
        .collect();
    UnitHashes::uniform(UnitAlgo::Sha1, PIECE, digests)
}

/// The transfer of the file alone (`len` bytes), and the content around it as BitTorrent
/// sees it.
fn file_in_content(at: u64, len: u64) -> (Arc<Swarm<MemStore>>, ContainerSink) {
    let swarm = Arc::new(Swarm::new(MemStore::new(len), len, RangeSet::new()));
    let sink: Arc<dyn TransferSink> = SwarmSink::new(swarm.clone(), NetworkId::BITTORRENT);
    (swarm, ContainerSink::new(sink, at, TOTAL).unwrap())
}

/// Pieces wholly inside the file check its bytes whoever writes them; a piece at its edge
/// is claimed and kept for the file's part only; nothing outside is claimed, kept or read.
#[test]
fn only_the_files_bytes_reach_the_transfer() {
    let data = content();
    let (at, len) = (1500, 5000);
    let (swarm, c) = file_in_content(at, len);
    assert_eq!(c.size(), TOTAL);
    assert_eq!(c.wanted(), RangeSet::full(TOTAL));
    assert!(
        !c.learn(pieces(&data)),
        "the edges are not checked by the sink"
    );
    // Pieces 2..6 (2048..6144) lie inside the file: a run from 548 in the file.
    let run = swarm.ledger().grids().to_vec();
    assert_eq!(run.len(), 1, "{run:?}");
    assert_eq!((run[0].at, run[0].digests.len()), (Some(548), 4));

    assert!(
        !c.claim_whole(1, 0..PIECE),
        "a piece wholly outside the file"
    );
    assert!(
        !c.claim_whole(1, 8192..9216),
        "a piece wholly outside the file"
    );
    assert!(
        c.claim_whole(1, PIECE..2 * PIECE),
        "the piece at the file's start"
    );
    // The edge piece, hashed whole by BitTorrent: only the file's part is kept.
    c.write_verified(PIECE, &data[1024..2048]).unwrap();
    let mut expect = RangeSet::new();
    expect.insert(0..548);
    assert_eq!(swarm.ledger().verified(), &expect);

    // Inside: the run checks a liar's piece and an honest one.
    let mut junk = data[3072..4096].to_vec();
    junk[10] ^= 1;
    c.write_from(3, 3072, &junk).unwrap();
    assert!(c.is_banned(3), "the liar was not dropped");
    c.write_from(2, 2048, &data[2048..4096]).unwrap();
    expect.insert(548..4096 - at);
    assert_eq!(swarm.ledger().verified(), &expect);
    let wanted = c.wanted();
    assert_eq!(
        wanted.covered_in(0..at),
        at,
        "outside the file stays wanted"
    );
    assert_eq!(wanted.covered_in(at..4096), 0);
    assert_eq!(wanted.covered_in(4096..TOTAL), TOTAL - 4096);

    assert_eq!(c.read(at, 100).unwrap(), &data[1500..1600]);
    assert!(
        c.read(at - 1, 100).is_err(),
        "a read reaching outside the file"
    );
    // Bytes outside the file are dropped, and a write past the content is refused.
    c.write_verified(8192, &data[8192..9216]).unwrap();
    assert_eq!(swarm.ledger().verified(), &expect);
    assert!(c.write(TOTAL - 1, b"ab").is_err());
}

/// A file that ends the content: its last, shorter piece is in the run, and the pieces
/// verify it to its end.
#[test]
fn the_contents_last_piece_checks_a_file_that_ends_it() {
    let data = content();
    let (at, len) = (6000, 4000);
    let (swarm, c) = file_in_content(at, len);
    c.learn(pieces(&data));
    let run = swarm.ledger().grids().to_vec();
    assert_eq!((run[0].at, run[0].digests.len()), (Some(144), 4));
    c.write_verified(5 * PIECE, &data[5120..6144]).unwrap();
    c.write_from(1, 6144, &data[6144..]).unwrap();
    assert!(swarm.ledger().verified().contains(0..len));
    assert!(c.wanted().covered_in(at..TOTAL) == 0);
}

/// A file that does not fit inside the content is refused.
#[test]
fn a_file_past_the_content_is_refused() {
    let swarm = Arc::new(Swarm::new(MemStore::new(5000), 5000, RangeSet::new()));
    let sink: Arc<dyn TransferSink> = SwarmSink::new(swarm, NetworkId::BITTORRENT);
    assert!(ContainerSink::new(sink.clone(), 6000, TOTAL).is_none());
    assert!(ContainerSink::new(sink, u64::MAX, TOTAL).is_none());
}
