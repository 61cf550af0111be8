//! Sharing a local file: hashed once into a v1 torrent (with its whole-file SHA-1) and
//! seeded from the file.

use super::*;

pub(super) async fn share(
    ctx: Arc<Ctx>,
    index: Arc<Mutex<Vec<IndexEntry>>>,
    cancel: CancellationToken,
    item: SharedItem,
) -> Result<ContentId, NetworkError> {
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
    let m = Metainfo::parse(&bytes).map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let ih = m.info.swarm_hash();
    let file = std::fs::File::open(&item.path)?;
    let storage = Storage::File {
        file: Arc::new(file),
        len: length,
    };
    let tiers = m.tracker_tiers();
    let entry_id = m.info.content_id();
    let t = Torrent::new(ctx.clone(), ih, m.info.name.clone(), storage);
    t.set_meta(m.info).map_err(NetworkError::Invalid)?;
    if let Some(old) = lock(&ctx.torrents).insert(ih, t.clone()) {
        old.cancel.cancel();
    }
    info!(info_hash = %ih, path = %item.path.display(), "sharing");
    if let Some(e) = entry_of(&t, &tiers, Some(Bytes::from(bytes))) {
        add_to_index(&index, e);
    }
    tokio::spawn(
        run_torrent(t, tiers, None, index, None, cancel.child_token())
            .instrument(info_span!("torrent", info_hash = %ih)),
    );
    let mut id = item.id.clone();
    id.size = Some(length);
    id.absorb(&entry_id);
    Ok(id)
}

/// The pieces the gateway computed, when they are of the length this torrent uses.
fn given(item: &SharedItem, fixed: Option<u32>) -> Option<Hashed> {
    let h = item.hashes.as_deref()?;
    let bt = h.bt.as_ref()?;
    let piece_length = fixed.unwrap_or_else(|| piece_length_for(h.size));
    (h.size > 0 && bt.piece_len == u64::from(piece_length)).then(|| Hashed {
        pieces: bt.pieces.clone(),
        length: h.size,
        piece_length,
        sha1: h.sha1,
    })
}

/// What [`hash_file`] found.
pub(super) struct Hashed {
    pieces: Vec<[u8; 20]>,
    length: u64,
    piece_length: u32,
    sha1: Option<[u8; 20]>,
}

/// Hashes a file in one read pass: its pieces on this thread and, when `whole_sha1`, the
/// SHA-1 of the whole file on a second one, so sharing costs one read and about the time
/// of one hash. The 1 MiB read buffers go round between the two threads.
pub(super) fn hash_file(
    path: &PathBuf,
    piece_length: Option<u32>,
    whole_sha1: bool,
) -> Result<Hashed, NetworkError> {
    use sha1::{Digest, Sha1};
    use std::io::Read;
    use std::sync::mpsc::sync_channel;
    const BUF: usize = 1 << 20;
    const BUFS: usize = 4;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Err(NetworkError::Invalid("cannot share an empty file".into()));
    }
    let piece_length = piece_length.unwrap_or_else(|| piece_length_for(len));
    let mut h = PieceHasher::new(piece_length).map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(BUFS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(BUFS);
    for _ in 0..BUFS {
        let _ = empty_tx.send(vec![0u8; BUF]);
    }
    let (read, sha1) = std::thread::scope(|scope| {
        let whole = scope.spawn(move || {
            let mut sha1 = whole_sha1.then(Sha1::new);
            for (buf, n) in full_rx {
                if let Some(s) = &mut sha1 {
                    s.update(&buf[..n]);
                }
                if empty_tx.send(buf).is_err() {
                    break;
                }
            }
            sha1.map(|s| <[u8; 20]>::from(s.finalize()))
        });
        let read = (|| -> Result<(), NetworkError> {
            while let Ok(mut buf) = empty_rx.recv() {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                if full_tx.send((buf, n)).is_err() {
                    break;
                }
            }
            Ok(())
        })();
        drop(full_tx);
        (read, whole.join())
    });
    read?;
    let sha1 = sha1.map_err(|_| NetworkError::Other("the whole-file hasher panicked".into()))?;
    let (pieces, length) = h.finish();
    Ok(Hashed {
        pieces,
        length,
        piece_length,
        sha1,
    })
}
