//! Running a transfer: ask every network to fetch into the sink, retry with back-off while
//! bytes are missing, and finish once every byte is verified.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::{DynNetwork, FetchEvent, HashKind, NetworkError, NetworkId, TransferSink};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use sha1::{Digest, Sha1};

use super::streams::{Stream, Streams, Tagged};
use super::{FileSink, Inner, StartSpec, State, Transfer, by_file, container, lookup, seed};
use crate::store::Table;
use junction_core::RangeSet;
use junction_core::swarm::{UnitAlgo, UnitHashes};

const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub(super) fn spawn(inner: &Arc<Inner>, t: &Arc<Transfer>) {
    let token = inner.shutdown.child_token();
    if let Some(old) = t
        .run
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .replace(token.clone())
    {
        old.cancel();
    }
    let id = t.run_state().record.id.clone();
    let span = tracing::info_span!("transfer", %id);
    inner
        .tasks
        .spawn(run(inner.clone(), t.clone(), token).instrument(span));
}

async fn run(inner: Arc<Inner>, t: Arc<Transfer>, token: CancellationToken) {
    if t.run_state().record.awaiting_metadata && !metadata(&inner, &t, &token).await {
        return;
    }
    let mut backoff = junction_core::Backoff::new(Duration::from_secs(1), MAX_BACKOFF);
    let mut changed = t.sink().subscribe();
    let local = t.run_state().record.local.clone();
    if let Some(path) = local {
        let sink = t.sink();
        let _ = tokio::task::spawn_blocking(move || copy_local(&sink, &path)).await;
    }
    loop {
        if ended_already(&inner, &t).await {
            return;
        }
        let Some((mut events, tried)) = start_all(&inner, &t, &token).await else {
            return;
        };
        if !drive(&inner, &t, &token, &mut events, &tried, &mut changed).await {
            return;
        }
        drop(events);
        for id in &tried {
            ended(&t, *id);
        }
        // Wait before asking the networks again, unless the file completes meanwhile: a
        // network may end once its bytes are in, while their last check still runs.
        let wait = tokio::time::sleep(backoff.next());
        tokio::pin!(wait);
        loop {
            if t.sink().is_complete() {
                finish(&inner, &t).await;
                return;
            }
            tokio::select! {
                () = &mut wait => break,
                r = changed.changed() => if r.is_err() { break },
                () = token.cancelled() => return,
            }
        }
    }
}

/// Checks what is written against the hashes known, and ends the run if the file is
/// complete, or its hashes disagree.
async fn ended_already(inner: &Arc<Inner>, t: &Arc<Transfer>) -> bool {
    let known = known_hashes(&t.run_state().record);
    if !known.is_empty() {
        let sink = t.sink();
        let learn = move || known.into_iter().for_each(|u| sink.learn(u));
        let _ = tokio::task::spawn_blocking(learn).await;
    }
    if let Some(why) = t.sink().conflict() {
        let _ = inner.set_state(t, State::Failed, Some(why));
        return true;
    }
    if t.sink().is_complete() {
        finish(inner, t).await;
        return true;
    }
    false
}

/// Asks every network the transfer may use to fetch: their event streams, and which
/// networks were asked. `None` if cancelled meanwhile.
async fn start_all(
    inner: &Arc<Inner>,
    t: &Arc<Transfer>,
    token: &CancellationToken,
) -> Option<(Streams, Vec<NetworkId>)> {
    let limit = t.run_state().record.networks.clone();
    let mut events = Streams::default();
    let mut tried: Vec<NetworkId> = Vec::new();
    for net in inner.networks.iter() {
        let id = net.id();
        if !limit.is_empty() && !limit.iter().any(|n| n == id.as_str()) {
            continue;
        }
        tried.push(id);
        let main = Stream {
            net: id,
            file: None,
        };
        tokio::select! {
            s = start(inner, t, &**net) => events.add(main, s),
            () = token.cancelled() => return None,
        }
        tokio::select! {
            () = by_file::fill_files(t, &**net, &mut events) => {}
            () = token.cancelled() => return None,
        }
    }
    // Only an error when nothing fetches; why each network cannot is its note. A
    // transfer that failed meanwhile (no source for too long) keeps its reason.
    let mut m = t.run_state();
    if m.record.state == State::Active {
        m.record.error = events.is_empty().then(|| {
            "no network can fetch this content now (each network's note says why); trying again"
                .to_owned()
        });
    }
    drop(m);
    Some((events, tried))
}

/// Handles the networks' events until every stream ended, the file completed or its
/// hashes disagree. False if the run was cancelled.
async fn drive(
    inner: &Arc<Inner>,
    t: &Arc<Transfer>,
    token: &CancellationToken,
    events: &mut Streams,
    tried: &[NetworkId],
    changed: &mut tokio::sync::watch::Receiver<u64>,
) -> bool {
    let mut known = t.run_state().record.urns.len();
    while !events.is_empty() {
        tokio::select! {
            ev = events.all.next() => match ev {
                Some((key, Some(ev))) => handle(inner, t, key, ev),
                Some((key, None)) => stream_done(inner, t, key, events).await,
                None => break,
            },
            Some(key) = events.retries.next(), if !events.retries.is_empty() => {
                events.pending.remove(&key);
                let Some(net) = inner.networks.iter().find(|n| n.id() == key.net) else {
                    continue;
                };
                match key.file {
                    None => {
                        let s = start(inner, t, &**net).await;
                        events.add(key, s);
                    }
                    Some(_) => by_file::fill_files(t, &**net, events).await,
                }
            }
            r = changed.changed() => {
                if r.is_err() || t.sink().is_complete() || t.sink().conflict().is_some() {
                    break;
                }
            }
            () = token.cancelled() => return false,
        }
        // A hash learnt on the way (a torrent's metadata) may let networks join that
        // could not start before.
        let now = t.run_state().record.urns.len();
        if now > known {
            known = now;
            if !join_late(inner, t, token, events, tried).await {
                return false;
            }
        }
    }
    true
}

/// One network's fetch stream ended: its claims go back once its last fetch here
/// ended; the fetch is asked again later, while the others go on.
async fn stream_done(inner: &Arc<Inner>, t: &Arc<Transfer>, key: Stream, events: &mut Streams) {
    if events.end(key) {
        ended(t, key.net);
    } else {
        stream_ended(t, key);
    }
    if !t.sink().is_complete() {
        events.retry_later(key);
    }
    // Its place goes to the next file this network can fetch.
    if key.file.is_some()
        && let Some(net) = inner.networks.iter().find(|n| n.id() == key.net)
    {
        by_file::fill_files(t, &**net, events).await;
    }
}

/// Starts the networks asked before that are not fetching now (they may know a hash
/// learnt since). False if the run was cancelled.
async fn join_late(
    inner: &Arc<Inner>,
    t: &Arc<Transfer>,
    token: &CancellationToken,
    events: &mut Streams,
    tried: &[NetworkId],
) -> bool {
    for net in inner.networks.iter() {
        let main = Stream {
            net: net.id(),
            file: None,
        };
        if !events.live.contains(&main) && tried.contains(&net.id()) {
            tokio::select! {
                s = start(inner, t, &**net) => events.add(main, s),
                () = token.cancelled() => return false,
            }
        }
    }
    true
}

/// Asks one network to fetch through its own handle on the file. Its events end with a
/// `None`, so its claims can be given back. A network that cannot serve this content
/// (no hash it knows) is noted as not applicable, not as an error.
async fn start(inner: &Inner, t: &Arc<Transfer>, net: &dyn DynNetwork) -> Option<Tagged> {
    let id = net.id();
    let known: Vec<_> = inner.networks.iter().map(|n| n.id()).collect();
    let req = t.run_state().record.request(&known);
    let sink: Arc<dyn TransferSink> = t.sink().for_network(id);
    // Held past the end when it is what seeds the finished transfer (`seed.rs`).
    let fetched = net.fetch(req, sink).await;
    let mut result = fetched.map(|s| seed::Seedable::wrap(inner, t, net, s));
    // Not by the file's own hashes: perhaps through a torrent that holds the file.
    if matches!(result, Err(NetworkError::Unsupported(_)))
        && let Some(s) = container::fetch(inner, t, net).await
    {
        result = Ok(s);
    }
    let mut m = t.run_state();
    let st = m.nets.entry(id).or_default();
    match result {
        Ok(s) => {
            st.running = true;
            st.applicable = true;
            st.note = None;
            let key = Stream {
                net: id,
                file: None,
            };
            let tagged = s
                .map(move |ev| (key, Some(ev)))
                .chain(futures::stream::once(async move { (key, None) }));
            Some(tagged.boxed())
        }
        Err(e) => {
            st.running = false;
            st.applicable = !matches!(e, NetworkError::Unsupported(_) | NetworkError::NotFound(_));
            st.note = Some(e.to_string());
            tracing::debug!(network = %id, error = %e, "network does not fetch this content");
            None
        }
    }
}

/// A link without a size (a magnet without `xl=`): asks the network that says it can
/// learn the size from the link's hashes (a torrent's metadata), trying again until it
/// comes or the transfer stops, then makes the file at its size. False when stopped.
async fn metadata(inner: &Inner, t: &Transfer, token: &CancellationToken) -> bool {
    let content = t.run_state().record.content();
    let Some(net) = lookup::identifier(&inner.networks, &content) else {
        let _ = inner.set_state(
            t,
            State::Failed,
            Some("this link has no size (xl=) and no running network can learn it from its hashes; enable the network the link is for, or add xl=SIZE to the link".into()),
        );
        return false;
    };
    let asked = net.id();
    let mut backoff = junction_core::Backoff::new(Duration::from_secs(1), MAX_BACKOFF);
    loop {
        let spec = {
            let mut m = t.run_state();
            m.nets.entry(asked).or_default().note = Some("fetching the content's metadata".into());
            let known: Vec<_> = inner.networks.iter().map(|n| n.id()).collect();
            StartSpec {
                name: m.record.name.clone(),
                content: m.record.content(),
                sources: m.record.sources(&known),
                trackers: m.record.trackers.clone(),
                ..Default::default()
            }
        };
        let found = tokio::select! {
            r = lookup::size_of(net.clone(), &spec, lookup::LOOKUP_TIME) => r,
            () = token.cancelled() => return false,
        };
        match found {
            Ok((id, name, files)) => {
                let size = id.size.unwrap_or(0);
                let mut path = t.run_state().record.path.clone();
                if !files.is_empty() {
                    // Several files: a folder of them instead of the empty part file.
                    let _ = std::fs::remove_file(&path);
                    path.set_extension("");
                }
                // Files asked for with the magnet; a choice that does not fit is dropped,
                // and said.
                let pending = t.run_state().record.select.clone();
                let pads: Vec<bool> = files.iter().map(|f| f.pad).collect();
                let skip = super::record::choose(&pads, &pending).unwrap_or_else(|e| {
                    t.run_state().nets.entry(asked).or_default().note =
                        Some(format!("every file is fetched: {e}"));
                    Vec::new()
                });
                let journal = inner.journal_path(&t.run_state().record.id);
                let opened =
                    FileSink::open(&path, &files, &skip, size, RangeSet::new(), Some(&journal));
                let sink = match opened {
                    Ok(s) => s,
                    Err(e) => {
                        let why = format!("could not make {}: {e}", path.display());
                        let _ = inner.set_state(t, State::Failed, Some(why));
                        return false;
                    }
                };
                *t.sink.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(sink);
                {
                    let mut m = t.run_state();
                    let mut content = m.record.content();
                    content.absorb(&id);
                    content.size = Some(size);
                    m.record.size = size;
                    m.record.awaiting_metadata = false;
                    m.record.folder = !files.is_empty();
                    m.record.files = files.iter().map(Into::into).collect();
                    for (f, s) in m.record.files.iter_mut().zip(&skip) {
                        f.skip = *s;
                    }
                    m.record.select.clear();
                    m.record.path = path;
                    m.record.urns = content.urns();
                    if let Some(n) = name.filter(|_| m.record.name.starts_with("urn_")) {
                        m.record.name = junction_core::sanitize_file_name(&n);
                    }
                    m.nets.entry(asked).or_default().note = None;
                    inner.identities.learn(&content);
                }
                tracing::info!(size, "metadata fetched");
                let _ = inner.set_state(t, State::Active, None);
                return true;
            }
            Err(e) => {
                tracing::debug!(error = %e, "no metadata yet");
                t.run_state().nets.entry(asked).or_default().note =
                    Some(format!("still fetching the content's metadata: {e}"));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next()) => {}
            () = token.cancelled() => return false,
        }
    }
}

/// Hashes the gateway knows itself, which check every network's bytes: the whole-file
/// SHA-1 (checked once more over the finished file) and the pieces of a single-file
/// `.torrent` the transfer was started from (so bytes from any network are verified, and
/// can be streamed, piece by piece).
fn known_hashes(r: &super::Record) -> Vec<UnitHashes> {
    let mut out = Vec::new();
    if let Some(sha1) = r.content().get(HashKind::Sha1) {
        out.push(UnitHashes::whole(UnitAlgo::Sha1, r.size, sha1));
    }
    if let Some(tth) = r.content().get(HashKind::Tth) {
        out.push(UnitHashes::whole(UnitAlgo::TigerTree, r.size, tth));
    }
    let torrent = r.torrent.as_deref().and_then(|h| hex::decode(h).ok());
    let link = torrent.and_then(|b| junction_core::link::parse_torrent(&b).ok());
    if let Some(pieces) = link.and_then(|l| l.pieces) {
        out.push(pieces);
    }
    out
}

/// The source name a local copy's bytes are counted under.
const LOCAL: NetworkId = NetworkId("local copy");

/// Writes the bytes of a local copy (a shared file of the same content) into the sink,
/// where the hashes the transfer knows check them as they check any network's; a copy
/// that changed since it was hashed fails, and the networks fetch the rest.
fn copy_local(sink: &Arc<FileSink>, path: &std::path::Path) {
    use std::os::unix::fs::FileExt;
    let Ok(file) = std::fs::File::open(path) else {
        tracing::debug!(path = %path.display(), "the local copy is gone");
        return;
    };
    let net = sink.for_network(LOCAL);
    let mut buf = vec![0u8; 1 << 20];
    for r in sink.verified_set().gaps(0..sink.size()).iter() {
        let mut at = r.start;
        while at < r.end {
            let n = buf.len().min((r.end - at) as usize);
            if file.read_exact_at(&mut buf[..n], at).is_err() || net.write(at, &buf[..n]).is_err() {
                return;
            }
            at += n as u64;
        }
    }
    tracing::info!(path = %path.display(), "bytes taken from the local copy");
}

/// A network's fetch ended: its claims go back to the others.
fn ended(t: &Transfer, net: NetworkId) {
    t.sink().release_network(net);
    let mut m = t.run_state();
    if let Some(s) = m.nets.get_mut(&net) {
        s.running = false;
        s.stream_peers.clear();
    }
}

/// One fetch ended while others of its network go on: its peers are no longer counted.
fn stream_ended(t: &Transfer, key: Stream) {
    if let Some(s) = t.run_state().nets.get_mut(&key.net) {
        s.stream_peers.remove(&key.file);
    }
}

fn handle(inner: &Inner, t: &Transfer, key: Stream, ev: FetchEvent) {
    let net = key.net;
    let mut m = t.run_state();
    match ev {
        FetchEvent::Peers(n) => {
            m.nets
                .entry(net)
                .or_default()
                .stream_peers
                .insert(key.file, n);
        }
        FetchEvent::Identified(id) => {
            let mut content = m.record.content();
            if content.relation(&id) == junction_core::Identity::Conflict {
                tracing::warn!(%net, ?id, "network identified other content; ignored");
                return;
            }
            content.absorb(&id);
            m.record.urns = content.urns();
            inner.identities.learn(&content);
        }
        // Learnt after the bytes went into one file: it is split into them at the end.
        FetchEvent::Files(files) => {
            let fits = junction_core::layout::total_length(&files) == m.record.size;
            if m.record.files.is_empty() && !m.record.awaiting_metadata && fits {
                m.record.files = files.iter().map(Into::into).collect();
                // Files asked for before they were known.
                let pending = std::mem::take(&mut m.record.select);
                if let Err(e) = m.record.select(&pending) {
                    m.nets.entry(net).or_default().note =
                        Some(format!("every file is fetched: {e}"));
                }
                t.sink().set_skipped(&files, &m.record.skip_flags());
            }
        }
        FetchEvent::Named(name) => {
            // A link without a name was saved under its hash; the metadata knows better.
            if m.record.name.starts_with("urn_") {
                m.record.name = junction_core::sanitize_file_name(&name);
            }
        }
        FetchEvent::Note(note) => {
            tracing::debug!(%net, %note, "fetch note");
            m.nets.entry(net).or_default().note = Some(note);
        }
        FetchEvent::Metadata(info) => {
            // Kept only when it is this torrent's: its SHA-1 is the info-hash.
            let btih = m.record.content().get(HashKind::Btih).map(<[u8]>::to_vec);
            let ours = btih.is_some_and(|h| h == Sha1::digest(&info)[..]);
            if !ours || m.record.torrent.is_some() || m.record.metadata.is_some() {
                return;
            }
            m.record.metadata = Some(info.clone());
            let id = m.record.id.clone();
            drop(m);
            if let Err(e) = inner.store.put(Table::Metadata, &id, &hex::encode(&info)) {
                tracing::warn!(%id, error = %e, "could not keep a torrent's metadata");
            }
        }
    }
}

/// Every byte is verified: move the file (or folder) to the downloads folder and record it.
async fn finish(inner: &Inner, t: &Arc<Transfer>) {
    if t.run_state().record.needs_split() {
        let t2 = t.clone();
        match tokio::task::spawn_blocking(move || split(&t2)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not split the download into its files"),
            Err(e) => tracing::warn!(error = %e, "splitting the download into its files failed"),
        }
    }
    let (from, name) = {
        let m = t.run_state();
        (m.record.path.clone(), m.record.name.clone())
    };
    if let Err(e) = t.sink().sync() {
        tracing::warn!(error = %e, "could not sync the finished file");
    }
    // A file fetched again after it went missing is already where it belongs.
    if from.parent() != Some(inner.downloads.as_path()) {
        // The sink keeps its open handle, so readers go on reading after the move. A
        // file of the same name already there is kept: this one gets a numbered name.
        match junction_core::move_without_replacing(&from, &inner.downloads, &name) {
            Ok(to) => t.run_state().record.path = to,
            Err(e) => {
                tracing::warn!(error = %e, from = %from.display(), "could not move the finished file")
            }
        }
    }
    idle(&mut t.run_state());
    t.run.lock().unwrap_or_else(|p| p.into_inner()).take();
    tracing::info!(name = %name, "transfer complete");
    let _ = inner.set_state(t, State::Complete, None);
    // Every byte is verified and saved now (a split's sink journals nothing).
    t.sink().end_journal();
    let _ = std::fs::remove_file(inner.journal_path(&t.run_state().record.id));
}

/// Makes a finished single file the folder of the files it is made of, and the
/// transfer's data that folder. Readers of the single file go on reading it until done.
fn split(t: &Transfer) -> std::io::Result<()> {
    let (from, files, skip, size) = {
        let m = t.run_state();
        let r = &m.record;
        (r.path.clone(), r.files(), r.skip_flags(), r.size)
    };
    let to = from.with_extension("");
    let _ = super::files::remove_data(&to);
    // Only verified bytes are copied, and are verified after: files left out hold none
    // but what pieces shared with wanted files brought.
    let verified = t.sink().verified_set();
    super::files::split(&from, &to, &files, &skip, &verified)?;
    let sink = FileSink::open(&to, &files, &skip, size, verified, None)?;
    *t.sink.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(sink);
    {
        let mut m = t.run_state();
        m.record.path = to;
        m.record.folder = true;
    }
    std::fs::remove_file(&from)
}

/// Stops a transfer's fetches and zeroes its figures; returns its id.
pub(super) fn halt(t: &Transfer) -> String {
    t.stop();
    t.sink().close();
    let mut m = t.run_state();
    idle(&mut m);
    m.record.id.clone()
}

/// No network fetches any more: rates and peers read zero.
pub(super) fn idle(m: &mut super::RunState) {
    m.rate = 0;
    for s in m.nets.values_mut() {
        s.running = false;
        s.stream_peers.clear();
        s.rate = 0;
    }
}

/// Starts a stopped transfer again (the user's resume, or room on the disk again).
pub(super) fn resume(inner: &Arc<Inner>, t: &Arc<Transfer>) -> crate::error::Result<()> {
    t.sink().reopen();
    {
        let mut m = t.run_state();
        // Trying again: the give-up clock starts over.
        m.clock.reset(std::time::Instant::now());
        m.record.waiting_for_space = false;
    }
    inner.set_state(t, State::Active, None)?;
    spawn(inner, t);
    Ok(())
}
