//! One file of a multi-file torrent, checked on its own: the v1 pieces that lie wholly
//! inside it are hashes of that file's bytes too, so a transfer of just that file (from
//! any network) can check it piece by piece. The bytes at its head and tail share pieces
//! with the neighbouring files and are left to the other hashes known.

use junction_core::swarm::{UnitAlgo, UnitHashes};

use super::Info;

impl Info {
    /// The pieces lying wholly inside file `index`, as a run of unit hashes from where the
    /// first of them starts in the file. `None` for a pad file, a v2-only torrent, or a
    /// file no whole piece lies in. A piece reaching into a pad file is not inside: its
    /// hash covers the padding's zeros, which are not the file's bytes.
    pub fn file_units(&self, index: usize) -> Option<UnitHashes> {
        let f = self.files.get(index).filter(|f| !f.pad && f.length > 0)?;
        let pl = u64::from(self.piece_length);
        if pl == 0 || self.pieces.is_empty() {
            return None;
        }
        let end = f.offset.checked_add(f.length)?;
        let first = f.offset.div_ceil(pl);
        // The torrent's last piece is short: at the torrent's end it still lies inside.
        let last = if end == self.total_length {
            end.div_ceil(pl)
        } else {
            end / pl
        };
        if first >= last {
            return None;
        }
        let pieces = self
            .pieces
            .get(usize::try_from(first).ok()?..usize::try_from(last).ok()?)?;
        let at = first * pl - f.offset;
        let digests = pieces.iter().map(|p| p.to_vec()).collect();
        Some(UnitHashes::run(UnitAlgo::Sha1, at, pl, digests))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use junction_core::swarm::{MemStore, Swarm, SwarmSink};
    use junction_core::{NetworkId, RangeSet, TransferSink};
    use sha1::{Digest, Sha1};

    use super::*;
    use crate::wire::metainfo::Metainfo;

    const PL: usize = 16384;

    /// A torrent of three files of `lens` bytes (their bytes concatenated are `data`).
    fn torrent(lens: [usize; 3], data: &[u8]) -> Metainfo {
        let mut info = b"d5:filesl".to_vec();
        for (i, len) in lens.iter().enumerate() {
            info.extend_from_slice(format!("d6:lengthi{len}e4:pathl6:f{i}.binee").as_bytes());
        }
        let pieces: Vec<u8> = data.chunks(PL).flat_map(Sha1::digest).collect();
        info.extend_from_slice(
            format!("e4:name1:t12:piece lengthi{PL}e6:pieces{}:", pieces.len()).as_bytes(),
        );
        info.extend_from_slice(&pieces);
        info.push(b'e');
        let mut t = b"d4:info".to_vec();
        t.extend_from_slice(&info);
        t.push(b'e');
        Metainfo::parse(&t).unwrap()
    }

    #[test]
    fn the_pieces_inside_one_file_check_a_transfer_of_that_file_alone() {
        // f0 ends 1000 bytes into piece 1; f1 ends 1000 bytes into piece 5; f2 ends the
        // torrent 1000 bytes into its short last piece, 7.
        let lens = [PL + 1000, 4 * PL, 2 * PL];
        let data: Vec<u8> = (0..lens.iter().sum::<usize>())
            .map(|i| (i * 31 + i / 977) as u8)
            .collect();
        let m = torrent(lens, &data);
        let info = &m.info;
        // f1: pieces 2, 3 and 4 lie wholly inside it, from byte PL - 1000 of the file.
        let u = info.file_units(1).unwrap();
        assert_eq!((u.at, u.digests.len()), (Some(PL as u64 - 1000), 3));
        // f2 holds the torrent's short last piece: 6 and 7 are its.
        let last = info.file_units(2).unwrap();
        assert_eq!((last.at, last.digests.len()), (Some(PL as u64 - 1000), 2));
        // f0 holds piece 0 from its start.
        assert_eq!(info.file_units(0).unwrap().at, Some(0));
        assert!(info.file_units(3).is_none());

        // A transfer of f1 alone: bytes from any network are checked by those pieces.
        let f1 = &data[lens[0]..lens[0] + lens[1]];
        let size = f1.len() as u64;
        let swarm = Arc::new(Swarm::new(MemStore::new(size), size, RangeSet::new()));
        let ed2k = SwarmSink::new(swarm.clone(), NetworkId::ED2K);
        assert!(ed2k.learn(u.clone()));
        let mut junk = f1.to_vec();
        junk[2 * PL] ^= 1; // inside the second whole piece
        ed2k.write_from(7, 0, &junk).unwrap();
        assert!(ed2k.is_banned(7), "the liar is caught by a piece");
        let at = u.at.unwrap();
        let piece = |k: u64| at + k * PL as u64..at + (k + 1) * PL as u64;
        let verified = swarm.ledger().verified().clone();
        assert!(verified.contains(piece(0)) && verified.contains(piece(2)));
        assert_eq!(
            verified.covered(),
            2 * PL as u64,
            "the bad piece is wanted again"
        );
        ed2k.write_from(1, 0, f1).unwrap();
        let expect: RangeSet = std::iter::once(at..at + 3 * PL as u64).collect();
        assert_eq!(swarm.ledger().verified(), &expect, "head and tail wait");
        // The file's own hash (from a search hit or a link) checks the rest.
        let sha = Sha1::digest(f1).to_vec();
        assert!(ed2k.learn(UnitHashes::whole(UnitAlgo::Sha1, size, &sha)));
        assert!(swarm.ledger().complete());
        assert_eq!(swarm.store().bytes(), f1);
    }
}
