//! Fetching a magnet's metadata (BEP 9, ut_metadata): pieces of the info dict asked of
//! peers one at a time, assembled, then checked against the info-hash by the caller.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ConnId;
use crate::wire::extension::{METADATA_PIECE_LEN, metadata_piece_count, metadata_piece_len};

/// A metadata fetch that received nothing for this long may be replaced or taken over.
const META_STALL: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Assembly {
    size: u32,
    pieces: Vec<Option<Bytes>>,
    pending: HashMap<u32, (ConnId, Instant)>,
    sources: HashSet<ConnId>,
    /// When the fetch started or last received a piece.
    progress: Instant,
    /// After a failure with several sources, one peer gives every piece, so the next
    /// failure names the culprit.
    owner: Option<ConnId>,
}

#[derive(Debug, Default)]
pub struct MetadataFetch {
    fetch: Option<Assembly>,
    /// Peers that failed to deliver good metadata.
    bad_sources: HashSet<ConnId>,
    /// Metadata from several peers failed its hash: fetch it from one peer at a time.
    one_source: bool,
}

impl MetadataFetch {
    /// Starts (or keeps) assembling metadata of `size` bytes announced by `conn`. A fetch
    /// of another size is replaced when it made no progress for 20 s (so a peer lying
    /// about the size cannot hold it up), and peers that gave bad metadata are ignored.
    pub fn begin(&mut self, conn: ConnId, size: u32) {
        if self.bad_sources.contains(&conn) {
            return;
        }
        if let Some(m) = &self.fetch
            && (m.size == size || m.progress.elapsed() < META_STALL)
        {
            return;
        }
        let n = metadata_piece_count(size) as usize;
        self.fetch = Some(Assembly {
            size,
            pieces: vec![None; n],
            pending: HashMap::new(),
            sources: HashSet::new(),
            progress: Instant::now(),
            owner: None,
        });
    }

    /// A metadata piece to ask `conn` for, if any is missing and not pending elsewhere.
    pub fn next(&mut self, conn: ConnId, size: u32) -> Option<u32> {
        if self.bad_sources.contains(&conn) {
            return None;
        }
        let m = self.fetch.as_mut().filter(|m| m.size == size)?;
        if self.one_source && m.owner != Some(conn) {
            // Another peer takes over a stalled owner, starting afresh.
            if m.owner.is_some() && m.progress.elapsed() < META_STALL {
                return None;
            }
            m.owner = Some(conn);
            m.pieces.iter_mut().for_each(|p| *p = None);
            m.pending.clear();
            m.sources.clear();
            m.progress = Instant::now();
        }
        let stale = Duration::from_secs(15);
        let piece = (0..m.pieces.len() as u32).find(|i| {
            m.pieces[*i as usize].is_none()
                && m.pending.get(i).is_none_or(|(_, at)| at.elapsed() > stale)
        })?;
        m.pending.insert(piece, (conn, Instant::now()));
        Some(piece)
    }

    /// Stores a metadata piece; returns the whole `info` bytes once all are in.
    pub fn data(&mut self, conn: ConnId, piece: u32, total: u32, data: Bytes) -> Option<Bytes> {
        let m = self.fetch.as_mut().filter(|m| m.size == total)?;
        let expected = metadata_piece_len(total, piece)? as usize;
        // Only a piece asked of this peer is taken.
        if m.pending.get(&piece).is_none_or(|(c, _)| *c != conn) {
            return None;
        }
        let slot = m.pieces.get_mut(piece as usize)?;
        if data.len() != expected {
            return None;
        }
        *slot = Some(data);
        m.pending.remove(&piece);
        m.sources.insert(conn);
        m.progress = Instant::now();
        if m.pieces.iter().any(Option::is_none) {
            return None;
        }
        let mut raw = Vec::with_capacity(total as usize);
        for p in m.pieces.iter().flatten() {
            raw.extend_from_slice(p);
        }
        debug_assert!(raw.len() as u64 <= u64::from(total) + u64::from(METADATA_PIECE_LEN));
        Some(Bytes::from(raw))
    }

    /// The assembled metadata did not hash to the info-hash: start over. A single source
    /// is not asked again; with several, the next fetches take one peer at a time, so an
    /// honest peer is never blamed for another's bad piece.
    pub fn failed(&mut self) {
        if let Some(m) = self.fetch.take() {
            if m.sources.len() == 1 {
                self.bad_sources.extend(m.sources);
            } else {
                self.one_source = true;
            }
        }
    }

    pub fn rejected(&mut self, conn: ConnId, piece: u32) {
        if let Some(m) = &mut self.fetch {
            m.pending.remove(&piece);
        }
        self.bad_sources.insert(conn);
    }

    /// The metadata is known: nothing more to fetch.
    pub fn done(&mut self) {
        self.fetch = None;
    }

    /// A peer connection ended: what it was asked for may be asked of others.
    pub fn drop_conn(&mut self, conn: ConnId) {
        if let Some(m) = &mut self.fetch {
            m.pending.retain(|_, (c, _)| *c != conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pieces_assemble() {
        let mut st = MetadataFetch::default();
        let total = METADATA_PIECE_LEN + 10;
        st.begin(1, total);
        assert_eq!(st.next(1, total), Some(0));
        assert_eq!(st.next(2, total), Some(1));
        assert_eq!(st.next(3, total), None);
        assert!(
            st.data(1, 0, total, Bytes::from(vec![1; 5])).is_none(),
            "wrong length"
        );
        assert!(
            st.data(
                1,
                0,
                total,
                Bytes::from(vec![1; METADATA_PIECE_LEN as usize])
            )
            .is_none()
        );
        assert!(
            st.data(3, 1, total, Bytes::from(vec![3; 10])).is_none(),
            "piece 1 was asked of peer 2, not 3"
        );
        let raw = st.data(2, 1, total, Bytes::from(vec![2; 10])).unwrap();
        assert_eq!(raw.len(), total as usize);
        // Two sources and a bad hash: nobody is blamed, one peer at a time from now on.
        st.failed();
        st.begin(1, total);
        assert_eq!(st.next(1, total), Some(0));
        assert_eq!(st.next(2, total), None, "peer 1 gives every piece");
        assert_eq!(st.next(1, total), Some(1));
        let one = Bytes::from(vec![1; METADATA_PIECE_LEN as usize]);
        assert!(st.data(1, 0, total, one).is_none());
        assert!(st.data(1, 1, total, Bytes::from(vec![1; 10])).is_some());
        // A single source that fails is not asked again; another peer is.
        st.failed();
        st.begin(1, total);
        assert_eq!(st.next(1, total), None, "bad source is not asked again");
        st.begin(2, total);
        assert_eq!(st.next(2, total), Some(0));
    }
}
