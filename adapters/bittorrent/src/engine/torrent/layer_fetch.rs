//! Fetching a v2-only magnet's piece layers (BEP 52): the info dict names each file's root
//! only, and the hashes of its pieces come from peers, in runs of up to 512 asked with
//! `hash request`s, each answer proved against the root before it is kept. Until every
//! layer is in, no piece is fetched: none could be checked.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{ConnId, Metadata};
use crate::engine::sync::lock;
use crate::wire::hashes::{self, Hash, HashRequest, Hashes, MAX_REQUEST_HASHES};
use crate::wire::metainfo::{Info, V2Pieces};

/// A request unanswered for this long is asked of another peer.
const STALL: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct FileLayer {
    root: Hash,
    /// Pieces of the file: the real length of its layer.
    pieces: u32,
    /// Layers between the piece layer and the root.
    height: u32,
    /// Hashes per request: the padded layer's width, up to 512.
    run: u32,
    runs: Vec<Option<Vec<Hash>>>,
    asked: Vec<Option<(ConnId, Instant)>>,
}

/// The layers still missing, and who was asked for them.
#[derive(Debug)]
pub struct LayerFetch {
    base: u32,
    files: Vec<FileLayer>,
}

impl LayerFetch {
    /// The layers `info`'s files need (those longer than a piece); `None` when none do.
    pub fn new(info: &Info) -> Option<Self> {
        let pl = u64::from(info.piece_length);
        let files: Vec<FileLayer> = info
            .file_tree
            .iter()
            .filter_map(|f| {
                let root = f.pieces_root?;
                let pieces = u32::try_from(f.length.div_ceil(pl)).ok()?;
                (pieces > 1).then(|| {
                    let width = pieces.next_power_of_two();
                    let run = width.min(MAX_REQUEST_HASHES);
                    let n = pieces.div_ceil(run) as usize;
                    FileLayer {
                        root,
                        pieces,
                        height: width.trailing_zeros(),
                        run,
                        runs: vec![None; n],
                        asked: vec![None; n],
                    }
                })
            })
            .collect();
        (!files.is_empty()).then(|| Self {
            base: hashes::piece_layer_height(info.piece_length),
            files,
        })
    }

    /// The next run to ask `conn` for: one nobody was asked for, or whose asking stalled.
    pub fn next(&mut self, conn: ConnId) -> Option<HashRequest> {
        let now = Instant::now();
        for f in &mut self.files {
            for (i, (run, asked)) in f.runs.iter().zip(f.asked.iter_mut()).enumerate() {
                // Another peer after a stall; the same one (it rejected or went quiet)
                // only after twice as long, so a peer without the hashes is not asked
                // again at once, in a loop.
                let free = asked.is_none_or(|(c, at)| {
                    now.saturating_duration_since(at) > if c == conn { 2 * STALL } else { STALL }
                });
                if run.is_none() && free {
                    *asked = Some((conn, now));
                    // Fits: runs × run is under 2 × the piece count, a u32.
                    let index = i as u32 * f.run;
                    return Some(HashRequest {
                        pieces_root: f.root,
                        base_layer: self.base,
                        index,
                        length: f.run,
                        // Up to the layer below the root: the proof reaches the root.
                        proof_layers: f.height.saturating_sub(1),
                    });
                }
            }
        }
        None
    }

    /// Takes an answer if it proves against its file's root. Returns whether it did.
    pub fn answer(&mut self, h: &Hashes) -> bool {
        let r = &h.request;
        let Some(f) = self.files.iter_mut().find(|f| f.root == r.pieces_root) else {
            return false;
        };
        if r.base_layer != self.base || r.length != f.run || !r.index.is_multiple_of(f.run) {
            return false;
        }
        let i = (r.index / f.run) as usize;
        let (Some(slot), Some(base)) = (f.runs.get_mut(i), hashes::verify(h, &f.root, f.height))
        else {
            return false;
        };
        let real = f.pieces.saturating_sub(r.index).min(f.run) as usize;
        *slot = base.get(..real).map(<[Hash]>::to_vec);
        f.asked[i] = None;
        slot.is_some()
    }

    /// `conn` will not answer this request (a reject, hashes that did not prove): another
    /// peer may at once, `conn` itself after a while.
    pub fn release(&mut self, conn: ConnId, r: Option<&HashRequest>) {
        for f in &mut self.files {
            for (i, asked) in f.asked.iter_mut().enumerate() {
                let this = r.is_none_or(|r| r.pieces_root == f.root && r.index / f.run == i as u32);
                if this && asked.is_some_and(|(c, _)| c == conn) {
                    *asked = Instant::now().checked_sub(STALL).map(|at| (conn, at));
                }
            }
        }
    }

    /// Every layer, once all are in.
    pub fn layers(&self) -> Option<BTreeMap<Hash, Vec<Hash>>> {
        self.files
            .iter()
            .map(|f| {
                let layer: Option<Vec<Hash>> = f
                    .runs
                    .iter()
                    .map(Option::as_deref)
                    .collect::<Option<Vec<_>>>()
                    .map(|r| r.concat());
                layer.map(|l| (f.root, l))
            })
            .collect()
    }
}

impl Metadata {
    /// A v2-only torrent whose pieces cannot be checked yet: its layers are being fetched.
    pub fn awaits_layers(&self) -> bool {
        self.info.is_v2_only() && self.v2.get().is_none()
    }

    /// Takes a peer's `hashes` answer; once every layer is in, the torrent's pieces can be
    /// checked. Returns whether the answer was good.
    pub fn take_hashes(&self, h: &crate::wire::hashes::Hashes) -> bool {
        let mut fetch = lock(&self.layer_fetch);
        let Some(f) = fetch.as_mut() else {
            return false;
        };
        if !f.answer(h) {
            return false;
        }
        if let Some(layers) = f.layers() {
            match V2Pieces::new(&self.info, &layers) {
                Ok(v2) => {
                    info!(name = %self.info.name, "v2 piece layers received and proved");
                    let _ = self.v2.set(v2);
                    *fetch = None;
                }
                // Each run proved against its root, so this is not expected: start over.
                Err(e) => {
                    warn!(error = %e, "v2 piece layers do not check out");
                    *fetch = LayerFetch::new(&self.info);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hashes::LayerTree;
    use crate::wire::metainfo::V2Pieces;
    use junction_core::hashing::bt::V2Hasher;

    /// A v2-only info dict of one file of `len` bytes, and the file's piece layer.
    fn one_file(len: usize, pl: u32) -> (Info, Vec<Hash>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let mut h = V2Hasher::new();
        h.update(&data);
        let t = h.finish(u64::from(pl)).unwrap();
        let mut raw = format!("d9:file treed1:fd0:d6:lengthi{len}e11:pieces root32:").into_bytes();
        raw.extend_from_slice(&t.pieces_root);
        raw.extend_from_slice(
            format!("eee12:meta versioni2e4:name1:f12:piece lengthi{pl}ee").as_bytes(),
        );
        (Info::parse(&raw).unwrap(), t.piece_layer)
    }

    #[test]
    fn layers_come_in_runs_proved_against_the_root() {
        // 1,100 pieces of 16 KiB: three runs of 512 (the last mostly padding).
        let pl = 16 * 1024;
        let (info, layer) = one_file(1100 * 16384 - 7, pl);
        let tree = LayerTree::new(&layer, 0);
        let mut f = LayerFetch::new(&info).unwrap();
        let (a, b, c) = (f.next(1).unwrap(), f.next(2).unwrap(), f.next(1).unwrap());
        assert_eq!((a.index, b.index, c.index, a.length), (0, 512, 1024, 512));
        assert_eq!(
            a.proof_layers, 10,
            "2048 wide: the proof climbs to the root"
        );
        assert_eq!(f.next(3), None, "all asked");
        let answer = |r: &HashRequest| Hashes {
            request: *r,
            hashes: tree.answer(r).unwrap(),
        };
        // A wrong hash is refused and the run asked again of someone else.
        let mut bad = answer(&b);
        bad.hashes[3][0] ^= 1;
        assert!(!f.answer(&bad));
        f.release(2, Some(&b));
        assert_eq!(
            f.next(2),
            None,
            "not asked again of the peer that failed it, at once"
        );
        assert_eq!(f.next(3).map(|r| r.index), Some(512));
        for r in [a, b, c] {
            assert!(f.answer(&answer(&r)), "{}", r.index);
        }
        let layers = f.layers().unwrap();
        assert_eq!(layers.values().next().unwrap(), &layer);
        assert!(V2Pieces::new(&info, &layers).is_ok());
    }

    #[test]
    fn a_stalled_request_goes_to_another_peer_and_small_files_need_none() {
        let (info, _) = one_file(3 * 16384, 16384);
        let mut f = LayerFetch::new(&info).unwrap();
        let r = f.next(1).unwrap();
        assert_eq!((r.length, r.proof_layers), (4, 1));
        assert_eq!(f.next(2), None);
        f.files[0].asked[0] = Some((1, Instant::now() - STALL - Duration::from_secs(1)));
        assert_eq!(f.next(1), None, "not asked of the same peer again");
        assert!(f.next(2).is_some());
        assert!(f.layers().is_none());
        let (one_piece, _) = one_file(16384, 16384);
        assert!(LayerFetch::new(&one_piece).is_none());
    }
}
