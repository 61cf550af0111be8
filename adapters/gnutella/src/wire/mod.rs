//! The pure Gnutella 0.6 wire layer: decode/encode over byte buffers, no I/O.
//!
//! * [`handshake`] — the `GNUTELLA CONNECT/0.6` exchange and its headers.
//! * [`descriptor_header`] — the 23-byte descriptor header that frames link messages, and a
//!   streaming descriptor decoder.
//! * [`guid`] — the 16-byte GUIDs: message ids and servent ids.
//! * [`message`] — every descriptor payload (Ping, Pong, Query, QueryHit, Push,
//!   Bye, vendor, QRP) and the [`message::Message`] enum.
//! * [`ggep`] / [`cobs`] — GGEP extension blocks and their COBS/deflate encodings.
//! * [`ext`] — the mixed HUGE/GGEP/XML extension areas of Query, QueryHit, Push...
//! * [`qrp`] — the Query Routing Protocol hash, keyword split and tables.
//! * [`http`] — HTTP heads for transfers, `Range`, PARQ, `X-Alt` and `GIV`.
//! * [`addr_list`] — the address lists carried in handshake and HTTP headers (`X-Try`,
//!   `X-Alt`...), port 6346 when omitted. The header list itself is core's
//!   [`junction_core::http::Headers`].
//! * [`browse`] — browse host: QueryHits packed for `GET /`, chunked framing, the reply decoder.
//! * [`dime`] / [`thex`] — the DIME envelope and the THEX Tiger tree served at `/uri-res/N2X`.
//! * [`urn`] — content URNs (`urn:sha1`, `urn:tree:tiger`, bitprints) and their hashes.
//! * [`search`] — the contract's query as a Gnutella Query can carry it (keywords, SHA-1).

pub mod addr_list;
pub mod browse;
pub mod cobs;
pub mod descriptor_header;
pub mod dime;
pub mod ext;
pub mod ggep;
pub mod guid;
pub mod handshake;
pub mod http;
pub mod link;
pub mod message;
pub mod push_proxy;
pub mod qrp;
pub mod search;
pub mod thex;
pub mod urn;

mod inflate;

pub use descriptor_header::{DescriptorDecoder, Header};
pub use guid::Guid;
pub use message::{Descriptor, Message};
