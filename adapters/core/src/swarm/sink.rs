//! One network's handle on a [`Swarm`]: the [`TransferSink`] it fetches through. Its
//! owner (the gateway's transfer, or nothing in a test) hosts it: where a reader waits,
//! whether writes are still taken, and where checks run.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{Pending, Progress, Store, Swarm, UnitHashes, Writer};
use crate::{NetworkId, RangeSet, SinkError, TransferSink};

/// What the owner of a swarm adds to every network's handle on it.
pub trait SwarmHost: Send + Sync + fmt::Debug + 'static {
    /// Where a reader waits; claims start there.
    fn priority(&self) -> Option<u64> {
        None
    }

    /// Whether writes are refused (the transfer stopped).
    fn is_closed(&self) -> bool {
        false
    }

    /// Runs the checks a write of `written` bytes made ready. By default at once, on the
    /// writer's thread.
    fn settle<S: Store>(host: &Arc<Self>, swarm: &Arc<Swarm<S>>, pending: Pending, written: u64)
    where
        Self: Sized,
    {
        let p = swarm.settle(pending);
        host.progressed(p, written);
    }

    /// Bytes were written, or a check, a learnt grid or a network's own verdict changed
    /// what is verified.
    fn progressed(&self, _p: Progress, _written: u64) {}

    /// A write failed on the disk (full, say): the host may stop the transfer.
    fn write_failed(&self, _e: &std::io::Error) {}
}

/// No owner: checks run inline and nothing waits (tests, examples).
#[derive(Debug, Default)]
pub struct Inline;

impl SwarmHost for Inline {}

#[derive(Debug)]
pub struct SwarmSink<S, H = Inline> {
    pub swarm: Arc<Swarm<S>>,
    pub network: NetworkId,
    pub host: Arc<H>,
}

impl<S: Store> SwarmSink<S> {
    pub fn new(swarm: Arc<Swarm<S>>, network: NetworkId) -> Arc<SwarmSink<S>> {
        SwarmSink::hosted(swarm, network, Arc::new(Inline))
    }
}

impl<S: Store, H: SwarmHost> SwarmSink<S, H> {
    pub fn hosted(swarm: Arc<Swarm<S>>, network: NetworkId, host: Arc<H>) -> Arc<Self> {
        Arc::new(SwarmSink {
            swarm,
            network,
            host,
        })
    }

    fn disk_failed(&self, e: &SinkError) {
        if let SinkError::Io(e) = e {
            self.host.write_failed(e);
        }
    }

    fn by(&self, source: u64) -> Writer {
        Writer {
            network: self.network,
            source,
        }
    }
}

impl<S: Store, H: SwarmHost> TransferSink for SwarmSink<S, H> {
    fn size(&self) -> u64 {
        self.swarm.size()
    }
    fn wanted(&self) -> RangeSet {
        self.swarm.ledger().wanted()
    }
    fn priority(&self) -> Option<u64> {
        self.host.priority()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.write_from(0, offset, data)
    }
    fn write_from(&self, source: u64, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        if self.host.is_closed() {
            return Err(SinkError::Closed);
        }
        let pending = self
            .swarm
            .put(self.by(source), offset, data)
            .inspect_err(|e| self.disk_failed(e))?;
        H::settle(&self.host, &self.swarm, pending, data.len() as u64);
        Ok(())
    }
    fn write_verified(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        if self.host.is_closed() {
            return Err(SinkError::Closed);
        }
        let pending = self
            .swarm
            .put_verified(self.network, offset, data)
            .inspect_err(|e| self.disk_failed(e))?;
        H::settle(&self.host, &self.swarm, pending, data.len() as u64);
        Ok(())
    }
    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        self.swarm.read(offset, len)
    }
    fn verified(&self, range: Range<u64>, ok: bool) {
        self.swarm.ledger().attest(self.network, range, ok);
        let p = Progress {
            verified: ok,
            rejected: !ok,
        };
        self.host.progressed(p, 0);
    }
    fn written(&self) -> RangeSet {
        self.swarm.ledger().unverified_written()
    }
    fn skipped(&self) -> RangeSet {
        self.swarm.ledger().skipped().clone()
    }
    fn claim(&self, source: u64, within: Range<u64>, max: u64) -> Option<Range<u64>> {
        let from = self.host.priority();
        self.swarm
            .ledger()
            .claim(self.by(source), within, max, from, Instant::now())
    }
    fn claim_in(&self, source: u64, within: &RangeSet, max: u64) -> Option<Range<u64>> {
        let from = self.host.priority();
        self.swarm
            .ledger()
            .claim_in(self.by(source), within, max, from, Instant::now())
    }
    fn availability(&self, source: u64, has: Option<RangeSet>) {
        self.swarm.ledger().set_availability(self.by(source), has);
    }
    fn claim_whole(&self, source: u64, range: Range<u64>) -> bool {
        self.swarm
            .ledger()
            .claim_whole(self.by(source), range, Instant::now())
    }
    fn release(&self, source: u64, range: Range<u64>) {
        self.swarm.ledger().release(self.by(source), range);
    }
    fn learn(&self, hashes: UnitHashes) -> bool {
        let (ok, p) = self.swarm.learn(hashes);
        self.host.progressed(p, 0);
        ok
    }
    fn strike(&self, sources: &[u64]) -> Vec<u64> {
        let by: Vec<Writer> = sources.iter().map(|s| self.by(*s)).collect();
        self.swarm
            .ledger()
            .strike(&by)
            .into_iter()
            .map(|w| w.source)
            .collect()
    }
    fn is_banned(&self, source: u64) -> bool {
        self.swarm.ledger().is_banned(self.by(source))
    }
    fn discarded(&self, source: u64, bytes: u64, dropped: bool) {
        self.swarm
            .ledger()
            .discarded(self.by(source), bytes, dropped);
    }
}
