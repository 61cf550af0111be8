//! The files of a multi-file torrent that the torrent names by their own hashes (BEP 47
//! `sha1`, or `ed2k`): each wanted file not yet verified is fetched by every network that
//! knows one of those hashes, into its place in the transfer (a [`WindowSink`]), where the
//! torrent's pieces and the file's own hash check its bytes as they check BitTorrent's.

use std::sync::Arc;

use futures::StreamExt;
use junction_core::swarm::WindowSink;
use junction_core::{ContentId, DynNetwork, FetchEvent, FetchRequest};

use super::Transfer;
use super::streams::{Stream, Streams, Tagged};

/// Files past this number are not fetched on their own: a window tags its sources with
/// 16 bits of the file's number.
const MAX_FILE_INDEX: usize = 0xFFFE;

/// One file a network can fetch by the file's own hashes.
pub(super) struct FileJob {
    pub index: usize,
    at: u64,
    id: ContentId,
    name: String,
}

/// The files `net` can fetch now: wanted, not padding, not empty, not yet verified, and
/// named by a hash it fetches by.
pub(super) fn jobs(t: &Transfer, net: &dyn DynNetwork) -> Vec<FileJob> {
    let caps = net.capabilities();
    let m = t.run_state();
    let files = m.record.files();
    let skip = m.record.skip_flags();
    let verified = t.sink().verified_set();
    junction_core::layout::place(&files)
        .into_iter()
        .zip(files)
        .zip(skip)
        .enumerate()
        .take(MAX_FILE_INDEX)
        .filter_map(|(index, (((at, _), f), skip))| {
            let id = ContentId::from_urns(Some(f.length), f.urns.iter().map(String::as_str));
            let id = id
                .ok()
                .filter(|id| id.hashes().any(|(k, _)| caps.fetches(k)))?;
            let open = !skip && !f.pad && f.length > 0;
            let name = f.path.last().cloned().unwrap_or_default();
            let job = FileJob {
                index,
                at,
                id,
                name,
            };
            (open && !verified.contains(at..at + f.length)).then_some(job)
        })
        .collect()
}

/// Starts `net` on one file. Only the fetch's peers and notes are shown: what it learns
/// (the file's hashes, its name) is the file's, not the content's.
pub(super) async fn start_file(t: &Transfer, net: &dyn DynNetwork, job: FileJob) -> Option<Tagged> {
    let id = net.id();
    let size = job.id.size.unwrap_or(0);
    let req = FetchRequest {
        id: job.id,
        name: job.name,
        size,
        sources: Vec::new(),
        trackers: Vec::new(),
        torrent: None,
    };
    let sink = WindowSink::new(t.sink().for_network(id), job.at, size, job.index);
    match net.fetch(req, Arc::new(sink)).await {
        Ok(s) => {
            {
                let mut m = t.run_state();
                let st = m.nets.entry(id).or_default();
                if !st.running {
                    st.running = true;
                    st.applicable = true;
                    st.note = None;
                }
            }
            let key = Stream {
                net: id,
                file: Some(job.index),
            };
            let shown = |ev: &FetchEvent| {
                std::future::ready(matches!(ev, FetchEvent::Peers(_) | FetchEvent::Note(_)))
            };
            let tagged = s
                .filter(shown)
                .map(move |ev| (key, Some(ev)))
                .chain(futures::stream::once(async move { (key, None) }));
            Some(tagged.boxed())
        }
        Err(e) => {
            tracing::debug!(network = %id, file = job.index, error = %e, "file not fetched");
            None
        }
    }
}

/// At most this many files of one transfer are fetched on their own at once per network
/// (each is a search on Gnutella, a source request on eD2k); the next starts as one ends.
const MAX_FILE_FETCHES: usize = 4;

/// Starts `net` on the files it can fetch by their own hashes, up to `MAX_FILE_FETCHES`
/// at once, leaving those that wait for their retry.
pub(super) async fn fill_files(t: &Transfer, net: &dyn DynNetwork, events: &mut Streams) {
    let id = net.id();
    for job in jobs(t, net) {
        let running = events
            .live
            .iter()
            .filter(|k| k.net == id && k.file.is_some())
            .count();
        if running >= MAX_FILE_FETCHES {
            break;
        }
        let key = Stream {
            net: id,
            file: Some(job.index),
        };
        if events.live.contains(&key) || events.pending.contains(&key) {
            continue;
        }
        let s = start_file(t, net, job).await;
        events.add(key, s);
    }
}
