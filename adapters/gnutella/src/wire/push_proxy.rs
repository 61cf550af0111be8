//! Push proxies: the pure parts (GGEP `PUSH` in QueryHit trailers, and the HTTP
//! push-proxy request an ultrapeer turns into a Push for its leaf).
//!
//! Facts (gtk-gnutella `pproxy.c`, `ggep_type.c`, `search.c`; LimeWire's push-proxy
//! handlers and the "Push Proxy" 0.6 document):
//!
//! * GGEP `PUSH` in the trailer's GGEP block: n × 6 bytes, IPv4 in network order then the
//!   port little-endian; gtk-gnutella refuses a length that is 0 or not a multiple of 6.
//! * The request: `GET` (or `HEAD`) `/gnutella/push-proxy?ServerId=<GUID in base32>`
//!   (26 characters, or 32 with `=` padding), the legacy `/gnutella/pushproxy?ServerId=`,
//!   or `/gnet/push-proxy?guid=<32 hex digits>`; optional `file=<index>` (0 when absent)
//!   and `tls=true`. The downloader says where the `GIV` must go in `X-Node: ip:port`
//!   (gtk-gnutella also reads a second address after a comma, and `X-Node-IPv6`).
//!   gtk-gnutella sends `GET /gnutella/push-proxy?ServerId=…` with `Connection: close`.
//! * The answer: `202` the Push went to the servent directly, `203` it went out over
//!   Gnutella, `410` no route to that GUID, `400` a malformed request. The proxy sends the
//!   Push with TTL `max_ttl - 1` and hops 1, "since it does not come from our node".

use std::net::SocketAddrV4;

use data_encoding::BASE32_NOPAD;

use crate::error::{Error, Result};
use crate::wire::addr_list::parse_addr_v4;
use crate::wire::ggep::{self, Extension, ids};
use crate::wire::guid::Guid;
use crate::wire::http::{RequestHead, percent_decode};
use crate::wire::message::QhdTrailer;
use junction_core::http::Headers;

/// Push proxies a leaf keeps and announces in its hits (LimeWire and gtk-gnutella keep
/// a handful).
pub const MAX_PUSH_PROXIES: usize = 4;
/// Push proxies read from one hit; the rest are ignored.
pub const MAX_PUSH_PROXIES_READ: usize = 8;

/// The path we request (gtk-gnutella's and LimeWire's).
pub const PUSH_PROXY_PATH: &str = "/gnutella/push-proxy";

/// A usable proxy address: not 0.0.0.0, not a broadcast, not port 0.
pub fn usable(a: &SocketAddrV4) -> bool {
    a.port() != 0 && !a.ip().is_unspecified() && !a.ip().is_broadcast()
}

/// GGEP `PUSH` naming up to [`MAX_PUSH_PROXIES`] of `proxies` (unusable ones skipped);
/// `None` when none is left.
pub fn push_extension(proxies: &[SocketAddrV4]) -> Option<Extension> {
    let list: Vec<SocketAddrV4> = proxies
        .iter()
        .filter(|a| usable(a))
        .take(MAX_PUSH_PROXIES)
        .copied()
        .collect();
    if list.is_empty() {
        return None;
    }
    Extension::new(ids::PUSH, ggep::encode_ip_ports(&list)).ok()
}

/// The push proxies of a hit's trailer (GGEP `PUSH`): at most
/// [`MAX_PUSH_PROXIES_READ`], unusable ones dropped. A trailer without a GGEP block,
/// without `PUSH`, or with a malformed one names none.
pub fn trailer_proxies(t: &QhdTrailer) -> Vec<SocketAddrV4> {
    let Some(Ok(block)) = t.ggep() else {
        return Vec::new();
    };
    match block.push_proxies() {
        Some(Ok(list)) => list
            .into_iter()
            .filter(usable)
            .take(MAX_PUSH_PROXIES_READ)
            .collect(),
        _ => Vec::new(),
    }
}

/// A servent GUID in base32 (26 characters, no padding), as `ServerId=` carries it.
pub fn guid_base32(g: &Guid) -> String {
    BASE32_NOPAD.encode(&g.0)
}

/// Parse a `ServerId`: 26 base32 characters, or 32 with `=` padding (any case).
pub fn guid_from_base32(s: &str) -> Result<Guid> {
    let body = match s.len() {
        26 => s,
        32 if s.get(26..).is_some_and(|t| t.bytes().all(|b| b == b'=')) => &s[..26],
        n => {
            return Err(Error::invalid(
                "push-proxy ServerId",
                format!("expected 26 base32 characters, got {n}"),
            ));
        }
    };
    let bytes = BASE32_NOPAD
        .decode(body.to_ascii_uppercase().as_bytes())
        .map_err(|e| Error::invalid("push-proxy ServerId", e))?;
    let g: [u8; 16] = bytes
        .try_into()
        .map_err(|_| Error::invalid("push-proxy ServerId", "wrong decoded length"))?;
    Ok(Guid(g))
}

/// An HTTP push-proxy request, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushProxyRequest {
    /// The firewalled servent to push.
    pub servent: Guid,
    /// The file index to name in the Push (`file=`, 0 when absent or unreadable).
    pub index: u32,
    /// Where the `GIV` must go (`X-Node`); `None` when missing or unusable.
    pub node: Option<SocketAddrV4>,
}

impl PushProxyRequest {
    /// Interpret `req`: `None` when its target is no push-proxy path, `Some(Err)` when it
    /// is one but malformed (no or bad GUID: answer `400`).
    pub fn parse(req: &RequestHead) -> Option<Result<Self>> {
        let t = req.target.as_str();
        let (query, key) = [
            ("/gnutella/push-proxy?", "serverid"),
            ("/gnutella/pushproxy?", "serverid"),
            ("/gnet/push-proxy?", "guid"),
        ]
        .into_iter()
        .find_map(|(p, k)| t.strip_prefix(p).map(|q| (q, k)))?;
        Some(Self::parse_query(query, key, &req.headers))
    }

    fn parse_query(query: &str, key: &str, headers: &Headers) -> Result<Self> {
        let mut servent = None;
        let mut index = 0;
        // Bounded: a request head is at most 16 KiB; look at the first 32 parameters.
        for kv in query.split('&').take(32) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = percent_decode(v);
            if k.eq_ignore_ascii_case(key) && servent.is_none() {
                servent = Some(if key == "guid" {
                    Guid::from_hex(&v)?
                } else {
                    guid_from_base32(&v)?
                });
            } else if k.eq_ignore_ascii_case("file") {
                index = v.parse().unwrap_or(0);
            }
        }
        let servent = servent
            .ok_or_else(|| Error::invalid("push-proxy request", format!("no {key} parameter")))?;
        // `X-Node: ip:port[, other]`: the first IPv4 address that is usable.
        let node = headers
            .get("X-Node")
            .into_iter()
            .flat_map(|v| v.split(','))
            .take(4)
            .filter_map(|a| parse_addr_v4(a.trim()))
            .find(usable);
        Ok(PushProxyRequest {
            servent,
            index,
            node,
        })
    }

    /// The request a downloader sends to a proxy at `host` (`ip:port`), as gtk-gnutella
    /// sends it: `GET /gnutella/push-proxy?ServerId=<base32>` with `X-Node: <node>`.
    pub fn to_head(&self, host: &str, user_agent: &str) -> RequestHead {
        let mut target = format!("{PUSH_PROXY_PATH}?ServerId={}", guid_base32(&self.servent));
        if self.index != 0 {
            target.push_str(&format!("&file={}", self.index));
        }
        let mut h = Headers::new()
            .with("User-Agent", user_agent)
            .with("Connection", "close")
            .with("Host", host);
        if let Some(n) = self.node {
            h.push("X-Node", n.to_string());
        }
        RequestHead::new("GET", target, h)
    }
}

#[cfg(test)]
mod tests;
