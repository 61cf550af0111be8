//! Vendor messages (0x31, 0x32): `<vendor 4><selector u16 LE><version u16 LE><payload>`.
//! Kept as opaque frames; the ones Junction uses get typed readers and builders.
//!
//! Layouts (gtk-gnutella `vmsg.c`, checked against the capture
//! `02f-vendor-messages-from-gtkg`): all are sent hop-to-hop (TTL 1, hops 0),
//! "Messages Supported" with an all-zero MUID.
//!
//! * Messages Supported, `\0\0\0\0`/0 v0: `count u16 LE`, then `count` × 8 bytes
//!   `vendor(4) selector(u16 LE) version(u16 LE)`; the message itself is not listed.
//! * Hops Flow, `BEAR`/4 v1: one byte, the hops a query may have to be sent to us.
//! * TCP Connect Back, `BEAR`/7 v1: `port u16 LE`; the receiver connects to the
//!   sender's IP at that port and writes `\n\n`.
//! * Query Done, `JNCT`/1 v1 (Junction's own): an ultrapeer tells the leaf whose query it
//!   ran that its dynamic query is over (its result goal met, or every ultrapeer asked and
//!   the last probe's wait expired). The MUID is the query's; the payload is
//!   `results u16 LE` (the hits it routed back, saturated), which readers may ignore. Sent
//!   only to leaves that list it in "Messages Supported"; Gnutella has no standard
//!   message for this (a leaf-guided query's Query Status goes the other way).
//! * Push Proxy Request, `LIME`/21: a firewalled leaf asks its ultrapeer to be its push
//!   proxy; the MUID is the leaf's servent GUID, the payload empty. gtk-gnutella lists
//!   v2 but sends v1, since LimeWire reads only v1 of the request (and answers v2).
//! * Push Proxy Acknowledgement, `LIME`/22: the same MUID; v2 carries the proxy's
//!   `IPv4 (network order) port (u16 LE)`, v1 only the port (the IP is the link's).

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::{BufMut, Bytes};

use super::take;
use crate::error::{Error, Result};

/// A vendor message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorMessage {
    /// Type 0x32 ("standard") rather than 0x31.
    pub standard: bool,
    /// Vendor code, case-sensitive (all zero for "Messages Supported").
    pub vendor: [u8; 4],
    /// Selector.
    pub selector: u16,
    /// Version.
    pub version: u16,
    /// Message-specific payload.
    pub payload: Bytes,
}

/// One entry of "Messages Supported": (vendor, selector, version).
pub type SupportedMessage = ([u8; 4], u16, u16);

/// Most entries accepted in a "Messages/Features Supported" list.
pub const MAX_SUPPORTED: usize = 1024;

/// "Messages Supported" itself (`\0\0\0\0`/0 v0).
pub const MESSAGES_SUPPORTED: SupportedMessage = ([0; 4], 0, 0);
/// Hops Flow (`BEAR`/4 v1).
pub const HOPS_FLOW: SupportedMessage = (*b"BEAR", 4, 1);
/// TCP Connect Back (`BEAR`/7 v1).
pub const TCP_CONNECT_BACK: SupportedMessage = (*b"BEAR", 7, 1);
/// Query Done (`JNCT`/1 v1): the dynamic query run for a leaf is over.
pub const QUERY_DONE: SupportedMessage = (*b"JNCT", 1, 1);
/// Push Proxy Request (`LIME`/21), as listed in "Messages Supported" (v2).
pub const PUSH_PROXY_REQUEST: SupportedMessage = (*b"LIME", 21, 2);
/// Push Proxy Acknowledgement (`LIME`/22 v2).
pub const PUSH_PROXY_ACK: SupportedMessage = (*b"LIME", 22, 2);

impl VendorMessage {
    /// Decode the payload (at least 8 bytes).
    pub fn decode(standard: bool, mut p: Bytes) -> Result<Self> {
        let vendor = take(&mut p, "vendor message")?;
        let selector = u16::from_le_bytes(take(&mut p, "vendor message")?);
        let version = u16::from_le_bytes(take(&mut p, "vendor message")?);
        Ok(VendorMessage {
            standard,
            vendor,
            selector,
            version,
            payload: p,
        })
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.vendor);
        dst.put_u16_le(self.selector);
        dst.put_u16_le(self.version);
        dst.put_slice(&self.payload);
    }

    /// A message of kind `(vendor, selector, version)` carrying `payload`, type 0x31.
    pub fn new(kind: SupportedMessage, payload: impl Into<Bytes>) -> Self {
        VendorMessage {
            standard: false,
            vendor: kind.0,
            selector: kind.1,
            version: kind.2,
            payload: payload.into(),
        }
    }

    /// `(vendor, selector, version)` of this message.
    pub fn kind(&self) -> SupportedMessage {
        (self.vendor, self.selector, self.version)
    }

    /// "Messages Supported" listing `list` (at most [`MAX_SUPPORTED`] entries are written).
    pub fn messages_supported(list: &[SupportedMessage]) -> Self {
        let list = &list[..list.len().min(MAX_SUPPORTED)];
        let mut p = Vec::with_capacity(2 + 8 * list.len());
        p.put_u16_le(list.len() as u16);
        for (v, s, ver) in list {
            p.put_slice(v);
            p.put_u16_le(*s);
            p.put_u16_le(*ver);
        }
        Self::new(MESSAGES_SUPPORTED, p)
    }

    /// Hops Flow: send us only queries whose hops are below `hops` (0: none).
    pub fn hops_flow(hops: u8) -> Self {
        Self::new(HOPS_FLOW, vec![hops])
    }

    /// TCP Connect Back: please connect to us on `port`.
    pub fn tcp_connect_back(port: u16) -> Self {
        Self::new(TCP_CONNECT_BACK, port.to_le_bytes().to_vec())
    }

    /// Query Done: the dynamic query (named by the header's MUID) is over, after `results` hits.
    pub fn query_done(results: u32) -> Self {
        let n = u16::try_from(results).unwrap_or(u16::MAX);
        Self::new(QUERY_DONE, n.to_le_bytes().to_vec())
    }

    /// Push Proxy Request, sent at v1 as gtk-gnutella sends it (every servent reads v1);
    /// the header's MUID must be the sender's servent GUID.
    pub fn push_proxy_request() -> Self {
        let (v, s, _) = PUSH_PROXY_REQUEST;
        Self::new((v, s, 1), Bytes::new())
    }

    /// Push Proxy Acknowledgement v2: the proxy is at `addr`.
    pub fn push_proxy_ack(addr: SocketAddrV4) -> Self {
        let mut p = Vec::with_capacity(6);
        p.put_slice(&addr.ip().octets());
        p.put_u16_le(addr.port());
        Self::new(PUSH_PROXY_ACK, p)
    }

    /// Whether this is a Push Proxy Request (any version).
    pub fn is_push_proxy_request(&self) -> bool {
        self.vendor == PUSH_PROXY_REQUEST.0 && self.selector == PUSH_PROXY_REQUEST.1
    }

    /// The proxy address of a Push Proxy Acknowledgement (`None` for other messages):
    /// v2 and later carry it, v1 only the port, the IP being `link_ip`, the link's.
    pub fn push_proxy_ack_addr(&self, link_ip: Ipv4Addr) -> Option<Result<SocketAddrV4>> {
        (self.vendor == PUSH_PROXY_ACK.0 && self.selector == PUSH_PROXY_ACK.1).then(|| {
            match (self.version, &self.payload[..]) {
                (0 | 1, [a, b, ..]) => Ok(SocketAddrV4::new(link_ip, u16::from_le_bytes([*a, *b]))),
                (2.., [a, b, c, d, e, f, ..]) => Ok(SocketAddrV4::new(
                    Ipv4Addr::new(*a, *b, *c, *d),
                    u16::from_le_bytes([*e, *f]),
                )),
                _ => Err(Error::truncated("push proxy acknowledgement")),
            }
        })
    }

    /// The result count of a Query Done message (`None` for other messages; 0 when the
    /// payload is too short to hold one, since the count is only informative).
    pub fn query_done_results(&self) -> Option<u16> {
        (self.vendor == QUERY_DONE.0 && self.selector == QUERY_DONE.1).then(|| {
            match self.payload[..] {
                [a, b, ..] => u16::from_le_bytes([a, b]),
                _ => 0,
            }
        })
    }

    /// The hops of a Hops Flow message (`None` for other messages).
    pub fn hops_flow_value(&self) -> Option<Result<u8>> {
        (self.vendor == HOPS_FLOW.0 && self.selector == HOPS_FLOW.1).then(|| match self.payload[..]
        {
            [h, ..] => Ok(h),
            [] => Err(Error::truncated("hops flow")),
        })
    }

    /// The port of a TCP Connect Back message (`None` for other messages).
    pub fn connect_back_port(&self) -> Option<Result<u16>> {
        (self.vendor == TCP_CONNECT_BACK.0 && self.selector == TCP_CONNECT_BACK.1).then(|| {
            match self.payload[..] {
                [a, b, ..] => Ok(u16::from_le_bytes([a, b])),
                _ => Err(Error::truncated("tcp connect back")),
            }
        })
    }

    /// The vendor code as text.
    pub fn vendor_str(&self) -> String {
        String::from_utf8_lossy(&self.vendor).into_owned()
    }

    /// "Messages Supported" (`\0\0\0\0`/0): the list of (vendor, selector,
    /// version) the sender understands. `None` for other messages.
    pub fn supported_messages(&self) -> Option<Result<Vec<SupportedMessage>>> {
        (self.vendor == [0; 4] && self.selector == 0).then(|| {
            let mut p = self.payload.clone();
            let n = usize::from(u16::from_le_bytes(take(&mut p, "messages supported")?));
            if n > MAX_SUPPORTED || p.len() != n * 8 {
                return Err(Error::invalid(
                    "messages supported",
                    format!("count {n} does not match {} bytes", p.len()),
                ));
            }
            (0..n)
                .map(|_| {
                    let v = take(&mut p, "messages supported")?;
                    let s = u16::from_le_bytes(take(&mut p, "messages supported")?);
                    let ver = u16::from_le_bytes(take(&mut p, "messages supported")?);
                    Ok((v, s, ver))
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typed_readers_reject_short_payloads() {
        let mut m = VendorMessage::hops_flow(3);
        assert_eq!(m.hops_flow_value().unwrap().unwrap(), 3);
        assert!(m.connect_back_port().is_none());
        m.payload = Bytes::new();
        assert!(m.hops_flow_value().unwrap().is_err());
        let mut c = VendorMessage::tcp_connect_back(6346);
        assert_eq!(c.connect_back_port().unwrap().unwrap(), 6346);
        c.payload = Bytes::from_static(&[1]);
        assert!(c.connect_back_port().unwrap().is_err());
        // A count that does not match the bytes is refused, not trusted.
        let mut ms = VendorMessage::messages_supported(&[HOPS_FLOW]);
        ms.payload = Bytes::from_static(&[0xff, 0xff, 1, 2, 3]);
        assert!(ms.supported_messages().unwrap().is_err());
        // Query Done: the count saturates, and a short payload still reads as done.
        let mut d = VendorMessage::query_done(70_000);
        assert_eq!(d.query_done_results(), Some(u16::MAX));
        assert!(VendorMessage::hops_flow(1).query_done_results().is_none());
        d.payload = Bytes::new();
        assert_eq!(d.query_done_results(), Some(0));
    }

    #[test]
    fn push_proxy_golden() {
        // LIME/21 v1, empty (gtk-gnutella's vmsg_send_proxy_req).
        let mut b = Vec::new();
        VendorMessage::push_proxy_request().encode(&mut b);
        assert_eq!(b, [b'L', b'I', b'M', b'E', 21, 0, 1, 0]);
        // LIME/22 v2: 10.0.0.1, port 6346 LE.
        let mut b = Vec::new();
        VendorMessage::push_proxy_ack("10.0.0.1:6346".parse().unwrap()).encode(&mut b);
        assert_eq!(
            b,
            [b'L', b'I', b'M', b'E', 22, 0, 2, 0, 10, 0, 0, 1, 0xca, 0x18]
        );
        let d = VendorMessage::decode(false, Bytes::from(b)).unwrap();
        let link = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(
            d.push_proxy_ack_addr(link).unwrap().unwrap(),
            "10.0.0.1:6346".parse().unwrap()
        );
        assert!(!d.is_push_proxy_request() && d.query_done_results().is_none());
        // v1 carries only the port: the IP is the link's.
        let v1 = VendorMessage::new((*b"LIME", 22, 1), vec![0xca, 0x18]);
        assert_eq!(
            v1.push_proxy_ack_addr(link).unwrap().unwrap(),
            SocketAddrV4::new(link, 6346)
        );
        // Short payloads are errors, not panics.
        let short = VendorMessage::new(PUSH_PROXY_ACK, vec![10, 0, 0, 1, 0xca]);
        assert!(short.push_proxy_ack_addr(link).unwrap().is_err());
        assert!(VendorMessage::new((*b"LIME", 21, 2), vec![]).is_push_proxy_request());
    }

    proptest! {
        #[test]
        fn push_proxy_ack_round_trip(ip in any::<[u8; 4]>(), port in any::<u16>()) {
            let a = SocketAddrV4::new(ip.into(), port);
            let mut b = Vec::new();
            VendorMessage::push_proxy_ack(a).encode(&mut b);
            let d = VendorMessage::decode(false, Bytes::from(b)).unwrap();
            prop_assert_eq!(d.push_proxy_ack_addr(Ipv4Addr::LOCALHOST).unwrap().unwrap(), a);
        }

        #[test]
        fn messages_supported_round_trip(list in proptest::collection::vec(
            (any::<[u8; 4]>(), any::<u16>(), any::<u16>()), 0..64)) {
            let m = VendorMessage::messages_supported(&list);
            let mut b = Vec::new();
            m.encode(&mut b);
            let d = VendorMessage::decode(false, Bytes::from(b)).unwrap();
            prop_assert_eq!(&d, &m);
            prop_assert_eq!(d.supported_messages().unwrap().unwrap(), list);
        }

        #[test]
        fn vendor_round_trip(v in any::<[u8; 4]>(), s in any::<u16>(), ver in any::<u16>(),
                             std in any::<bool>(),
                             p in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut m = VendorMessage::new((v, s, ver), p);
            m.standard = std;
            let mut b = Vec::new();
            m.encode(&mut b);
            prop_assert_eq!(VendorMessage::decode(std, Bytes::from(b)).unwrap(), m);
        }

        #[test]
        fn decode_never_panics(p in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(m) = VendorMessage::decode(false, Bytes::from(p)) {
                let _ = m.supported_messages();
                let _ = m.hops_flow_value();
                let _ = m.connect_back_port();
                let _ = m.push_proxy_ack_addr(Ipv4Addr::LOCALHOST);
            }
        }
    }
}
