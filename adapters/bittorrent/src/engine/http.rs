//! A minimal HTTP/1.1 GET client (for trackers and Torznab feeds) and request-head reader
//! (for the tracker role), over the codecs of [`crate::wire::http`]. Bounded: heads of at
//! most 16 KiB, bodies of at most 4 MiB, every read under a deadline. No TLS: `https`
//! trackers are refused.

use std::time::Duration;

use junction_core::http::{HttpHead, MAX_HEAD_LEN, RequestHead};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub use crate::wire::http::{HttpError, MAX_BODY, Url, parse_response};

/// GETs `url` and returns the body of a 200 response.
pub async fn get(
    url: &str,
    deadline: Duration,
    local: Option<std::net::IpAddr>,
) -> Result<Vec<u8>, HttpError> {
    let u = Url::parse(url)?;
    timeout(deadline, get_inner(&u, local))
        .await
        .map_err(|_| HttpError::Timeout)?
}

async fn get_inner(u: &Url, local: Option<std::net::IpAddr>) -> Result<Vec<u8>, HttpError> {
    let addr = tokio::net::lookup_host((u.host.as_str(), u.port))
        .await?
        .next()
        .ok_or_else(|| HttpError::BadUrl(u.host.clone()))?;
    let mut s: TcpStream = super::tcp_connect(addr, local).await?;
    let host = if u.host.contains(':') {
        format!("[{}]", u.host)
    } else {
        u.host.clone()
    };
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: Junction\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        u.target, u.port
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        if buf.len() + n > MAX_BODY + MAX_HEAD_LEN {
            return Err(HttpError::TooLarge);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_response(&buf)
}

/// Reads a request head (`GET /path?query HTTP/1.1` and headers) from a server-side
/// connection; returns the request target.
pub async fn read_request_target(s: &mut TcpStream, deadline: Duration) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let read = async {
        loop {
            if let Some((head, _)) = RequestHead::parse(&buf).ok()? {
                return Some(head);
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 || buf.len() + n > MAX_HEAD_LEN {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let head = timeout(deadline, read).await.ok()??;
    (head.method == "GET").then_some(head.target)
}

/// Writes a complete `200 OK` (or other status) response and closes.
pub async fn respond(s: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        s.shutdown().await
    };
    let _ = timeout(Duration::from_secs(10), write).await;
}
