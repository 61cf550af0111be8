//! The pure wire layer: every codec of eD2k. Bytes in, values out; values in, bytes out.
//! No I/O, no tokio, no clock: decoders take `Bytes`/`Buf` or `&str`, encoders write into
//! `BufMut` or a `String`.
//!
//! "Server" names four things in eD2k; here it is the protocol between a client and an eD2k
//! server: [`server`] for its TCP messages, [`server_udp`] for its UDP datagrams, and
//! [`server_met`] for the `server.met` list of servers. (The session with the server Junction
//! logs into and Junction's own index server are tasks, under `engine/`.)

pub mod codec;
pub mod frame;
pub mod search;
pub mod server;
pub mod tag;

pub use codec::{ClientId, Hash16, WireString};
pub use frame::{Frame, Protocol, UdpPacket, UdpProtocol};
pub use search::{Comparison, SearchExpr};
pub use server::{FileEntry, ServerMessage};
pub use tag::{Tag, TagEncoding, TagName, TagValue, TagsExt};
pub mod peer;
pub use peer::{ByteRange, PartStatus, PeerMessage};
pub mod server_udp;
pub use server_udp::ServerUdpMessage;

pub mod aich;
pub mod file_info;
pub mod hash;
pub mod link;
pub mod server_met;
