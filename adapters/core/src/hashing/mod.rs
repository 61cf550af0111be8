//! The hashes networks name files by, computed from the bytes in one read: SHA-1
//! (Gnutella), eD2k's MD4 hashset and AICH root, the Tiger tree root (Gnutella, DC), and
//! BitTorrent's v1 pieces and v2 tree. A finished download or a shared file is read once
//! and every hash another network needs comes out of that read.

pub mod bt;
pub mod ed2k;
pub mod md4;

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{channel, sync_channel};

use sha1::{Digest, Sha1};

use self::bt::{PieceHasher, V2Hasher, V2Tree};
use self::ed2k::{AichHash, AichHasher, Ed2kHasher, Ed2kHashset};
use crate::tiger_tree::{TigerHash, TigerTree};
use crate::{ContentId, HashKind};

/// Which hashes to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    pub sha1: bool,
    pub ed2k: bool,
    pub aich: bool,
    pub tth: bool,
    /// BitTorrent v1 pieces and the v2 tree, for pieces of this length.
    pub bt_piece_len: Option<u64>,
}

impl Want {
    /// Every hash any network names a file by; BitTorrent's pieces sized for `size`.
    pub fn all(size: u64) -> Want {
        Want {
            sha1: true,
            ed2k: true,
            aich: true,
            tth: true,
            bt_piece_len: Some(bt::piece_len_for(size)),
        }
    }
}

/// What one read gave, for the hashes wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileHashes {
    pub size: u64,
    pub sha1: Option<[u8; 20]>,
    pub ed2k: Option<Ed2kHashset>,
    pub aich: Option<AichHash>,
    pub tth: Option<TigerHash>,
    pub bt: Option<BtHashes>,
}

/// BitTorrent's hashes of the file as a single-file torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtHashes {
    pub piece_len: u64,
    pub pieces: Vec<[u8; 20]>,
    /// `None` for an empty file.
    pub v2: Option<V2Tree>,
}

impl FileHashes {
    /// The content id these hashes give (BitTorrent's info-hashes need a torrent, and
    /// come from the torrent made of [`BtHashes`]).
    pub fn content_id(&self) -> ContentId {
        let mut id = ContentId::new(Some(self.size));
        if let Some(h) = &self.sha1 {
            id.set(HashKind::Sha1, h);
        }
        if let Some(h) = &self.ed2k {
            id.set(HashKind::Ed2k, &h.root);
        }
        if let Some(h) = &self.aich {
            id.set(HashKind::Aich, h);
        }
        if let Some(h) = &self.tth {
            id.set(HashKind::Tth, h);
        }
        id
    }
}

/// One running hash.
enum Job {
    Sha1(Sha1),
    Ed2k(Ed2kHasher),
    Aich(AichHasher),
    Tth(Box<TigerTree>),
    Bt(PieceHasher, V2Hasher, u64),
}

impl Job {
    fn update(&mut self, data: &[u8]) {
        match self {
            Job::Sha1(h) => h.update(data),
            Job::Ed2k(h) => h.update(data),
            Job::Aich(h) => h.update(data),
            Job::Tth(h) => h.update(data),
            Job::Bt(v1, v2, _) => {
                v1.update(data);
                v2.update(data);
            }
        }
    }

    fn finish(self, out: &mut FileHashes) {
        match self {
            Job::Sha1(h) => out.sha1 = Some(h.finalize().into()),
            Job::Ed2k(h) => out.ed2k = Some(h.finish()),
            Job::Aich(h) => out.aich = Some(h.finish()),
            Job::Tth(h) => out.tth = Some(h.finish()),
            Job::Bt(v1, v2, piece_len) => {
                out.bt = Some(BtHashes {
                    piece_len,
                    pieces: v1.finish(),
                    v2: v2.finish(piece_len),
                });
            }
        }
    }
}

fn jobs(want: Want) -> Vec<Job> {
    let mut jobs = Vec::new();
    if want.sha1 {
        jobs.push(Job::Sha1(Sha1::new()));
    }
    if want.ed2k {
        jobs.push(Job::Ed2k(Ed2kHasher::new()));
    }
    if want.aich {
        jobs.push(Job::Aich(AichHasher::new()));
    }
    if want.tth {
        jobs.push(Job::Tth(Box::default()));
    }
    if let Some(len) = want.bt_piece_len {
        let len = len.max(bt::BLOCK_LEN).next_power_of_two();
        jobs.push(Job::Bt(PieceHasher::new(len), V2Hasher::new(), len));
    }
    jobs
}

/// Hashes a buffer (tests, small files).
pub fn hash_bytes(data: &[u8], want: Want) -> FileHashes {
    let mut out = FileHashes {
        size: data.len() as u64,
        ..FileHashes::default()
    };
    for mut j in jobs(want) {
        j.update(data);
        j.finish(&mut out);
    }
    out
}

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;
/// Read buffers circulating between the reader and the hashers (reused, never re-zeroed).
const BUFFERS: usize = 6;

/// Reads `src` to its end once and computes every wanted hash, each on a thread of its
/// own, so the read costs the slowest hash rather than their sum. Blocking: run it on a
/// blocking thread.
pub fn hash_reader(mut src: impl Read, want: Want) -> std::io::Result<FileHashes> {
    type Chunk = (Arc<Vec<u8>>, usize);
    let jobs = jobs(want);
    let (released, wait_released) = channel::<()>();
    let mut out = FileHashes::default();
    std::thread::scope(|scope| {
        let mut feeds = Vec::new();
        let mut threads = Vec::new();
        for mut job in jobs {
            let (tx, rx) = sync_channel::<Chunk>(BUFFERS);
            let released = released.clone();
            feeds.push(tx);
            threads.push(scope.spawn(move || {
                for (chunk, n) in rx {
                    job.update(&chunk[..n]);
                    drop(chunk);
                    let _ = released.send(());
                }
                job
            }));
        }
        drop(released);
        let read = (|| -> std::io::Result<u64> {
            let mut total = 0u64;
            let mut pool: Vec<Arc<Vec<u8>>> =
                (0..BUFFERS).map(|_| Arc::new(vec![0u8; CHUNK])).collect();
            loop {
                // A buffer no hasher holds any more.
                let i = loop {
                    if let Some(i) = pool.iter_mut().position(|b| Arc::get_mut(b).is_some()) {
                        break i;
                    }
                    if wait_released.recv().is_err() {
                        return Err(std::io::Error::other("a hasher thread ended"));
                    }
                };
                let Some(data) = Arc::get_mut(&mut pool[i]) else {
                    continue;
                };
                let mut n = 0;
                while n < CHUNK {
                    match src.read(&mut data[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if n == 0 {
                    return Ok(total);
                }
                total += n as u64;
                for f in &feeds {
                    if f.send((pool[i].clone(), n)).is_err() {
                        return Err(std::io::Error::other("a hasher thread ended"));
                    }
                }
            }
        })();
        drop(feeds);
        let finished: Vec<Job> = threads.into_iter().filter_map(|t| t.join().ok()).collect();
        let size = read?;
        out.size = size;
        for j in finished {
            j.finish(&mut out);
        }
        Ok(out)
    })
}

/// Hashes a file in one read. Blocking.
pub fn hash_file(path: &std::path::Path, want: Want) -> std::io::Result<FileHashes> {
    hash_reader(std::fs::File::open(path)?, want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::BASE32_NOPAD;

    #[test]
    fn one_read_gives_what_each_hash_gives_alone() {
        for size in [0usize, 1, 184_320, 9_728_000, 9_728_000 + 1_234_567] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 1000) as u8).collect();
            let want = Want::all(size as u64);
            let got = hash_reader(std::io::Cursor::new(&data), want).unwrap();
            assert_eq!(got, hash_bytes(&data, want), "size {size}");
            assert_eq!(got.size, size as u64);
            assert_eq!(got.ed2k, Some(ed2k::ed2k_hash(&data)));
            assert_eq!(got.aich, Some(ed2k::aich_root(&data)));
            assert_eq!(got.tth, Some(crate::tiger_tree::root(&data)));
        }
    }

    /// The spec's vectors (hashes-and-links.md §6), all from one read.
    #[test]
    fn empty_and_zero_part_vectors() {
        let empty = hash_bytes(b"", Want::all(0));
        assert_eq!(
            BASE32_NOPAD.encode(&empty.sha1.unwrap()),
            "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"
        );
        assert_eq!(
            BASE32_NOPAD.encode(&empty.tth.unwrap()),
            "LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ"
        );
        assert_eq!(
            hex::encode_upper(empty.ed2k.unwrap().root),
            "31D6CFE0D16AE931B73C59D7E0C089C0"
        );
        assert_eq!(
            empty.bt.unwrap().v2,
            None,
            "an empty file has no pieces root"
        );
        let zeros = vec![0u8; 9_728_000];
        let part = hash_bytes(&zeros, Want::all(zeros.len() as u64));
        // One full part: the hashset holds it and the empty last part (eMule's rule).
        let ed2k = part.ed2k.clone().unwrap();
        assert_eq!(
            hex::encode_upper(ed2k.root),
            "FC21D9AF828F92A8DF64BEAC3357425D"
        );
        assert_eq!(ed2k.parts.len(), 2);
        assert_eq!(
            BASE32_NOPAD.encode(&part.aich.unwrap()),
            "5D3N4HQHIUMQ7IU7A5QLPLI6RHSWOR7B"
        );
        let id = part.content_id();
        assert!(id.get(HashKind::Sha1).is_some() && id.get(HashKind::Tth).is_some());
    }

    #[test]
    fn a_read_error_is_returned() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk gone"))
            }
        }
        let err = hash_reader(Broken, Want::all(1)).unwrap_err();
        assert_eq!(err.to_string(), "disk gone");
    }
}
