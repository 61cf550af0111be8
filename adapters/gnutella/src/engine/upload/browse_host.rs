//! Browse host served: `GET /` with `Accept: application/x-gnutella-packets` answered
//! with the whole library as QueryHits, the way gtk-gnutella does.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use crate::engine::Shared;
use crate::engine::error::ServentError;
use crate::engine::hits::{hit_record, trailer};
use crate::engine::net::write;
use crate::wire::browse;
use crate::wire::http::{HttpHead, RequestHead, ResponseHead};
use crate::wire::link::LinkDeflater;
use crate::wire::message::{HitRecord, Message, QueryHit};
use junction_core::http::Headers;

/// Files packed per batch while browsing (gtk-gnutella `BH_SCAN_AHEAD`).
const BROWSE_BATCH: usize = 100;

/// Answer browse host (`GET /`, `Accept: application/x-gnutella-packets`) the way
/// gtk-gnutella does: `200`, the whole library as QueryHits (all-zero MUID, TTL 1,
/// hops 0, ≤ 3500 bytes each, every record with its `urn:sha1`, GGEP `TT` and `LF`
/// as in search hits), chunked to an HTTP/1.1 client (else the body ends when we
/// close), one zlib stream when the client accepts deflate. Returns whether the
/// connection may serve another request, and the hits sent.
pub(super) async fn serve_browse<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    shared: &Arc<Shared>,
    req: &RequestHead,
    head_only: bool,
    close: bool,
) -> Result<(bool, usize), ServentError> {
    let server = shared.cfg.user_agent.clone();
    let chunked = req.version.1 >= 1 && req.version.0 == 1;
    let deflate = browse::accepts_deflate(req);
    let mut h = Headers::new()
        .with("Server", &server)
        .with("X-Features", "browse/1.0")
        .with("Content-Type", browse::CONTENT_TYPE);
    if deflate {
        h.push("Content-Encoding", "deflate");
    }
    if chunked {
        h.push("Transfer-Encoding", "chunked");
    }
    if close || !chunked {
        h.push("Connection", "close");
    }
    write(s, &ResponseHead::new(200, "OK", h).to_bytes(), shared).await?;
    if head_only {
        s.flush().await?;
        return Ok((chunked && !close, 0));
    }
    let template = template(shared);
    let mut z = deflate.then(LinkDeflater::default);
    let mut last = 0u32;
    let mut sent = 0usize;
    let mut more = true;
    while more {
        let records;
        (records, more) = batch(shared, &mut last);
        let mut plain = Vec::new();
        for d in browse::pack_hits(&template, records) {
            if matches!(d.message, Message::QueryHit(_)) && d.encode(&mut plain).is_ok() {
                sent += 1;
            }
        }
        let out = frame(&plain, z.as_mut(), chunked, !more)?;
        write(s, &out, shared).await?;
    }
    s.flush().await?;
    Ok((chunked && !close, sent))
}

/// The QueryHit the library's records are packed into: our address, GUID and trailer.
fn template(shared: &Shared) -> QueryHit {
    let a = shared.my_addr();
    let firewalled = shared
        .stats
        .firewalled
        .load(std::sync::atomic::Ordering::Relaxed)
        || a.ip().is_unspecified();
    QueryHit {
        port: a.port(),
        ip: *a.ip(),
        speed: 10_000,
        results: Vec::new(),
        trailer: Some(trailer(
            firewalled,
            &shared.push_proxies.ours(),
            shared.slots.available_permits() == 0,
            shared
                .stats
                .uploads
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0,
        )),
        servent: shared.guid,
    }
}

/// The records of the next [`BROWSE_BATCH`] files after file index `last` (moved on to the
/// batch's last file), and whether more may follow.
fn batch(shared: &Shared, last: &mut u32) -> (Vec<HitRecord>, bool) {
    let idx = shared.shares();
    let batch = idx.after(*last, BROWSE_BATCH);
    let more = batch.len() == BROWSE_BATCH;
    if let Some(f) = batch.last() {
        *last = f.index;
    }
    let records = batch
        .into_iter()
        .map(|f| hit_record(f.index, &f.name, f.size, &f.hashes()))
        .collect();
    (records, more)
}

/// The bytes to write for one batch of packed hits: deflated on the reply's zlib stream
/// (finished with the last batch), then as one chunk (the last one followed by the final
/// chunk) when the reply is chunked.
fn frame(
    plain: &[u8],
    z: Option<&mut LinkDeflater>,
    chunked: bool,
    last: bool,
) -> Result<Vec<u8>, ServentError> {
    let mut body = BytesMut::new();
    match z {
        Some(z) => {
            z.deflate_flush(plain, &mut body)?;
            if last {
                z.finish(&mut body)?;
            }
        }
        None => body.extend_from_slice(plain),
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    if chunked {
        browse::put_chunk(&body, &mut out);
        if last {
            out.extend_from_slice(browse::LAST_CHUNK);
        }
    } else {
        out.extend_from_slice(&body);
    }
    Ok(out)
}
