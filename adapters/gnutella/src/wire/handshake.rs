//! The Gnutella 0.6 connection handshake.
//!
//! ```text
//! client: GNUTELLA CONNECT/0.6 CRLF headers CRLF
//! server: GNUTELLA/0.6 200 OK CRLF headers CRLF      (or another code)
//! client: GNUTELLA/0.6 200 OK CRLF headers CRLF
//! ```
//! Each block is decoded by [`Handshake::decode`], which returns `Ok(None)`
//! until the empty line arrives and refuses blocks larger than
//! [`MAX_HANDSHAKE_LEN`]. The legacy 0.4 form (`GNUTELLA CONNECT/0.4` LF LF,
//! answered `GNUTELLA OK` LF LF) is recognised so the servent can refuse it.
//! [`HandshakeProfile`] builds the blocks we send, with the header set
//! gtk-gnutella sends for the same role.

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use bytes::{Buf, BufMut, BytesMut};
use junction_core::http::split_head;

use crate::error::{Error, Result};
use crate::wire::addr_list::{addr_list, parse_socket_addr};
use crate::wire::guid::Guid;
use junction_core::http::Headers;

/// Largest handshake block we buffer (gtk-gnutella's blocks are ~1 KiB).
pub const MAX_HANDSHAKE_LEN: usize = 16 * 1024;

/// Protocol version from `CONNECT/x.y` or `GNUTELLA/x.y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number.
    pub major: u8,
    /// Minor number.
    pub minor: u8,
}

impl Version {
    /// 0.6, the version we speak.
    pub const V0_6: Version = Version { major: 0, minor: 6 };
    /// 0.4, the legacy version we refuse.
    pub const V0_4: Version = Version { major: 0, minor: 4 };

    fn parse(s: &str) -> Result<Self> {
        let bad = || Error::invalid("handshake version", format!("{s:?}"));
        let (a, b) = s.split_once('.').ok_or_else(bad)?;
        Ok(Version {
            major: a.parse().map_err(|_| bad())?,
            minor: b.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// First line of a handshake block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `GNUTELLA CONNECT/<version>` (the client's opening block).
    Connect {
        /// Requested version; higher 0.x minors must be tolerated.
        version: Version,
    },
    /// `GNUTELLA/<version> <code> <reason>` (steps 2 and 3).
    Status {
        /// Version spoken by the sender.
        version: Version,
        /// Status code: 200 accepts; anything else refuses.
        code: u16,
        /// Reason text, e.g. `OK`, `Gnet connection not compressed`.
        reason: String,
    },
    /// `GNUTELLA OK` — the legacy 0.4 acceptance.
    LegacyOk,
}

/// One handshake block: start line plus headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The first line.
    pub start: StartLine,
    /// The headers, in order.
    pub headers: Headers,
}

impl Handshake {
    /// `GNUTELLA CONNECT/0.6` with `headers`.
    pub fn connect(headers: Headers) -> Self {
        Handshake {
            start: StartLine::Connect {
                version: Version::V0_6,
            },
            headers,
        }
    }

    /// `GNUTELLA/0.6 <code> <reason>` with `headers`.
    pub fn status(code: u16, reason: impl Into<String>, headers: Headers) -> Self {
        Handshake {
            start: StartLine::Status {
                version: Version::V0_6,
                code,
                reason: reason.into(),
            },
            headers,
        }
    }

    /// `GNUTELLA/0.6 200 OK` with `headers`.
    pub fn ok(headers: Headers) -> Self {
        Self::status(200, "OK", headers)
    }

    /// Parse a block at the start of `buf`: `Ok(None)` until it is complete,
    /// else the block and the number of bytes it used.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>> {
        let Some(raw) = split_head(buf, MAX_HANDSHAKE_LEN, "handshake block")? else {
            return Ok(None);
        };
        let start = parse_start_line(&raw.start)?;
        Ok(Some((
            Handshake {
                start,
                headers: raw.headers,
            },
            raw.len,
        )))
    }

    /// Streaming form of [`Handshake::parse`]: consumes the block from `buf`
    /// once complete; whatever follows (possibly a compressed stream) stays.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Self>> {
        match Self::parse(buf)? {
            Some((hs, len)) => {
                buf.advance(len);
                Ok(Some(hs))
            }
            None => Ok(None),
        }
    }

    /// Write the block, terminating empty line included. Legacy 0.4 blocks
    /// use bare LF line endings, as 0.4 servents did.
    pub fn encode(&self, dst: &mut impl BufMut) {
        let legacy = self.is_legacy();
        let eol: &[u8] = if legacy { b"\n" } else { b"\r\n" };
        match &self.start {
            StartLine::Connect { version } => {
                dst.put_slice(format!("GNUTELLA CONNECT/{version}").as_bytes());
            }
            StartLine::Status {
                version,
                code,
                reason,
            } => {
                dst.put_slice(format!("GNUTELLA/{version} {code}").as_bytes());
                if !reason.is_empty() {
                    dst.put_u8(b' ');
                    dst.put_slice(reason.as_bytes());
                }
            }
            StartLine::LegacyOk => dst.put_slice(b"GNUTELLA OK"),
        }
        dst.put_slice(eol);
        if legacy {
            for (k, v) in self.headers.iter() {
                dst.put_slice(format!("{k}: {v}\n").as_bytes());
            }
        } else {
            self.headers.encode(dst);
        }
        dst.put_slice(eol);
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// A pre-0.6 block (`CONNECT/0.4` or `GNUTELLA OK`), which we refuse.
    pub fn is_legacy(&self) -> bool {
        match &self.start {
            StartLine::Connect { version } | StartLine::Status { version, .. } => {
                *version < Version::V0_6
            }
            StartLine::LegacyOk => true,
        }
    }

    /// The status code of a response block (`None` for a CONNECT).
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Status { code, .. } => Some(*code),
            StartLine::LegacyOk => Some(200),
            StartLine::Connect { .. } => None,
        }
    }

    /// A `200` response.
    pub fn is_ok(&self) -> bool {
        self.code() == Some(200)
    }

    /// `User-Agent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.headers.get("User-Agent")
    }
    /// `X-Ultrapeer` (`True` = acts as ultrapeer, `False` = leaf).
    pub fn ultrapeer(&self) -> Option<bool> {
        self.headers.get_bool("X-Ultrapeer")
    }
    /// `X-Ultrapeer-Needed`.
    pub fn ultrapeer_needed(&self) -> Option<bool> {
        self.headers.get_bool("X-Ultrapeer-Needed")
    }
    /// `X-Query-Routing` version (leaf → ultrapeer QRP).
    pub fn query_routing(&self) -> Option<&str> {
        self.headers.get("X-Query-Routing")
    }
    /// `X-Ultrapeer-Query-Routing` version (last-hop QRP between ultrapeers).
    pub fn ultrapeer_query_routing(&self) -> Option<&str> {
        self.headers.get("X-Ultrapeer-Query-Routing")
    }
    /// `Accept-Encoding` lists `deflate`: the sender can inflate.
    pub fn accepts_deflate(&self) -> bool {
        self.headers.has_token("Accept-Encoding", "deflate")
    }
    /// `Content-Encoding: deflate`: the sender compresses what follows.
    pub fn content_deflate(&self) -> bool {
        self.headers.has_token("Content-Encoding", "deflate")
    }
    /// `X-Try-Ultrapeers` addresses (non-IPv4 items skipped).
    pub fn try_ultrapeers(&self) -> Vec<SocketAddrV4> {
        addr_list(&self.headers, "X-Try-Ultrapeers")
    }
    /// Legacy `X-Try` addresses.
    pub fn try_hosts(&self) -> Vec<SocketAddrV4> {
        addr_list(&self.headers, "X-Try")
    }
    /// The sender's listening address: `Listen-IP`, else `X-My-Address`,
    /// else `Node`/`X-Node` (gtk-gnutella sends `Node`).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        ["Listen-IP", "X-My-Address", "Node", "X-Node"]
            .iter()
            .find_map(|h| self.headers.get(h).and_then(parse_socket_addr))
    }
    /// `Node:` as sent by gtk-gnutella when it connects out.
    pub fn node(&self) -> Option<SocketAddr> {
        self.headers.get("Node").and_then(parse_socket_addr)
    }
    /// `Remote-IP`: the address the sender sees us at.
    pub fn remote_ip(&self) -> Option<IpAddr> {
        self.headers.get("Remote-IP")?.trim().parse().ok()
    }
    /// `Bye-Packet` version.
    pub fn bye_packet(&self) -> Option<&str> {
        self.headers.get("Bye-Packet")
    }
    /// `X-Degree`: intended number of ultrapeer connections.
    pub fn degree(&self) -> Option<u32> {
        self.headers
            .get_u64("X-Degree")
            .and_then(|d| u32::try_from(d).ok())
    }
    /// `X-Max-TTL`.
    pub fn max_ttl(&self) -> Option<u8> {
        self.headers
            .get_u64("X-Max-TTL")
            .and_then(|d| u8::try_from(d).ok())
    }
    /// `X-Dynamic-Querying` version.
    pub fn dynamic_querying(&self) -> Option<&str> {
        self.headers.get("X-Dynamic-Querying")
    }
    /// `Vendor-Message` version (without it gtk-gnutella sends none).
    pub fn vendor_message(&self) -> Option<&str> {
        self.headers.get("Vendor-Message")
    }
    /// `GGEP` version: the sender handles GGEP-bearing messages.
    pub fn ggep(&self) -> Option<&str> {
        self.headers.get("GGEP")
    }
    /// `Pong-Caching` version.
    pub fn pong_caching(&self) -> Option<&str> {
        self.headers.get("Pong-Caching")
    }
    /// `GUID` (32 hex digits): the sender's servent GUID.
    pub fn guid(&self) -> Option<Guid> {
        Guid::from_hex(self.headers.get("GUID")?).ok()
    }
    /// `X-Features` items, e.g. `browse/1.0`.
    pub fn features(&self) -> Vec<&str> {
        self.headers.list("X-Features").collect()
    }
}

fn parse_start_line(line: &str) -> Result<StartLine> {
    let what = "handshake start line";
    if let Some(v) = line.strip_prefix("GNUTELLA CONNECT/") {
        return Ok(StartLine::Connect {
            version: Version::parse(v.trim())?,
        });
    }
    if line.trim_end() == "GNUTELLA OK" {
        return Ok(StartLine::LegacyOk);
    }
    let Some(rest) = line.strip_prefix("GNUTELLA/") else {
        return Err(Error::invalid(
            what,
            format!("not a Gnutella handshake: {line:?}"),
        ));
    };
    let mut parts = rest.splitn(3, ' ');
    let version = Version::parse(parts.next().unwrap_or(""))?;
    let code_s = parts.next().unwrap_or("");
    let code: u16 = code_s
        .parse()
        .ok()
        .filter(|c| (100..1000).contains(c))
        .ok_or_else(|| Error::invalid(what, format!("bad status code {code_s:?}")))?;
    // Trailing white space (a stray CR before the line's CRLF, above all) is not part of
    // the reason: a legacy block re-encoded with bare LF would lose it.
    let reason = parts.next().unwrap_or("").trim_end().to_owned();
    Ok(StartLine::Status {
        version,
        code,
        reason,
    })
}

/// What we advertise in handshakes. The builders reproduce the header set
/// (and order) gtk-gnutella 1.2.3 sends for the same role, minus its
/// proprietary signed `X-Token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeProfile {
    /// `User-Agent`.
    pub user_agent: String,
    /// Whether we act as ultrapeer (`X-Ultrapeer: True`).
    pub ultrapeer: bool,
    /// Our listening address (`Node:` on outgoing connections).
    pub listen: Option<SocketAddr>,
    /// Our servent GUID (`GUID:`).
    pub guid: Option<Guid>,
    /// `X-Degree` (a gtk-gnutella leaf wants ≥ 16 from its ultrapeers).
    pub degree: u32,
    /// `X-Max-TTL`.
    pub max_ttl: u8,
    /// Whether we offer and use deflate link compression.
    pub deflate: bool,
    /// `X-Live-Since` (RFC 822 date), if known.
    pub live_since: Option<String>,
    /// `X-Features` items; empty omits the header.
    pub features: Vec<String>,
    /// As ultrapeer, whether we still want ultrapeer connections
    /// (`X-Ultrapeer-Needed`). gtk-gnutella sends `True`, also to leaves;
    /// `False` asks an ultrapeer-capable peer to become our leaf.
    pub ultrapeer_needed: bool,
}

impl Default for HandshakeProfile {
    fn default() -> Self {
        HandshakeProfile {
            user_agent: concat!("Junction/", env!("CARGO_PKG_VERSION")).to_owned(),
            ultrapeer: false,
            listen: None,
            guid: None,
            degree: 32,
            max_ttl: 4,
            deflate: true,
            live_since: None,
            features: vec!["browse/1.0".to_owned()],
            ultrapeer_needed: true,
        }
    }
}

fn tf(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

impl HandshakeProfile {
    fn common(&self, h: &mut Headers) {
        h.push("User-Agent", &self.user_agent)
            .push("Pong-Caching", "0.1")
            .push("Bye-Packet", "0.1")
            .push("GGEP", "0.5");
        if let Some(g) = &self.guid {
            h.push("GUID", g.to_hex());
        }
        h.push("Vendor-Message", "0.2");
    }

    fn tail(&self, h: &mut Headers) {
        if let Some(d) = &self.live_since {
            h.push("X-Live-Since", d);
        }
    }

    fn features(&self, h: &mut Headers) {
        if !self.features.is_empty() {
            h.push("X-Features", self.features.join(", "));
        }
    }

    /// Step 1: our `GNUTELLA CONNECT/0.6` block. `remote` is the address we
    /// dial (sent back as `Remote-IP`).
    pub fn connect_request(&self, remote: Option<IpAddr>) -> Handshake {
        let mut h = Headers::new();
        if let Some(l) = self.listen {
            h.push("Node", l.to_string());
        }
        if let Some(r) = remote {
            h.push("Remote-IP", r.to_string());
        }
        self.common(&mut h);
        h.push("X-Query-Routing", "0.2")
            .push("X-Requeries", "False");
        if self.deflate {
            h.push("Accept-Encoding", "deflate");
        }
        self.tail(&mut h);
        h.push("X-Ultrapeer", tf(self.ultrapeer));
        let degree = self.degree.to_string();
        let ttl = self.max_ttl.to_string();
        if self.ultrapeer {
            h.push("X-Ultrapeer-Query-Routing", "0.1")
                .push("X-Degree", degree)
                .push("X-Max-TTL", ttl)
                .push("X-Dynamic-Querying", "0.1")
                .push("X-Ext-Probes", "0.1");
        } else {
            h.push("X-Dynamic-Querying", "0.1")
                .push("X-Ultrapeer-Query-Routing", "0.1")
                .push("X-Degree", degree)
                .push("X-Max-TTL", ttl);
        }
        self.features(&mut h);
        Handshake::connect(h)
    }

    /// Step 2: accept `request` with `200 OK`. `remote` is the peer's address.
    /// We compress towards the peer when it accepts deflate and we allow it.
    pub fn accept_response(&self, request: &Handshake, remote: Option<IpAddr>) -> Handshake {
        let mut h = Headers::new();
        self.common(&mut h);
        if let Some(r) = remote {
            h.push("Remote-IP", r.to_string());
        }
        h.push("X-Ultrapeer", tf(self.ultrapeer))
            .push("X-Requeries", "False");
        if self.deflate {
            h.push("Accept-Encoding", "deflate");
            if request.accepts_deflate() {
                h.push("Content-Encoding", "deflate");
            }
        }
        if self.ultrapeer {
            h.push("X-Ultrapeer-Needed", tf(self.ultrapeer_needed));
        }
        h.push("X-Query-Routing", "0.1")
            .push("X-Ultrapeer-Query-Routing", "0.1")
            .push("X-Degree", self.degree.to_string())
            .push("X-Max-TTL", self.max_ttl.to_string())
            .push("X-Dynamic-Querying", "0.1")
            .push("X-Ext-Probes", "0.1");
        self.tail(&mut h);
        self.features(&mut h);
        Handshake::ok(h)
    }

    /// Step 3: our final `200 OK` after the peer's `response`; like
    /// gtk-gnutella it only carries `Content-Encoding` when we compress.
    pub fn final_response(&self, response: &Handshake) -> Handshake {
        let mut h = Headers::new();
        if self.deflate && response.accepts_deflate() {
            h.push("Content-Encoding", "deflate");
        }
        Handshake::ok(h)
    }

    /// A refusal (`403`, `409`, `429`, `503`...), with alternative
    /// ultrapeers when we know some.
    pub fn reject(
        &self,
        code: u16,
        reason: &str,
        remote: Option<IpAddr>,
        try_ultrapeers: &[SocketAddrV4],
    ) -> Handshake {
        let mut h = Headers::new();
        h.push("User-Agent", &self.user_agent);
        if let Some(r) = remote {
            h.push("Remote-IP", r.to_string());
        }
        if !try_ultrapeers.is_empty() {
            let list: Vec<String> = try_ultrapeers.iter().map(ToString::to_string).collect();
            h.push("X-Try-Ultrapeers", list.join(","));
        }
        Handshake::status(code, reason, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_returns_none_until_blank_line() {
        let full = b"GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: False\r\n\r\nrest";
        for cut in 0..full.len() - 4 {
            assert!(
                Handshake::parse(&full[..cut]).unwrap().is_none(),
                "cut {cut}"
            );
        }
        let (hs, n) = Handshake::parse(full).unwrap().unwrap();
        assert_eq!(n, full.len() - 4);
        assert_eq!(hs.ultrapeer(), Some(false));
        assert_eq!(hs.to_bytes(), &full[..n]);
    }

    /// Fuzz finding (gnutella_handshake): a 0.4-style status line ending in CR CR LF kept
    /// a CR in its reason, which the bare-LF re-encoding then ended the line with.
    #[test]
    fn a_stray_cr_is_not_part_of_the_reason() {
        let (hs, _) = Handshake::parse(b"GNUTELLA/0.2 429 busy\r\r\nX-A: b\r\n\r\n")
            .unwrap()
            .unwrap();
        let wire = hs.to_bytes();
        let (again, _) = Handshake::parse(&wire).unwrap().unwrap();
        assert_eq!(again, hs);
        assert!(matches!(&hs.start, StartLine::Status { reason, .. } if reason == "busy"));
    }

    #[test]
    fn status_lines() {
        let (hs, _) = Handshake::parse(b"GNUTELLA/0.6 503 I am a shielded leaf node\r\nX-Try-Ultrapeers: 1.2.3.4:6346,5.6.7.8:1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(hs.code(), Some(503));
        assert_eq!(hs.try_ultrapeers().len(), 2);
        let (hs, _) = Handshake::parse(b"GNUTELLA/0.6 200\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(hs.is_ok());
        let (hs, _) = Handshake::parse(b"GNUTELLA CONNECT/0.7\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!hs.is_legacy());
        assert!(Handshake::parse(b"HELLO\r\n\r\n").is_err());
        assert!(Handshake::parse(b"GNUTELLA/0.6 2000 OK\r\n\r\n").is_err());
        assert!(Handshake::parse(b"\r\n").is_err());
    }

    #[test]
    fn oversized_block_is_refused() {
        let mut big = b"GNUTELLA CONNECT/0.6\r\n".to_vec();
        while big.len() <= MAX_HANDSHAKE_LEN {
            big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(matches!(
            Handshake::parse(&big),
            Err(Error::TooLarge { .. })
        ));
        let line = vec![b'a'; MAX_HANDSHAKE_LEN + 1];
        assert!(Handshake::parse(&line).is_err());
    }
}
