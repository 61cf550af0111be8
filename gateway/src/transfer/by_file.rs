//! The files of a multi-file torrent that the torrent names by their own hashes (BEP 47
//! `sha1`, or `ed2k`): each wanted file not yet verified is fetched by every network that
//! knows one of those hashes, into its place in the transfer (a [`WindowSink`]), where the
//! torrent's pieces and the file's own hash check its bytes as they check BitTorrent's.

use std::sync::Arc;

use futures::StreamExt;
use junction_core::swarm::WindowSink;
use junction_core::{ContentId, DynNetwork, FetchEvent, FetchRequest};

use super::Transfer;
use super::run::Tagged;

/// Starts `net` on each file it can fetch by the file's own hashes.
pub(super) async fn start_files(t: &Transfer, net: &dyn DynNetwork) -> Vec<Tagged> {
    let caps = net.capabilities();
    let todo: Vec<(usize, u64, ContentId, String)> = {
        let m = t.meta();
        let files = m.record.files();
        let skip = m.record.skip_flags();
        let verified = t.sink().verified_set();
        junction_core::layout::place(&files)
            .into_iter()
            .zip(files)
            .zip(skip)
            .enumerate()
            .filter_map(|(i, (((at, _), f), skip))| {
                let id = ContentId::from_urns(Some(f.length), f.urns.iter().map(String::as_str));
                let id = id
                    .ok()
                    .filter(|id| id.hashes().any(|(k, _)| caps.fetches(k)))?;
                let open = !skip && !f.pad && f.length > 0;
                let name = f.path.last().cloned().unwrap_or_default();
                (open && !verified.contains(at..at + f.length)).then_some((i, at, id, name))
            })
            .collect()
    };
    let id = net.id();
    let mut out = Vec::new();
    for (index, at, content, name) in todo {
        let size = content.size.unwrap_or(0);
        let req = FetchRequest {
            id: content,
            name,
            size,
            sources: Vec::new(),
            trackers: Vec::new(),
            torrent: None,
        };
        let sink = WindowSink::new(t.sink().for_network(id), at, size, index);
        match net.fetch(req, Arc::new(sink)).await {
            Ok(s) => {
                {
                    let mut m = t.meta();
                    let st = m.nets.entry(id).or_default();
                    if !st.running {
                        st.running = true;
                        st.applicable = true;
                        st.note = None;
                    }
                }
                // What a file's fetch learns (its hashes, its name) is the file's, not the
                // content's: only its peers and notes are shown.
                let shown = |ev: &FetchEvent| {
                    std::future::ready(matches!(ev, FetchEvent::Peers(_) | FetchEvent::Note(_)))
                };
                let tagged = s
                    .filter(shown)
                    .map(move |ev| (id, Some(ev)))
                    .chain(futures::stream::once(async move { (id, None) }));
                out.push(tagged.boxed());
            }
            Err(e) => tracing::debug!(network = %id, file = index, error = %e, "file not fetched"),
        }
    }
    out
}
