//! Helpers for the servent tests: a tempfile-backed sink, servents on
//! 127.0.0.1, and a raw Gnutella peer driven by hand.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use junction_core::{Network, RangeSet, SinkError, TransferSink};
use junction_gnutella::wire::handshake::Handshake;
use junction_gnutella::wire::header::DescriptorDecoder;
use junction_gnutella::wire::link::{LinkDeflater, LinkInflater};
use junction_gnutella::wire::message::Descriptor;
use junction_gnutella::{Adapter, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A sink writing into a temporary file, recording verification verdicts.
pub struct FileSink {
    file: std::fs::File,
    size: u64,
    pub verified: Mutex<RangeSet>,
    pub verdicts: Mutex<Vec<(Range<u64>, bool)>>,
    /// Written by an "earlier run", unverified.
    pub written: Mutex<RangeSet>,
    _dir: tempfile::TempDir,
}

impl FileSink {
    pub fn new(size: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("download.part"))
            .unwrap();
        file.set_len(size).unwrap();
        FileSink {
            file,
            size,
            verified: Mutex::new(RangeSet::new()),
            verdicts: Mutex::new(Vec::new()),
            written: Mutex::new(RangeSet::new()),
            _dir: dir,
        }
    }

    pub fn contents(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.size as usize];
        self.file.read_exact_at(&mut v, 0).unwrap();
        v
    }

    /// Writes bytes straight to the file, as an earlier run would have.
    pub fn file_write(&self, offset: u64, data: &[u8]) {
        self.file.write_all_at(data, offset).unwrap();
    }

    pub fn is_verified(&self) -> bool {
        self.verified.lock().unwrap().contains(0..self.size)
    }
}

impl TransferSink for FileSink {
    fn size(&self) -> u64 {
        self.size
    }
    fn wanted(&self) -> RangeSet {
        self.verified.lock().unwrap().gaps(0..self.size)
    }
    fn priority(&self) -> Option<u64> {
        None
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        let end = offset + data.len() as u64;
        if end > self.size {
            return Err(SinkError::OutOfRange {
                start: offset,
                end,
                size: self.size,
            });
        }
        self.file.write_all_at(data, offset)?;
        Ok(())
    }
    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        let len = len.min(self.size.saturating_sub(offset) as usize);
        let mut v = vec![0u8; len];
        self.file.read_exact_at(&mut v, offset)?;
        Ok(Bytes::from(v))
    }
    fn written(&self) -> RangeSet {
        self.written.lock().unwrap().clone()
    }
    fn verified(&self, range: Range<u64>, ok: bool) {
        if !ok {
            self.written.lock().unwrap().remove(range.clone());
        }
        let mut v = self.verified.lock().unwrap();
        if ok {
            v.insert(range.clone());
        } else {
            v.remove(range.clone());
        }
        self.verdicts.lock().unwrap().push((range, ok));
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
