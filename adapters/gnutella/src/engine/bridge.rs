//! Bridging on demand, Gnutella's side: a leaf's query to Junction's ultrapeer also goes
//! to the gateway's other networks, and what they have with a real SHA-1 comes back as
//! Junction's own hits. A download of such a file starts the gateway's transfer; its
//! verified ranges are served as they verify (partial-file sharing, with
//! `X-Available-Ranges`, as gtk-gnutella does for its own partial files), and the
//! requester is told to come back (`503` with `Retry-After`) while nothing is verified.

use std::sync::Arc;

use tokio::io::AsyncWrite;

use junction_core::{BridgedItem, ContentId, HashKind};
use tokio::sync::mpsc;
use tracing::debug;

use super::Shared;
use super::error::ServentError;
use super::hits::{HITS_PER_MESSAGE, RecordHashes, hit_record, our_hit, trailer};
use super::link::{self, Out};
use super::net::write;
use crate::wire::descriptor_header::{Header, kind};
use crate::wire::http::{HttpHead, RequestExt, RequestHead, ResponseExt, ResponseHead};
use crate::wire::message::{Message, Query};
use crate::wire::qrp;
use crate::wire::urn::Urn;
use crate::wire::urn::{Sha1Hash, TigerHash};

/// `Retry-After` for a client waiting on a bridged file.
pub const RETRY_AFTER: u64 = 5;
/// Hits answered per bridged query.
const MAX_HITS: usize = 50;

/// Answers a leaf's query from the other networks, on `tx` (the leaf's link): by its URNs
/// when it has any (a download looking for more sources), else by its keywords. The
/// task, when there is one, has queued every hit once it is finished.
pub fn answer(
    shared: &Arc<Shared>,
    tx: mpsc::Sender<Out>,
    h: Header,
    q: &Query,
) -> Option<tokio::task::JoinHandle<Option<()>>> {
    let words = qrp::keywords(&q.text());
    let id = urn_id(&q.urns());
    if (words.is_empty() && id.is_none()) || !shared.on_demand.attached() {
        return None;
    }
    let shared = shared.clone();
    let span = tracing::debug_span!(
        "gnutella_bridged_answer",
        words = words.len(),
        by_urn = id.is_some()
    );
    let cancel = shared.cancel.clone();
    Some(junction_core::task::spawn(span, cancel, async move {
        let key = |i: &BridgedItem| i.id.get(HashKind::Sha1)?.try_into().ok().map(Sha1Hash);
        let found = match id {
            Some(id) => shared.on_demand.search_id(id, HashKind::Sha1, key).await,
            None => shared.on_demand.search(words, HashKind::Sha1, key).await,
        };
        let records: Vec<_> = found
            .iter()
            .filter(|(sha1, _)| shared.shares().by_sha1(sha1).is_none())
            .take(MAX_HITS)
            .filter_map(|(sha1, i)| {
                let size = i.id.size?;
                let hashes = RecordHashes {
                    sha1: *sha1,
                    ed2k: digest(&i.id, HashKind::Ed2k),
                    tth: digest(&i.id, HashKind::Tth).map(TigerHash),
                    btih: digest(&i.id, HashKind::Btih),
                };
                // The index is unused: a hit with a SHA-1 is fetched by `/uri-res/N2R`.
                Some(hit_record(0, &i.name, size, &hashes))
            })
            .collect();
        debug!(hits = records.len(), "bridged answer to a leaf's query");
        let firewalled = shared.my_addr().ip().is_unspecified();
        let ttl = h.hops.saturating_add(2).max(1);
        for chunk in records.chunks(HITS_PER_MESSAGE) {
            let hit = our_hit(
                &shared,
                chunk,
                trailer(firewalled, &shared.push_proxies.ours(), false, false),
            );
            let rh = Header::new(h.guid, kind::QUERY_HIT, ttl, 0, 0);
            if let Some(b) = link::encode(rh, &Message::QueryHit(hit))
                && tx.send(Out::Msg(b)).await.is_err()
            {
                return;
            }
        }
    }))
}

/// The content a query's URNs name (size unknown); None when it names none, or two
/// hashes of one kind that differ (no one file).
fn urn_id(urns: &[Urn]) -> Option<ContentId> {
    let mut id = ContentId::new(None);
    let mut add = |kind: HashKind, digest: &[u8]| {
        let clash = id.get(kind).is_some_and(|d| d != digest);
        id.set(kind, digest);
        !clash
    };
    for u in urns {
        let ok = match u {
            Urn::Sha1(s) => add(HashKind::Sha1, &s.0),
            Urn::TreeTiger(t) => add(HashKind::Tth, &t.0),
            Urn::Bitprint(s, t) => add(HashKind::Sha1, &s.0) && add(HashKind::Tth, &t.0),
            Urn::Ed2k(e) => add(HashKind::Ed2k, e),
            Urn::Btih(h) => add(HashKind::Btih, h),
        };
        if !ok {
            return None;
        }
    }
    let named = id.hashes().next().is_some();
    named.then_some(id)
}

/// A digest of `kind`, when `id` has one of that length.
fn digest<const N: usize>(id: &junction_core::ContentId, kind: HashKind) -> Option<[u8; N]> {
    id.get(kind).and_then(|d| d.try_into().ok())
}

/// Bytes read and sent at a time from a partial file.
const CHUNK: usize = 256 * 1024;

/// Whether a download request names a bridged file: then the gateway fetches it.
pub fn wanted(shared: &Shared, sha1: Option<Sha1Hash>) -> bool {
    sha1.is_some_and(|h| shared.on_demand.want(&h).is_some())
}

/// Answers a request for the bridged file `sha1` from what the gateway has verified of
/// it: `206` for the verified run the request starts in, `416` when it starts in a gap,
/// `503` while nothing is verified; every answer but the last lists
/// `X-Available-Ranges`.
pub async fn serve<S: AsyncWrite + Unpin>(
    s: &mut S,
    shared: &Shared,
    req: &RequestHead,
    sha1: Sha1Hash,
    head_only: bool,
    close: bool,
) -> Result<(), ServentError> {
    let server = shared.cfg.user_agent.as_str();
    let Some(bytes) = shared.on_demand.bytes(&sha1) else {
        return busy(s, shared, server).await;
    };
    let (size, verified) = (bytes.size(), bytes.verified());
    if verified.is_empty() {
        return busy(s, shared, server).await;
    }
    let available = verified
        .iter()
        .map(|r| format!("{}-{}", r.start, r.end - 1))
        .collect::<Vec<_>>()
        .join(",");
    let (start, last) = match req.range() {
        Some(Ok(rs)) => match rs.first().and_then(|r| r.resolve(size)) {
            Some(r) => r,
            None => (size, size),
        },
        _ => (0, size.saturating_sub(1)),
    };
    let Some(run_end) = verified.run_end(start).filter(|_| start < size) else {
        let mut r = ResponseHead::range_not_satisfiable(size, server);
        r.headers
            .push("X-Available-Ranges", format!("bytes {available}"))
            .push("Retry-After", RETRY_AFTER.to_string());
        return write(s, &r.to_bytes(), shared).await;
    };
    let end = run_end.min(last + 1);
    let mut r = ResponseHead::partial(start, end - 1, size, server, Some(&Urn::Sha1(sha1)));
    r.headers
        .push("X-Available-Ranges", format!("bytes {available}"))
        .push("Content-Type", "application/binary")
        .push("Accept-Ranges", "bytes");
    if close {
        r.headers.push("Connection", "close");
    }
    write(s, &r.to_bytes(), shared).await?;
    let mut off = start;
    while !head_only && off < end {
        let max = usize::try_from(end - off).map_or(CHUNK, |l| l.min(CHUNK));
        let Some(data) = bytes.read_verified(off, max)? else {
            return Err(ServentError::Protocol("verified bytes went missing".into()));
        };
        shared.upload_limit.take(data.len() as u64).await;
        write(s, &data, shared).await?;
        off += data.len() as u64;
    }
    debug!(start, end, size, "partial bridged file served");
    Ok(())
}

async fn busy<S: AsyncWrite + Unpin>(
    s: &mut S,
    shared: &Shared,
    server: &str,
) -> Result<(), ServentError> {
    let r = ResponseHead::busy(server, None, Some(RETRY_AFTER));
    write(s, &r.to_bytes(), shared).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_querys_urns_name_one_content_or_none() {
        let (a, b, t) = (Sha1Hash([1; 20]), Sha1Hash([2; 20]), TigerHash([3; 24]));
        let id = urn_id(&[Urn::Sha1(a), Urn::Bitprint(a, t)]).unwrap();
        assert_eq!(id.get(HashKind::Sha1), Some(&a.0[..]));
        assert_eq!(id.get(HashKind::Tth), Some(&t.0[..]));
        assert!(
            urn_id(&[Urn::Sha1(a), Urn::Bitprint(b, t)]).is_none(),
            "two SHA-1s"
        );
        assert!(urn_id(&[]).is_none());
    }
}
