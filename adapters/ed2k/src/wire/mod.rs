//! The pure wire layer: framing, tags, and every client↔server and client↔client message.
//! No I/O: decoders take `Bytes`/`Buf`, encoders write into `BufMut`.

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
