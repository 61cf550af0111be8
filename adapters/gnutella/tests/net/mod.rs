//! Helpers for the servent tests: a tempfile-backed sink, servents on
//! 127.0.0.1, and a raw Gnutella peer driven by hand.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use junction_core::swarm::{Swarm, SwarmSink};
use junction_core::{
    ContentId, FetchEvent, FetchRequest, Hit, Network, NetworkId, RangeSet, SharedItem,
};
use junction_gnutella::wire::descriptor_header::DescriptorDecoder;
use junction_gnutella::wire::handshake::Handshake;
use junction_gnutella::wire::link::{LinkDeflater, LinkInflater};
use junction_gnutella::wire::message::Descriptor;
use junction_gnutella::{Adapter, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A sink writing into an anonymous temporary file that checks what it learns (the SHA-1),
/// as the gateway's does.
pub type FileSink = SwarmSink<std::fs::File>;

pub fn file_sink(size: u64) -> Arc<FileSink> {
    let file = tempfile::tempfile().unwrap();
    file.set_len(size).unwrap();
    SwarmSink::new(
        Arc::new(Swarm::new(file, size, RangeSet::new())),
        NetworkId::GNUTELLA,
    )
}

/// What the tests look at in a sink.
pub trait Inspect {
    fn contents(&self) -> Vec<u8>;
    /// Every byte verified.
    fn is_verified(&self) -> bool;
    /// Bytes received that failed a check.
    fn discarded(&self) -> u64;
    /// Bytes an earlier run wrote (unverified): straight to the file, and known as written.
    fn earlier_run(&self, offset: u64, data: &[u8]);
}

impl Inspect for FileSink {
    fn contents(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.swarm.size() as usize];
        self.swarm.store().read_exact_at(&mut v, 0).unwrap();
        v
    }
    fn is_verified(&self) -> bool {
        self.swarm.ledger().complete()
    }
    fn discarded(&self) -> u64 {
        let l = self.swarm.ledger();
        l.figures()
            .get(&NetworkId::GNUTELLA)
            .map_or(0, |f| f.discarded)
    }
    fn earlier_run(&self, offset: u64, data: &[u8]) {
        self.swarm.store().write_all_at(data, offset).unwrap();
        let range = offset..offset + data.len() as u64;
        self.swarm
            .ledger()
            .restore_written(&RangeSet::from_iter(std::iter::once(range)));
    }
}

pub fn cfg(ultrapeer: bool, peers: &[SocketAddr]) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ultrapeer,
        peers: peers.iter().map(ToString::to_string).collect(),
        search_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

pub async fn servent(ultrapeer: bool, peers: &[SocketAddr]) -> Adapter {
    Adapter::start(cfg(ultrapeer, peers)).await.unwrap()
}

/// A leaf that says it is firewalled and announces an address nobody listens on: only a
/// push reaches it.
pub async fn firewalled_leaf(peers: &[SocketAddr]) -> Adapter {
    Adapter::start(Config {
        advertised: Some("127.0.0.1:9".parse().unwrap()),
        firewalled: Some(true),
        ..cfg(false, peers)
    })
    .await
    .unwrap()
}

/// A leaf that knows it is reachable (a firewalled servent does not answer firewalled
/// queriers).
pub async fn reachable_leaf(peers: &[SocketAddr]) -> Adapter {
    Adapter::start(Config {
        firewalled: Some(false),
        ..cfg(false, peers)
    })
    .await
    .unwrap()
}

pub fn detail(a: &Adapter, key: &str) -> String {
    a.status()
        .details
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

pub fn detail_u64(a: &Adapter, key: &str) -> u64 {
    detail(a, key).parse().unwrap_or(0)
}

/// Poll `cond` every 20 ms for up to 10 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Read one handshake block from `s` (leftover bytes stay in `buf`).
pub async fn read_handshake(s: &mut TcpStream, buf: &mut BytesMut) -> Handshake {
    loop {
        if let Some((h, n)) = Handshake::parse(buf).unwrap() {
            let _ = buf.split_to(n);
            return h;
        }
        let n = within("handshake", 10, s.read_buf(buf)).await.unwrap();
        assert!(n > 0, "closed during handshake");
    }
}

/// A zlib stored block: continues any sync-flushed deflate stream with `data`.
pub fn stored_block(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(65535) {
        let len = c.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out
}

pub async fn within<T>(what: &str, secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Write a file of `len` pseudo-random bytes into `dir`.
pub fn make_file(
    dir: &std::path::Path,
    name: &str,
    len: usize,
    seed: u8,
) -> (std::path::PathBuf, Vec<u8>) {
    let mut data = Vec::with_capacity(len);
    let mut x: u32 = 0x9E37_79B9 ^ u32::from(seed);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push((x >> 24) as u8);
    }
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

/// A Gnutella peer driven by hand.
pub struct RawPeer {
    pub s: TcpStream,
    raw: BytesMut,
    plain: BytesMut,
    inflater: Option<LinkInflater>,
    deflater: Option<LinkDeflater>,
    pub response: Handshake,
}

impl RawPeer {
    /// Connect and send `connect` (a whole CONNECT block), read the response,
    /// send `final_block`. Compression follows the headers exchanged.
    pub async fn handshake(addr: SocketAddr, connect: &[u8], final_block: &[u8]) -> RawPeer {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(connect).await.unwrap();
        let mut raw = BytesMut::new();
        let response = loop {
            if let Some((h, n)) = Handshake::parse(&raw).unwrap() {
                let _ = raw.split_to(n);
                break h;
            }
            let n = within("handshake response", 10, s.read_buf(&mut raw))
                .await
                .unwrap();
            assert!(n > 0, "closed during handshake");
        };
        assert!(response.is_ok(), "refused: {:?}", response.start);
        s.write_all(final_block).await.unwrap();
        let (_, fin_len) = Handshake::parse(final_block).unwrap().unwrap();
        let fin = Handshake::parse(&final_block[..fin_len])
            .unwrap()
            .unwrap()
            .0;
        RawPeer {
            s,
            raw,
            plain: BytesMut::new(),
            inflater: response
                .content_deflate()
                .then(|| LinkInflater::new(8 << 20)),
            deflater: fin.content_deflate().then(LinkDeflater::default),
            response,
        }
    }

    /// The accepting side: `s` after the handshake, `leftover` bytes already read,
    /// `inflate` when the peer compresses, `deflate` when we do.
    pub fn from_stream(
        s: TcpStream,
        leftover: BytesMut,
        inflate: bool,
        deflate: bool,
        handshake: Handshake,
    ) -> RawPeer {
        RawPeer {
            s,
            raw: leftover,
            plain: BytesMut::new(),
            inflater: inflate.then(|| LinkInflater::new(8 << 20)),
            deflater: deflate.then(LinkDeflater::default),
            response: handshake,
        }
    }

    /// A plain leaf (no compression).
    pub async fn leaf(addr: SocketAddr) -> RawPeer {
        Self::handshake(
            addr,
            b"GNUTELLA CONNECT/0.6\r\nUser-Agent: raw-test\r\nX-Ultrapeer: False\r\nX-Query-Routing: 0.2\r\n\r\n",
            b"GNUTELLA/0.6 200 OK\r\n\r\n",
        )
        .await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    pub async fn send(&mut self, d: &Descriptor) {
        let plain = d.to_bytes().unwrap();
        match self.deflater.as_mut() {
            Some(z) => {
                let mut out = BytesMut::new();
                z.deflate_flush(&plain, &mut out).unwrap();
                self.s.write_all(&out).await.unwrap();
            }
            None => self.s.write_all(&plain).await.unwrap(),
        }
    }

    /// The next descriptor; `None` on EOF or after `secs` of silence.
    pub async fn next(&mut self, secs: u64) -> Option<Descriptor> {
        let dec = DescriptorDecoder::default();
        loop {
            if !self.raw.is_empty() {
                let chunk = self.raw.split();
                match self.inflater.as_mut() {
                    Some(z) => z.inflate(&chunk, &mut self.plain).unwrap(),
                    None => self.plain.extend_from_slice(&chunk),
                }
            }
            if let Some(d) = dec.decode(&mut self.plain).unwrap() {
                return Some(Descriptor::from_raw(&d).unwrap());
            }
            match tokio::time::timeout(Duration::from_secs(secs), self.s.read_buf(&mut self.raw))
                .await
            {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Whether the peer closed the connection within `secs`, reading nothing more.
    pub async fn closed_within(&mut self, secs: u64) -> bool {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(secs), self.s.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Wait until `a` has at least `n` links.
pub async fn linked(a: &Adapter, n: u32) {
    eventually("links", || a.status().peers >= n).await;
}

/// Shares the file at `path` as `name`; returns the content id the servent gives it.
pub async fn share(a: &Adapter, path: &std::path::Path, name: &str) -> ContentId {
    a.share(SharedItem {
        path: path.to_owned(),
        name: name.to_owned(),
        size: std::fs::metadata(path).unwrap().len(),
        id: ContentId::new(None),
        hashes: None,
    })
    .await
    .unwrap()
}

/// Sixteen bytes that differ from one test process to the next (for GUIDs).
pub fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i as u8).wrapping_mul(37) ^ 0x5a ^ (std::process::id() as u8);
    }
    b
}

/// Fetches `hit` from its locations into a new sink, with every event, within `secs`.
pub async fn fetch_all(leaf: &Adapter, hit: &Hit, secs: u64) -> (Arc<FileSink>, Vec<FetchEvent>) {
    let sink = file_sink(hit.size);
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id: hit.id.clone(),
                name: hit.name.clone(),
                size: hit.size,
                sources: hit.locations.clone(),
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    let mut events = Vec::new();
    within("download", secs, async {
        while let Some(e) = ev.next().await {
            events.push(e);
        }
    })
    .await;
    (sink, events)
}
