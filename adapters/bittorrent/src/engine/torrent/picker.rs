//! The piece picker: which blocks to ask a peer for. Whether a piece is ours comes from the
//! transfer's shared ledger (the sink's verified ranges, adopted by
//! [`Torrent::adopt_verified`](super::Torrent::adopt_verified)), and whether we may fetch
//! it from the ledger's claims; kept here is only BitTorrent's own: how many peers have
//! each piece (rarest first), the blocks of pieces being assembled and who was asked for
//! them (end game), and the pieces being hashed.

use std::collections::{HashMap, HashSet};

use super::ConnId;
use crate::wire::piece::{BLOCK_LEN, Bitfield, Geometry, ValidBlock, ValidPieceIndex};

/// At most this many peers are asked for the same block in end-game.
const ENDGAME_DUP: usize = 2;
/// While a reader waits: this many pieces from its position come first…
const STREAM_HEAD: u32 = 4;
/// …then this many at the end of the file, which players read early.
const STREAM_TAIL: u32 = 2;
/// Bytes of spare piece buffers kept per torrent.
const SPARE_BYTES: usize = 32 << 20;

#[derive(Debug, Default)]
struct Blk {
    got: bool,
    requested: Vec<ConnId>,
}

/// A piece being assembled in memory; it reaches the sink whole, once its hash passed.
#[derive(Debug)]
struct Partial {
    buf: Vec<u8>,
    blocks: Vec<Blk>,
    received: usize,
    owner: Option<ConnId>,
    contributors: Vec<ConnId>,
    /// Retried after a hash failure: one peer only, no end-game duplicates.
    exclusive: bool,
    /// The transfer's claim on the piece is held. Given back when no peer works on the
    /// piece any longer (choked, gone, requests cancelled), so another network or peer
    /// can take it at once; claimed again before a peer goes on with it.
    claimed: bool,
}

/// What happened to a received block.
#[derive(Debug)]
pub enum OnBlock {
    /// Not a block of a piece being assembled, or already received.
    Ignored,
    Stored {
        cancel: bool,
    },
    /// The piece is whole: hash it, then call
    /// [`Torrent::finish_piece`](super::Torrent::finish_piece).
    Complete {
        index: ValidPieceIndex,
        data: Vec<u8>,
        contributors: Vec<ConnId>,
        cancel: bool,
    },
}

#[derive(Debug, Default)]
pub struct Picker {
    /// Pieces verified in the transfer, as announced to peers: set from the sink's
    /// verified ranges when the metadata arrives and when another network verifies a
    /// piece, and when a piece we hashed is stored.
    have: Bitfield,
    /// How many connected peers have each piece.
    avail: Vec<u32>,
    partials: HashMap<u32, Partial>,
    /// Pieces assembled and being hashed.
    verifying: HashSet<u32>,
    /// Pieces whose last copy failed its hash: the next is taken from one peer alone.
    exclusive: HashSet<u32>,
    /// Piece buffers whose pieces were stored, reused for the next pieces: fresh memory
    /// costs a page fault and zeroing per page, as much as the hash of the piece.
    spare: Vec<Vec<u8>>,
}

impl Picker {
    /// Starts with `have` (what the transfer holds verified already) and no peers.
    pub fn init(&mut self, have: Bitfield) {
        self.avail = vec![0; have.piece_count() as usize];
        self.have = have;
    }

    /// Pieces we have, as announced to peers.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Takes as ours a piece another network verified (unless our own copy is being
    /// hashed); returns whether it is new to us. Any half-assembled copy is dropped.
    pub fn adopt(&mut self, index: ValidPieceIndex) -> bool {
        if self.have.get(index) || self.verifying.contains(&index.get()) {
            return false;
        }
        self.have.set(index, true);
        if let Some(p) = self.partials.remove(&index.get()) {
            self.recycle(p.buf);
        }
        true
    }

    /// The hash check of an assembled piece ended: stored (ours now), or to be fetched
    /// again from one peer alone.
    pub fn checked(&mut self, index: ValidPieceIndex, stored: bool) {
        self.verifying.remove(&index.get());
        if stored {
            self.have.set(index, true);
        } else {
            self.exclusive.insert(index.get());
        }
    }

    /// Takes back the buffer of a piece that was hashed (and stored or rejected).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        let kept: usize = self.spare.iter().map(Vec::capacity).sum();
        if kept + buf.capacity() <= SPARE_BYTES {
            self.spare.push(buf);
        }
    }

    /// A buffer of `len` bytes for a new piece: a spare one when there is one. Its old
    /// contents stay until the blocks overwrite them; a piece is only used once every
    /// block has arrived.
    fn piece_buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Counts a peer's pieces into availability.
    pub fn add_avail(&mut self, bf: &Bitfield) {
        if bf.piece_count() as usize != self.avail.len() {
            return;
        }
        for (i, a) in self.avail.iter_mut().enumerate() {
            if bf.as_bytes()[i / 8] & (0x80 >> (i % 8)) != 0 {
                *a = a.saturating_add(1);
            }
        }
    }

    pub fn sub_avail(&mut self, bf: &Bitfield) {
        if bf.piece_count() as usize != self.avail.len() {
            return;
        }
        for (i, a) in self.avail.iter_mut().enumerate() {
            if bf.as_bytes()[i / 8] & (0x80 >> (i % 8)) != 0 {
                *a = a.saturating_sub(1);
            }
        }
    }

    pub fn inc_avail(&mut self, index: ValidPieceIndex) {
        if let Some(a) = self.avail.get_mut(index.get() as usize) {
            *a = a.saturating_add(1);
        }
    }

    /// Whether the peer has a piece we lack.
    pub fn wants_from(&self, peer: &Bitfield) -> bool {
        if peer.piece_count() != self.have.piece_count() {
            return false;
        }
        peer.as_bytes()
            .iter()
            .zip(self.have.as_bytes())
            .any(|(p, h)| p & !h != 0)
    }

    /// Picks up to `n` blocks to request from `conn`, which has `peer`: first blocks of
    /// pieces it is already working on (or orphaned ones), then a new piece that `claim`
    /// grants (no other network is fetching it): with a reader waiting at piece `reader`,
    /// the pieces from there on in order, with the last pieces (players probe the end)
    /// right after the first few; otherwise the rarest. Then, when nothing is left
    /// unrequested, end-game duplicates.
    pub fn pick(
        &mut self,
        conn: ConnId,
        peer: &Bitfield,
        n: usize,
        geometry: &Geometry,
        reader: Option<u32>,
        claim: &mut dyn FnMut(ValidPieceIndex) -> bool,
    ) -> Vec<ValidBlock> {
        let mut out = Vec::new();
        if n == 0 || peer.piece_count() != geometry.piece_count() {
            return out;
        }
        let ask = Ask {
            conn,
            peer,
            n,
            geometry,
        };
        let keys = self.continue_partials(&ask, claim, &mut out);
        if out.len() >= n {
            return out;
        }
        self.start_new_pieces(&ask, reader, claim, &mut out);
        if out.len() < n {
            self.end_game(&ask, keys, &mut out);
        }
        out
    }

    /// Blocks of the pieces this peer has that it is already working on, or that nobody
    /// owns (orphaned), once `claim` grants them. Returns the partial pieces' indices, in
    /// order.
    fn continue_partials(
        &mut self,
        ask: &Ask<'_>,
        claim: &mut dyn FnMut(ValidPieceIndex) -> bool,
        out: &mut Vec<ValidBlock>,
    ) -> Vec<u32> {
        let (conn, n, geometry) = (ask.conn, ask.n, ask.geometry);
        let mut keys: Vec<u32> = self.partials.keys().copied().collect();
        keys.sort_unstable();
        for idx in &keys {
            if !ask.has(*idx) {
                continue;
            }
            let Some(p) = self.partials.get_mut(idx) else {
                continue;
            };
            if p.owner.is_some_and(|o| o != conn) {
                continue;
            }
            if !p.claimed {
                let claimed = geometry.index(*idx).is_ok_and(&mut *claim);
                if !claimed {
                    // Another network has it now: its blocks are not ours to finish.
                    if let Some(p) = self.partials.remove(idx) {
                        self.recycle(p.buf);
                    }
                    continue;
                }
                p.claimed = true;
            }
            p.owner = Some(conn);
            take_blocks(p, *idx, conn, n, out, geometry, false);
            if out.len() >= n {
                break;
            }
        }
        keys
    }

    /// New pieces, as [`Picker::next_piece`] orders them, each once `claim` grants it.
    fn start_new_pieces(
        &mut self,
        ask: &Ask<'_>,
        reader: Option<u32>,
        claim: &mut dyn FnMut(ValidPieceIndex) -> bool,
        out: &mut Vec<ValidBlock>,
    ) {
        let (conn, n, geometry) = (ask.conn, ask.n, ask.geometry);
        let mut refused: Vec<u32> = Vec::new();
        while out.len() < n {
            let Some(i) = self.next_piece(ask, reader, &refused) else {
                break;
            };
            let Ok(vi) = geometry.index(i) else { break };
            if !claim(vi) {
                refused.push(i);
                continue;
            }
            let len = geometry.piece_len(vi) as usize;
            let nblocks = len.div_ceil(BLOCK_LEN as usize);
            let mut p = Partial {
                buf: self.piece_buffer(len),
                blocks: (0..nblocks).map(|_| Blk::default()).collect(),
                received: 0,
                owner: Some(conn),
                contributors: Vec::new(),
                exclusive: self.exclusive.remove(&i),
                claimed: true,
            };
            take_blocks(&mut p, i, conn, n, out, geometry, false);
            self.partials.insert(i, p);
        }
    }

    /// The next piece to start: with a reader waiting at piece `reader`, the pieces from
    /// there on in order, with the last pieces (players probe the end) right after the
    /// first few; otherwise the rarest, ties broken from a random start.
    fn next_piece(&self, ask: &Ask<'_>, reader: Option<u32>, refused: &[u32]) -> Option<u32> {
        let (peer, geometry) = (ask.peer, ask.geometry);
        let count = geometry.piece_count();
        let start = if count > 0 {
            rand::random::<u32>() % count
        } else {
            0
        };
        let eligible = |st: &Picker, i: u32| {
            geometry.index(i).is_ok_and(|vi| {
                !st.have.get(vi)
                    && peer.get(vi)
                    && !st.partials.contains_key(&i)
                    && !st.verifying.contains(&i)
                    && !refused.contains(&i)
            })
        };
        let mut best: Option<(u32, u32)> = reader.and_then(|r| {
            let head = r..count.min(r.saturating_add(STREAM_HEAD));
            let tail = count.saturating_sub(STREAM_TAIL).max(r)..count;
            let rest = head.end..count;
            head.chain(tail)
                .chain(rest)
                .find(|&i| eligible(self, i))
                .map(|i| (i, 0))
        });
        let scan = if best.is_some() { 0 } else { count };
        for k in 0..scan {
            let i = (start + k) % count;
            if !eligible(self, i) {
                continue;
            }
            let a = self.avail.get(i as usize).copied().unwrap_or(0);
            if best.is_none_or(|(_, ba)| a < ba) {
                best = Some((i, a));
                if a <= 1 {
                    break;
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// End-game: every missing block this peer could give is requested already, so
    /// blocks of the shared partial pieces are asked of it too.
    fn end_game(&mut self, ask: &Ask<'_>, keys: Vec<u32>, out: &mut Vec<ValidBlock>) {
        for idx in keys {
            if !ask.has(idx) {
                continue;
            }
            if let Some(p) = self.partials.get_mut(&idx)
                && !p.exclusive
                && p.claimed
            {
                take_blocks(p, idx, ask.conn, ask.n, out, ask.geometry, true);
                if out.len() >= ask.n {
                    break;
                }
            }
        }
    }

    /// Forgets `conn`'s requests for these blocks, so others may ask for them. Returns the
    /// pieces no peer works on any longer, whose claims go back to the transfer.
    #[must_use = "the pieces returned are to be released in the transfer"]
    pub fn release(
        &mut self,
        conn: ConnId,
        blocks: impl IntoIterator<Item = (u32, u32)>,
    ) -> Vec<u32> {
        for (index, begin) in blocks {
            if let Some(p) = self.partials.get_mut(&index)
                && let Some(b) = p.blocks.get_mut((begin / BLOCK_LEN) as usize)
            {
                b.requested.retain(|c| *c != conn);
            }
        }
        for p in self.partials.values_mut() {
            if p.owner == Some(conn)
                && !p
                    .blocks
                    .iter()
                    .any(|b| !b.got && b.requested.contains(&conn))
            {
                p.owner = None;
            }
        }
        self.orphans()
    }

    /// Pieces being assembled that no peer works on any longer (no owner, no block asked
    /// of anyone): their claims are given back, and marked so.
    fn orphans(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, p) in &mut self.partials {
            if p.claimed && p.owner.is_none() && p.blocks.iter().all(|b| b.requested.is_empty()) {
                p.claimed = false;
                out.push(*i);
            }
        }
        out.sort_unstable();
        out
    }

    /// A peer connection ended: its pieces leave the availability counts, and the pieces
    /// it was assembling are orphaned for other peers to finish. Returns the pieces no peer
    /// works on any longer, whose claims go back to the transfer.
    #[must_use = "the pieces returned are to be released in the transfer"]
    pub fn drop_conn(&mut self, conn: ConnId, bitfield: Option<&Bitfield>) -> Vec<u32> {
        if let Some(bf) = bitfield {
            self.sub_avail(bf);
        }
        for p in self.partials.values_mut() {
            if p.owner == Some(conn) {
                p.owner = None;
            }
            for b in &mut p.blocks {
                b.requested.retain(|c| *c != conn);
            }
        }
        self.orphans()
    }

    /// Stores a received block (already validated against the geometry).
    pub fn on_block(&mut self, conn: ConnId, block: ValidBlock, data: &[u8]) -> OnBlock {
        let idx = block.index().get();
        let Some(p) = self.partials.get_mut(&idx) else {
            return OnBlock::Ignored;
        };
        let bi = (block.begin() / BLOCK_LEN) as usize;
        let begin = block.begin() as usize;
        let Some(b) = p.blocks.get_mut(bi) else {
            return OnBlock::Ignored;
        };
        // Only a whole block this peer was asked for counts.
        let whole = (p.buf.len().saturating_sub(begin)).min(BLOCK_LEN as usize);
        let asked = b.requested.contains(&conn);
        if b.got || !asked || data.len() != whole || !block.begin().is_multiple_of(BLOCK_LEN) {
            b.requested.retain(|c| *c != conn);
            return OnBlock::Ignored;
        }
        let Some(dst) = p.buf.get_mut(begin..begin + data.len()) else {
            return OnBlock::Ignored;
        };
        dst.copy_from_slice(data);
        b.got = true;
        let cancel = b.requested.iter().any(|c| *c != conn);
        b.requested.clear();
        p.received += 1;
        if !p.contributors.contains(&conn) {
            p.contributors.push(conn);
        }
        if p.received < p.blocks.len() {
            return OnBlock::Stored { cancel };
        }
        let Some(p) = self.partials.remove(&idx) else {
            return OnBlock::Ignored;
        };
        self.verifying.insert(idx);
        OnBlock::Complete {
            index: block.index(),
            data: p.buf,
            contributors: p.contributors,
            cancel,
        }
    }
}

/// One [`Picker::pick`] call's question: who asks, which pieces it has, how many blocks.
struct Ask<'a> {
    conn: ConnId,
    peer: &'a Bitfield,
    n: usize,
    geometry: &'a Geometry,
}

impl Ask<'_> {
    fn has(&self, i: u32) -> bool {
        self.geometry.index(i).is_ok_and(|v| self.peer.get(v))
    }
}

fn take_blocks(
    p: &mut Partial,
    idx: u32,
    conn: ConnId,
    n: usize,
    out: &mut Vec<ValidBlock>,
    geometry: &Geometry,
    endgame: bool,
) {
    for (bi, b) in p.blocks.iter_mut().enumerate() {
        if out.len() >= n {
            return;
        }
        if b.got || b.requested.contains(&conn) {
            continue;
        }
        if endgame {
            if b.requested.len() >= ENDGAME_DUP {
                continue;
            }
        } else if !b.requested.is_empty() {
            continue;
        }
        let begin = bi as u32 * BLOCK_LEN;
        let Ok(vi) = geometry.index(idx) else { return };
        let len = (geometry.piece_len(vi) - begin).min(BLOCK_LEN);
        if let Ok(vb) = geometry.block(idx, begin, len) {
            b.requested.push(conn);
            out.push(vb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PL: u32 = 4 * BLOCK_LEN;

    fn setup(pieces: u32) -> (Picker, Geometry) {
        let g = Geometry::new(PL, u64::from(PL) * u64::from(pieces) - 100).unwrap();
        let mut st = Picker::default();
        st.init(Bitfield::empty(g.piece_count()));
        (st, g)
    }

    fn bf(count: u32, pieces: &[u32]) -> Bitfield {
        let g = Geometry::new(1, u64::from(count)).unwrap();
        let mut b = Bitfield::empty(count);
        for p in pieces {
            b.set(g.index(*p).unwrap(), true);
        }
        b
    }

    #[test]
    fn rarest_piece_first_and_whole_pieces_per_peer() {
        let (mut st, g) = setup(8);
        let all = Bitfield::full(8);
        st.add_avail(&all);
        st.add_avail(&all);
        st.add_avail(&bf(8, &[0, 1, 2, 3, 4, 6, 7])); // piece 5 is rarest
        let got = st.pick(1, &all, 4, &g, None, &mut |_| true);
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|b| b.index().get() == 5), "{got:?}");
        // A second peer gets another piece, not blocks of piece 5.
        let other = st.pick(2, &all, 4, &g, None, &mut |_| true);
        assert!(other.iter().all(|b| b.index().get() != 5));
        // A peer without the piece never gets it.
        let few = st.pick(3, &bf(8, &[7]), 16, &g, None, &mut |_| true);
        assert!(few.iter().all(|b| b.index().get() == 7));
    }

    #[test]
    fn a_waiting_reader_gets_its_pieces_in_order_then_the_end_of_the_file() {
        let (mut st, g) = setup(16);
        let all = bf(16, &(0..16).collect::<Vec<_>>());
        let mut order = Vec::new();
        // Enough blocks for seven pieces, in the order they were started.
        let per_piece = PL.div_ceil(BLOCK_LEN) as usize;
        for b in st.pick(1, &all, 7 * per_piece, &g, Some(5), &mut |_| true) {
            if order.last() != Some(&b.index().get()) {
                order.push(b.index().get());
            }
        }
        assert_eq!(order, vec![5, 6, 7, 8, 14, 15, 9]);
        // A piece the transfer will not grant (another network has it) is skipped.
        let (mut st, g) = setup(16);
        let got = st.pick(1, &all, 1, &g, Some(0), &mut |i| i.get() != 0);
        assert_eq!(got[0].index().get(), 1);
    }

    #[test]
    fn piece_completes_then_endgame_duplicates_and_cancel() {
        let (mut st, g) = setup(1);
        let all = Bitfield::full(1);
        let a = st.pick(1, &all, 16, &g, None, &mut |_| true);
        assert_eq!(a.len(), 4);
        // Nothing new is left: peer 2 enters end-game and asks for the same blocks.
        let b = st.pick(2, &all, 16, &g, None, &mut |_| true);
        assert_eq!(b.len(), 4);
        // A third peer gets nothing (two requesters per block at most).
        assert!(st.pick(3, &all, 16, &g, None, &mut |_| true).is_empty());
        let data = vec![7u8; BLOCK_LEN as usize];
        for (i, blk) in a.iter().enumerate() {
            let len = blk.length() as usize;
            match st.on_block(1, *blk, &data[..len]) {
                OnBlock::Stored { cancel } => assert!(cancel && i < 3),
                OnBlock::Complete {
                    index,
                    data,
                    contributors,
                    cancel,
                } => {
                    assert_eq!(i, 3);
                    assert!(cancel);
                    assert_eq!(index.get(), 0);
                    assert_eq!(data.len(), g.total_length() as usize);
                    assert_eq!(contributors, vec![1]);
                }
                OnBlock::Ignored => panic!("block ignored"),
            }
        }
        // The duplicate arrives late: ignored; the piece is being verified, not re-picked.
        assert!(matches!(st.on_block(2, b[0], &data), OnBlock::Ignored));
        assert!(st.pick(2, &all, 16, &g, None, &mut |_| true).is_empty());
    }

    #[test]
    fn only_whole_blocks_the_sender_was_asked_for_are_stored() {
        let (mut st, g) = setup(1);
        let all = Bitfield::full(1);
        let a = st.pick(1, &all, 16, &g, None, &mut |_| true);
        let data = vec![7u8; BLOCK_LEN as usize];
        // Peer 9 was asked for nothing: its block does not fill the piece.
        assert!(matches!(st.on_block(9, a[0], &data), OnBlock::Ignored));
        // The block peer 1 was asked for counts.
        let ok = st.on_block(1, a[0], &data[..a[0].length() as usize]);
        assert!(matches!(ok, OnBlock::Stored { .. }));
        // A short block is refused, and that block is wanted again.
        let short = g.block(0, BLOCK_LEN, 1).unwrap();
        assert!(matches!(
            st.on_block(1, short, &data[..1]),
            OnBlock::Ignored
        ));
        let again = st.pick(2, &all, 16, &g, None, &mut |_| true);
        assert!(again.iter().any(|b| b.begin() == BLOCK_LEN), "{again:?}");
    }

    #[test]
    fn dropped_peer_releases_its_piece() {
        let (mut st, g) = setup(2);
        let one = bf(2, &[0]);
        st.add_avail(&one);
        assert_eq!(st.pick(1, &one, 2, &g, None, &mut |_| true).len(), 2);
        assert_eq!(st.drop_conn(1, Some(&one)), vec![0], "its claim goes back");
        let again = st.pick(2, &one, 16, &g, None, &mut |_| true);
        assert_eq!(
            again.len(),
            4,
            "all blocks of the orphaned piece: {again:?}"
        );
    }

    #[test]
    fn a_piece_nobody_works_on_is_claimed_again_or_dropped() {
        let (mut st, g) = setup(2);
        let all = Bitfield::full(2);
        // A reader at 0 makes the order certain.
        let a = st.pick(1, &all, 2, &g, Some(0), &mut |_| true);
        assert!(a.len() == 2 && a.iter().all(|b| b.index().get() == 0));
        let data = vec![7u8; BLOCK_LEN as usize];
        assert!(matches!(
            st.on_block(1, a[0], &data),
            OnBlock::Stored { .. }
        ));
        // Peer 2 duplicates nothing yet; peer 1 chokes us: its requests are given up and
        // the piece, now worked on by nobody, goes back to the transfer.
        let keys = a.iter().map(|b| (b.index().get(), b.begin()));
        assert_eq!(st.release(1, keys), vec![0]);
        assert!(st.release(1, []).is_empty(), "given back once");
        // The transfer still grants it: peer 2 goes on with it, the stored block kept.
        let mut asked = Vec::new();
        let b = st.pick(2, &all, 8, &g, None, &mut |i| {
            asked.push(i.get());
            true
        });
        assert_eq!(asked[0], 0, "claimed again first");
        assert_eq!(b.iter().filter(|x| x.index().get() == 0).count(), 3);
        // Peer 2 leaves; another network takes piece 0 meanwhile: the half-made copy
        // is dropped and peer 3 gets piece 1 instead.
        assert_eq!(st.drop_conn(2, None), vec![0, 1]);
        let c = st.pick(3, &all, 16, &g, None, &mut |i| i.get() != 0);
        assert!(
            !c.is_empty() && c.iter().all(|x| x.index().get() == 1),
            "{c:?}"
        );
    }
}
