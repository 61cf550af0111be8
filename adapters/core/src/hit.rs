//! What networks report: search hits and the sources that hold content.

use std::net::SocketAddr;

use crate::{ContentId, NetworkId};

/// One search result from one network.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub network: NetworkId,
    pub id: ContentId,
    pub name: String,
    pub size: u64,
    /// Peers that have the content (or part of it), as far as the network knows.
    pub sources: u32,
    /// Peers with the whole content (complete sources, seeders), when known.
    pub complete_sources: Option<u32>,
    /// Concrete peers, when the hit names them (Gnutella hits do).
    pub locations: Vec<Source>,
    /// A link that fetches it on this network (`ed2k://…`, `magnet:…`), when there is one.
    pub link: Option<String>,
}

impl Hit {
    pub fn new(network: NetworkId, id: ContentId, name: impl Into<String>, size: u64) -> Self {
        Hit {
            network,
            id,
            name: name.into(),
            size,
            sources: 0,
            complete_sources: None,
            locations: Vec::new(),
            link: None,
        }
    }
}

/// A peer that holds content, as its network addresses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    pub network: NetworkId,
    /// How the peer is reached.
    pub address: PeerAddr,
    /// Network-specific detail, e.g. a Gnutella file index.
    pub detail: Option<String>,
}

/// How a peer that holds content is reached. Its text form (`Display`, `FromStr`) is what
/// the gateway keeps in a transfer's record: `ip:port`, `lowid:ID`, or
/// `push:GUID@ip:port[;proxies=ip:port,…]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// Connect to it.
    Direct(SocketAddr),
    /// A firewalled eD2k client (a LowID): the server it is logged in to asks it to call
    /// back.
    LowId(u32),
    /// A firewalled Gnutella servent: a PUSH to its GUID, through its push proxies or the
    /// link its hit came by. `addr` is the address it gave, which may not be reachable.
    Push {
        addr: SocketAddr,
        servent: [u8; 16],
        proxies: Vec<SocketAddr>,
    },
}

impl PeerAddr {
    /// The address to connect to, for a peer reached directly.
    pub fn direct(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Direct(a) => Some(*a),
            _ => None,
        }
    }
}

impl PeerAddr {
    /// The address the peer gave, reachable or not (none for a LowID).
    pub fn socket(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Direct(a) | PeerAddr::Push { addr: a, .. } => Some(*a),
            PeerAddr::LowId(_) => None,
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        PeerAddr::Direct(a)
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddr::Direct(a) => write!(f, "{a}"),
            PeerAddr::LowId(id) => write!(f, "lowid:{id}"),
            PeerAddr::Push {
                addr,
                servent,
                proxies,
            } => {
                write!(f, "push:{}@{addr}", hex::encode_upper(servent))?;
                let mut sep = ";proxies=";
                for p in proxies {
                    write!(f, "{sep}{p}")?;
                    sep = ",";
                }
                Ok(())
            }
        }
    }
}

/// Why a text is not a [`PeerAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a peer address (ip:port, lowid:ID or push:GUID@ip:port)")]
pub struct PeerAddrError(String);

impl std::str::FromStr for PeerAddr {
    type Err = PeerAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PeerAddrError(s.chars().take(80).collect());
        if let Some(id) = s.strip_prefix("lowid:") {
            return id.parse().map(PeerAddr::LowId).map_err(|_| bad());
        }
        let Some(push) = s.strip_prefix("push:") else {
            return s.parse().map(PeerAddr::Direct).map_err(|_| bad());
        };
        let (guid, rest) = push.split_once('@').ok_or_else(bad)?;
        let (addr, proxies) = match rest.split_once(";proxies=") {
            Some((a, list)) => (a, list.split(',').collect()),
            None => (rest, Vec::new()),
        };
        let mut servent = [0u8; 16];
        hex::decode_to_slice(guid, &mut servent).map_err(|_| bad())?;
        Ok(PeerAddr::Push {
            addr: addr.parse().map_err(|_| bad())?,
            servent,
            proxies: proxies
                .into_iter()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_round_trip_through_their_text() {
        let push = PeerAddr::Push {
            addr: "10.0.0.1:6346".parse().unwrap(),
            servent: [0xab; 16],
            proxies: vec!["1.2.3.4:5".parse().unwrap(), "[::1]:7".parse().unwrap()],
        };
        for (a, text) in [
            (PeerAddr::Direct("1.2.3.4:5".parse().unwrap()), "1.2.3.4:5"),
            (PeerAddr::LowId(42), "lowid:42"),
            (
                push,
                "push:ABABABABABABABABABABABABABABABAB@10.0.0.1:6346;proxies=1.2.3.4:5,[::1]:7",
            ),
        ] {
            assert_eq!(a.to_string(), text);
            assert_eq!(text.parse::<PeerAddr>().unwrap(), a);
        }
        let bare: PeerAddr = "push:00000000000000000000000000000001@1.1.1.1:1"
            .parse()
            .unwrap();
        assert!(matches!(bare, PeerAddr::Push { ref proxies, .. } if proxies.is_empty()));
    }

    #[test]
    fn other_text_is_refused_naming_it() {
        for bad in [
            "",
            "host.example:80",
            "lowid:x",
            "push:zz@1.1.1.1:1",
            "push:00@1.1.1.1:1",
            "push:00000000000000000000000000000001",
            "1.2.3.4",
        ] {
            let e = bad.parse::<PeerAddr>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
