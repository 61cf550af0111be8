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

mod browse_host;
mod proxy_request;
mod tiger_tree;

use super::Shared;
use super::error::ServentError;
use super::net::{CONNECT_TIMEOUT, connect_from, read_head, write};
use super::shares::SharedFile;
use crate::wire::browse;
use crate::wire::http::{
    Giv, HttpHead, RequestExt, RequestHead, ResponseExt, ResponseHead, Target,
};
use crate::wire::push_proxy::PushProxyRequest;
use crate::wire::urn::Urn;
use browse_host::serve_browse;
use junction_core::http::Headers;
use tiger_tree::serve_thex;
pub use tiger_tree::thex_uri;

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
    s: S,
    mut buf: BytesMut,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut rate: RequestRate,
) -> Result<(), ServentError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut c = Connection {
        open: None,
        permit: None,
        server: shared.cfg.user_agent.clone(),
        s,
        peer,
        shared,
    };
    for n in 0..MAX_REQUESTS {
        let Some(req) = c.next_request(&mut buf, n).await? else {
            return Ok(());
        };
        c.shared.stats.add_in(req.to_bytes().len() as u64);
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
        if c.answer(&req, head_only, close).await? == After::Close {
            return Ok(());
        }
    }
    Ok(())
}

/// What a connection does once a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Read the next request.
    Next,
    /// Stop serving (the connection closes).
    Close,
}

impl After {
    /// [`After::Close`] when the request asked for it (`Connection: close`, HTTP/1.0).
    fn unless(close: bool) -> Self {
        if close { After::Close } else { After::Next }
    }
}

/// One served connection, across its requests. The open file and the upload slot are
/// declared first, so they are released before the socket closes, as before.
struct Connection<S> {
    /// The file last served, kept open for the next range of it.
    open: Option<(u32, File)>,
    /// Our upload slot, taken at the first file request and held for the connection.
    permit: Option<OwnedSemaphorePermit>,
    /// Our `Server` header.
    server: String,
    s: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
}

impl<S> Connection<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    /// The `n`th request's head; `None` when the connection is over (shutdown, or the
    /// peer closed after at least one request).
    async fn next_request(
        &mut self,
        buf: &mut BytesMut,
        n: usize,
    ) -> Result<Option<RequestHead>, ServentError> {
        let wait = if n == 0 {
            FIRST_REQUEST_TIMEOUT
        } else {
            NEXT_REQUEST_TIMEOUT
        };
        let next = read_head(&mut self.s, buf, "HTTP request", wait, RequestHead::parse);
        match tokio::select! {
            () = self.shared.cancel.cancelled() => return Ok(None),
            r = next => r,
        } {
            Ok(r) => Ok(Some(r)),
            Err(ServentError::Closed(_)) if n > 0 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Answer one request: a push-proxy request, THEX, browse host, a file bridged from
    /// the other networks, or one of ours.
    async fn answer(
        &mut self,
        req: &RequestHead,
        head_only: bool,
        close: bool,
    ) -> Result<After, ServentError> {
        let shared = &self.shared;
        if req.method != "GET" && !head_only {
            let r = ResponseHead::new(
                501,
                "Not Implemented",
                Headers::new()
                    .with("Server", &self.server)
                    .with("Content-Length", "0"),
            );
            write(&mut self.s, &r.to_bytes(), shared).await?;
            return Ok(After::Close);
        }
        if let Some(parsed) = PushProxyRequest::parse(req) {
            proxy_request::answer(&mut self.s, shared, parsed, self.peer).await?;
            return Ok(After::Close);
        }
        if let Target::N2X(urn) = req.target() {
            serve_thex(&mut self.s, shared, &urn, head_only, close).await?;
            return Ok(After::unless(close));
        }
        if req.target == "/" {
            return self.browse(req, head_only, close).await;
        }
        let file = lookup(shared, req);
        let bridged = match (&file, req.target()) {
            (None, Target::N2R(urn)) => urn
                .sha1()
                .filter(|h| super::bridge::wanted(shared, Some(*h))),
            _ => None,
        };
        if let Some(sha1) = bridged {
            // The gateway fetches it from the other networks: what is verified is served.
            super::bridge::serve(&mut self.s, shared, req, sha1, head_only, close).await?;
            return Ok(After::unless(close));
        }
        let Some(file) = file else {
            let r = ResponseHead::not_found(&self.server);
            write(&mut self.s, &r.to_bytes(), shared).await?;
            return Ok(After::unless(close));
        };
        self.file(req, &file, head_only, close).await
    }

    /// `GET /`: browse host when the packet form is asked for, else `406`.
    async fn browse(
        &mut self,
        req: &RequestHead,
        head_only: bool,
        close: bool,
    ) -> Result<After, ServentError> {
        if browse::wants_packets(req) {
            let (keep, served) =
                serve_browse(&mut self.s, &self.shared, req, head_only, close).await?;
            debug!(peer = %self.peer, hits = served, "browse host served");
            return Ok(if keep { After::Next } else { After::Close });
        }
        // We only offer the packet form (no HTML library page).
        let r = ResponseHead::new(
            406,
            "Not Acceptable",
            Headers::new()
                .with("Server", &self.server)
                .with("X-Features", "browse/1.0")
                .with("Content-Length", "0"),
        );
        write(&mut self.s, &r.to_bytes(), &self.shared).await?;
        Ok(After::unless(close))
    }

    /// A file of ours: its alternate locations learnt, an upload slot (else `503`), the
    /// range (else `416`), then the head and the body.
    async fn file(
        &mut self,
        req: &RequestHead,
        file: &SharedFile,
        head_only: bool,
        close: bool,
    ) -> Result<After, ServentError> {
        remember_alts(&self.shared, req, file);
        if self.permit.is_none() {
            self.permit = self.shared.slots.clone().try_acquire_owned().ok();
            if self.permit.is_none() {
                let r = ResponseHead::busy(&self.server, None, Some(RETRY_AFTER));
                write(&mut self.s, &r.to_bytes(), &self.shared).await?;
                return Ok(After::Close);
            }
        }
        let size = file.size;
        let range = match req.range() {
            None | Some(Err(_)) => None,
            Some(Ok(rs)) => match rs.first().and_then(|r| r.resolve(size)) {
                Some(r) => Some(r),
                None => {
                    let r = ResponseHead::range_not_satisfiable(size, &self.server);
                    write(&mut self.s, &r.to_bytes(), &self.shared).await?;
                    return Ok(After::unless(close));
                }
            },
        };
        let (start, len, resp) = self.file_head(req, file, range, close);
        write(&mut self.s, &resp.to_bytes(), &self.shared).await?;
        if !head_only && len > 0 {
            let f = match &mut self.open {
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
                    &mut self.open.insert((file.index, f)).1
                }
            };
            send_body(&mut self.s, f, start, len, &self.shared).await?;
            self.shared
                .stats
                .uploads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(After::unless(close))
    }

    /// The `200` (or `206` for `range`) head for `file`, with its URNs, THEX URI and
    /// `X-Alt`: the body's start and length, and the head.
    fn file_head(
        &self,
        req: &RequestHead,
        file: &SharedFile,
        range: Option<(u64, u64)>,
        close: bool,
    ) -> (u64, u64, ResponseHead) {
        let server = &self.server;
        let size = file.size;
        let urn = Urn::Sha1(file.sha1);
        let (start, len, mut resp) = match range {
            Some((a, b)) => (
                a,
                b - a + 1,
                ResponseHead::partial(a, b, size, server, Some(&urn)),
            ),
            None => (
                0,
                size,
                ResponseHead::new(
                    200,
                    "OK",
                    Headers::new()
                        .with("Server", server)
                        .with("Content-Length", size.to_string())
                        .with("X-Gnutella-Content-URN", urn.to_string()),
                ),
            ),
        };
        resp.headers.push("Content-Type", "application/binary");
        resp.headers.push("Accept-Ranges", "bytes");
        if let Some(t) = file.tth {
            // Where the tree is, as gtk-gnutella announces it.
            resp.headers.push("X-Thex-URI", thex_uri(&file.sha1, &t));
        }
        for urn in file.hashes().x_content_urns() {
            resp.headers.push("X-Content-URN", urn);
        }
        let me = self.shared.my_addr();
        let node = req
            .headers
            .get("X-Node")
            .and_then(crate::wire::addr_list::parse_addr_v4);
        let peer = peer_v4(self.peer);
        let alts: Vec<String> = file
            .alts
            .iter()
            .filter(|a| Some(**a) != peer && Some(**a) != node && **a != me)
            .take(10)
            .map(ToString::to_string)
            .collect();
        if !alts.is_empty() {
            resp.headers.push("X-Alt", alts.join(","));
        }
        if close {
            resp.headers.push("Connection", "close");
        }
        (start, len, resp)
    }
}

/// Remember the downloader's alternate locations (and itself, if it listens).
fn remember_alts(shared: &Shared, req: &RequestHead, file: &SharedFile) {
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
