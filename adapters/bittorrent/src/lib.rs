//! BitTorrent for Junction: the pure codecs ([`wire`]), the tasks built on them
//! ([`engine`]), and the [`Adapter`] handle that implements `junction_core::Network`. The
//! crate's README has the layout and the task diagram.
//!
//! [`wire`] decodes and encodes bytes and nothing else (no sockets, no runtime, no files), so
//! fuzzers and property tests call it directly:
//!
//! * [`wire::metainfo`]: `.torrent` files (v1, v2, hybrid), info-hashes, creating a torrent.
//! * [`wire::magnet`]: magnet links, including the other networks' hashes they carry.
//! * The peer wire ([`wire::Handshake`], [`wire::Message`], the BEP 10/9/11 payloads in
//!   [`wire::extension`]) and [`wire::fast_ext`], the BEP 6 Fast extension's allowed-fast set.
//! * [`wire::tracker`]: HTTP (BEP 3/7/23/48) and UDP (BEP 15) tracker messages.
//! * [`wire::krpc`]: DHT messages (BEP 5, 32, 51) and node-id arithmetic.
//!
//! [`engine`] runs on tokio:
//!
//! * [`engine::tracker_client`]: announce and scrape over HTTP (a small HTTP/1.1 client of
//!   our own) and UDP with the BEP 15 back-off, BEP 12 tiers.
//! * [`engine::peer`] and [`engine::torrent`]: peer connections (download and upload), the
//!   rarest-first picker with end-game, SHA-1 checks and bans, choking with optimistic
//!   unchoke, ut_metadata, ut_pex, keep-alives and a deadline on every wait.
//! * [`engine::dht`]: a BEP 5 node (with BEP 51 samples), bootstrapped from configured nodes.
//! * [`engine::torznab`]: Torznab feeds (Jackett, Prowlarr) for keyword search.
//! * [`TrackerServer`]: an HTTP and UDP tracker for the lab and tests.
//!
//! The [`Adapter`]: torrents come from `fetch` (a `.torrent` or a btih/magnet, written
//! through the gateway's `TransferSink`) and `share` (a local file hashed into a v1+v2
//! hybrid torrent with its whole-file `sha1`, and `ed2k` when known, then seeded); `search`
//! matches the local index (shared, fetched and DHT-learnt torrents) and Torznab feeds. Hits
//! and `Identified` events carry the whole-file hashes a single-file torrent's info dict has
//! (`sha1`, `filehash`, `ed2k`, `md5sum`), so the same file merges across networks. A magnet
//! without `xl`: `identify` fetches the metadata alone, sends `Identified` (size and hashes)
//! and ends; the fetch that follows starts from the cached info dict and the peers that had
//! it.
//!
//! Untrusted input never panics: every length is bounded before it is allocated, and piece
//! indices and block ranges are checked against the torrent's geometry ([`wire::piece`]).

pub mod adapter;
pub mod config;
pub mod engine;
pub mod error;
pub mod wire;

pub use adapter::{Adapter, IndexEntry, TorrentStats};
pub use config::Config;
pub use engine::tracker_server::TrackerServer;
pub use error::{CompactError, KrpcError, MagnetError, MetainfoError, TrackerError, WireError};
pub use wire::id::{InfoHash, InfoHashV2, PeerId};
