//! DHT messages: KRPC (BEP 5) with IPv6 nodes (BEP 32), `sample_infohashes` (BEP 51),
//! BEP 42's `ip` and BEP 43's read-only flag; node ids and XOR distance.
//!
//! Decoding is strict about what it uses (ids are 20 bytes, compact lists are whole
//! entries, integers in range) and ignores keys it does not know, as BEP 5 asks.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use junction_core::bencode::{self, Value};

use crate::error::KrpcError;
use crate::wire::benc;
use crate::wire::compact;
use crate::wire::id::InfoHash;

/// Longest transaction id accepted (BEP 5 suggests 2 bytes; clients use up to ~8).
pub const MAX_TRANSACTION_ID_LEN: usize = 32;
/// Longest `announce_peer` token accepted (the reference uses 4–8 bytes).
pub const MAX_TOKEN_LEN: usize = 64;

pub mod code {
    pub const GENERIC: i64 = 201;
    pub const SERVER: i64 = 202;
    pub const PROTOCOL: i64 = 203;
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// A 160-bit node id, in the same space as info-hashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

/// XOR distance between two ids; compares as a big-endian 160-bit number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 20]);

impl NodeId {
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(Self)
    }

    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 20];
        for (i, out) in d.iter_mut().enumerate() {
            *out = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// Routing-table bucket for `other` seen from `self`: the index (0..=159) of the
    /// highest differing bit, so 159 is the far half of the space and 0 the closest
    /// neighbour. `None` for our own id.
    pub fn bucket_index(&self, other: &NodeId) -> Option<usize> {
        let lz = self.distance(other).leading_zeros();
        (lz < 160).then(|| 159 - lz)
    }
}

impl Distance {
    pub fn leading_zeros(&self) -> usize {
        let mut n = 0;
        for b in self.0 {
            if b == 0 {
                n += 8;
            } else {
                return n + b.leading_zeros() as usize;
            }
        }
        n
    }
}

impl From<InfoHash> for NodeId {
    fn from(h: InfoHash) -> Self {
        NodeId(h.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", InfoHash(self.0))
    }
}

/// A compact IPv4 node: 20-byte id + 6-byte address (26 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeV4 {
    pub id: NodeId,
    pub addr: SocketAddrV4,
}

/// A compact IPv6 node: 20-byte id + 18-byte address (38 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeV6 {
    pub id: NodeId,
    pub addr: SocketAddrV6,
}

/// BEP 32 `want`: which node families the querier wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Want {
    pub n4: bool,
    pub n6: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Ping,
    FindNode {
        target: NodeId,
        want: Want,
    },
    GetPeers {
        info_hash: InfoHash,
        want: Want,
    },
    AnnouncePeer {
        info_hash: InfoHash,
        port: u16,
        token: Vec<u8>,
        /// Use the UDP source port instead of `port`.
        implied_port: bool,
    },
    /// BEP 51.
    SampleInfohashes {
        target: NodeId,
        want: Want,
    },
    /// A method we do not implement; answer with error 204.
    Unknown(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The querying node's id.
    pub id: NodeId,
    pub method: Method,
}

/// A response. KRPC responses do not name their method; the transaction id says which
/// query this answers, and the fields present depend on it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub id: NodeId,
    pub nodes: Vec<NodeV4>,
    pub nodes6: Vec<NodeV6>,
    /// `get_peers` peers (6- or 18-byte entries).
    pub values: Vec<SocketAddr>,
    pub token: Option<Vec<u8>>,
    /// BEP 51 fields.
    pub samples: Option<Vec<InfoHash>>,
    pub num: Option<u64>,
    pub interval: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: i64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Query(Query),
    Response(Response),
    Error(ErrorBody),
}

/// One KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub transaction_id: Vec<u8>,
    /// `v`: client version, conventionally 4 bytes.
    pub version: Option<Vec<u8>>,
    /// BEP 42 `ip`: the requester's address as the responder sees it.
    pub ip: Option<SocketAddr>,
    /// BEP 43 `ro`: the sender is read-only and should not be added to routing tables.
    pub read_only: bool,
    pub body: Body,
}

fn invalid(key: &'static str, why: &'static str) -> KrpcError {
    KrpcError::Invalid { key, why }
}

fn id20(v: &Value<'_>, key: &'static str) -> Result<[u8; 20], KrpcError> {
    v.get(key)
        .ok_or(KrpcError::Missing(key))?
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or(invalid(key, "not 20 bytes"))
}

fn opt_bytes<'a>(v: &Value<'a>, key: &'static str) -> Result<Option<&'a [u8]>, KrpcError> {
    v.get(key)
        .map(|x| x.as_bytes().ok_or(invalid(key, "not a byte string")))
        .transpose()
}

fn opt_int<T: TryFrom<i64>>(v: &Value<'_>, key: &'static str) -> Result<Option<T>, KrpcError> {
    v.get(key)
        .map(|x| {
            x.as_int()
                .and_then(|n| T::try_from(n).ok())
                .ok_or(invalid(key, "not an integer in range"))
        })
        .transpose()
}

fn want(args: &Value<'_>) -> Want {
    let mut w = Want::default();
    for item in args
        .get("want")
        .and_then(Value::as_list)
        .unwrap_or_default()
    {
        match item.as_bytes() {
            Some(b"n4") => w.n4 = true,
            Some(b"n6") => w.n6 = true,
            _ => {}
        }
    }
    w
}

/// The transaction id of a message that may fail to decode otherwise, so a node can still
/// answer it with error 203.
pub fn peek_transaction_id(data: &[u8]) -> Option<Vec<u8>> {
    let v = bencode::decode(data).ok()?;
    let t = v.get("t")?.as_bytes()?;
    (t.len() <= MAX_TRANSACTION_ID_LEN).then(|| t.to_vec())
}

impl Message {
    pub fn decode(data: &[u8]) -> Result<Self, KrpcError> {
        let v = bencode::decode(data)?;
        if v.as_dict().is_none() {
            return Err(invalid("message", "not a dictionary"));
        }
        let transaction_id = opt_bytes(&v, "t")?.ok_or(KrpcError::Missing("t"))?.to_vec();
        if transaction_id.len() > MAX_TRANSACTION_ID_LEN {
            return Err(invalid("t", "longer than 32 bytes"));
        }
        let version = opt_bytes(&v, "v")?.map(<[u8]>::to_vec);
        let ip = opt_bytes(&v, "ip")?.map(compact::decode_one).transpose()?;
        let read_only = opt_int::<i64>(&v, "ro")?.is_some_and(|n| n != 0);
        let body = match opt_bytes(&v, "y")?.ok_or(KrpcError::Missing("y"))? {
            b"q" => Body::Query(decode_query(&v)?),
            b"r" => Body::Response(decode_response(v.get("r").ok_or(KrpcError::Missing("r"))?)?),
            b"e" => {
                let e = v.get("e").ok_or(KrpcError::Missing("e"))?;
                match e.as_list() {
                    Some([code, msg, ..]) => Body::Error(ErrorBody {
                        code: code.as_int().ok_or(invalid("e", "code not an integer"))?,
                        message: String::from_utf8_lossy(
                            msg.as_bytes().ok_or(invalid("e", "message not a string"))?,
                        )
                        .into_owned(),
                    }),
                    _ => return Err(invalid("e", "not a [code, message] list")),
                }
            }
            _ => return Err(invalid("y", "not q, r or e")),
        };
        Ok(Message {
            transaction_id,
            version,
            ip,
            read_only,
            body,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![b'd'];
        // Top-level keys in byte order: a e ip q r ro t v y.
        if let Body::Query(q) = &self.body {
            benc::bytes(&mut out, b"a");
            encode_args(q, &mut out);
        }
        if let Body::Error(e) = &self.body {
            benc::bytes(&mut out, b"e");
            out.push(b'l');
            benc::int(&mut out, e.code);
            benc::bytes(&mut out, e.message.as_bytes());
            out.push(b'e');
        }
        if let Some(ip) = &self.ip {
            let mut b = Vec::new();
            compact::encode(ip, &mut b);
            benc::key_bytes(&mut out, "ip", &b);
        }
        if let Body::Query(q) = &self.body {
            benc::key_bytes(&mut out, "q", q.method.name());
        }
        if let Body::Response(r) = &self.body {
            benc::bytes(&mut out, b"r");
            encode_response(r, &mut out);
        }
        if self.read_only {
            benc::key_int(&mut out, "ro", 1);
        }
        benc::key_bytes(&mut out, "t", &self.transaction_id);
        if let Some(v) = &self.version {
            benc::key_bytes(&mut out, "v", v);
        }
        let y: &[u8] = match self.body {
            Body::Query(_) => b"q",
            Body::Response(_) => b"r",
            Body::Error(_) => b"e",
        };
        benc::key_bytes(&mut out, "y", y);
        out.push(b'e');
        out
    }
}

impl Method {
    pub fn name(&self) -> &[u8] {
        match self {
            Method::Ping => b"ping",
            Method::FindNode { .. } => b"find_node",
            Method::GetPeers { .. } => b"get_peers",
            Method::AnnouncePeer { .. } => b"announce_peer",
            Method::SampleInfohashes { .. } => b"sample_infohashes",
            Method::Unknown(name) => name,
        }
    }
}

fn decode_query(v: &Value<'_>) -> Result<Query, KrpcError> {
    let name = opt_bytes(v, "q")?.ok_or(KrpcError::Missing("q"))?;
    let a = v.get("a").ok_or(KrpcError::Missing("a"))?;
    if a.as_dict().is_none() {
        return Err(invalid("a", "not a dictionary"));
    }
    let id = NodeId(id20(a, "id")?);
    let method = match name {
        b"ping" => Method::Ping,
        b"find_node" => Method::FindNode {
            target: NodeId(id20(a, "target")?),
            want: want(a),
        },
        b"get_peers" => Method::GetPeers {
            info_hash: InfoHash(id20(a, "info_hash")?),
            want: want(a),
        },
        b"announce_peer" => {
            let implied_port = opt_int::<i64>(a, "implied_port")?.is_some_and(|n| n != 0);
            let port = opt_int::<u16>(a, "port")?;
            let port = match (port, implied_port) {
                (Some(p), _) => p,
                (None, true) => 0,
                (None, false) => return Err(KrpcError::Missing("port")),
            };
            let token = opt_bytes(a, "token")?.ok_or(KrpcError::Missing("token"))?;
            if token.len() > MAX_TOKEN_LEN {
                return Err(invalid("token", "longer than 64 bytes"));
            }
            Method::AnnouncePeer {
                info_hash: InfoHash(id20(a, "info_hash")?),
                port,
                token: token.to_vec(),
                implied_port,
            }
        }
        b"sample_infohashes" => Method::SampleInfohashes {
            target: NodeId(id20(a, "target")?),
            want: want(a),
        },
        other => Method::Unknown(other.to_vec()),
    };
    Ok(Query { id, method })
}

fn decode_response(r: &Value<'_>) -> Result<Response, KrpcError> {
    if r.as_dict().is_none() {
        return Err(invalid("r", "not a dictionary"));
    }
    let mut resp = Response {
        id: NodeId(id20(r, "id")?),
        ..Response::default()
    };
    if let Some(b) = opt_bytes(r, "nodes")? {
        resp.nodes = compact::chunks(b, 26)?
            .filter_map(|c| {
                let id = NodeId::from_slice(&c[..20])?;
                Some(NodeV4 {
                    id,
                    addr: compact::v4_from(c[20..].try_into().ok()?),
                })
            })
            .collect();
    }
    if let Some(b) = opt_bytes(r, "nodes6")? {
        resp.nodes6 = compact::chunks(b, 38)?
            .filter_map(|c| {
                let id = NodeId::from_slice(&c[..20])?;
                Some(NodeV6 {
                    id,
                    addr: compact::v6_from(c[20..].try_into().ok()?),
                })
            })
            .collect();
    }
    if let Some(values) = r.get("values") {
        let list = values.as_list().ok_or(invalid("values", "not a list"))?;
        resp.values = list
            .iter()
            .map(|p| {
                let b = p
                    .as_bytes()
                    .ok_or(invalid("values", "entry not a string"))?;
                compact::decode_one(b).map_err(KrpcError::from)
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(t) = opt_bytes(r, "token")? {
        if t.len() > MAX_TOKEN_LEN {
            return Err(invalid("token", "longer than 64 bytes"));
        }
        resp.token = Some(t.to_vec());
    }
    if let Some(s) = opt_bytes(r, "samples")? {
        resp.samples = Some(
            compact::chunks(s, 20)?
                .filter_map(InfoHash::from_slice)
                .collect(),
        );
    }
    resp.num = opt_int(r, "num")?;
    resp.interval = opt_int(r, "interval")?;
    Ok(resp)
}

fn encode_want(w: Want, out: &mut Vec<u8>) {
    if w.n4 || w.n6 {
        benc::bytes(out, b"want");
        out.push(b'l');
        if w.n4 {
            benc::bytes(out, b"n4");
        }
        if w.n6 {
            benc::bytes(out, b"n6");
        }
        out.push(b'e');
    }
}

fn encode_args(q: &Query, out: &mut Vec<u8>) {
    out.push(b'd');
    benc::key_bytes(out, "id", &q.id.0);
    match &q.method {
        Method::Ping | Method::Unknown(_) => {}
        Method::FindNode { target, want } | Method::SampleInfohashes { target, want } => {
            benc::key_bytes(out, "target", &target.0);
            encode_want(*want, out);
        }
        Method::GetPeers { info_hash, want } => {
            benc::key_bytes(out, "info_hash", &info_hash.0);
            encode_want(*want, out);
        }
        Method::AnnouncePeer {
            info_hash,
            port,
            token,
            implied_port,
        } => {
            if *implied_port {
                benc::key_int(out, "implied_port", 1);
            }
            benc::key_bytes(out, "info_hash", &info_hash.0);
            benc::key_int(out, "port", i64::from(*port));
            benc::key_bytes(out, "token", token);
        }
    }
    out.push(b'e');
}

fn encode_response(r: &Response, out: &mut Vec<u8>) {
    out.push(b'd');
    benc::key_bytes(out, "id", &r.id.0);
    if let Some(n) = r.interval {
        benc::key_int(out, "interval", i64::from(n));
    }
    if !r.nodes.is_empty() {
        let mut b = Vec::with_capacity(r.nodes.len() * 26);
        for n in &r.nodes {
            b.extend_from_slice(&n.id.0);
            compact::encode(&n.addr.into(), &mut b);
        }
        benc::key_bytes(out, "nodes", &b);
    }
    if !r.nodes6.is_empty() {
        let mut b = Vec::with_capacity(r.nodes6.len() * 38);
        for n in &r.nodes6 {
            b.extend_from_slice(&n.id.0);
            compact::encode(&n.addr.into(), &mut b);
        }
        benc::key_bytes(out, "nodes6", &b);
    }
    if let Some(n) = r.num {
        // Counts beyond i64 cannot occur; saturate rather than wrap.
        benc::key_int(out, "num", i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let Some(s) = &r.samples {
        let flat: Vec<u8> = s.iter().flat_map(|h| h.0).collect();
        benc::key_bytes(out, "samples", &flat);
    }
    if let Some(t) = &r.token {
        benc::key_bytes(out, "token", t);
    }
    if !r.values.is_empty() {
        benc::bytes(out, b"values");
        out.push(b'l');
        for p in &r.values {
            let mut b = Vec::new();
            compact::encode(p, &mut b);
            benc::bytes(out, &b);
        }
        out.push(b'e');
    }
    out.push(b'e');
}

#[cfg(test)]
mod tests;
