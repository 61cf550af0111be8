//! The adapter contract of Junction.
//!
//! Every network adapter (eD2k, Gnutella, BitTorrent) implements [`Network`] with the
//! shared types defined here; the gateway only ever talks to adapters through them.
//! Nothing in this crate opens a socket or starts a runtime ([`task::spawn`] needs the
//! runtime the adapter runs on).

pub mod accept;
pub mod addr;
mod backoff;
pub mod bencode;
mod bridge;
pub mod config;
mod content;
mod error;
mod file_io;
pub mod framed;
pub mod hashing;
mod hit;
pub mod http;
pub mod http_range;
pub mod inflate;
pub mod layout;
pub mod limit;
pub mod link;
mod name;
mod network;
pub mod query;
mod range;
pub mod rate;
pub mod swarm;
pub mod task;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tiger_tree;
pub mod torrent;

pub use backoff::{Backoff, Redials};
pub use bridge::{Bridge, BridgeOffers, BridgeSlot, BridgedBytes, BridgedItem};
pub use content::{ContentId, ContentIdError, HashKind, Identity};
pub use error::{NetworkError, SinkError};
pub use file_io::{FreeSpace, free_space, is_out_of_space, write_all_at_uncached};
pub use hit::{Hit, PeerAddr, PeerAddrError, Source};
pub use name::{move_without_replacing, sanitize_file_name};
pub use network::{
    Capabilities, DynNetwork, FetchEvent, FetchEvents, FetchRequest, HitStream, Network, NetworkId,
    NetworkState, NetworkStatus, Reachability, SharedItem, SourceStream, TransferSink,
};
pub use query::{Expr, Query};
pub use range::RangeSet;
