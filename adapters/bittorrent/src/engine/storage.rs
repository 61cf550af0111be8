//! Where a torrent's bytes live: a shared local file (seeding what `share()` hashed) or the
//! gateway's [`TransferSink`] (fetching, and serving what the sink has verified).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use junction_core::swarm::{UnitAlgo, UnitHashes};
use junction_core::{RangeSet, SinkError, TransferSink};

use crate::wire::piece::{Bitfield, Geometry};

#[derive(Clone)]
pub enum Storage {
    File {
        file: Arc<File>,
        len: u64,
    },
    Sink(Arc<dyn TransferSink>),
    /// No data at all: a torrent whose metadata alone is fetched (for the search index).
    MetadataOnly,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::File { len, .. } => write!(f, "Storage::File({len} bytes)"),
            Storage::Sink(s) => write!(f, "Storage::Sink({} bytes)", s.size()),
            Storage::MetadataOnly => f.write_str("Storage::MetadataOnly"),
        }
    }
}

/// What [`Storage::left_out`] last found, and for which skipped bytes.
#[derive(Debug, Default)]
pub struct LeftOut {
    skipped: RangeSet,
    pieces: Option<Bitfield>,
}

impl Storage {
    pub fn size(&self) -> u64 {
        match self {
            Storage::File { len, .. } => *len,
            Storage::Sink(s) => s.size(),
            Storage::MetadataOnly => 0,
        }
    }

    /// Reads bytes that are verified (the caller checks the piece is ours).
    pub fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        let end = offset.saturating_add(len as u64);
        if end > self.size() && !matches!(self, Storage::MetadataOnly) {
            // Only a v2 torrent's geometry lets a block reach past the data (into the
            // pad after its last file, at most a piece): those bytes are zeros.
            // Fits: less than `len`, a usize.
            let have = self.size().saturating_sub(offset) as usize;
            let mut buf = bytes::BytesMut::zeroed(len);
            if have > 0 {
                buf[..have].copy_from_slice(&self.read(offset, have)?);
            }
            return Ok(buf.freeze());
        }
        match self {
            Storage::File { file, .. } => {
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, offset)?;
                Ok(Bytes::from(buf))
            }
            Storage::Sink(s) => s.read(offset, len),
            Storage::MetadataOnly => Err(SinkError::Closed),
        }
    }

    /// Stores a piece that hashed correctly and marks it verified, in one step, so no
    /// other network's bytes can come between.
    pub fn store_verified(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        match self {
            // A shared file is complete already; metadata-only torrents store nothing.
            Storage::File { .. } | Storage::MetadataOnly => Ok(()),
            Storage::Sink(s) => s.write_verified(offset, data),
        }
    }

    /// The pieces held verified: all of a shared file, none of a metadata-only torrent,
    /// and those a sink no longer wants (whichever network verified them).
    pub fn verified_pieces(&self, geometry: &Geometry) -> Bitfield {
        let count = geometry.piece_count();
        let wanted = match self {
            Storage::File { .. } => return Bitfield::full(count),
            Storage::MetadataOnly => return Bitfield::empty(count),
            Storage::Sink(s) => s.wanted(),
        };
        let mut have = Bitfield::empty(count);
        for i in geometry.indices() {
            let start = geometry.piece_offset(i);
            let end = start + u64::from(geometry.piece_len(i));
            if wanted.covered_in(start..end) == 0 {
                have.set(i, true);
            }
        }
        have
    }

    /// The pieces wholly left out of the transfer (files not chosen; outside the one file
    /// a torrent is fetched for), which no peer is asked for; None when there are none.
    /// Each peer asks on every read, so `cache` keeps the answer until the transfer's
    /// skipped bytes change.
    pub fn left_out<'a>(
        &self,
        geometry: &Geometry,
        cache: &'a mut LeftOut,
    ) -> Option<&'a Bitfield> {
        let Storage::Sink(s) = self else {
            return None;
        };
        let skipped = s.skipped();
        if skipped != cache.skipped {
            let mut out = Bitfield::empty(geometry.piece_count());
            for i in geometry.indices() {
                let start = geometry.piece_offset(i);
                if skipped.contains(start..start + u64::from(geometry.piece_len(i))) {
                    out.set(i, true);
                }
            }
            cache.pieces = (!skipped.is_empty()).then_some(out);
            cache.skipped = skipped;
        }
        cache.pieces.as_ref()
    }

    /// Where a reader of the transfer waits, if one does.
    pub fn priority(&self) -> Option<u64> {
        match self {
            Storage::Sink(s) => s.priority(),
            Storage::File { .. } | Storage::MetadataOnly => None,
        }
    }

    /// Claims a whole piece from the transfer, so no other network fetches it meanwhile.
    /// False when another network has some of it (or is fetching it).
    pub fn claim_piece(&self, offset: u64, len: u64) -> bool {
        match self {
            Storage::Sink(s) => s.claim_whole(0, offset..offset + len),
            Storage::File { .. } | Storage::MetadataOnly => true,
        }
    }

    /// Gives back the claim on a piece no peer fetches any longer.
    pub fn release_piece(&self, offset: u64, len: u64) {
        if let Storage::Sink(s) = self {
            s.release(0, offset..offset + len);
        }
    }

    /// Gives the piece hashes to the sink, so it checks bytes other networks write too.
    pub fn learn_pieces(&self, piece_len: u64, pieces: &[[u8; 20]]) {
        if let Storage::Sink(s) = self {
            s.learn(UnitHashes::uniform(
                UnitAlgo::Sha1,
                piece_len,
                pieces.iter().map(|p| p.to_vec()).collect(),
            ));
        }
    }

    /// A piece failed its hash: its range is wanted again, and its bytes count as
    /// discarded.
    pub fn rejected(&self, offset: u64, len: u64) {
        if let Storage::Sink(s) = self {
            s.verified(offset..offset + len, false);
            s.discarded(0, len, false);
        }
    }

    /// Peers (their numbers in the ledger) that together sent a piece that failed its
    /// hash: the transfer strikes them, and returns those to drop now.
    pub fn strike(&self, sources: &[u64]) -> Vec<u64> {
        match self {
            Storage::Sink(s) => s.strike(sources),
            // Nothing is fetched into these; a sole sender would be dropped.
            Storage::File { .. } | Storage::MetadataOnly => match sources {
                [one] => vec![*one],
                _ => Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use junction_core::swarm::{ContainerSink, MemStore, Swarm, SwarmSink};
    use junction_core::{NetworkId, RangeSet};

    use super::*;

    /// One file fetched through its torrent: the pieces wholly outside it are left out,
    /// those that reach into it are not; a plain transfer leaves nothing out.
    #[test]
    fn pieces_outside_the_one_file_are_left_out() {
        let g = Geometry::new(1024, 10_000).unwrap();
        let swarm = Arc::new(Swarm::new(MemStore::new(5000), 5000, RangeSet::new()));
        let file: Arc<dyn TransferSink> = SwarmSink::new(swarm, NetworkId::BITTORRENT);
        let mut cache = LeftOut::default();
        assert!(
            Storage::Sink(file.clone())
                .left_out(&g, &mut cache)
                .is_none()
        );
        let torrent = ContainerSink::new(file, 1500, 10_000).unwrap();
        let mut cache = LeftOut::default();
        let out = Storage::Sink(Arc::new(torrent))
            .left_out(&g, &mut cache)
            .unwrap()
            .clone();
        let left: Vec<u32> = g
            .indices()
            .filter(|&i| out.get(i))
            .map(|i| i.get())
            .collect();
        // The file is 1500..6500: pieces 1 to 6 reach into it.
        assert_eq!(left, [0, 7, 8, 9]);
    }

    /// Files chosen again while peers read: the next look follows the transfer's new
    /// skipped bytes, not the answer kept from before.
    #[test]
    fn the_pieces_left_out_follow_the_files_chosen() {
        let g = Geometry::new(1024, 10_000).unwrap();
        let swarm = Arc::new(Swarm::new(MemStore::new(10_000), 10_000, RangeSet::new()));
        let sink = Storage::Sink(SwarmSink::new(swarm.clone(), NetworkId::BITTORRENT));
        let mut cache = LeftOut::default();
        let left = |cache: &mut LeftOut| -> Vec<u32> {
            sink.left_out(&g, cache).map_or(Vec::new(), |out| {
                g.indices()
                    .filter(|&i| out.get(i))
                    .map(|i| i.get())
                    .collect()
            })
        };
        assert!(left(&mut cache).is_empty());
        swarm
            .ledger()
            .set_skipped(std::iter::once(0..3000).collect());
        assert_eq!(left(&mut cache), [0, 1]);
        assert_eq!(left(&mut cache), [0, 1]);
        swarm
            .ledger()
            .set_skipped(std::iter::once(5120..10_000).collect());
        assert_eq!(left(&mut cache), [5, 6, 7, 8, 9]);
        swarm.ledger().set_skipped(RangeSet::new());
        assert!(left(&mut cache).is_empty());
    }
}
