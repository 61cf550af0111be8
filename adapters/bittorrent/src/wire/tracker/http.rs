//! HTTP tracker: the announce URL query and the bencoded announce/scrape responses.

use std::net::{IpAddr, SocketAddr};

use junction_core::bencode::{self, Value};

use super::{Event, ScrapeStats};
use crate::error::TrackerError;
use crate::wire::benc;
use crate::wire::compact;
use crate::wire::id::{InfoHash, PeerId};
use crate::wire::percent;

/// An announce, as sent in the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    /// Ask for the compact peer list (BEP 23); advisory, both forms are parsed.
    pub compact: bool,
    pub numwant: Option<u32>,
    /// A random value that identifies us across IP changes (de-facto parameter).
    pub key: Option<u32>,
    /// Echo of the `tracker id` a previous response gave.
    pub tracker_id: Option<String>,
}

impl AnnounceRequest {
    /// The full announce URL for `announce` (which may already carry a query string).
    pub fn to_url(&self, announce: &str) -> String {
        let sep = if announce.contains('?') { '&' } else { '?' };
        format!("{announce}{sep}{}", self.to_query())
    }

    /// The query string alone, binary fields percent-encoded.
    pub fn to_query(&self) -> String {
        let mut q = format!(
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}",
            percent::encode(&self.info_hash.0),
            percent::encode(&self.peer_id.0),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left
        );
        if self.compact {
            q.push_str("&compact=1");
        }
        if let Some(e) = self.event.as_str() {
            q.push_str("&event=");
            q.push_str(e);
        }
        if let Some(n) = self.numwant {
            q.push_str(&format!("&numwant={n}"));
        }
        if let Some(k) = self.key {
            q.push_str(&format!("&key={k:08X}"));
        }
        if let Some(t) = &self.tracker_id {
            q.push_str("&trackerid=");
            q.push_str(&percent::encode(t.as_bytes()));
        }
        q
    }

    /// Parses an announce query string (the tracker role). Unknown parameters are ignored.
    pub fn from_query(query: &str) -> Result<Self, TrackerError> {
        let mut r = AnnounceRequest {
            info_hash: InfoHash::default(),
            peer_id: PeerId::default(),
            port: 0,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: Event::None,
            compact: false,
            numwant: None,
            key: None,
            tracker_id: None,
        };
        let (mut has_hash, mut has_id, mut has_port) = (false, false, false);
        let bad = |key| TrackerError::Invalid {
            key,
            why: "malformed value",
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let raw = percent::decode(value, false).ok_or(bad("query"))?;
            let text = || std::str::from_utf8(&raw).ok();
            let num = |key| text().and_then(|t| t.parse::<u64>().ok()).ok_or(bad(key));
            match key {
                "info_hash" => {
                    r.info_hash = InfoHash::from_slice(&raw).ok_or(bad("info_hash"))?;
                    has_hash = true;
                }
                "peer_id" => {
                    r.peer_id = PeerId::from_slice(&raw).ok_or(bad("peer_id"))?;
                    has_id = true;
                }
                "port" => {
                    r.port = u16::try_from(num("port")?).map_err(|_| bad("port"))?;
                    has_port = true;
                }
                "uploaded" => r.uploaded = num("uploaded")?,
                "downloaded" => r.downloaded = num("downloaded")?,
                "left" => r.left = num("left")?,
                "compact" => r.compact = text() == Some("1"),
                "event" => r.event = text().and_then(Event::from_name).ok_or(bad("event"))?,
                "numwant" => {
                    r.numwant = Some(u32::try_from(num("numwant")?).map_err(|_| bad("numwant"))?)
                }
                "key" => {
                    let k = text().and_then(|t| u32::from_str_radix(t, 16).ok());
                    r.key = Some(k.ok_or(bad("key"))?);
                }
                "trackerid" => r.tracker_id = Some(text().ok_or(bad("trackerid"))?.to_owned()),
                _ => {}
            }
        }
        for (present, key) in [
            (has_hash, "info_hash"),
            (has_id, "peer_id"),
            (has_port, "port"),
        ] {
            if !present {
                return Err(TrackerError::Missing(key));
            }
        }
        Ok(r)
    }
}

/// A successful announce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceResponse {
    /// Seconds until the next regular announce.
    pub interval: u32,
    pub min_interval: Option<u32>,
    pub tracker_id: Option<String>,
    /// Seeders and leechers, if the tracker says.
    pub complete: Option<u32>,
    pub incomplete: Option<u32>,
    /// A warning to show; the response is otherwise valid.
    pub warning: Option<String>,
    /// Peers from `peers` (compact or dictionary form) then `peers6`.
    pub peers: Vec<SocketAddr>,
    pub external_ip: Option<IpAddr>,
}

fn opt_u32(v: &Value<'_>, key: &'static str) -> Result<Option<u32>, TrackerError> {
    match v.get(key) {
        None => Ok(None),
        Some(x) => x
            .as_int()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or(TrackerError::Invalid {
                key,
                why: "not a non-negative 32-bit integer",
            }),
    }
}

fn dict(body: &[u8]) -> Result<Value<'_>, TrackerError> {
    let v = bencode::decode(body)?;
    if v.as_dict().is_none() {
        return Err(TrackerError::Invalid {
            key: "response",
            why: "not a dictionary",
        });
    }
    if let Some(reason) = v.get("failure reason") {
        let text = reason.as_bytes().unwrap_or_default();
        return Err(TrackerError::Failure(
            String::from_utf8_lossy(text).into_owned(),
        ));
    }
    Ok(v)
}

impl AnnounceResponse {
    /// Parses the body of an announce response; `failure reason` becomes
    /// [`TrackerError::Failure`].
    pub fn parse(body: &[u8]) -> Result<Self, TrackerError> {
        let v = dict(body)?;
        let interval = opt_u32(&v, "interval")?.ok_or(TrackerError::Missing("interval"))?;
        let mut peers = Vec::new();
        match v.get("peers") {
            None => {}
            Some(Value::Bytes(b)) => {
                peers.extend(compact::decode_v4(b)?.into_iter().map(SocketAddr::from));
            }
            Some(Value::List(list)) => {
                // Dictionary form: `ip` may be a host name, which this layer cannot
                // resolve, so such entries are skipped.
                peers.extend(list.iter().filter_map(|p| {
                    let ip: IpAddr = p.get("ip")?.as_str()?.parse().ok()?;
                    let port = u16::try_from(p.get("port")?.as_int()?).ok()?;
                    Some(SocketAddr::new(ip, port))
                }));
            }
            Some(_) => {
                return Err(TrackerError::Invalid {
                    key: "peers",
                    why: "neither a compact string nor a list",
                });
            }
        }
        if let Some(p6) = v.get("peers6") {
            let b = p6.as_bytes().ok_or(TrackerError::Invalid {
                key: "peers6",
                why: "not a compact string",
            })?;
            peers.extend(compact::decode_v6(b)?.into_iter().map(SocketAddr::from));
        }
        let text = |key| {
            v.get(key)
                .and_then(Value::as_bytes)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        Ok(Self {
            interval,
            min_interval: opt_u32(&v, "min interval")?,
            tracker_id: text("tracker id"),
            complete: opt_u32(&v, "complete")?,
            incomplete: opt_u32(&v, "incomplete")?,
            warning: text("warning message"),
            peers,
            external_ip: v
                .get("external ip")
                .and_then(Value::as_bytes)
                .and_then(compact::decode_ip),
        })
    }

    /// Encodes a compact response (the tracker role).
    pub fn encode(&self) -> Vec<u8> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for p in &self.peers {
            match p {
                SocketAddr::V4(_) => compact::encode(p, &mut v4),
                SocketAddr::V6(_) => compact::encode(p, &mut v6),
            }
        }
        let mut out = vec![b'd'];
        if let Some(n) = self.complete {
            benc::key_int(&mut out, "complete", i64::from(n));
        }
        if let Some(ip) = self.external_ip {
            let mut b = Vec::new();
            compact::encode_ip(&ip, &mut b);
            benc::key_bytes(&mut out, "external ip", &b);
        }
        if let Some(n) = self.incomplete {
            benc::key_int(&mut out, "incomplete", i64::from(n));
        }
        benc::key_int(&mut out, "interval", i64::from(self.interval));
        if let Some(n) = self.min_interval {
            benc::key_int(&mut out, "min interval", i64::from(n));
        }
        benc::key_bytes(&mut out, "peers", &v4);
        if !v6.is_empty() {
            benc::key_bytes(&mut out, "peers6", &v6);
        }
        if let Some(t) = &self.tracker_id {
            benc::key_bytes(&mut out, "tracker id", t.as_bytes());
        }
        if let Some(w) = &self.warning {
            benc::key_bytes(&mut out, "warning message", w.as_bytes());
        }
        out.push(b'e');
        out
    }
}

/// Encodes a failure response (the tracker role).
pub fn encode_failure(reason: &str) -> Vec<u8> {
    let mut out = vec![b'd'];
    benc::key_bytes(&mut out, "failure reason", reason.as_bytes());
    out.push(b'e');
    out
}

/// The scrape URL for an announce URL (BEP 48): the last path segment must start with
/// `announce`, which becomes `scrape`; otherwise the tracker does not support scrape.
pub fn scrape_url(announce: &str) -> Option<String> {
    let (path, query) = match announce.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (announce, None),
    };
    let slash = path.rfind('/')?;
    let last = &path[slash + 1..];
    let rest = last.strip_prefix("announce")?;
    let mut url = format!("{}scrape{rest}", &path[..=slash]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Some(url)
}

/// The scrape URL with one `info_hash` parameter per torrent.
pub fn scrape_request_url(scrape: &str, hashes: &[InfoHash]) -> String {
    let mut url = scrape.to_owned();
    let mut sep = if scrape.contains('?') { '&' } else { '?' };
    for h in hashes {
        url.push(sep);
        url.push_str("info_hash=");
        url.push_str(&percent::encode(&h.0));
        sep = '&';
    }
    url
}

/// Parses a scrape response: `files` maps each 20-byte info-hash to its counts.
pub fn parse_scrape(body: &[u8]) -> Result<Vec<(InfoHash, ScrapeStats)>, TrackerError> {
    let v = dict(body)?;
    let files = v
        .get("files")
        .ok_or(TrackerError::Missing("files"))?
        .as_dict()
        .ok_or(TrackerError::Invalid {
            key: "files",
            why: "not a dictionary",
        })?;
    files
        .iter()
        .map(|e| {
            let hash = InfoHash::from_slice(e.key).ok_or(TrackerError::Invalid {
                key: "files",
                why: "key is not a 20-byte info-hash",
            })?;
            let n = |key| opt_u32(&e.value, key).map(Option::unwrap_or_default);
            let stats = ScrapeStats {
                complete: n("complete")?,
                downloaded: n("downloaded")?,
                incomplete: n("incomplete")?,
            };
            Ok((hash, stats))
        })
        .collect()
}

/// Encodes a scrape response (the tracker role). Hashes must be sorted and unique for
/// canonical output; they are sorted here.
pub fn encode_scrape(files: &[(InfoHash, ScrapeStats)]) -> Vec<u8> {
    let mut files = files.to_vec();
    files.sort_by_key(|(h, _)| *h);
    files.dedup_by_key(|(h, _)| *h);
    let mut out = b"d5:filesd".to_vec();
    for (h, s) in &files {
        benc::bytes(&mut out, &h.0);
        out.push(b'd');
        benc::key_int(&mut out, "complete", i64::from(s.complete));
        benc::key_int(&mut out, "downloaded", i64::from(s.downloaded));
        benc::key_int(&mut out, "incomplete", i64::from(s.incomplete));
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
    out
}
