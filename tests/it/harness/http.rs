//! A raw HTTP/1.1 client (one request per connection, `Connection: close`), so the tests see
//! exactly the status line and head a server wrote; and the gateway's HTTP fronts on a port
//! of their own, with that client pointed at them. One copy for every test that speaks HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::Running;

pub struct Reply {
    pub status: u16,
    /// The status line and the headers, as sent.
    pub head: String,
    /// The body, de-chunked when it came chunked.
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `GET path` on a new connection to `addr`, answered within `limit`.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)], limit: Duration) -> Reply {
    request(addr, "GET", path, headers, b"", limit, |_| {}).await
}

/// One request on a new connection to `addr`: `headers` follow `Host` and `Connection`, and
/// `body` the head. All of it, reply included, within `limit`; `on_body` sees the body's
/// length (as received) each time more of it arrives.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    limit: Duration,
    on_body: impl FnMut(usize),
) -> Reply {
    let work = async {
        let s = TcpStream::connect(addr).await.unwrap();
        exchange(s, &addr.to_string(), method, path, headers, body, on_body).await
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} took longer than {limit:?}"))
}

/// Writes the request on `s` and reads the reply to the end of the stream.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    mut on_body: impl FnMut(usize),
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head_end = None;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if head_end.is_none() {
            head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        }
        if let Some(h) = head_end {
            on_body(raw.len() - h);
        }
    }
    let h = head_end.expect("no complete response head");
    let head = String::from_utf8_lossy(&raw[..h]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut reply = Reply {
        status,
        head,
        body: raw[h..].to_vec(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        reply.body = dechunk(&reply.body);
    }
    reply
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap().trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

/// The HTTP fronts of a gateway on a port of their own, and requests to them that must be
/// answered within `limit`.
pub struct Fronts {
    pub addr: SocketAddr,
    limit: Duration,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fronts {
    pub async fn serve(gw: &Running, limit: Duration) -> Fronts {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let gw = gw.gw.clone();
        let task = tokio::spawn(async move {
            gateway::http::serve(gw, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Fronts {
            addr,
            limit,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the HTTP server did not stop")
            .unwrap();
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, b"", |_| {}).await
    }

    /// See [`request`].
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        on_body: impl FnMut(usize),
    ) -> Reply {
        request(self.addr, method, path, headers, body, self.limit, on_body).await
    }
}
