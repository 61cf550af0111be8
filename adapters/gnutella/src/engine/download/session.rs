//! One source's worker: HTTP/1.1 `Range` requests on a kept-alive connection, each
//! response's body written to the sink, `503` and partial sources told to come back later.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::info;

use super::connect::open;
use super::exchange::{exchange, skip_body};
use super::plan::Ctx;
use super::source::{SourceInfo, source_tag};
use super::tiger_tree::{fetch_thex, thex_path};
use super::{BODY_STALL, End};
use crate::engine::error::ServentError;
use crate::wire::http::{RequestExt, RequestHead, ResponseExt, ResponseHead};
use crate::wire::urn::Urn;

/// Read size while receiving bodies.
const READ_BUF: usize = 256 * 1024;

pub(super) async fn worker(info: SourceInfo, ctx: Arc<Ctx>) -> End {
    let tag = source_tag(info.addr);
    loop {
        // Claim before connecting, so a source with nothing to do costs no connection.
        let Some(first) = ctx.claim(tag, ctx.shared.cfg.chunk_size) else {
            return End::Finished;
        };
        let (mut s, mut buf) = match open(&info, &ctx).await {
            Ok(x) => x,
            Err(e) => {
                ctx.plan().settle(first.clone(), None);
                ctx.sink.release(tag, first);
                return End::Failed(e.to_string());
            }
        };
        match session(&info, &ctx, &mut s, &mut buf, first).await {
            Ok(Some(end)) => return end,
            Ok(None) => continue, // server closed a kept-alive connection: reconnect
            Err(e) => return End::Failed(e.to_string()),
        }
    }
}

/// Requests on one connection, starting with `first`; `Ok(None)` when the server asked
/// to close.
async fn session(
    info: &SourceInfo,
    ctx: &Ctx,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    first: Range<u64>,
) -> Result<Option<End>, ServentError> {
    let host = info.addr.to_string();
    let ua = ctx.shared.cfg.user_agent.clone();
    let tag = source_tag(info.addr);
    let mut next = Some(first);
    loop {
        let Some(claimed) = next
            .take()
            .or_else(|| ctx.claim(tag, ctx.shared.cfg.chunk_size))
        else {
            return Ok(Some(End::Finished));
        };
        let mut got: Option<Range<u64>> = None;
        let r = request(info, ctx, s, buf, &host, &ua, claimed.clone(), &mut got).await;
        ctx.plan().settle(claimed.clone(), got);
        ctx.sink.release(tag, claimed);
        if ctx.sink.is_banned(tag) {
            return Ok(Some(End::Failed("its bytes failed a hash check".into())));
        }
        match r {
            Ok(Step::More) => {}
            Ok(Step::Close) => return Ok(None),
            Ok(Step::End(e)) => return Ok(Some(e)),
            Err(e) => return Err(e),
        }
    }
}

enum Step {
    More,
    Close,
    End(End),
}

#[allow(clippy::too_many_arguments)]
async fn request(
    info: &SourceInfo,
    ctx: &Ctx,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    host: &str,
    ua: &str,
    claimed: Range<u64>,
    got: &mut Option<Range<u64>>,
) -> Result<Step, ServentError> {
    let Some(req) = request_head(info, ctx, host, ua, &claimed) else {
        return Ok(Step::End(End::Failed("no URN nor index to ask for".into())));
    };
    let resp = exchange(ctx, s, buf, &req, ("HTTP request", "HTTP response")).await?;
    for a in resp.alt_locs().into_iter().take(16) {
        let _ = ctx.alts.try_send(a);
    }
    let close = resp
        .headers
        .get("Connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if let Some(end) = refused(info, s, buf, &resp).await? {
        return Ok(Step::End(end));
    }
    let (start, end) = match body_range(ctx, &resp)? {
        Ok(r) => r,
        Err(end) => return Ok(Step::End(end)),
    };
    // Where this source serves the Tiger tree, if we know a TTH to check it against and
    // have no tree yet.
    let thex_path = resp.headers.get("X-Thex-URI").and_then(thex_path);
    receive_body(info, ctx, s, buf, start..end, got).await?;
    if let Some(path) = thex_path.filter(|_| !close && ctx.take_thex_turn(info.addr)) {
        let r = fetch_thex(info, ctx, s, buf, host, ua, &path).await;
        let learnt = matches!(r, Ok(true));
        ctx.thex_ended(learnt);
        match r {
            Ok(_) => {}
            // The connection is in an unknown state: start a fresh one.
            Err(e) => {
                info!(source = %info.addr, %e, "THEX tree not fetched");
                return Ok(Step::Close);
            }
        }
    }
    Ok(if close { Step::Close } else { Step::More })
}

/// The `GET` for `claimed`, by URN when a SHA-1 is known, else by file index (`None`
/// with neither), with `X-Node` when we are reachable.
fn request_head(
    info: &SourceInfo,
    ctx: &Ctx,
    host: &str,
    ua: &str,
    claimed: &Range<u64>,
) -> Option<RequestHead> {
    let range = Some((claimed.start, claimed.end - 1));
    let mut req = match (ctx.sha1(), info.index) {
        (Some(h), _) => RequestHead::get_n2r(&Urn::Sha1(h), host, ua, range),
        (None, Some(i)) => RequestHead::get_by_index(i, &ctx.name, host, ua, range),
        (None, None) => return None,
    };
    let me = ctx.shared.my_addr();
    if !ctx
        .shared
        .stats
        .firewalled
        .load(std::sync::atomic::Ordering::Relaxed)
        && !me.ip().is_unspecified()
    {
        req.headers.push("X-Node", me.to_string());
    }
    Some(req)
}

/// How the source ends when it did not answer `200`/`206` (its body skipped): `503`
/// (busy or queued) and a partial source's `416` come back later, anything else failed.
async fn refused(
    info: &SourceInfo,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    resp: &ResponseHead,
) -> Result<Option<End>, ServentError> {
    let body_len = resp.content_length().unwrap_or(0);
    match resp.code {
        200 | 206 => Ok(None),
        503 => {
            skip_body(s, buf, body_len).await?;
            let secs = resp.retry_after().unwrap_or(30).clamp(5, 600);
            let note = resp.queued().map(|q| {
                format!(
                    "queued at {} by {}",
                    q.position.map_or("?".to_owned(), |p| p.to_string()),
                    info.addr
                )
            });
            Ok(Some(End::Retry(Duration::from_secs(secs), note)))
        }
        // A partial source (PFSP) without the bytes asked for: it has others, and more
        // later, so it is asked again soon rather than dropped.
        416 if resp.available_ranges().is_some_and(|a| !a.is_empty()) => {
            skip_body(s, buf, body_len).await?;
            let secs = resp.retry_after().unwrap_or(5).clamp(1, 600);
            let note = Some(format!("{} has other parts only", info.addr));
            Ok(Some(End::Retry(Duration::from_secs(secs), note)))
        }
        c => {
            let _ = skip_body(s, buf, body_len).await;
            Ok(Some(End::Failed(format!("HTTP {c} {}", resp.reason))))
        }
    }
}

/// The bytes a `200`/`206` carries, checked against the file: `Ok(Err(end))` when the
/// source serves another file (its content URN) or another size; the SHA-1 it announces
/// is learnt when we knew none.
fn body_range(ctx: &Ctx, resp: &ResponseHead) -> Result<Result<(u64, u64), End>, ServentError> {
    if let Some(announced) = resp.content_urn().and_then(|u| u.sha1()) {
        let mut learned = ctx.learned.lock().unwrap_or_else(|e| e.into_inner());
        match ctx.sha1.or(*learned) {
            Some(want) if want != announced => {
                return Ok(Err(End::Failed("source serves another file".into())));
            }
            Some(_) => {}
            None => *learned = Some(announced),
        }
    }
    let (start, end) = match resp.content_range() {
        Some(Ok(cr)) => {
            if cr.total.is_some_and(|t| t != ctx.size) {
                return Ok(Err(End::Failed("source has another size".into())));
            }
            (cr.start, cr.end.saturating_add(1))
        }
        Some(Err(e)) => return Err(e.into()),
        None if resp.code == 200 => (0, ctx.size),
        None => return Err(ServentError::Protocol("206 without Content-Range".into())),
    };
    if start >= end || end > ctx.size || resp.content_length().is_some_and(|l| l != end - start) {
        return Err(ServentError::Protocol(format!(
            "bad range {start}..{end} (Content-Length {:?}) for {} bytes",
            resp.content_length(),
            ctx.size
        )));
    }
    Ok(Ok((start, end)))
}

/// The body's bytes `range` into the sink (those already read past the head first),
/// `got` growing with what was written.
async fn receive_body(
    info: &SourceInfo,
    ctx: &Ctx,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    range: Range<u64>,
    got: &mut Option<Range<u64>>,
) -> Result<(), ServentError> {
    let Range { start, end } = range;
    let mut off = start;
    let mut chunk = vec![0u8; READ_BUF];
    while off < end {
        let data: &[u8] = if !buf.is_empty() {
            let n = usize::try_from((end - off).min(buf.len().min(READ_BUF) as u64)).unwrap_or(0);
            let b = buf.split_to(n);
            chunk[..n].copy_from_slice(&b);
            ctx.shared.stats.add_in(n as u64);
            &chunk[..n]
        } else {
            let want = usize::try_from((end - off).min(READ_BUF as u64)).unwrap_or(READ_BUF);
            let n = timeout(BODY_STALL, s.read(&mut chunk[..want]))
                .await
                .map_err(|_| ServentError::Timeout("body"))??;
            if n == 0 {
                return Err(ServentError::Closed("body"));
            }
            ctx.shared.stats.add_in(n as u64);
            &chunk[..n]
        };
        // Under a download cap the socket is not read while this waits: TCP slows the peer.
        ctx.shared.download_limit.take(data.len() as u64).await;
        ctx.sink
            .write_from(source_tag(info.addr), off, data)
            .map_err(|e| ServentError::Protocol(format!("sink: {e}")))?;
        off += data.len() as u64;
        *got = Some(start..off);
    }
    Ok(())
}
