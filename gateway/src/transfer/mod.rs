//! The transfer manager: one transfer per content, fetched by every network that can,
//! into one sparse file; verified ranges persisted so a restart loses none of them.

mod by_file;
mod clock;
mod container;
mod files;
mod journal;
pub mod lookup;
mod read;
mod record;
mod restore;
mod run;
mod seed;
mod sink;
mod streams;
mod upkeep;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dashmap::DashMap;
use junction_core::{ContentId, HashKind, Identity, NetworkId, Source};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use files::remove_data;
pub use lookup::LinkPeers;
pub use record::{FileInfo, NetworkInfo, Record, State, TransferEvent, TransferInfo};
pub use sink::FileSink;

use crate::Networks;
use crate::error::{GatewayError, Result};
use crate::identity::IdentityIndex;
use crate::store::{Store, Table};

/// What a new transfer is made from (a search item, a link, a torrent).
#[derive(Debug, Clone, Default)]
pub struct StartSpec {
    pub name: String,
    pub size: Option<u64>,
    pub content: ContentId,
    pub sources: Vec<Source>,
    pub trackers: Vec<String>,
    pub torrent: Option<Bytes>,
    pub networks: Vec<String>,
    /// Only these files of a multi-file torrent (their places among its files that are
    /// not padding); empty: every file.
    pub files: Vec<u32>,
    /// A local copy (a shared file) to take the bytes from, checked like any network's.
    pub local: Option<PathBuf>,
    /// Peers the link named, for the networks that fetch by their hash kind.
    pub link_peers: LinkPeers,
}

#[derive(Debug, Clone)]
pub struct TransferManager {
    inner: Arc<Inner>,
}

/// A [`TransferManager`] that does not keep it alive (for the networks' bridge, which the
/// manager's networks hold).
#[derive(Debug, Clone)]
pub struct WeakTransfers(std::sync::Weak<Inner>);

impl WeakTransfers {
    pub fn upgrade(&self) -> Option<TransferManager> {
        self.0.upgrade().map(|inner| TransferManager { inner })
    }
}

#[derive(Debug)]
struct Inner {
    incomplete: PathBuf,
    downloads: PathBuf,
    store: Arc<Store>,
    networks: Networks,
    identities: Arc<IdentityIndex>,
    transfers: DashMap<String, Arc<Transfer>>,
    events: broadcast::Sender<TransferEvent>,
    shutdown: CancellationToken,
    /// Every task the manager spawns, so shutdown can wait for them.
    tasks: TaskTracker,
    /// How long a transfer may have no source before it fails; None: forever.
    give_up: Option<Duration>,
    /// One record written at a time: a snapshot taken before a state change must not
    /// land after the one taken after it.
    saving: Mutex<()>,
    /// Torrent transfers another transfer fetches a file through now (`container.rs`).
    containers: container::InUse,
}

#[derive(Debug)]
struct Transfer {
    /// Replaced once, when a magnet's metadata gives the size.
    sink: Mutex<Arc<FileSink>>,
    run_state: Mutex<RunState>,
    /// Cancels the running fetch; None while not running.
    run: Mutex<Option<CancellationToken>>,
    /// Cancelled: never saved again (a magnet's new sink would not know).
    cancelled: std::sync::atomic::AtomicBool,
}

/// What changes while a transfer runs: its record, its rate, how each network is doing,
/// and how long it has gone without a source.
#[derive(Debug)]
struct RunState {
    record: Record,
    rate: u64,
    nets: BTreeMap<NetworkId, NetState>,
    /// How long it has run without a source.
    clock: clock::SourceClock,
}

/// How one network is doing on one transfer, this run.
#[derive(Debug, Default)]
struct NetState {
    running: bool,
    /// False once the network said it cannot serve this content.
    applicable: bool,
    /// Peers of each of its fetches here: the whole content (`None`) and each file fetched
    /// by its own hashes. Each fetch reports its own count; the network's is their sum.
    stream_peers: BTreeMap<Option<usize>, u32>,
    rate: u64,
    last_received: u64,
    /// What it last said: a queue position, or why it cannot fetch.
    note: Option<String>,
}

impl NetState {
    fn peers(&self) -> u32 {
        self.stream_peers.values().sum()
    }
}

impl TransferManager {
    /// Opens the manager, resumes every unfinished transfer found in the store and seeds
    /// the finished torrents again (`seed::restart`). A transfer with no source on any
    /// network for `give_up` fails (None: never).
    pub fn open(
        data_dir: &Path,
        store: Arc<Store>,
        networks: Networks,
        identities: Arc<IdentityIndex>,
        give_up: Option<Duration>,
    ) -> Result<TransferManager> {
        let incomplete = data_dir.join("incomplete");
        let downloads = data_dir.join("downloads");
        std::fs::create_dir_all(&incomplete)?;
        std::fs::create_dir_all(&downloads)?;
        let inner = Arc::new(Inner {
            incomplete,
            downloads,
            store,
            networks,
            identities,
            transfers: DashMap::new(),
            events: broadcast::channel(1024).0,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            give_up,
            saving: Mutex::new(()),
            containers: container::InUse::default(),
        });
        let manager = TransferManager { inner };
        for (_, record) in manager.inner.store.all::<Record>(Table::Transfers)? {
            if let Err(e) = manager.restore(record) {
                tracing::warn!(error = %e, "could not restore a transfer");
            }
        }
        // Finished torrents seed again, as they did before the restart.
        let finished = seed::finished(&manager.inner);
        manager
            .inner
            .tasks
            .spawn(seed::restart(manager.inner.clone(), finished));
        manager
            .inner
            .tasks
            .spawn(upkeep::tick(manager.inner.clone()));
        Ok(manager)
    }

    /// The running transfer of `content`, as far as it is verified (for serving it before
    /// it is complete).
    pub fn partial(&self, content: &ContentId) -> Option<Arc<FileSink>> {
        self.inner.transfers.iter().find_map(|t| {
            let meta = t.value().run_state();
            let same = meta.record.content().relation(content) == Identity::Same;
            (same && !meta.record.awaiting_metadata).then(|| t.value().sink())
        })
    }

    /// The gateway's database, for the HTTP fronts' own small records (qBittorrent categories).
    pub(crate) fn store(&self) -> Arc<Store> {
        self.inner.store.clone()
    }

    pub fn downgrade(&self) -> WeakTransfers {
        WeakTransfers(Arc::downgrade(&self.inner))
    }

    /// Starts a transfer, or returns the one already running for the same content.
    pub fn start(&self, spec: StartSpec) -> Result<TransferInfo> {
        if !spec.content.has_hashes() {
            return Err(GatewayError::Invalid(
                "a transfer needs a content hash".into(),
            ));
        }
        let size = spec.size.or(spec.content.size);
        // A magnet without a size is queued at once; its metadata gives the size (as
        // qBittorrent and Transmission do).
        let awaiting_metadata = size.is_none() && lookup::needs_size(&spec, &self.inner.networks);
        if size.is_none() && !awaiting_metadata {
            return Err(GatewayError::Invalid(
                "the size of this content is unknown and no running network can learn it from its hashes; add xl=SIZE to the link, or enable the network the link is for".into(),
            ));
        }
        let size = size.unwrap_or(0);
        for net in &spec.networks {
            if !self.inner.networks.iter().any(|n| n.id().as_str() == net) {
                return Err(GatewayError::Invalid(format!("unknown network {net:?}")));
            }
        }
        let existing = self.inner.transfers.iter().find_map(|t| {
            let same = t
                .value()
                .run_state()
                .record
                .content()
                .relation(&spec.content)
                == Identity::Same;
            same.then(|| t.value().clone())
        });
        if let Some(t) = existing {
            return Ok(t.info());
        }
        let id = format!("{:016x}", rand::random::<u64>());
        // A multi-file torrent is fetched into a folder of its files.
        let files = spec
            .torrent
            .as_deref()
            .and_then(|b| junction_core::link::parse_torrent(b).ok())
            .map(|l| l.files)
            .unwrap_or_default();
        let folder = !files.is_empty();
        let path = match folder {
            true => self.inner.incomplete.join(&id),
            false => self.inner.incomplete.join(format!("{id}.part")),
        };
        let mut content = spec.content.clone();
        content.size = (!awaiting_metadata).then_some(size);
        // A torrent without its files yet (a magnet) keeps the choice until they come.
        let later = !folder && spec.torrent.is_none() && spec.content.get(HashKind::Btih).is_some();
        let mut record = Record {
            id: id.clone(),
            name: junction_core::sanitize_file_name(&spec.name),
            size,
            urns: content.urns(),
            state: State::Active,
            error: None,
            networks: spec.networks,
            sources: spec
                .sources
                .iter()
                .chain(&spec.link_peers.sources(&self.inner.networks))
                .map(record::source_row)
                .collect(),
            trackers: spec.trackers,
            torrent: spec.torrent.map(hex::encode),
            metadata: None,
            created_ms: now_ms(),
            path: path.clone(),
            verified: Vec::new(),
            written: Vec::new(),
            awaiting_metadata,
            sourceless_ms: 0,
            waiting_for_space: false,
            free_at_pause: 0,
            files: files.iter().map(Into::into).collect(),
            folder,
            select: Vec::new(),
            local: spec.local.clone(),
            // Named by a torrent's info-hash (a `.torrent` is kept above).
            as_torrent: spec.content.get(HashKind::Btih).is_some()
                || spec.content.get(HashKind::Btmh).is_some(),
        };
        match later && !spec.files.is_empty() {
            true => record.select = spec.files.clone(),
            false => record.select(&spec.files).map_err(GatewayError::Invalid)?,
        }
        let sink = FileSink::open(
            &path,
            &files,
            &record.skip_flags(),
            size,
            Default::default(),
            Some(&self.inner.journal_path(&id)),
        )?;
        self.inner.store.put(Table::Transfers, &id, &record)?;
        let t = Arc::new(Transfer::new(sink, record));
        self.inner.transfers.insert(id.clone(), t.clone());
        tracing::info!(%id, name = %t.run_state().record.name, size, "transfer started");
        run::spawn(&self.inner, &t);
        let info = t.info();
        self.inner.emit(info.clone(), false);
        Ok(info)
    }

    pub fn get(&self, id: &str) -> Result<TransferInfo> {
        Ok(self.transfer(id)?.info())
    }

    pub fn list(&self) -> Vec<TransferInfo> {
        let mut all: Vec<TransferInfo> = self
            .inner
            .transfers
            .iter()
            .map(|t| t.value().info())
            .collect();
        all.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
        all
    }

    /// Adds hashes learnt for a transfer's content (hashing the finished file names it
    /// for every network). Hashes that disagree with the known ones are refused.
    pub fn add_hashes(&self, id: &str, more: &junction_core::ContentId) -> Result<TransferInfo> {
        let t = self.transfer(id)?;
        {
            let mut m = t.run_state();
            let mut content = m.record.content();
            if content.relation(more) == junction_core::Identity::Conflict {
                return Err(GatewayError::Invalid(format!(
                    "the hashes given for transfer {id} disagree with the ones it has"
                )));
            }
            content.absorb(more);
            m.record.urns = content.urns();
        }
        self.inner.persist(&t);
        let info = t.info();
        self.inner.emit(info.clone(), false);
        Ok(info)
    }

    /// Fetches only the files `wanted` names, by their place among a multi-file torrent's
    /// files that are not padding (every file when empty); the others are left out. A
    /// finished transfer that now wants more goes on fetching, into its folder.
    pub fn select_files(&self, id: &str, wanted: &[u32]) -> Result<TransferInfo> {
        let t = self.transfer(id)?;
        let (files, skip, state) = {
            let mut m = t.run_state();
            // A magnet's files may not be known yet: the choice waits for them.
            let unknown = m.record.files.is_empty()
                && m.record.torrent.is_none()
                && m.record.content().get(HashKind::Btih).is_some();
            if m.record.awaiting_metadata || unknown && !wanted.iter().all(|&w| w == 0) {
                // Checked once the metadata lists the files.
                m.record.select = wanted.to_vec();
                drop(m);
                return Ok(t.info());
            }
            m.record.select(wanted).map_err(GatewayError::Invalid)?;
            (m.record.files(), m.record.skip_flags(), m.record.state)
        };
        if state == State::Complete && !files.is_empty() {
            let (path, layout, size) = {
                let m = t.run_state();
                (m.record.path.clone(), m.record.layout(), m.record.size)
            };
            let journal = self.inner.journal_path(id);
            let verified = t.sink().verified_set();
            let sink = FileSink::open(&path, &layout, &skip, size, verified, Some(&journal))?;
            if !sink.is_complete() {
                tracing::info!(%id, "more files wanted: the transfer goes on");
                *t.sink.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(sink);
                run::resume(&self.inner, &t)?;
                return Ok(t.info());
            }
        }
        t.sink().set_skipped(&files, &skip);
        self.inner.persist(&t);
        // Files fetched on their own (by their hashes) start and stop with the choice.
        if state == State::Active && files.iter().any(|f| !f.urns.is_empty()) {
            run::spawn(&self.inner, &t);
        }
        let info = t.info();
        self.inner.emit(info.clone(), false);
        Ok(info)
    }

    /// The `.torrent` a transfer was started from, if any.
    pub fn torrent_bytes(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let t = self.transfer(id)?;
        let hex = t.run_state().record.torrent.clone();
        Ok(hex.and_then(|h| hex::decode(h).ok()))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TransferEvent> {
        self.inner.events.subscribe()
    }

    pub fn pause(&self, id: &str) -> Result<TransferInfo> {
        let t = self.transfer(id)?;
        // The state is copied out first: a guard kept through the match would deadlock on
        // `t.info()`, which takes the same lock.
        let state = t.run_state().record.state;
        match state {
            State::Complete => {
                return Err(GatewayError::Conflict(format!(
                    "transfer {id} is already complete"
                )));
            }
            State::Paused => return Ok(t.info()),
            _ => {}
        }
        t.stop();
        t.sink().close();
        // Paused by the user: it waits for the user, not for disk space.
        t.run_state().record.waiting_for_space = false;
        self.inner.set_state(&t, State::Paused, None)?;
        Ok(t.info())
    }

    pub fn resume(&self, id: &str) -> Result<TransferInfo> {
        let t = self.transfer(id)?;
        let state = t.run_state().record.state;
        match state {
            State::Complete => return Ok(t.info()),
            State::Active | State::Queued if t.is_running() => return Ok(t.info()),
            _ => {}
        }
        run::resume(&self.inner, &t)?;
        Ok(t.info())
    }

    /// Stops and forgets a transfer; its partial file is deleted unless `keep_data`.
    pub fn cancel(&self, id: &str, keep_data: bool) -> Result<TransferInfo> {
        let (_, t) = self
            .inner
            .transfers
            .remove(id)
            .ok_or_else(|| not_found(id))?;
        t.cancelled
            .store(true, std::sync::atomic::Ordering::Release);
        t.stop();
        t.sink().retire();
        t.sink().end_journal();
        seed::stop(&self.inner, &t);
        {
            // A save of it already under way must not write it back after this.
            let _one_at_a_time = self.inner.saving.lock().unwrap_or_else(|p| p.into_inner());
            self.inner.store.remove(Table::Transfers, id)?;
            self.inner.store.remove(Table::Metadata, id)?;
        }
        let mut info = t.info();
        if !keep_data && info.state != State::Complete {
            let _ = remove_data(&info.path);
        }
        info.state = State::Cancelled;
        self.inner.emit(info.clone(), true);
        tracing::info!(%id, "transfer cancelled");
        Ok(info)
    }

    /// Streams verified bytes from `offset`, waiting for ranges still being fetched (and,
    /// for a magnet without a size, for its metadata).
    pub async fn read(&self, id: &str, offset: u64, length: u64) -> Result<read::ContentStream> {
        let t = self.transfer(id)?;
        let mut events = self.subscribe();
        let waited = tokio::time::timeout(lookup::LOOKUP_TIME, async {
            while t.run_state().record.awaiting_metadata {
                match events.recv().await {
                    Err(broadcast::error::RecvError::Closed) => break,
                    _ => continue,
                }
            }
        })
        .await;
        if waited.is_err() {
            return Err(GatewayError::Unavailable(format!(
                "transfer {id} is still waiting for the torrent's metadata, which gives its size; try again"
            )));
        }
        read::start(t.sink(), id, offset, length)
    }

    /// Stops every fetch and persists what is verified.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        for t in self.inner.transfers.iter() {
            t.value().stop();
            self.inner.persist(t.value());
        }
    }

    fn transfer(&self, id: &str) -> Result<Arc<Transfer>> {
        self.inner
            .transfers
            .get(id)
            .map(|t| t.value().clone())
            .ok_or_else(|| not_found(id))
    }
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!(
        "no transfer with id {id:?}; `junction transfers` lists them"
    ))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

impl Transfer {
    fn new(sink: FileSink, record: Record) -> Transfer {
        let clock = clock::SourceClock::restored(Duration::from_millis(record.sourceless_ms));
        Transfer {
            sink: Mutex::new(Arc::new(sink)),
            run_state: Mutex::new(RunState {
                record,
                rate: 0,
                nets: BTreeMap::new(),
                clock,
            }),
            run: Mutex::new(None),
            cancelled: Default::default(),
        }
    }

    fn sink(&self) -> Arc<FileSink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn run_state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.run_state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_running(&self) -> bool {
        self.run.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::Acquire)
    }

    fn stop(&self) {
        let token = self.run.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(token) = token {
            token.cancel();
        }
    }

    fn info(&self) -> TransferInfo {
        let figures = self.sink().figures();
        let m = self.run_state();
        let r = &m.record;
        let mut per_network: Vec<NetworkInfo> = Vec::new();
        let names: BTreeSet<NetworkId> = m.nets.keys().chain(figures.keys()).copied().collect();
        for net in names {
            let f = figures.get(&net).cloned().unwrap_or_default();
            let s = m.nets.get(&net);
            let state = match s {
                Some(s) if s.running => "fetching",
                Some(s) if !s.applicable => "not applicable",
                _ => "idle",
            };
            per_network.push(NetworkInfo {
                network: net.to_string(),
                bytes_received: f.received,
                bytes_verified: f.verified,
                bytes_discarded: f.discarded,
                sources_dropped: f.dropped,
                failed_checks: f.failed_checks,
                sources: s.map_or(0, NetState::peers),
                rate: s.map_or(0, |s| s.rate),
                state: state.into(),
                note: s.and_then(|s| s.note.clone()),
            });
        }
        TransferInfo {
            id: r.id.clone(),
            name: r.name.clone(),
            size: r.size,
            content: r.content(),
            state: r.state,
            bytes_written: self.sink().written_bytes(),
            bytes_verified: self.sink().verified_bytes(),
            bytes_redundant: self.sink().redundant_bytes(),
            rate: m.rate,
            networks: m
                .nets
                .iter()
                .filter(|(_, s)| s.running && (s.peers() > 0 || s.rate > 0))
                .map(|(n, _)| n.to_string())
                .collect(),
            peers: m.nets.values().map(NetState::peers).sum(),
            error: r.error.clone(),
            notes: m
                .nets
                .iter()
                .filter_map(|(n, s)| s.note.as_ref().map(|note| format!("{n}: {note}")))
                .collect(),
            path: r.path.clone(),
            verified: self.sink().verified_set(),
            created_ms: r.created_ms,
            per_network,
            files: FileInfo::of(r, &self.sink().verified_set()),
        }
    }
}

impl Inner {
    fn emit(&self, transfer: TransferInfo, removed: bool) {
        // Nobody watching is fine.
        let _ = self.events.send(TransferEvent { transfer, removed });
    }

    fn set_state(&self, t: &Transfer, state: State, error: Option<String>) -> Result<()> {
        {
            let mut m = t.run_state();
            m.record.state = state;
            m.record.error = error;
        }
        self.persist(t);
        let info = t.info();
        self.emit(info, false);
        Ok(())
    }

    /// Writes the record with the verified ranges, after making those bytes durable.
    fn persist(&self, t: &Transfer) {
        let _one_at_a_time = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        if t.is_cancelled() {
            return; // its record is gone for good
        }
        // The ranges are taken before the sync: a range verified meanwhile is saved next
        // time, once its bytes are on disk too.
        let verified_set = t.sink().verified_set();
        let verified = record::pairs(&verified_set);
        let written = record::pairs(&t.sink().written_set());
        if let Err(e) = t.sink().sync() {
            tracing::warn!(error = %e, "could not sync a transfer file");
            return;
        }
        let mut record = {
            let mut m = t.run_state();
            m.clock.saved();
            let mut record = m.record.clone();
            record.sourceless_ms = m.clock.without().as_millis() as u64;
            record
        };
        record.verified = verified;
        record.written = written;
        match self.store.put(Table::Transfers, &record.id, &record) {
            Ok(()) => t.sink().journal_saved(&verified_set),
            Err(e) => tracing::warn!(id = %record.id, error = %e, "could not persist a transfer"),
        }
    }

    /// Where a transfer journals what it verified since its record was last saved.
    fn journal_path(&self, id: &str) -> PathBuf {
        self.incomplete.join(format!("{id}.journal"))
    }
}
