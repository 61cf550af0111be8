//! Bridging on demand, Gnutella's side: a leaf's query to Junction's ultrapeer also goes
//! to the gateway's other networks, and what they have with a real SHA-1 comes back as
//! Junction's own hits. A download of such a file starts the gateway's transfer and is
//! queued (`503` with `Retry-After`, as a busy servent answers) until the file is
//! complete and shared.

use std::sync::Arc;

use junction_core::{BridgedItem, HashKind};
use tokio::sync::mpsc;
use tracing::debug;

use super::Shared;
use super::conn::{self, Out};
use super::core::{HITS_PER_MESSAGE, hit_record, our_hit, trailer};
use crate::urn::{Sha1Hash, TigerHash};
use crate::wire::header::{Header, kind};
use crate::wire::message::{Message, Query};
use crate::wire::qrp;

/// `Retry-After` for a client waiting on a bridged file.
pub const RETRY_AFTER: u64 = 5;
/// Hits answered per bridged query.
const MAX_HITS: usize = 50;

/// Answers a leaf's keyword query from the other networks, on `tx` (the leaf's link).
pub fn answer(shared: &Arc<Shared>, tx: mpsc::Sender<Out>, h: Header, q: &Query) {
    let words = qrp::keywords(&q.text());
    if words.is_empty() || !q.urns().is_empty() || !shared.on_demand.attached() {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let key = |i: &BridgedItem| i.id.get(HashKind::Sha1)?.try_into().ok().map(Sha1Hash);
        let found = shared.on_demand.search(words, HashKind::Sha1, key).await;
        let records: Vec<_> = found
            .iter()
            .filter(|(sha1, _)| shared.shares().by_sha1(sha1).is_none())
            .take(MAX_HITS)
            .filter_map(|(sha1, i)| {
                let size = i.id.size?;
                let ed2k = i.id.get(HashKind::Ed2k).and_then(|d| d.try_into().ok());
                let tth =
                    i.id.get(HashKind::Tth)
                        .and_then(|d| d.try_into().ok())
                        .map(TigerHash);
                // The index is unused: a hit with a SHA-1 is fetched by `/uri-res/N2R`.
                Some(hit_record(
                    0,
                    &i.name,
                    size,
                    sha1,
                    ed2k.as_ref(),
                    tth.as_ref(),
                ))
            })
            .collect();
        debug!(hits = records.len(), "bridged answer to a leaf's query");
        let firewalled = shared.my_addr().ip().is_unspecified();
        let ttl = h.hops.saturating_add(2).max(1);
        for chunk in records.chunks(HITS_PER_MESSAGE) {
            let hit = our_hit(&shared, chunk, trailer(firewalled, false, false));
            let rh = Header::new(h.guid, kind::QUERY_HIT, ttl, 0, 0);
            if let Some(b) = conn::encode(rh, &Message::QueryHit(hit))
                && tx.send(Out::Msg(b)).await.is_err()
            {
                return;
            }
        }
    });
}

/// Whether a download request names a bridged file: then the gateway fetches it, and the
/// requester is told to come back.
pub fn wanted(shared: &Shared, sha1: Option<Sha1Hash>) -> bool {
    sha1.is_some_and(|h| shared.on_demand.want(&h).is_some())
}
