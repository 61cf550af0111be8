//! Running a transfer: ask every network to fetch into the sink, retry with back-off while
//! bytes are missing, and finish once every byte is verified.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::{FetchEvent, FetchRequest, TransferSink};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Inner, State, Transfer};

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often rates are computed and verified ranges persisted.
const TICK: Duration = Duration::from_secs(1);

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
    let id = t.meta().record.id.clone();
    let span = tracing::info_span!("transfer", %id);
    inner
        .tasks
        .spawn(run(inner.clone(), t.clone(), token).instrument(span));
}

async fn run(inner: Arc<Inner>, t: Arc<Transfer>, token: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    let mut changed = t.sink.subscribe();
    loop {
        if t.sink.is_complete() {
            finish(&inner, &t);
            return;
        }
        let (req, limit) = {
            let m = t.meta();
            let r = &m.record;
            let known: Vec<_> = inner.networks.iter().map(|n| n.id()).collect();
            let req = FetchRequest {
                id: r.content(),
                name: r.name.clone(),
                size: r.size,
                sources: r.sources(&known),
                trackers: r.trackers.clone(),
                torrent: r
                    .torrent
                    .as_deref()
                    .and_then(|h| hex::decode(h).ok())
                    .map(Into::into),
            };
            (req, r.networks.clone())
        };
        let mut streams = Vec::new();
        let mut started = Vec::new();
        let mut errors = Vec::new();
        for net in inner.networks.iter() {
            let id = net.id();
            if !limit.is_empty() && !limit.iter().any(|n| n == id.as_str()) {
                continue;
            }
            let sink: Arc<dyn TransferSink> = t.sink.clone();
            tokio::select! {
                r = net.fetch(req.clone(), sink) => match r {
                    Ok(s) => {
                        started.push(id.to_string());
                        streams.push(s.map(move |ev| (id, ev)));
                    }
                    Err(e) => errors.push(format!("{id}: {e}")),
                },
                () = token.cancelled() => return,
            }
        }
        {
            let mut m = t.meta();
            m.active = started;
            m.record.error = match (streams.is_empty(), errors.is_empty()) {
                (true, true) => Some("no network can fetch this content; retrying".into()),
                (_, false) => Some(errors.join("; ")),
                (false, true) => None,
            };
        }
        if streams.is_empty() {
            tracing::info!(errors = ?errors, "no network can fetch it now; retrying later");
        }
        let mut events = futures::stream::select_all(streams);
        let mut running = !events.is_empty();
        while running {
            tokio::select! {
                ev = events.next() => match ev {
                    Some((net, ev)) => handle(&inner, &t, net.as_str(), ev),
                    None => running = false,
                },
                r = changed.changed() => {
                    if r.is_err() || t.sink.is_complete() {
                        break;
                    }
                }
                () = token.cancelled() => return,
            }
        }
        drop(events);
        if t.sink.is_complete() {
            finish(&inner, &t);
            return;
        }
        t.meta().peers = 0;
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = token.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn handle(inner: &Inner, t: &Transfer, net: &str, ev: FetchEvent) {
    let mut m = t.meta();
    match ev {
        FetchEvent::Peers(n) => m.peers = n,
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
        FetchEvent::Note(note) => {
            tracing::debug!(%net, %note, "fetch note");
            m.record.error = Some(format!("{net}: {note}"));
        }
    }
}

/// Every byte is verified: move the file to the downloads folder and record it.
fn finish(inner: &Inner, t: &Transfer) {
    let (from, name) = {
        let m = t.meta();
        (m.record.path.clone(), m.record.name.clone())
    };
    if let Err(e) = t.sink.sync() {
        tracing::warn!(error = %e, "could not sync the finished file");
    }
    // A file fetched again after it went missing is already where it belongs.
    if from.parent() != Some(inner.downloads.as_path()) {
        let to = unique_path(&inner.downloads, &name);
        // The sink keeps its open handle, so readers go on reading after the rename.
        match std::fs::rename(&from, &to) {
            Ok(()) => t.meta().record.path = to,
            Err(e) => {
                tracing::warn!(error = %e, from = %from.display(), "could not move the finished file")
            }
        }
    }
    {
        let mut m = t.meta();
        m.peers = 0;
        m.rate = 0;
        m.active.clear();
    }
    t.run.lock().unwrap_or_else(|p| p.into_inner()).take();
    tracing::info!(name = %name, "transfer complete");
    let _ = inner.set_state(t, State::Complete, None);
}

fn unique_path(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let candidate = dir.join(name);
    if !candidate.exists() {
        return candidate;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    (1..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(candidate)
}

/// Once a second: rates, persisting verified ranges, and progress events.
pub(super) async fn tick(inner: Arc<Inner>) {
    let mut interval = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = inner.shutdown.cancelled() => return,
        }
        for entry in inner.transfers.iter() {
            let t = entry.value();
            let fresh = t.sink.take_fresh_bytes();
            let active = {
                let mut m = t.meta();
                m.rate = fresh;
                m.record.state == State::Active
            };
            if t.sink.take_dirty() {
                inner.persist(t);
            }
            if active && (fresh > 0 || t.is_running()) {
                inner.emit(t.info(), false);
            }
        }
    }
}
