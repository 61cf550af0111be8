//! What the core task receives on its one bounded channel: [`CoreMsg`] from links, the
//! acceptor and transfers, [`Command`] from the adapter handle, and the [`RemoteHit`]s it
//! hands back to searches.

use std::net::{SocketAddr, SocketAddrV4};

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::error::ServentError;
use super::link::{Admission, Link};
use super::router::ConnId;
use crate::wire::guid::Guid;
use crate::wire::http::Giv;
use crate::wire::message::Query;
use junction_core::{ContentId, HashKind, Hit, NetworkId};

use super::download::SourceInfo;
use crate::wire::urn::{Sha1Hash, TigerHash, Urn};

/// A result from the network, for a search of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHit {
    /// Where the servent says it is.
    pub addr: SocketAddrV4,
    /// Its servent GUID (for pushes).
    pub servent: Guid,
    /// File index.
    pub index: u32,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-1, when the hit carries one.
    pub sha1: Option<Sha1Hash>,
    /// eD2k hash, when the hit carries one (`urn:ed2khash:`, as Shareaza sends).
    pub ed2k: Option<[u8; 16]>,
    /// BitTorrent info-hash, when the hit carries one (`urn:btih:`, as Shareaza sends).
    pub btih: Option<[u8; 20]>,
    /// Tiger tree root, when the hit carries one (GGEP `TT`, a bitprint, `urn:tree:tiger:`).
    pub tth: Option<TigerHash>,
    /// It is firewalled: reach it by push.
    pub push: bool,
    /// All its upload slots are taken.
    pub busy: bool,
    /// Its push proxies (GGEP `PUSH` in the hit's trailer).
    pub proxies: Vec<SocketAddrV4>,
}

impl RemoteHit {
    /// As a contract hit: every hash it carries, its source, and a magnet.
    pub fn to_hit(&self) -> Hit {
        let h = self;
        let mut id = ContentId::new(Some(h.size));
        if let Some(s) = h.sha1 {
            id.set(HashKind::Sha1, &s.0);
        }
        if let Some(e) = h.ed2k {
            id.set(HashKind::Ed2k, &e);
        }
        if let Some(b) = h.btih {
            id.set(HashKind::Btih, &b);
        }
        if let Some(t) = h.tth {
            id.set(HashKind::Tth, &t.0);
        }
        let mut hit = Hit::new(NetworkId::GNUTELLA, id, h.name.clone(), h.size);
        hit.sources = 1;
        hit.complete_sources = Some(1);
        hit.locations = vec![SourceInfo::from_hit(h).to_source()];
        hit.link = h.sha1.map(|s| {
            // As gtk-gnutella's magnets: a bitprint when the TTH is known.
            let urn = match h.tth {
                Some(t) => Urn::Bitprint(s, t),
                None => Urn::Sha1(s),
            };
            format!(
                "magnet:?xt={}&dn={}&xl={}",
                urn,
                crate::wire::http::percent_encode(&h.name),
                h.size
            )
        });
        hit
    }
}

/// Requests from the adapter handle and from transfers.
#[derive(Debug)]
pub enum Command {
    /// Start a search; hits go to `tx` until it is done (the sender is dropped then),
    /// closed, or timed out.
    Search {
        /// The query to send.
        query: Query,
        /// Results.
        tx: mpsc::Sender<RemoteHit>,
    },
    /// The share index changed: send our QRP table again.
    SharesChanged,
    /// Remember and connect to a host.
    AddEndpoint(SocketAddr),
    /// Forget a host (added, configured or learnt) so it is not dialled again, and close
    /// a link to it; the reply says whether it was known.
    RemoveEndpoint {
        /// The host.
        addr: SocketAddr,
        /// Whether it was known.
        reply: oneshot::Sender<bool>,
    },
    /// Ask `servent` to connect back with `GIV`.
    Push {
        /// The firewalled servent.
        servent: Guid,
        /// File index to name in the Push.
        index: u32,
        /// Gets the socket once the `GIV` arrived.
        reply: oneshot::Sender<(TcpStream, BytesMut)>,
        /// Told at once whether a route to `servent` is known (else the Push went to
        /// every ultrapeer, if any: the servent's push proxies are worth asking).
        routed: oneshot::Sender<bool>,
    },
}

/// Everything the core reacts to.
#[derive(Debug)]
pub enum CoreMsg {
    /// An incoming handshake asks to be admitted.
    Admit {
        /// The peer says it is an ultrapeer.
        ultrapeer: bool,
        /// Its address.
        addr: SocketAddr,
        /// Where it says it listens (never suggested back to it).
        listen: Option<SocketAddrV4>,
        /// The decision.
        reply: oneshot::Sender<Admission>,
    },
    /// A handshake completed.
    Connected(Link),
    /// An outgoing connection failed.
    DialFailed {
        /// Where we dialled.
        addr: SocketAddr,
        /// Why.
        err: ServentError,
    },
    /// A descriptor arrived on a link.
    Message {
        /// The link.
        id: ConnId,
        /// The descriptor.
        desc: crate::wire::message::Descriptor,
    },
    /// A link ended.
    Down {
        /// The link.
        id: ConnId,
        /// Why.
        why: String,
    },
    /// A `GIV` arrived on our listening socket.
    Giv {
        /// The line.
        giv: Giv,
        /// The socket, for the HTTP request.
        stream: TcpStream,
        /// Bytes read past the line.
        buf: BytesMut,
    },
    /// From the handle.
    Cmd(Command),
}
