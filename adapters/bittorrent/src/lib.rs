//! BitTorrent for Junction: the format and wire layer, and the adapter built on it.
//!
//! Everything here decodes and encodes bytes and nothing else: no sockets, no runtime, no
//! files. Trackers, peer connections, the DHT node and seeding are built on top of it, and
//! fuzzers and property tests call these decoders directly.
//!
//! * [`metainfo`]: `.torrent` files (v1, v2, hybrid), info-hashes, creating a v1 torrent.
//! * [`magnet`]: magnet links, including the other networks' hashes they carry.
//! * [`wire`]: the peer wire protocol (handshake, messages, BEP 10/9/11 extensions).
//! * [`fast`]: the BEP 6 allowed-fast set.
//! * [`tracker`]: HTTP (BEP 3/7/23/48) and UDP (BEP 15) tracker messages.
//! * [`krpc`]: DHT messages (BEP 5, 32, 51) and node-id arithmetic.
//!
//! Untrusted input never panics: every length is bounded before it is allocated, and piece
//! indices and block ranges are checked against the torrent's geometry ([`piece`]).

pub mod adapter;
pub mod compact;
pub mod config;
pub mod error;
pub mod fast;
pub mod id;
pub mod krpc;
pub mod magnet;
pub mod metainfo;
pub mod net;
pub mod percent;
pub mod piece;
pub mod tracker;
pub mod wire;

mod benc;

pub use adapter::{Adapter, IndexEntry, TorrentStats};
pub use config::Config;
pub use error::{CompactError, KrpcError, MagnetError, MetainfoError, TrackerError, WireError};
pub use id::{InfoHash, InfoHashV2, PeerId};
pub use net::tracker_server::TrackerServer;
