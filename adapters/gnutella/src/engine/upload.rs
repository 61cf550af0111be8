//! The serving side of HTTP transfers: `GET`/`HEAD` by URN or by index, with
//! `Range`, an upload-slot limit (`503`), and pushes answered with `GIV`.

use std::io::SeekFrom;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use junction_core::limit::RequestRate;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

use super::Shared;
use super::error::ServentError;
use super::hits::{hit_record, trailer};
use super::net::{CONNECT_TIMEOUT, connect_from, read_head, write};
use super::shares::{SharedFile, hash_file};
use crate::wire::browse;
use crate::wire::http::{
    Giv, HttpHead, RequestExt, RequestHead, ResponseExt, ResponseHead, Target,
};
use crate::wire::link::LinkDeflater;
use crate::wire::message::{Message, QueryHit};
use crate::wire::push_proxy::PushProxyRequest;
use crate::wire::thex::encode_answer;
use crate::wire::urn::{Sha1Hash, TigerHash, Urn};
use junction_core::http::Headers;

/// Wait for the first request on a connection.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Wait for a further request on a kept-alive connection.
const NEXT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most requests served on one connection.
const MAX_REQUESTS: usize = 100_000;
/// Copy buffer for file bodies.
const COPY_BUF: usize = 1024 * 1024;
/// Copy buffer under an upload limit, so the pacing stays smooth.
const LIMITED_COPY_BUF: usize = 64 * 1024;
/// `Retry-After` we send with `503 Busy`.
const RETRY_AFTER: u64 = 10;

/// Serve HTTP requests on `s` (`buf` holds bytes already read), at most at `rate`.
pub async fn serve<S>(
    mut s: S,
    mut buf: BytesMut,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut rate: RequestRate,
) -> Result<(), ServentError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let server = shared.cfg.user_agent.clone();
    let mut permit: Option<OwnedSemaphorePermit> = None;
    let mut open: Option<(u32, File)> = None;
    for n in 0..MAX_REQUESTS {
        let wait = if n == 0 {
            FIRST_REQUEST_TIMEOUT
        } else {
            NEXT_REQUEST_TIMEOUT
        };
        let next = read_head(&mut s, &mut buf, "HTTP request", wait, RequestHead::parse);
        let req = match tokio::select! {
            () = shared.cancel.cancelled() => return Ok(()),
            r = next => r,
        } {
            Ok(r) => r,
            Err(ServentError::Closed(_)) if n > 0 => return Ok(()),
            Err(e) => return Err(e),
        };
        shared.stats.add_in(req.to_bytes().len() as u64);
        if !rate.allow() {
            debug!(%peer, requests = n, "too many HTTP requests: dropped");
            return Err(ServentError::Protocol("too many requests".into()));
        }
        let close = req
            .headers
            .get("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || req.version.1 == 0;
        let head_only = req.method == "HEAD";
        if req.method != "GET" && !head_only {
            let r = ResponseHead::new(
                501,
                "Not Implemented",
                Headers::new()
                    .with("Server", &server)
                    .with("Content-Length", "0"),
            );
            write(&mut s, &r.to_bytes(), &shared).await?;
            return Ok(());
        }
        if let Some(parsed) = PushProxyRequest::parse(&req) {
            return super::push_proxy::answer(&mut s, &shared, parsed, peer).await;
        }
        if let Target::N2X(urn) = req.target() {
            serve_thex(&mut s, &shared, &urn, head_only, close).await?;
            if close {
                return Ok(());
            }
            continue;
        }
        if req.target == "/" {
            if browse::wants_packets(&req) {
                let (keep, served) = serve_browse(&mut s, &shared, &req, head_only, close).await?;
                debug!(peer = %peer, hits = served, "browse host served");
                if !keep {
                    return Ok(());
                }
            } else {
                // We only offer the packet form (no HTML library page).
                let r = ResponseHead::new(
                    406,
                    "Not Acceptable",
                    Headers::new()
                        .with("Server", &server)
                        .with("X-Features", "browse/1.0")
                        .with("Content-Length", "0"),
                );
                write(&mut s, &r.to_bytes(), &shared).await?;
                if close {
                    return Ok(());
                }
            }
            continue;
        }
        let file = lookup(&shared, &req);
        let bridged = match (&file, req.target()) {
            (None, Target::N2R(urn)) => urn
                .sha1()
                .filter(|h| super::bridge::wanted(&shared, Some(*h))),
            _ => None,
        };
        if let Some(sha1) = bridged {
            // The gateway fetches it from the other networks: what is verified is served.
            super::bridge::serve(&mut s, &shared, &req, sha1, head_only, close).await?;
            if close {
                return Ok(());
            }
            continue;
        }
        let Some(file) = file else {
            write(
                &mut s,
                &ResponseHead::not_found(&server).to_bytes(),
                &shared,
            )
            .await?;
            if close {
                return Ok(());
            }
            continue;
        };
        // Remember the downloader's alternate locations (and itself, if it listens).
        {
            let mut idx = shared.shares_mut();
            for a in req.alt_locs().into_iter().take(16) {
                idx.add_alt(&file.sha1, a);
            }
            if let Some(node) = req
                .headers
                .get("X-Node")
                .and_then(crate::wire::addr_list::parse_addr_v4)
            {
                idx.add_alt(&file.sha1, node);
            }
        }
        if permit.is_none() {
            permit = shared.slots.clone().try_acquire_owned().ok();
            if permit.is_none() {
                let r = ResponseHead::busy(&server, None, Some(RETRY_AFTER));
                write(&mut s, &r.to_bytes(), &shared).await?;
                return Ok(());
            }
        }
        let size = file.size;
        let range = match req.range() {
            None | Some(Err(_)) => None,
            Some(Ok(rs)) => match rs.first().and_then(|r| r.resolve(size)) {
                Some(r) => Some(r),
                None => {
                    let r = ResponseHead::range_not_satisfiable(size, &server);
                    write(&mut s, &r.to_bytes(), &shared).await?;
                    if close {
                        return Ok(());
                    }
                    continue;
                }
            },
        };
        let urn = Urn::Sha1(file.sha1);
        let (start, len, mut resp) = match range {
            Some((a, b)) => (
                a,
                b - a + 1,
                ResponseHead::partial(a, b, size, &server, Some(&urn)),
            ),
            None => (
                0,
                size,
                ResponseHead::new(
                    200,
                    "OK",
                    Headers::new()
                        .with("Server", &server)
                        .with("Content-Length", size.to_string())
                        .with("X-Gnutella-Content-URN", urn.to_string()),
                ),
            ),
        };
        resp.headers.push("Content-Type", "application/binary");
        resp.headers.push("Accept-Ranges", "bytes");
        if let Some(t) = file.tth {
            // Where the tree is, as gtk-gnutella announces it, and both hashes in one
            // URN for clients that read `X-Content-URN` (LimeWire takes the root from it).
            resp.headers.push("X-Thex-URI", thex_uri(&file.sha1, &t));
            resp.headers
                .push("X-Content-URN", Urn::Bitprint(file.sha1, t).to_string());
        }
        let me = shared.my_addr();
        let node = req
            .headers
            .get("X-Node")
            .and_then(crate::wire::addr_list::parse_addr_v4);
        let alts: Vec<String> = file
            .alts
            .iter()
            .filter(|a| Some(**a) != peer_v4(peer) && Some(**a) != node && **a != me)
            .take(10)
            .map(ToString::to_string)
            .collect();
        if !alts.is_empty() {
            resp.headers.push("X-Alt", alts.join(","));
        }
        if close {
            resp.headers.push("Connection", "close");
        }
        write(&mut s, &resp.to_bytes(), &shared).await?;
        if !head_only && len > 0 {
            let f = match &mut open {
                Some((i, f)) if *i == file.index => f,
                _ => {
                    let f = File::open(&file.path).await?;
                    let meta = f.metadata().await?;
                    if meta.len() != size {
                        return Err(ServentError::Protocol(format!(
                            "{} changed size on disk",
                            file.path.display()
                        )));
                    }
                    &mut open.insert((file.index, f)).1
                }
            };
            send_body(&mut s, f, start, len, &shared).await?;
            shared
                .stats
                .uploads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if close {
            return Ok(());
        }
    }
    Ok(())
}

/// Files packed per batch while browsing (gtk-gnutella `BH_SCAN_AHEAD`).
const BROWSE_BATCH: usize = 100;

/// Answer browse host (`GET /`, `Accept: application/x-gnutella-packets`) the way
/// gtk-gnutella does: `200`, the whole library as QueryHits (all-zero MUID, TTL 1,
/// hops 0, ≤ 3500 bytes each, every record with its `urn:sha1`, GGEP `TT` and `LF`
/// as in search hits), chunked to an HTTP/1.1 client (else the body ends when we
/// close), one zlib stream when the client accepts deflate. Returns whether the
/// connection may serve another request, and the hits sent.
async fn serve_browse<S: tokio::io::AsyncWrite + Unpin>(
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
    let template = {
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
    };
    let mut z = deflate.then(LinkDeflater::default);
    let mut last = 0u32;
    let mut sent = 0usize;
    let mut more = true;
    while more {
        let records: Vec<_> = {
            let idx = shared.shares();
            let batch = idx.after(last, BROWSE_BATCH);
            more = batch.len() == BROWSE_BATCH;
            if let Some(f) = batch.last() {
                last = f.index;
            }
            batch
                .into_iter()
                .map(|f| {
                    hit_record(
                        f.index,
                        &f.name,
                        f.size,
                        &f.sha1,
                        f.ed2k.as_ref(),
                        f.tth.as_ref(),
                    )
                })
                .collect()
        };
        let mut plain = Vec::new();
        for d in browse::pack_hits(&template, records) {
            if matches!(d.message, Message::QueryHit(_)) && d.encode(&mut plain).is_ok() {
                sent += 1;
            }
        }
        let mut body = BytesMut::new();
        match z.as_mut() {
            Some(z) => {
                z.deflate_flush(&plain, &mut body)?;
                if !more {
                    z.finish(&mut body)?;
                }
            }
            None => body.extend_from_slice(&plain),
        }
        let mut out = Vec::with_capacity(body.len() + 16);
        if chunked {
            browse::put_chunk(&body, &mut out);
            if !more {
                out.extend_from_slice(browse::LAST_CHUNK);
            }
        } else {
            out.extend_from_slice(&body);
        }
        write(s, &out, shared).await?;
    }
    s.flush().await?;
    Ok((chunked && !close, sent))
}

/// `X-Thex-URI`: `/uri-res/N2X?urn:sha1:<SHA-1>;<TTH>` (gtk-gnutella `upload_thex_uri_add`).
pub fn thex_uri(sha1: &Sha1Hash, tth: &TigerHash) -> String {
    format!("/uri-res/N2X?{};{}", Urn::Sha1(*sha1), tth.to_base32())
}

/// Answer `GET /uri-res/N2X?<urn>` with the file's Tiger tree in DIME, at the depth
/// gtk-gnutella serves; `404` when we do not share it or have no TTH for it. The tree
/// of a file whose hashes came from a cache is built (one read) when first asked for.
async fn serve_thex<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    shared: &Arc<Shared>,
    urn: &Urn,
    head_only: bool,
    close: bool,
) -> Result<(), ServentError> {
    let server = shared.cfg.user_agent.clone();
    let found = {
        let idx = shared.shares();
        let f = match (urn.sha1(), urn.tiger()) {
            (Some(h), _) => idx.by_sha1(&h),
            (None, Some(t)) => idx.by_tth(&t),
            (None, None) => None,
        };
        f.and_then(|f| {
            f.tth
                .map(|t| (f.sha1, t, f.size, f.path.clone(), f.tree.clone()))
        })
    };
    let tree = match found {
        None => None,
        Some((_, _, size, _, Some(tree))) => Some((tree, size)),
        Some((sha1, tth, size, path, None)) => {
            let computed = tokio::task::spawn_blocking(move || hash_file(&path, false))
                .await
                .ok()
                .and_then(Result::ok)
                .filter(|(n, _, l)| *n == size && l.root() == Some(tth));
            match computed {
                Some((_, _, level)) => {
                    shared
                        .shares_mut()
                        .set_tiger(&sha1, tth, Some(level.clone()));
                    Some((Arc::new(level), size))
                }
                None => {
                    debug!(%urn, "the shared file no longer has its Tiger tree root");
                    None
                }
            }
        }
    };
    let Some(body) = tree.and_then(|(t, size)| encode_answer(size, &t).ok()) else {
        return write(s, &ResponseHead::not_found(&server).to_bytes(), shared).await;
    };
    let mut h = Headers::new()
        .with("Server", &server)
        .with("Content-Type", "application/dime")
        .with("Content-Length", body.len().to_string());
    if close {
        h.push("Connection", "close");
    }
    write(s, &ResponseHead::new(200, "OK", h).to_bytes(), shared).await?;
    if !head_only {
        write(s, &body, shared).await?;
        s.flush().await?;
    }
    Ok(())
}

fn peer_v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(v) => Some(v),
        SocketAddr::V6(_) => None,
    }
}

fn lookup(shared: &Shared, req: &RequestHead) -> Option<SharedFile> {
    let idx = shared.shares();
    match req.target() {
        Target::N2R(urn) => urn.sha1().and_then(|h| idx.by_sha1(&h)).cloned(),
        Target::ByIndex { index, name } => idx
            .by_index(index)
            .filter(|f| {
                f.name.eq_ignore_ascii_case(&name)
                    || req.content_urn().and_then(|u| u.sha1()) == Some(f.sha1)
            })
            .cloned(),
        _ => None,
    }
}

async fn send_body<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    f: &mut File,
    start: u64,
    len: u64,
    shared: &Shared,
) -> Result<(), ServentError> {
    f.seek(SeekFrom::Start(start)).await?;
    let limit = &shared.upload_limit;
    let chunk = if limit.is_unlimited() {
        COPY_BUF
    } else {
        LIMITED_COPY_BUF
    };
    let mut left = len;
    let mut buf = vec![0u8; usize::try_from(len).map_or(chunk, |l| l.min(chunk))];
    while left > 0 {
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = f.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(ServentError::Protocol("file ended early".into()));
        }
        limit.take(n as u64).await;
        write(s, &buf[..n], shared).await?;
        left -= n as u64;
    }
    s.flush().await?;
    Ok(())
}

/// Answer a Push: connect to `target`, send `GIV`, then serve the downloader's requests.
pub async fn giv_out(
    target: SocketAddrV4,
    index: u32,
    shared: Arc<Shared>,
) -> Result<(), ServentError> {
    let mut s = connect_from(shared.cfg.listen, SocketAddr::V4(target), CONNECT_TIMEOUT).await?;
    s.set_nodelay(true)?;
    let name = shared
        .shares()
        .by_index(index)
        .map_or_else(|| "file".to_owned(), |f| f.name.clone());
    let mut line = Vec::new();
    Giv {
        index,
        servent: shared.guid,
        name: crate::wire::http::percent_encode(&name),
    }
    .encode(&mut line);
    write(&mut s, &line, &shared).await?;
    debug!(%target, index, "sent GIV");
    let rate = shared.cfg.limits.request_rate();
    serve(s, BytesMut::new(), SocketAddr::V4(target), shared, rate).await
}

/// Read a `GIV` line on an accepted socket.
pub async fn read_giv(s: &mut TcpStream, buf: &mut BytesMut) -> Result<Giv, ServentError> {
    read_head(s, buf, "GIV", Duration::from_secs(15), Giv::parse).await
}
