//! The ranges a transfer verified since its verified set was last saved, each with the
//! digest that proved it, appended the moment they verify. The save (an fsync and a
//! commit, once a second) is too slow to run per piece; an append without a sync is
//! not, and a killed process loses nothing the kernel already has. After a crash each
//! entry counts again only if the bytes on disk still give its digest (a power cut may
//! keep the journal and lose the data), so a verified range never has to be fetched again
//! and junk never counts as verified.
//!
//! The file is a run of fixed records ([`encode`]); a torn last record is ignored.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use junction_core::RangeSet;
use junction_core::swarm::{Proof, Store, UnitAlgo};

/// start, end (u64 LE), the algorithm, the digest's length, the digest (zero-padded).
pub const RECORD: usize = 8 + 8 + 1 + 1 + DIGEST_MAX;
const DIGEST_MAX: usize = 24;
/// More than any real journal holds between two saves; past it the rest is ignored.
const MAX_READ: u64 = 64 << 20;

pub fn encode(p: &Proof) -> Option<[u8; RECORD]> {
    let len = p.digest.len();
    if len > DIGEST_MAX || len != p.algo.digest_len() {
        return None;
    }
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&p.range.start.to_le_bytes());
    r[8..16].copy_from_slice(&p.range.end.to_le_bytes());
    r[16] = match p.algo {
        UnitAlgo::Md4 => 1,
        UnitAlgo::Sha1 => 2,
        UnitAlgo::TigerTree => 3,
    };
    r[17] = len as u8;
    r[18..18 + len].copy_from_slice(&p.digest);
    Some(r)
}

/// One record, if it is well formed and lies within a file of `size` bytes.
pub fn decode(r: &[u8; RECORD], size: u64) -> Option<Proof> {
    let start = u64::from_le_bytes(r[..8].try_into().ok()?);
    let end = u64::from_le_bytes(r[8..16].try_into().ok()?);
    let algo = match r[16] {
        1 => UnitAlgo::Md4,
        2 => UnitAlgo::Sha1,
        3 => UnitAlgo::TigerTree,
        _ => return None,
    };
    let len = usize::from(r[17]);
    if len != algo.digest_len() || start >= end || end > size {
        return None;
    }
    Some(Proof {
        range: start..end,
        algo,
        digest: r[18..18 + len].to_vec(),
    })
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Open for appending once the first proof comes.
    file: Option<File>,
    /// Every proof the file holds, to rewrite it without those a save covered.
    entries: Vec<Proof>,
    /// The transfer ended: nothing more is written.
    ended: bool,
}

impl Journal {
    /// The journal at `path`, its proofs checked against `store`: returns it with the
    /// ranges the bytes on disk still prove. Entries that fail stay out, and are dropped;
    /// those `saved` covers already are not checked again.
    pub fn replay<S: Store + ?Sized>(
        path: &Path,
        store: &S,
        size: u64,
        saved: &RangeSet,
    ) -> (Journal, RangeSet) {
        let mut proven = RangeSet::new();
        let mut entries = Vec::new();
        for p in read(path, size) {
            if saved.contains(p.range.clone()) {
                continue;
            }
            if p.holds(store) {
                proven.insert(p.range.clone());
                entries.push(p);
            } else {
                tracing::info!(range = ?p.range, "a journalled range no longer holds its bytes");
            }
        }
        let journal = Journal {
            path: path.to_owned(),
            state: Mutex::new(State {
                entries,
                ..State::default()
            }),
        };
        (journal, proven)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records proofs of newly verified ranges (no sync: a crash of the process keeps
    /// them; a power cut is what the replay's check is for).
    pub fn append(&self, proofs: Vec<Proof>) {
        if proofs.is_empty() {
            return;
        }
        let mut s = self.state();
        if s.ended {
            return;
        }
        let bytes: Vec<u8> = proofs.iter().filter_map(encode).flatten().collect();
        if s.file.is_none() {
            s.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .inspect_err(|e| tracing::warn!(path = %self.path.display(), error = %e, "could not open a transfer's journal"))
                .ok();
        }
        if let Some(f) = &mut s.file
            && let Err(e) = f.write_all(&bytes)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not journal verified ranges");
        }
        s.entries.extend(proofs);
    }

    /// `saved` is durable now: the proofs it covers are no longer needed. The rest are
    /// written to a new file that replaces the old one in one step.
    pub fn saved(&self, saved: &RangeSet) {
        let mut s = self.state();
        if s.ended {
            return;
        }
        let before = s.entries.len();
        s.entries.retain(|p| !saved.contains(p.range.clone()));
        if s.entries.len() == before && s.file.is_some() {
            return;
        }
        let tmp = self.path.with_extension("journal.new");
        let written = (|| -> std::io::Result<File> {
            let mut f = File::create(&tmp)?;
            let bytes: Vec<u8> = s.entries.iter().filter_map(encode).flatten().collect();
            f.write_all(&bytes)?;
            std::fs::rename(&tmp, &self.path)?;
            Ok(f)
        })();
        match written {
            Ok(f) => s.file = Some(f),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "could not rewrite a transfer's journal");
            }
        }
    }

    /// The transfer finished or was cancelled: the journal goes.
    pub fn end(&self) {
        let mut s = self.state();
        s.ended = true;
        s.file = None;
        s.entries.clear();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The well-formed records of the file at `path`, at most [`MAX_READ`] bytes of them.
fn read(path: &Path, size: u64) -> Vec<Proof> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(f) => {
            if let Err(e) = f.take(MAX_READ).read_to_end(&mut bytes) {
                tracing::warn!(path = %path.display(), error = %e, "could not read a transfer's journal");
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not open a transfer's journal")
        }
    }
    bytes
        .chunks_exact(RECORD)
        .filter_map(|r| decode(r.try_into().ok()?, size))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::swarm::MemStore;
    use proptest::prelude::*;

    fn proof(range: std::ops::Range<u64>, data: &[u8]) -> Proof {
        Proof::sha1_of(range, data)
    }

    #[test]
    fn a_record_has_a_fixed_golden_layout() {
        let p = Proof {
            range: 1..0x0102,
            algo: UnitAlgo::Md4,
            digest: (0..16).collect(),
        };
        let r = encode(&p).unwrap();
        let mut want = vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 1, 16];
        want.extend(0..16u8);
        want.extend([0; 8]);
        assert_eq!(r.to_vec(), want);
        assert_eq!(decode(&r, 0x0102), Some(p));
    }

    #[test]
    fn records_that_do_not_fit_the_file_or_their_algorithm_are_refused() {
        let p = proof(0..10, b"0123456789");
        let r = encode(&p).unwrap();
        assert_eq!(decode(&r, 9), None, "past the end");
        let mut bad = r;
        bad[16] = 9;
        assert_eq!(decode(&bad, 10), None, "no such algorithm");
        let mut bad = r;
        bad[17] = 16;
        assert_eq!(decode(&bad, 10), None, "length not the algorithm's");
        let mut bad = r;
        bad[..8].copy_from_slice(&10u64.to_le_bytes());
        assert_eq!(decode(&bad, 10), None, "empty range");
        let wrong = Proof {
            digest: vec![0; 3],
            ..p
        };
        assert_eq!(encode(&wrong), None);
    }

    proptest! {
        #[test]
        fn any_record_decodes_without_panicking(bytes in proptest::collection::vec(any::<u8>(), RECORD)) {
            let r: [u8; RECORD] = bytes.try_into().unwrap();
            if let Some(p) = decode(&r, u64::MAX) {
                prop_assert_eq!(encode(&p), Some(r));
            }
        }
    }

    #[test]
    fn a_replay_keeps_only_ranges_whose_bytes_still_match_and_skips_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.journal");
        let store = MemStore::new(20);
        store.write_at(b"aaaaaaaaaabbbbbbbbbb", 0).unwrap();
        let (j, proven) = Journal::replay(&path, &store, 20, &RangeSet::new());
        assert!(proven.is_empty(), "no file yet");
        j.append(vec![
            proof(0..10, b"aaaaaaaaaa"),
            proof(10..20, b"bbbbbbbbbb"),
        ]);
        // A crash in the middle of a third record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[7; RECORD / 2]).unwrap();
        drop((f, j));
        // The second range's bytes did not reach the disk.
        store.write_at(b"bbbbbbbbbX", 10).unwrap();
        let (_, proven) = Journal::replay(&path, &store, 20, &RangeSet::new());
        assert_eq!(proven.iter().collect::<Vec<_>>(), vec![0..10]);
    }

    #[test]
    fn a_save_drops_the_proofs_it_covers_and_the_end_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.journal");
        let store = MemStore::new(20);
        store.write_at(b"aaaaaaaaaabbbbbbbbbb", 0).unwrap();
        let (j, _) = Journal::replay(&path, &store, 20, &RangeSet::new());
        j.append(vec![
            proof(0..10, b"aaaaaaaaaa"),
            proof(10..20, b"bbbbbbbbbb"),
        ]);
        let mut saved = RangeSet::new();
        saved.insert(0..15);
        j.saved(&saved);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), RECORD as u64);
        // Appends go on into the new file.
        j.append(vec![proof(0..10, b"aaaaaaaaaa")]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * RECORD as u64);
        let (_, proven) = Journal::replay(&path, &store, 20, &RangeSet::new());
        assert_eq!(proven.covered(), 20);
        j.end();
        assert!(!path.exists());
        j.append(vec![proof(0..10, b"aaaaaaaaaa")]);
        assert!(!path.exists(), "nothing is written after the end");
    }
}
