//! AICH block hashes during a download. With an AICH root the user gave (an `ed2k://`
//! link's `h=`, a magnet's `urn:aich:`), each part's block hashes are asked of a peer
//! that speaks AICH, proven against that root, and given to the sink, which then checks
//! every 180 KiB block on its own: a corrupt part costs one block, not the whole part,
//! and only the writers of the bad block are blamed. A root a peer names is never trusted.

use std::collections::HashSet;
use std::sync::Mutex;

use junction_core::TransferSink;
use junction_core::swarm::{UnitAlgo, UnitHashes};

use crate::wire::aich;
use crate::wire::hash::{AichHash, BLOCK_SIZE, PART_SIZE};

/// The AICH state of one download.
pub(crate) struct Recovery {
    root: Option<AichHash>,
    /// Parts whose block hashes are known or asked for.
    asked: Mutex<HashSet<u64>>,
}

impl Recovery {
    pub fn new(root: Option<AichHash>) -> Recovery {
        Recovery {
            root,
            asked: Mutex::default(),
        }
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The part to ask for next, among the parts of `offsets`: one not asked yet that is
    /// larger than a block (eMule has no recovery data for the others). Marks it asked.
    pub fn next_request(
        &self,
        size: u64,
        offsets: impl Iterator<Item = u64>,
    ) -> Option<(u16, AichHash)> {
        let root = self.root?;
        let mut asked = self.asked();
        for off in offsets {
            let part = off / PART_SIZE;
            if size - part * PART_SIZE > BLOCK_SIZE && asked.insert(part) {
                return Some((u16::try_from(part).ok()?, root));
            }
        }
        None
    }

    /// A peer could not answer for `part`: another may.
    pub fn unanswered(&self, part: u16) {
        self.asked().remove(&u64::from(part));
    }

    /// Checks a peer's recovery data for `part` and gives the block hashes to the sink.
    /// On any error the part may be asked of another peer.
    pub fn answered(
        &self,
        size: u64,
        sink: &dyn TransferSink,
        part: u16,
        master: &AichHash,
        data: &[u8],
    ) -> Result<(), String> {
        let learnt = self
            .root
            .ok_or_else(|| "no AICH root is known".to_string())
            .and_then(|root| {
                if *master != root {
                    return Err("AICH answer for another root".into());
                }
                let hashes = aich::decode_recovery(data).map_err(|e| e.to_string())?;
                let blocks = aich::verify_part(size, part.into(), &root, &hashes)
                    .ok_or("AICH recovery data does not hash to the root")?;
                let mut grid =
                    UnitHashes::in_parts(UnitAlgo::Sha1, PART_SIZE, BLOCK_SIZE, Vec::new());
                grid.digests = vec![Vec::new(); usize::try_from(grid.count(size)).unwrap_or(0)];
                let first =
                    usize::try_from(aich::block_index(u64::from(part) * PART_SIZE)).unwrap_or(0);
                for (slot, b) in grid.digests.iter_mut().skip(first).zip(&blocks) {
                    *slot = b.to_vec();
                }
                if sink.learn(grid) {
                    Ok(())
                } else {
                    Err("the sink refused the AICH block hashes".into())
                }
            });
        if learnt.is_err() {
            self.unanswered(part);
        }
        learnt
    }
}

/// The part a peer was asked for; given back if the peer goes before it answers.
pub(crate) struct Asked<'a> {
    pub recovery: &'a Recovery,
    pub part: Option<u16>,
}

impl Drop for Asked<'_> {
    fn drop(&mut self) {
        if let Some(part) = self.part {
            self.recovery.unanswered(part);
        }
    }
}
