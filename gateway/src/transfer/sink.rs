//! The bytes behind a transfer (a sparse file, or a folder of them: [`Data`]), which every
//! network writes into through its own [`NetSink`]. The shared [`Swarm`] hands out claims, knows who wrote each byte, and
//! verifies units by every hash any network has learnt.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use junction_core::layout::FileSpan;
use junction_core::swarm::{
    NetFigures, Pending, Progress, Store, Swarm, SwarmHost, SwarmSink, UnitHashes,
};
use junction_core::{NetworkId, RangeSet};
use tokio::sync::watch;

use super::files::Data;
use super::journal::Journal;

/// No reader is waiting.
const NO_PRIORITY: u64 = u64::MAX;

#[derive(Debug)]
pub struct FileSink {
    swarm: Arc<Swarm<Data>>,
    /// Bumped whenever the verified set grows, so readers and the manager wake up.
    changed: watch::Sender<u64>,
    priority: AtomicU64,
    /// Bytes written since the manager last looked (for the rate).
    fresh_bytes: AtomicU64,
    /// Verified or written ranges changed since they were last persisted.
    dirty: AtomicBool,
    /// A write found the disk full (the sink closed itself).
    out_of_space: AtomicBool,
    closed: AtomicBool,
    /// The transfer was cancelled: readers stop waiting.
    retired: AtomicBool,
    /// Proofs of what verified since the last save, so a crash loses none of it.
    journal: Option<Journal>,
}

impl FileSink {
    /// Opens (or creates) the data at full length, sparse, with what is known verified:
    /// one file, or a folder of `files` (those `skip` marks left out of the transfer).
    /// Bytes no longer on disk are verified no more. With a `journal`, what it proves
    /// verified since the last save counts too, and what verifies from now on goes there.
    pub fn open(
        path: &Path,
        files: &[FileSpan],
        skip: &[bool],
        size: u64,
        verified: RangeSet,
        journal: Option<&Path>,
    ) -> std::io::Result<FileSink> {
        let mut verified = verified;
        let data = Data::open(path, files, skip, size, &mut verified)?;
        let journal = journal.map(|j| {
            let (journal, proven) = Journal::replay(j, &data, size, &verified);
            let before = verified.covered();
            for r in proven.iter() {
                verified.insert(r);
            }
            if verified.covered() > before {
                tracing::info!(
                    bytes = verified.covered() - before,
                    "verified before a crash, not yet saved: kept, their bytes checked again"
                );
            }
            journal
        });
        let swarm = Swarm::new(data, size, verified);
        let swarm = match journal {
            Some(_) => swarm.keep_proofs(),
            None => swarm,
        };
        swarm.ledger().set_skipped(skipped_bytes(files, skip));
        Ok(FileSink {
            swarm: Arc::new(swarm),
            changed: watch::channel(0).0,
            priority: AtomicU64::new(NO_PRIORITY),
            fresh_bytes: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            out_of_space: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            journal,
        })
    }

    /// `saved` is durable in the transfer's record: the journal drops what it covers.
    pub fn journal_saved(&self, saved: &RangeSet) {
        if let Some(j) = &self.journal {
            j.saved(saved);
        }
    }

    /// The transfer finished or was cancelled: its journal goes.
    pub fn end_journal(&self) {
        if let Some(j) = &self.journal {
            j.end();
        }
    }

    /// The handle one network writes through.
    pub fn for_network(self: &Arc<Self>, network: NetworkId) -> Arc<NetSink> {
        SwarmSink::hosted(self.swarm.clone(), network, self.clone())
    }

    /// Leaves the files `skip` marks out of the transfer (or takes them back in).
    pub fn set_skipped(&self, files: &[FileSpan], skip: &[bool]) {
        self.swarm.ledger().set_skipped(skipped_bytes(files, skip));
        self.changed.send_modify(|v| *v += 1);
    }

    /// Unverified bytes an earlier run wrote, to be checked with the rest.
    pub fn restore_written(&self, written: RangeSet) {
        self.swarm.ledger().restore_written(&written);
    }

    pub fn size(&self) -> u64 {
        self.swarm.size()
    }

    pub fn verified_set(&self) -> RangeSet {
        self.swarm.ledger().verified().clone()
    }

    /// Every byte on disk: verified, or written and not yet checked.
    pub fn written_set(&self) -> RangeSet {
        let l = self.swarm.ledger();
        let mut all = l.verified().clone();
        for r in l.unverified_written().iter() {
            all.insert(r);
        }
        all
    }

    pub fn written_bytes(&self) -> u64 {
        self.written_set().covered()
    }

    pub fn verified_bytes(&self) -> u64 {
        self.swarm.ledger().verified().covered()
    }

    /// Every byte verified, and the whole-file SHA-1 (when known) checked once more.
    pub fn is_complete(&self) -> bool {
        self.swarm.ledger().complete()
    }

    /// Why the file cannot be finished, if its hashes disagree.
    pub fn conflict(&self) -> Option<String> {
        self.swarm.ledger().conflict().map(str::to_owned)
    }

    /// Hashes the gateway itself knows (the whole-file SHA-1, a torrent's pieces), which
    /// check bytes from every network. May hash what is written already: call it off the
    /// async threads.
    pub fn learn(&self, units: UnitHashes) {
        let (_, p) = self.swarm.learn(units);
        self.progressed(p, 0);
    }

    /// What each network received, verified and discarded in this run.
    pub fn figures(&self) -> BTreeMap<NetworkId, NetFigures> {
        self.swarm.ledger().figures().clone()
    }

    /// A network's fetch ended: what it claimed is free for the others.
    pub fn release_network(&self, network: NetworkId) {
        self.swarm.ledger().release_network(network);
    }

    /// Verified bytes from `offset` on, up to `max`, if `offset` is verified.
    pub fn read_verified(&self, offset: u64, max: usize) -> std::io::Result<Option<Bytes>> {
        let end = match self.swarm.ledger().verified().run_end(offset) {
            Some(end) => end.min(offset + max as u64),
            None => return Ok(None),
        };
        let mut buf = vec![0u8; (end - offset) as usize];
        Store::read_at(self.swarm.store(), &mut buf, offset)?;
        Ok(Some(Bytes::from(buf)))
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn set_priority(&self, offset: Option<u64>) {
        self.priority
            .store(offset.unwrap_or(NO_PRIORITY), Ordering::Relaxed);
    }

    /// Bytes received this run that were dropped: already verified, written where they
    /// could not go, or failed a check.
    pub fn redundant_bytes(&self) -> u64 {
        self.swarm
            .ledger()
            .figures()
            .values()
            .map(|f| f.discarded)
            .sum()
    }

    pub fn take_fresh_bytes(&self) -> u64 {
        self.fresh_bytes.swap(0, Ordering::Relaxed)
    }

    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    pub fn take_out_of_space(&self) -> bool {
        self.out_of_space.swap(false, Ordering::AcqRel)
    }

    /// Makes written data durable, before its verified ranges are recorded as such.
    pub fn sync(&self) -> std::io::Result<()> {
        self.swarm.store().sync_data()
    }

    /// Refuses further writes (pause, cancel, shutdown) and wakes waiting readers.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Ends the sink for good (cancel): writes are refused and readers give up.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.close();
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub fn reopen(&self) {
        // A full disk met before a pause is not news after it.
        self.out_of_space.store(false, Ordering::Release);
        self.closed.store(false, Ordering::Release);
    }
}

/// The transfer hosts each network's handle on its file: a reader's position drives the
/// claims, a closed transfer takes no writes, and checks run off the network's path.
impl junction_core::BridgedBytes for FileSink {
    fn size(&self) -> u64 {
        FileSink::size(self)
    }
    fn verified(&self) -> RangeSet {
        self.verified_set()
    }
    fn read_verified(&self, offset: u64, max: usize) -> std::io::Result<Option<Bytes>> {
        FileSink::read_verified(self, offset, max)
    }
}

impl SwarmHost for FileSink {
    fn priority(&self) -> Option<u64> {
        Some(self.priority.load(Ordering::Relaxed)).filter(|&p| p != NO_PRIORITY)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Checks the units a write completed on the blocking pool (an eD2k part, or the whole
    /// file at the end, takes a while to hash), so the network goes on receiving meanwhile;
    /// their bytes stay locked until then. Inline when there is no runtime.
    fn settle<S: Store>(host: &Arc<Self>, swarm: &Arc<Swarm<S>>, pending: Pending, written: u64) {
        if pending.is_empty() {
            let p = Progress {
                verified: pending.verified,
                rejected: false,
            };
            host.progressed(p, written);
            return;
        }
        host.progressed(Progress::default(), written);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let (host, swarm) = (host.clone(), swarm.clone());
                rt.spawn_blocking(move || {
                    let p = swarm.settle(pending);
                    host.progressed(p, 0);
                });
            }
            Err(_) => {
                let p = swarm.settle(pending);
                host.progressed(p, 0);
            }
        }
    }

    /// The disk is full: no network should go on receiving (and blaming sources) until
    /// the manager has paused the transfer.
    fn write_failed(&self, e: &std::io::Error) {
        if junction_core::is_out_of_space(e) {
            self.close();
            self.out_of_space.store(true, Ordering::Release);
        }
    }

    /// Wakes readers and the manager after a write or check.
    fn progressed(&self, p: Progress, written: u64) {
        // Journalled first, before anyone is told the range is verified.
        if let Some(j) = &self.journal {
            j.append(self.swarm.take_proofs());
        }
        self.fresh_bytes.fetch_add(written, Ordering::Relaxed);
        // Written ranges are persisted too (after an fsync), so a restart keeps them.
        self.dirty.store(true, Ordering::Release);
        if p.verified || p.rejected {
            self.changed.send_modify(|v| *v += 1);
        }
    }
}

/// The bytes of the files left out, with the padding that follows each (padding has no
/// owner of its own, and fetching it for nothing wastes a piece).
fn skipped_bytes(files: &[FileSpan], skip: &[bool]) -> RangeSet {
    let mut out = RangeSet::new();
    let (mut at, mut last_skipped) = (0u64, false);
    for (i, f) in files.iter().enumerate() {
        let skipped = match f.pad {
            true => last_skipped,
            false => skip.get(i).copied().unwrap_or(false),
        };
        if skipped && f.length > 0 {
            out.insert(at..at + f.length);
        }
        last_skipped = skipped;
        at += f.length;
    }
    out
}

/// One network's handle on a transfer's file.
pub type NetSink = SwarmSink<Data, FileSink>;

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::{SinkError, TransferSink};

    fn open(path: &Path, size: u64, verified: RangeSet) -> (Arc<FileSink>, Arc<NetSink>) {
        let sink = Arc::new(FileSink::open(path, &[], &[], size, verified, None).unwrap());
        let net = sink.for_network(NetworkId::ED2K);
        (sink, net)
    }

    #[test]
    fn verified_bytes_are_never_overwritten_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let (sink, net) = open(&path, 10, RangeSet::new());
        net.write(0, b"hello").unwrap();
        net.verified(0..5, true);
        assert_eq!(sink.redundant_bytes(), 0);
        net.write(0, b"XXXXXworld").unwrap();
        assert_eq!(&net.read(0, 10).unwrap()[..], b"helloworld");
        assert_eq!(
            sink.redundant_bytes(),
            5,
            "the five verified bytes came again"
        );
        assert!(!sink.is_complete());
        assert_eq!(
            sink.read_verified(0, 100).unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        assert!(sink.read_verified(5, 100).unwrap().is_none());
        assert!(matches!(
            net.write(8, b"abc"),
            Err(SinkError::OutOfRange { .. })
        ));
        net.verified(5..10, true);
        assert!(sink.is_complete());
        drop((sink, net));
        let (again, net) = open(&path, 10, RangeSet::full(10));
        assert!(again.is_complete());
        assert_eq!(&net.read(0, 10).unwrap()[..], b"helloworld");
    }

    /// A crash after a range verified, before the verified set was saved: the journal
    /// brings it back, unless its bytes on disk changed; a save empties the journal.
    #[test]
    fn ranges_verified_since_the_last_save_survive_a_crash_through_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (path, journal) = (dir.path().join("f"), dir.path().join("f.journal"));
        let reopen = |saved: RangeSet| {
            let sink = FileSink::open(&path, &[], &[], 10, saved, Some(&journal)).unwrap();
            let sink = Arc::new(sink);
            (sink.clone(), sink.for_network(NetworkId::BITTORRENT))
        };
        let (sink, net) = reopen(RangeSet::new());
        net.write_verified(0, b"hello").unwrap();
        net.write_verified(5, b"world").unwrap();
        // Killed: no save, no shutdown.
        drop((sink, net));
        let (sink, net) = reopen(RangeSet::new());
        assert!(sink.is_complete(), "both ranges kept");
        assert_eq!(&net.read(0, 10).unwrap()[..], b"helloworld");
        // Saved: the journal has nothing left to prove.
        sink.journal_saved(&RangeSet::full(10));
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
        drop((sink, net));
        // Proofs that no longer hold count for nothing.
        let (sink, net) = reopen(RangeSet::new());
        assert_eq!(
            sink.verified_bytes(),
            0,
            "a saved journal proves nothing again"
        );
        net.write_verified(0, b"hello").unwrap();
        drop((sink, net));
        std::fs::write(&path, b"jello\0\0\0\0\0").unwrap();
        let (sink, _) = reopen(RangeSet::new());
        assert_eq!(
            sink.verified_bytes(),
            0,
            "the bytes under the proof changed"
        );
    }

    #[test]
    fn written_ranges_are_offered_unverified_and_restored_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let (sink, net) = open(&path, 10, RangeSet::new());
        net.write(0, b"abcdef").unwrap();
        net.verified(0..2, true);
        assert_eq!(net.written(), RangeSet::from_iter(std::iter::once(2..6)));
        let kept = sink.written_set();
        drop((sink, net));
        let (again, net) = open(&path, 10, RangeSet::from_iter(std::iter::once(0..2)));
        assert!(net.written().is_empty());
        again.restore_written(kept);
        assert_eq!(net.written(), RangeSet::from_iter(std::iter::once(2..6)));
        // A failed check of the whole file makes all unverified bytes wanted again.
        net.verified(0..10, false);
        assert!(net.written().is_empty());
        assert_eq!(again.verified_bytes(), 2);
    }

    #[test]
    fn a_truncated_file_loses_the_verified_ranges_it_no_longer_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let (sink, _) = open(&path, 10, RangeSet::full(10));
        assert_eq!(sink.verified_bytes(), 3);
    }

    #[test]
    fn a_closed_sink_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, net) = open(&dir.path().join("f"), 4, RangeSet::new());
        sink.close();
        assert!(matches!(net.write(0, b"a"), Err(SinkError::Closed)));
    }

    #[test]
    fn bytes_from_one_network_are_checked_by_hashes_another_learnt() {
        use sha1::Digest;
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..64u8).collect();
        let (sink, bt) = open(&dir.path().join("f"), 64, RangeSet::new());
        let gnutella = sink.for_network(NetworkId::GNUTELLA);
        let pieces = UnitHashes::uniform(
            junction_core::swarm::UnitAlgo::Sha1,
            16,
            data.chunks(16)
                .map(|c| sha1::Sha1::digest(c).to_vec())
                .collect(),
        );
        assert!(bt.learn(pieces));
        gnutella.write_from(1, 0, &data[..20]).unwrap();
        assert_eq!(sink.verified_bytes(), 16, "one whole piece, from Gnutella");
        let mut junk = data[16..32].to_vec();
        junk[8] ^= 1;
        gnutella.write_from(2, 16, &junk).unwrap();
        assert_eq!(sink.verified_bytes(), 16, "junk is not verified");
        assert!(gnutella.is_banned(2) && !gnutella.is_banned(1));
        let f = &sink.figures()[&NetworkId::GNUTELLA];
        assert_eq!((f.received, f.verified), (36, 16));
    }
}
