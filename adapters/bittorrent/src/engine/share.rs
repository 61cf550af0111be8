//! Sharing a local file: hashed once into a v1+v2 hybrid torrent (with its whole-file
//! SHA-1) and seeded from the file.

use std::sync::Arc;

use bytes::Bytes;
use junction_core::{ContentId, HashKind, NetworkError, SharedItem};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use super::index::{Index, entry_of};
use super::storage::Storage;
use super::torrent::{Ctx, Torrent};
use super::torrent_task::run_torrent;
use super::torrents::Torrents;
use crate::wire::id::InfoHash;
use crate::wire::metainfo::{Metainfo, TorrentBuilder, piece_length_for};

/// A file hashed into a torrent, ready to seed: what [`prepare`] hands the command loop.
pub(crate) struct Prepared {
    /// The `.torrent` made for it.
    bytes: Vec<u8>,
    metainfo: Metainfo,
    storage: Storage,
    path: std::path::PathBuf,
    /// The id `share` answers: the item's, with the size and the torrent's hashes.
    id: ContentId,
}

/// Hashes the shared file (unless the gateway did) off the reactor and makes its torrent;
/// runs in the caller's task, so the command loop never waits on a file.
pub(crate) async fn prepare(ctx: &Ctx, item: SharedItem) -> Result<Prepared, NetworkError> {
    let path = item.path.clone();
    let fixed = ctx.config.share_piece_length;
    let known_sha1: Option<[u8; 20]> = item.id.get(HashKind::Sha1).and_then(|h| h.try_into().ok());
    let want_sha1 = known_sha1.is_none();
    let hashed = match given(&item, fixed) {
        // The gateway read the file once for every network.
        Some(h) => h,
        None => tokio::task::spawn_blocking(move || hash_file(&path, fixed, want_sha1))
            .await
            .map_err(|e| NetworkError::Other(Box::new(e)))??,
    };
    let length = hashed.length;
    let name = if item.name.is_empty() {
        item.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into())
    } else {
        junction_core::sanitize_file_name(&item.name)
    };
    let mut b = TorrentBuilder::new(name, hashed.piece_length);
    b.sha1 = known_sha1.or(hashed.sha1);
    b.v2 = hashed.v2.clone();
    b.ed2k = item.id.get(HashKind::Ed2k).and_then(|h| h.try_into().ok());
    b.trackers = ctx
        .config
        .trackers
        .iter()
        .map(|u| vec![u.clone()])
        .collect();
    b.created_by = Some(ctx.config.client_name.clone());
    let bytes = b
        .build(&hashed.pieces, length)
        .map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let metainfo = Metainfo::parse(&bytes).map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let file = std::fs::File::open(&item.path)?;
    let storage = Storage::File {
        file: Arc::new(file),
        len: length,
    };
    let mut id = item.id.clone();
    id.size = Some(length);
    id.absorb(&metainfo.info.content_id());
    Ok(Prepared {
        bytes,
        metainfo,
        storage,
        path: item.path,
        id,
    })
}

/// Seeds a prepared torrent (in the command loop): it replaces a torrent of the same
/// info-hash, enters the search index with its `.torrent`, and gets its task.
pub(crate) fn seed(
    ctx: &Arc<Ctx>,
    torrents: &mut Torrents,
    index: &mut Index,
    cancel: &CancellationToken,
    p: Prepared,
) -> Result<ContentId, NetworkError> {
    let m = p.metainfo;
    let ih = m.info.swarm_hash();
    let tiers = m.tracker_tiers();
    let t = Torrent::new(ctx.clone(), ih, m.info.name.clone(), p.storage);
    t.set_metadata_with(m.info, &m.piece_layers)
        .map_err(NetworkError::Invalid)?;
    if let Some(old) = torrents.insert(t.clone()) {
        old.cancel.cancel();
    }
    info!(info_hash = %ih, path = %p.path.display(), "sharing");
    if let Some(e) = entry_of(&t, &tiers, Some(Bytes::from(p.bytes))) {
        index.add(e);
    }
    // Not junction_core::task::spawn: cancelled, a torrent still says `stopped` to its
    // trackers (bounded, 3 s), which `shutdown` waits for.
    tokio::spawn(
        run_torrent(t, tiers, None, None, cancel.child_token())
            .instrument(info_span!("torrent", info_hash = %ih)),
    );
    Ok(p.id)
}

/// The pieces (and v2 tree) the gateway computed, when they are of the length this torrent
/// uses.
fn given(item: &SharedItem, fixed: Option<u32>) -> Option<Hashed> {
    let h = item.hashes.as_deref()?;
    let bt = h.bt.as_ref()?;
    let piece_length = fixed.unwrap_or_else(|| piece_length_for(h.size));
    (h.size > 0 && bt.piece_len == u64::from(piece_length)).then(|| Hashed {
        pieces: bt.pieces.clone(),
        length: h.size,
        piece_length,
        sha1: h.sha1,
        v2: bt.v2.clone(),
    })
}

/// What [`hash_file`] found.
struct Hashed {
    pieces: Vec<[u8; 20]>,
    length: u64,
    piece_length: u32,
    sha1: Option<[u8; 20]>,
    v2: Option<junction_core::hashing::bt::V2Tree>,
}

/// Hashes a file in one read, with core's hasher: its pieces, its v2 tree and, when
/// `whole_sha1`, the SHA-1 of the whole file (for an adapter run without the gateway, which
/// otherwise hands over every hash).
fn hash_file(
    path: &std::path::Path,
    piece_length: Option<u32>,
    whole_sha1: bool,
) -> Result<Hashed, NetworkError> {
    let len = std::fs::metadata(path)?.len();
    if len == 0 {
        return Err(NetworkError::Invalid("cannot share an empty file".into()));
    }
    let piece_length = piece_length.unwrap_or_else(|| piece_length_for(len));
    let want = junction_core::hashing::Want {
        sha1: whole_sha1,
        bt_piece_len: Some(u64::from(piece_length)),
        ..Default::default()
    };
    let h = junction_core::hashing::hash_file(path, want)?;
    let bt =
        h.bt.ok_or_else(|| NetworkError::Invalid("the file has no pieces".into()))?;
    Ok(Hashed {
        pieces: bt.pieces,
        length: h.size,
        piece_length,
        sha1: h.sha1,
        v2: bt.v2,
    })
}

/// Withdraws what `share` offered under `id`: its torrent stops (saying `stopped` to its
/// trackers, leaving the DHT as its announces lapse) and leaves the search index. A torrent
/// still downloading under the same info-hash is a transfer's, not a share: it goes on.
pub(crate) fn unshare(
    torrents: &mut Torrents,
    index: &mut Index,
    id: &ContentId,
) -> Result<(), NetworkError> {
    let ih = id
        .get(HashKind::Btih)
        .and_then(InfoHash::from_slice)
        .ok_or_else(|| NetworkError::Invalid("BitTorrent shares are named by a btih".into()))?;
    let (stopped, downloading) = match torrents.get(&ih).map(|t| t.is_complete()) {
        Some(true) => (torrents.remove(&ih), false),
        Some(false) => (None, true),
        None => (None, false),
    };
    // A torrent still downloading stays findable: it is someone's transfer.
    let listed = !downloading && index.remove(&ih);
    match stopped {
        Some(t) => {
            t.cancel.cancel();
            info!(info_hash = %ih, "no longer shared");
            Ok(())
        }
        None if listed => Ok(()),
        None => Err(NetworkError::NotFound(format!(
            "no torrent {} is shared",
            ih.to_hex()
        ))),
    }
}
