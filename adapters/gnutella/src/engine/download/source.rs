//! A Gnutella download source: how a contract [`Source`] names it, and its number for the
//! sink.

use std::net::{SocketAddr, SocketAddrV4};

use junction_core::{NetworkId, PeerAddr, Source};

use crate::engine::inbox::RemoteHit;
use crate::wire::guid::Guid;
use crate::wire::push_proxy::MAX_PUSH_PROXIES_READ;

/// A Gnutella source as a [`Source`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Where it listens.
    pub addr: SocketAddrV4,
    /// Its servent GUID (for pushes).
    pub servent: Option<Guid>,
    /// The file index it gave.
    pub index: Option<u32>,
    /// Firewalled: needs a push.
    pub push: bool,
    /// All its upload slots were taken when it answered.
    pub busy: bool,
    /// Its push proxies (from its hit's GGEP `PUSH`).
    pub proxies: Vec<SocketAddrV4>,
}

impl SourceInfo {
    /// From a hit.
    pub fn from_hit(h: &RemoteHit) -> Self {
        SourceInfo {
            addr: h.addr,
            servent: Some(h.servent),
            index: Some(h.index),
            push: h.push,
            busy: h.busy,
            proxies: h.proxies.clone(),
        }
    }

    /// As a contract [`Source`]: a firewalled servent with a GUID is a
    /// [`PeerAddr::Push`] (with its proxies), detail `index=…;busy=0|1`; any other is
    /// [`PeerAddr::Direct`], detail `guid=…;index=…;push=0|1;busy=0|1[;proxies=…]`.
    pub fn to_source(&self) -> Source {
        let mut d = Vec::new();
        let address = match self.servent {
            Some(g) if self.push => PeerAddr::Push {
                addr: self.addr.into(),
                servent: g.0,
                proxies: self.proxies.iter().map(|&p| p.into()).collect(),
            },
            servent => {
                if let Some(g) = servent {
                    d.push(format!("guid={g}"));
                }
                PeerAddr::Direct(self.addr.into())
            }
        };
        if let Some(i) = self.index {
            d.push(format!("index={i}"));
        }
        if let PeerAddr::Direct(_) = address {
            d.push(format!("push={}", u8::from(self.push)));
        }
        d.push(format!("busy={}", u8::from(self.busy)));
        if !self.proxies.is_empty() && matches!(address, PeerAddr::Direct(_)) {
            let list: Vec<String> = self.proxies.iter().map(ToString::to_string).collect();
            d.push(format!("proxies={}", list.join(",")));
        }
        Source {
            network: NetworkId::GNUTELLA,
            address,
            detail: Some(d.join(";")),
        }
    }

    /// Parse a [`Source`] of ours (unknown detail keys are ignored).
    pub fn parse(s: &Source) -> Option<Self> {
        if s.network != NetworkId::GNUTELLA {
            return None;
        }
        let v4 = |a: &SocketAddr| match a {
            SocketAddr::V4(a) => Some(*a),
            SocketAddr::V6(_) => None,
        };
        let mut out = match &s.address {
            PeerAddr::Direct(a) => SourceInfo {
                addr: v4(a)?,
                servent: None,
                index: None,
                push: false,
                busy: false,
                proxies: Vec::new(),
            },
            PeerAddr::Push {
                addr,
                servent,
                proxies,
            } => SourceInfo {
                addr: v4(addr)?,
                servent: Some(Guid(*servent)),
                index: None,
                push: true,
                busy: false,
                proxies: usable_proxies(proxies.iter().filter_map(v4)),
            },
            PeerAddr::LowId(_) => return None,
        };
        for kv in s.detail.as_deref().unwrap_or("").split(';') {
            match kv.split_once('=') {
                Some(("guid", v)) => out.servent = out.servent.or(Guid::from_hex(v).ok()),
                Some(("index", v)) => out.index = v.parse().ok(),
                Some(("push", v)) => out.push |= v == "1",
                Some(("busy", v)) => out.busy = v == "1",
                Some(("proxies", v)) => {
                    let list = v
                        .split(',')
                        .filter_map(crate::wire::addr_list::parse_addr_v4);
                    out.proxies = usable_proxies(list);
                }
                _ => {}
            }
        }
        Some(out)
    }
}

/// The push proxies worth trying, at most as many as a hit may carry.
fn usable_proxies(list: impl Iterator<Item = SocketAddrV4>) -> Vec<SocketAddrV4> {
    list.filter(crate::wire::push_proxy::usable)
        .take(MAX_PUSH_PROXIES_READ)
        .collect()
}

/// A source's number for the sink: its address.
pub(super) fn source_tag(a: SocketAddrV4) -> u64 {
    (u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_detail_round_trip() {
        let s = SourceInfo {
            addr: "127.0.0.1:6346".parse().unwrap(),
            servent: Some(Guid([3; 16])),
            index: Some(7),
            push: true,
            busy: false,
            proxies: vec![
                "10.0.0.1:6346".parse().unwrap(),
                "10.0.0.2:1".parse().unwrap(),
            ],
        };
        let src = s.to_source();
        assert!(matches!(src.address, PeerAddr::Push { .. }), "{src:?}");
        assert_eq!(SourceInfo::parse(&src), Some(s.clone()));
        // Reached directly, the GUID and proxies travel in the detail.
        let direct = SourceInfo { push: false, ..s };
        let src = direct.to_source();
        assert_eq!(src.address.to_string(), "127.0.0.1:6346");
        assert_eq!(SourceInfo::parse(&src), Some(direct));
    }
}
