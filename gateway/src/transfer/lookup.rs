//! Learning the size of a content before its transfer starts: a magnet without `xl=` names
//! a torrent but not its size, and a transfer's file needs one. BitTorrent fetches the
//! torrent's metadata alone (a fetch of size 0 into an empty sink) and reports the size
//! and hashes it found.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use junction_core::layout::FileSpan;
use junction_core::{
    ContentId, DynNetwork, FetchEvent, FetchRequest, HashKind, NetworkError, RangeSet, SinkError,
    TransferSink,
};

use super::StartSpec;
use crate::error::{GatewayError, Result};

/// How long a metadata lookup may take before the start is refused.
pub const LOOKUP_TIME: Duration = Duration::from_secs(60);

/// A sink with nothing in it: the fetch writes nothing and only reports what it learns.
struct NoBytes;

impl TransferSink for NoBytes {
    fn size(&self) -> u64 {
        0
    }
    fn wanted(&self) -> RangeSet {
        RangeSet::new()
    }
    fn priority(&self) -> Option<u64> {
        None
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::result::Result<(), SinkError> {
        Err(SinkError::OutOfRange {
            start: offset,
            end: offset.saturating_add(data.len() as u64),
            size: 0,
        })
    }
    fn read(&self, offset: u64, len: usize) -> std::result::Result<Bytes, SinkError> {
        Err(SinkError::OutOfRange {
            start: offset,
            end: offset.saturating_add(len as u64),
            size: 0,
        })
    }
    fn verified(&self, _range: Range<u64>, _ok: bool) {}
}

/// Whether `spec` needs its size looked up first: no size, and a torrent to ask about.
pub fn needs_size(spec: &StartSpec) -> bool {
    spec.size.or(spec.content.size).is_none()
        && spec.torrent.is_none()
        && spec.content.get(HashKind::Btih).is_some()
}

/// What a metadata lookup learnt: the hashes with the size, the name, and the files when
/// there are several.
pub type Found = (ContentId, Option<String>, Vec<FileSpan>);

/// Asks `net` (BitTorrent) for the metadata of `spec`'s torrent.
pub async fn size_of(net: Arc<dyn DynNetwork>, spec: &StartSpec, limit: Duration) -> Result<Found> {
    let req = FetchRequest {
        id: spec.content.clone(),
        name: spec.name.clone(),
        size: 0,
        sources: spec.sources.clone(),
        trackers: spec.trackers.clone(),
        torrent: None,
    };
    let failed = |source| GatewayError::Network {
        network: net.id().to_string(),
        source,
    };
    let lookup = async {
        let mut events = net.fetch(req, Arc::new(NoBytes)).await.map_err(failed)?;
        let mut found = None;
        let mut name = None;
        let mut files = Vec::new();
        while let Some(ev) = events.next().await {
            match ev {
                FetchEvent::Identified(id) if id.size.is_some() => found = Some(id),
                FetchEvent::Named(n) => name = Some(n),
                // Sent before the hashes.
                FetchEvent::Files(f) => files = f,
                _ => {}
            }
            // The name follows the hashes at once; the stream ends right after.
            if found.is_some() && name.is_some() {
                break;
            }
        }
        if let Some(id) = found {
            return Ok((id, name, files));
        }
        Err(failed(NetworkError::Unreachable(
            "no peer sent the torrent's metadata (its size is needed to start); add xl=SIZE to the magnet, or try again when its peers are reachable".into(),
        )))
    };
    tokio::time::timeout(limit, lookup).await.unwrap_or_else(|_| {
        Err(failed(NetworkError::Timeout(format!(
            "no peer sent the torrent's metadata within {} s (its size is needed to start); add xl=SIZE to the magnet, or try again",
            limit.as_secs()
        ))))
    })
}
