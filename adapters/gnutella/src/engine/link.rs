//! An established link and what the core and a link's tasks exchange about it: the
//! peer learnt in the handshake, the admission of an incoming one, the writer's queue
//! items. The tasks themselves are in `conn.rs`.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use bytes::{Bytes, BytesMut};
use junction_core::limit::ConnPermit;
use tokio::net::TcpStream;

use crate::wire::descriptor_header::Header;
use crate::wire::guid::Guid;
use crate::wire::handshake::HandshakeProfile;
use crate::wire::message::{Bye, Descriptor, Message};

/// What the core sends to a link's writer.
#[derive(Debug)]
pub enum Out {
    /// An encoded descriptor.
    Msg(Bytes),
    /// Send this Bye, then close.
    Bye(Bye),
}

/// What we learnt about a peer in the handshake.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Its socket address.
    pub addr: SocketAddr,
    /// It acts as ultrapeer.
    pub ultrapeer: bool,
    /// It connected to us.
    pub incoming: bool,
    /// `User-Agent`.
    pub user_agent: String,
    /// Where it listens (`Listen-IP` / `Node`).
    pub listen: Option<SocketAddrV4>,
    /// Our address as it sees us (`Remote-IP`).
    pub our_ip: Option<IpAddr>,
    /// Hosts it suggested (`X-Try-Ultrapeers`, `X-Try`).
    pub try_hosts: Vec<SocketAddrV4>,
    /// Its servent GUID, if it sent one.
    pub guid: Option<Guid>,
    /// It does last-hop QRP between ultrapeers (`X-Ultrapeer-Query-Routing`).
    pub up_qrp: bool,
    /// It reads vendor messages (`Vendor-Message`).
    pub vendor_messages: bool,
}

/// An established link, handshake done.
#[derive(Debug)]
pub struct Link {
    pub(super) stream: TcpStream,
    /// Bytes read past the handshake (start of the message stream).
    pub(super) buf: BytesMut,
    /// The peer.
    pub info: PeerInfo,
    pub(super) inflate: bool,
    pub(super) deflate: bool,
    /// Our place under the per-IP limits, for an incoming link; held while it runs.
    pub(super) permit: Option<ConnPermit>,
}

/// The core's answer to an incoming handshake.
#[derive(Debug)]
pub enum Admission {
    /// Accept with this profile.
    Accept(Box<HandshakeProfile>, Vec<SocketAddrV4>),
    /// Refuse with this status.
    Reject(u16, String, Vec<SocketAddrV4>),
}

/// Encode a descriptor for a link.
pub fn encode(header: Header, message: &Message) -> Option<Bytes> {
    let d = Descriptor {
        header,
        message: message.clone(),
    };
    d.to_bytes().ok().map(Bytes::from)
}
