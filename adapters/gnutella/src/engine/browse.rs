//! The browsing side of browse host: `GET /` with
//! `Accept: application/x-gnutella-packets` (and `Accept-Encoding: deflate`, as
//! gtk-gnutella's client asks), then the reply's QueryHits, bounded in bytes,
//! records and time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::error::ServentError;
use super::net::{CONNECT_TIMEOUT, WRITE_TIMEOUT, connect_from, read_head};
use crate::wire::browse::{BrowseDecoder, CONTENT_TYPE};
use crate::wire::http::{HttpHead, RequestHead, ResponseHead};
use crate::wire::message::{Message, QueryHit};
use junction_core::http::Headers;

/// Most body bytes read from one host.
const MAX_BODY: usize = 64 << 20;
/// A silent host is given up after this long.
const READ_IDLE: Duration = Duration::from_secs(30);

/// The browse request, as gtk-gnutella's client sends it.
pub fn request(host: SocketAddr, user_agent: &str) -> RequestHead {
    RequestHead::new(
        "GET",
        "/",
        Headers::new()
            .with("Host", host.to_string())
            .with("User-Agent", user_agent)
            .with("Accept", CONTENT_TYPE)
            .with("Accept-Encoding", "deflate")
            .with("Connection", "close"),
    )
}

/// Browse `to` (connecting from `listen`'s IP): the QueryHits it sends, until
/// `max_records` records came, the body ended, or `wait` passed.
pub async fn browse_host(
    to: SocketAddr,
    listen: SocketAddr,
    user_agent: &str,
    max_records: usize,
    wait: Duration,
) -> Result<Vec<QueryHit>, ServentError> {
    let deadline = Instant::now() + wait;
    let mut s = connect_from(listen, to, CONNECT_TIMEOUT.min(wait)).await?;
    let req = request(to, user_agent).to_bytes();
    timeout(WRITE_TIMEOUT, s.write_all(&req))
        .await
        .map_err(|_| ServentError::Timeout("browse request"))??;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let left = deadline.saturating_duration_since(Instant::now());
    let resp = read_head(&mut s, &mut buf, "browse reply", left, ResponseHead::parse).await?;
    let mut dec = BrowseDecoder::new(&resp)?;
    let mut hits = Vec::new();
    let mut records = 0usize;
    let mut total = 0usize;
    loop {
        if !buf.is_empty() {
            total += buf.len();
            for d in dec.feed(&buf.split())? {
                if let Message::QueryHit(h) = d.message {
                    records += h.results.len();
                    hits.push(h);
                }
            }
        }
        if dec.is_done() || records >= max_records {
            break;
        }
        if total > MAX_BODY {
            return Err(ServentError::Protocol("browse body too large".into()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ServentError::Timeout("browse body"));
        }
        buf.reserve(16 * 1024);
        let n = timeout(left.min(READ_IDLE), s.read_buf(&mut buf))
            .await
            .map_err(|_| ServentError::Timeout("browse body"))??;
        if n == 0 {
            dec.finish()?;
            break;
        }
    }
    Ok(hits)
}
