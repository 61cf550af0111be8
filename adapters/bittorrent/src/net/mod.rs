//! The networking side: trackers (client and server), peer connections, torrents.

pub mod http;
pub mod peer;
pub mod storage;
pub mod torrent;
pub mod tracker_client;
pub mod tracker_server;
