//! One transfer's bytes, shared by every network that fetches it: the [`Ledger`] that
//! hands out claims and knows who wrote what, and the store the bytes live in. Bytes are
//! verified by whichever known hash covers them, read back from the store while no write
//! may touch them, so a verified range always holds exactly the bytes that were hashed.

mod container;
mod ledger;
mod proof;
mod range_map;
mod sink;
mod units;
mod window;

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

pub use container::ContainerSink;
pub use ledger::{CLAIM_STALL, Check, Ledger, MAX_STRIKES, NetFigures, Writer};
pub use proof::Proof;
pub use range_map::RangeMap;
pub use sink::{Inline, SwarmHost, SwarmSink};
pub use units::{NO_UNIT, UnitAlgo, UnitHasher, UnitHashes};
pub use window::WindowSink;

use crate::{NetworkId, RangeSet, SinkError};

/// Read size while hashing a unit back from the store.
const HASH_READ: usize = 1 << 20;

/// Where a transfer's bytes live.
pub trait Store: Send + Sync + 'static {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()>;
}

impl Store for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.read_exact_at(buf, offset)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        crate::write_all_at_uncached(self, data, offset)
    }
}

/// Bytes in memory, for tests and tools.
#[derive(Debug)]
pub struct MemStore(Mutex<Vec<u8>>);

impl MemStore {
    pub fn new(size: u64) -> MemStore {
        MemStore(Mutex::new(vec![0; usize::try_from(size).unwrap_or(0)]))
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Store for MemStore {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let d = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| d.get(o..o.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let dst = usize::try_from(offset)
            .ok()
            .and_then(|o| d.get_mut(o..o.checked_add(data.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

/// What a write did to the verified bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Some unit passed its check (or a self-checked write landed).
    pub verified: bool,
    /// Some unit failed its check.
    pub rejected: bool,
}

/// What a write leaves to do: the units it completed, locked until checked.
#[derive(Debug, Default)]
#[must_use = "the units it completed stay locked until settled"]
pub struct Pending {
    pub checks: Vec<Check>,
    /// The write verified bytes itself (a self-checked piece).
    pub verified: bool,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }
}

/// A transfer's ledger and store.
#[derive(Debug)]
pub struct Swarm<S> {
    store: S,
    ledger: Mutex<Ledger>,
    /// Signalled when a check or a write ends, for writes waiting on a locked range.
    settled: Condvar,
    /// What proves each newly verified range, kept for the owner's journal when asked
    /// ([`Swarm::keep_proofs`]).
    proofs: Option<Mutex<Vec<Proof>>>,
}

impl<S: Store> Swarm<S> {
    pub fn new(store: S, size: u64, verified: RangeSet) -> Swarm<S> {
        Swarm {
            store,
            ledger: Mutex::new(Ledger::new(size, verified)),
            settled: Condvar::new(),
            proofs: None,
        }
    }

    /// Keeps a [`Proof`] of each range a check or a self-checked write verifies, for
    /// [`Swarm::take_proofs`]. (A network's own verdict, [`Ledger::attest`], has none.)
    #[must_use]
    pub fn keep_proofs(mut self) -> Swarm<S> {
        self.proofs = Some(Mutex::new(Vec::new()));
        self
    }

    /// The proofs kept since the last call.
    pub fn take_proofs(&self) -> Vec<Proof> {
        self.proofs.as_ref().map_or_else(Vec::new, |p| {
            std::mem::take(&mut *p.lock().unwrap_or_else(|e| e.into_inner()))
        })
    }

    fn keep_proof(&self, proof: impl FnOnce() -> Proof) {
        if let Some(p) = &self.proofs {
            let proof = proof();
            p.lock().unwrap_or_else(|e| e.into_inner()).push(proof);
        }
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn size(&self) -> u64 {
        self.ledger().size()
    }

    fn check_bounds(&self, offset: u64, len: u64) -> Result<Range<u64>, SinkError> {
        let size = self.size();
        let end = offset.checked_add(len).filter(|&e| e <= size);
        end.map(|end| offset..end).ok_or(SinkError::OutOfRange {
            start: offset,
            end: offset.saturating_add(len),
            size,
        })
    }

    /// Writes what `by` may write of `data` at `offset`, then checks every unit it
    /// completed.
    pub fn write(&self, by: Writer, offset: u64, data: &[u8]) -> Result<Progress, SinkError> {
        let pending = self.put(by, offset, data)?;
        Ok(self.settle(pending))
    }

    /// Writes bytes the writer hashed itself (a whole BitTorrent piece) and marks them
    /// verified in one step, then checks any coarser unit they completed.
    pub fn write_verified(
        &self,
        by: NetworkId,
        offset: u64,
        data: &[u8],
    ) -> Result<Progress, SinkError> {
        let pending = self.put_verified(by, offset, data)?;
        Ok(self.settle(pending))
    }

    /// Runs the checks a write left: each unit is hashed back from the store (its bytes
    /// locked against writes since the write) and the verdict recorded.
    pub fn settle(&self, pending: Pending) -> Progress {
        let mut p = self.run_checks(pending.checks);
        p.verified |= pending.verified;
        p
    }

    /// Writes what `by` may write of `data` at `offset`, and returns the units it completed
    /// for [`Swarm::settle`] to check, so the hashing can run elsewhere.
    pub fn put(&self, by: Writer, offset: u64, data: &[u8]) -> Result<Pending, SinkError> {
        let range = self.check_bounds(offset, data.len() as u64)?;
        let gaps = self.ledger().begin_write(by, range.clone(), Instant::now());
        let result = self.store_gaps(&gaps, offset, data);
        let checks = {
            let mut l = self.ledger();
            l.end_write(&gaps);
            if result.is_err() {
                // Nothing is known of what reached the disk: it is not written.
                l.forget_written(&gaps);
            }
            l.ready(range)
        };
        self.settled.notify_all();
        result?;
        Ok(Pending {
            checks,
            verified: false,
        })
    }

    /// Writes bytes the writer hashed itself and marks them verified in one step, waiting
    /// while a check holds any of them; returns the coarser units they completed.
    pub fn put_verified(
        &self,
        by: NetworkId,
        offset: u64,
        data: &[u8],
    ) -> Result<Pending, SinkError> {
        let range = self.check_bounds(offset, data.len() as u64)?;
        let gaps = {
            let mut l = self.ledger();
            loop {
                if let Some(g) = l.begin_verified_write(range.clone()) {
                    break g;
                }
                l = self.settled.wait(l).unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = self.store_gaps(&gaps, offset, data);
        // Hashed before the range shows as verified, so the owner's journal learns of it
        // as soon after as can be.
        let proof = (self.proofs.is_some() && !gaps.is_empty() && result.is_ok())
            .then(|| Proof::sha1_of(range.clone(), data));
        let checks = {
            let mut l = self.ledger();
            if result.is_ok() {
                l.end_verified_write(by, range.clone(), &gaps);
                // A coarser unit (an eD2k part) may now be whole.
                l.ready(range.clone())
            } else {
                l.abort_verified_write(&gaps);
                Vec::new()
            }
        };
        self.settled.notify_all();
        result?;
        if let Some(proof) = proof {
            self.keep_proof(|| proof);
        }
        Ok(Pending {
            checks,
            verified: !gaps.is_empty(),
        })
    }

    /// Writes the parts of `data` (which starts at `offset`) that `gaps` lets through.
    fn store_gaps(&self, gaps: &RangeSet, offset: u64, data: &[u8]) -> std::io::Result<()> {
        for g in gaps.iter() {
            let slice = &data[(g.start - offset) as usize..(g.end - offset) as usize];
            self.store.write_at(slice, g.start)?;
        }
        Ok(())
    }

    /// Adds unit hashes and checks every unit they complete. False if they do not fit.
    pub fn learn(&self, hashes: UnitHashes) -> (bool, Progress) {
        let checks = {
            let mut l = self.ledger();
            if !l.learn(hashes) {
                return (false, Progress::default());
            }
            l.ready_all()
        };
        (true, self.run_checks(checks))
    }

    /// Hashes each unit back from the store (its range locked against writes) and
    /// records the verdict.
    fn run_checks(&self, checks: Vec<Check>) -> Progress {
        let mut p = Progress::default();
        for c in checks {
            let expected = self.ledger().expected(&c).map(|(a, d)| (a, d.to_vec()));
            let ok = match expected {
                Some((algo, want)) => {
                    let ok = self
                        .hash(algo, c.range.clone())
                        .is_some_and(|got| got == want);
                    if ok {
                        self.keep_proof(|| Proof {
                            range: c.range.clone(),
                            algo,
                            digest: want,
                        });
                    }
                    ok
                }
                None => false,
            };
            let (banned, more) = {
                let mut l = self.ledger();
                let banned = l.finish(&c, ok);
                // A finer unit passing may complete a coarser one.
                let more = if ok {
                    l.ready(c.range.clone())
                } else {
                    Vec::new()
                };
                (banned, more)
            };
            self.settled.notify_all();
            if ok {
                p.verified = true;
            } else {
                p.rejected = true;
                tracing::warn!(range = ?c.range, ?banned, "bytes failed their hash check; fetching them again");
            }
            let more = self.run_checks(more);
            p.verified |= more.verified;
            p.rejected |= more.rejected;
        }
        p
    }

    fn hash(&self, algo: UnitAlgo, range: Range<u64>) -> Option<Vec<u8>> {
        hash_stored(&self.store, algo, range)
    }

    pub fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        let range = self.check_bounds(offset, len as u64)?;
        let mut buf = vec![0u8; len];
        self.store.read_at(&mut buf, range.start)?;
        Ok(Bytes::from(buf))
    }
}

/// The digest of `range` as `store` holds it; `None` if it cannot be read.
pub fn hash_stored<S: Store + ?Sized>(
    store: &S,
    algo: UnitAlgo,
    range: Range<u64>,
) -> Option<Vec<u8>> {
    let mut h = UnitHasher::new(algo);
    let mut buf =
        vec![0u8; HASH_READ.min(usize::try_from(range.end.checked_sub(range.start)?).ok()?)];
    let mut off = range.start;
    while off < range.end {
        let n = usize::try_from((range.end - off).min(buf.len() as u64)).ok()?;
        store.read_at(&mut buf[..n], off).ok()?;
        h.update(&buf[..n]);
        off += n as u64;
    }
    Some(h.finish())
}

#[cfg(test)]
mod tests;
