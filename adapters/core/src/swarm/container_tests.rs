use sha1::{Digest, Sha1};

use super::*;
use crate::NetworkId;
use crate::swarm::{MemStore, Swarm, SwarmSink, UnitAlgo};

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

/// The transfer of the file alone (`at..at + len` of `data`), which knows the file's
/// SHA-1, and the content around it as BitTorrent sees it.
fn file_in_content(data: &[u8], at: u64, len: u64) -> (Arc<Swarm<MemStore>>, ContainerSink) {
    let swarm = Arc::new(Swarm::new(MemStore::new(len), len, RangeSet::new()));
    let sink: Arc<dyn TransferSink> = SwarmSink::new(swarm.clone(), NetworkId::BITTORRENT);
    let file = &data[at as usize..(at + len) as usize];
    assert!(sink.learn(UnitHashes::whole(UnitAlgo::Sha1, len, &Sha1::digest(file))));
    (swarm, ContainerSink::new(sink, at, TOTAL).unwrap())
}

/// A piece at the file's edge is claimed and kept for the file's part only; nothing
/// outside is claimed, kept or read; the torrent's piece hashes are not the file's, and
/// the file's own hash verifies what the pieces brought.
#[test]
fn only_the_files_bytes_reach_the_transfer() {
    let data = content();
    let (at, len) = (1500, 5000);
    let (swarm, c) = file_in_content(&data, at, len);
    assert_eq!(c.size(), TOTAL);
    assert_eq!(c.wanted(), RangeSet::full(TOTAL));
    assert!(!c.learn(pieces(&data)));
    assert_eq!(swarm.ledger().grids().len(), 1, "only the file's own hash");

    assert!(
        !c.claim_whole(0, 0..PIECE),
        "a piece wholly outside the file"
    );
    assert!(
        !c.claim_whole(0, 8192..9216),
        "a piece wholly outside the file"
    );
    assert!(
        c.claim_whole(0, PIECE..2 * PIECE),
        "the piece at the file's start"
    );
    // Pieces BitTorrent hashed whole: only the file's parts are kept, not yet verified.
    for p in 1..6 {
        let r = (p * PIECE) as usize..((p + 1) * PIECE) as usize;
        c.write_verified(p * PIECE, &data[r]).unwrap();
    }
    assert_eq!(swarm.ledger().verified().covered(), 0);
    assert_eq!(c.written().covered_in(at..at + len), 6144 - at);
    assert_eq!(
        c.wanted().covered_in(0..at),
        at,
        "outside the file stays wanted"
    );
    assert_eq!(c.read(at, 100).unwrap(), &data[1500..1600]);
    assert!(
        c.read(at - 1, 100).is_err(),
        "a read reaching outside the file"
    );
    // Bytes outside the file are dropped, and a write past the content is refused.
    c.write_verified(8192, &data[8192..9216]).unwrap();
    assert!(c.write(TOTAL - 1, b"ab").is_err());
    // The file's last bytes (in piece 6) complete it: its own SHA-1 verifies it all.
    c.write_verified(6 * PIECE, &data[6144..7168]).unwrap();
    assert!(swarm.ledger().verified().contains(0..len));
    assert_eq!(c.wanted().covered_in(at..at + len), 0);
}

/// A torrent that lies about its file (the pieces are the torrent's, the file is not
/// this content): its bytes are never verified, and BitTorrent is struck for them.
#[test]
fn a_torrent_that_lies_about_its_file_is_struck() {
    let data = content();
    let (at, len) = (6000, 4000);
    let (swarm, c) = file_in_content(&data, at, len);
    let mut other = data.clone();
    other[7000] ^= 1;
    for p in 5..10 {
        let r = (p * PIECE) as usize..(((p + 1) * PIECE).min(TOTAL)) as usize;
        c.write_verified(p * PIECE, &other[r]).unwrap();
    }
    assert_eq!(swarm.ledger().verified().covered(), 0, "a lie verified");
    assert!(c.is_banned(0) || c.wanted().covered_in(at..TOTAL) == len);
}

/// A file that does not fit inside the content is refused.
#[test]
fn a_file_past_the_content_is_refused() {
    let swarm = Arc::new(Swarm::new(MemStore::new(5000), 5000, RangeSet::new()));
    let sink: Arc<dyn TransferSink> = SwarmSink::new(swarm, NetworkId::BITTORRENT);
    assert!(ContainerSink::new(sink.clone(), 6000, TOTAL).is_none());
    assert!(ContainerSink::new(sink, u64::MAX, TOTAL).is_none());
}
