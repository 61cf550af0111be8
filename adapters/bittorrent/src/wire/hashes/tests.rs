use bytes::{Bytes, BytesMut};
use junction_core::hashing::bt::V2Hasher;
use proptest::prelude::*;

use super::*;
use crate::wire::{Message, MessageDecoder};

fn req(index: u32, length: u32, proof_layers: u32) -> HashRequest {
    HashRequest {
        pieces_root: [0xAB; 32],
        base_layer: 2,
        index,
        length,
        proof_layers,
    }
}

#[test]
fn golden_frames() {
    let r = req(4, 2, 3);
    let mut want = vec![0, 0, 0, 49, 21];
    want.extend_from_slice(&[0xAB; 32]);
    want.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 3]);
    assert_eq!(&Message::HashRequest(r).to_bytes()[..], &want[..]);
    want[4] = 23;
    assert_eq!(&Message::HashReject(r).to_bytes()[..], &want[..]);

    let h = Hashes {
        request: r,
        hashes: vec![[1; 32], [2; 32]],
    };
    let bytes = Message::Hashes(h.clone()).to_bytes();
    assert_eq!(&bytes[..5], &[0, 0, 0, 49 + 64, 22]);
    assert_eq!(&bytes[53..85], &[1; 32]);
    assert_eq!(&bytes[85..], &[2; 32]);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(
        MessageDecoder::default().decode(&mut buf).unwrap(),
        Some(Message::Hashes(h))
    );
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    for n in [0usize, 1, 31, 47, 49, 80] {
        let p = vec![0u8; n];
        assert!(HashRequest::decode(21, &p).is_err(), "{n}");
    }
    // A hashes payload: 48 bytes and whole hashes only, and not too many of them.
    for n in [0usize, 47, 48 + 1, 48 + 33, 48 + 32 * (MAX_HASHES + 1)] {
        let p = Bytes::from(vec![0u8; n]);
        assert!(Hashes::decode(22, &p).is_err(), "{n}");
    }
    let ok = Bytes::from(vec![0u8; 48 + 32 * MAX_HASHES]);
    assert_eq!(Hashes::decode(22, &ok).unwrap().hashes.len(), MAX_HASHES);
}

/// The data of a file of `size` bytes, and its tree as the torrent maker builds it.
fn file(size: usize, piece_length: u32) -> (Vec<u8>, junction_core::hashing::bt::V2Tree) {
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut h = V2Hasher::new();
    h.update(&data);
    (data.clone(), h.finish(u64::from(piece_length)).unwrap())
}

#[test]
fn piece_hashes_and_roots_match_the_torrent_makers_tree() {
    let pl = 64 * 1024;
    // Seven pieces and a bit: the last piece is short, the layer is padded to 8.
    let (data, tree) = file(7 * 65536 + 5000, pl);
    for (i, chunk) in data.chunks(pl as usize).enumerate() {
        assert_eq!(piece_hash(chunk, pl), tree.piece_layer[i], "piece {i}");
    }
    assert_eq!(root_from_layer(&tree.piece_layer, pl), tree.pieces_root);
    // A file of one piece or less has no layer: its root is over its own leaves.
    let (small, t) = file(16384 + 1, pl);
    assert_eq!(small_file_root(&small), t.pieces_root);
    assert_ne!(
        piece_hash(&small, pl),
        t.pieces_root,
        "padded to a piece, not a power"
    );
    assert_eq!(piece_layer_height(pl), 2);
    assert_eq!(pad_hash(0), [0; 32]);
}

#[test]
fn answers_carry_the_proof_to_the_root() {
    let pl = 16 * 1024;
    // 11 pieces: the layer is padded to 16, four layers above it.
    let (_, tree) = file(11 * 16384 - 3, pl);
    let layer = &tree.piece_layer;
    let t = LayerTree::new(layer, 0);
    assert_eq!(t.root(), tree.pieces_root);
    for (index, length) in [(0, 2), (2, 2), (8, 4), (8, 8), (0, 16), (10, 2), (12, 4)] {
        let r = HashRequest {
            pieces_root: tree.pieces_root,
            base_layer: 0,
            index,
            length,
            proof_layers: 3,
        };
        let hashes = t.answer(&r).unwrap();
        assert_eq!(
            hashes.len(),
            length as usize + (4 - length.trailing_zeros()) as usize
        );
        let msg = Hashes { request: r, hashes };
        let base = verify(&msg, &tree.pieces_root, 4).expect("proves");
        for (i, h) in base.iter().enumerate() {
            let want = layer.get(index as usize + i).copied().unwrap_or([0; 32]);
            assert_eq!(*h, want, "{index}+{i}");
        }
        // One flipped bit anywhere breaks the proof.
        for at in 0..msg.hashes.len() {
            let mut bad = msg.clone();
            bad.hashes[at][0] ^= 1;
            assert_eq!(verify(&bad, &tree.pieces_root, 4), None, "{index} {at}");
        }
    }
    // Requests we do not answer.
    let r = |base_layer, index, length| HashRequest {
        pieces_root: tree.pieces_root,
        base_layer,
        index,
        length,
        proof_layers: 3,
    };
    assert_eq!(t.answer(&r(1, 0, 2)), Err(HashRequestError::Layer));
    assert_eq!(t.answer(&r(0, 0, 3)), Err(HashRequestError::Length));
    assert_eq!(t.answer(&r(0, 0, 1024)), Err(HashRequestError::Length));
    assert_eq!(t.answer(&r(0, 2, 4)), Err(HashRequestError::Index));
    assert_eq!(t.answer(&r(0, 16, 2)), Err(HashRequestError::Index));
    assert_eq!(
        t.answer(&r(0, u32::MAX - 1, 2)),
        Err(HashRequestError::Index)
    );
}

fn arb_request() -> impl Strategy<Value = HashRequest> {
    (any::<[u8; 32]>(), any::<[u32; 4]>()).prop_map(|(pieces_root, [b, i, l, p])| HashRequest {
        pieces_root,
        base_layer: b,
        index: i,
        length: l,
        proof_layers: p,
    })
}

proptest! {
    #[test]
    fn hash_messages_round_trip(
        r in arb_request(),
        hashes in proptest::collection::vec(any::<[u8; 32]>(), 0..20),
        which in 0u8..3,
    ) {
        let m = match which {
            0 => Message::HashRequest(r),
            1 => Message::HashReject(r),
            _ => Message::Hashes(Hashes { request: r, hashes }),
        };
        let mut buf = BytesMut::from(&m.to_bytes()[..]);
        prop_assert_eq!(MessageDecoder::default().decode(&mut buf).unwrap(), Some(m));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn any_payload_decodes_or_errs(id in 21u8..=23, p in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut frame = vec![id];
        frame.extend_from_slice(&p);
        if let Ok(m) = Message::decode_frame(Bytes::from(frame.clone())) {
            prop_assert_eq!(&m.to_bytes()[4..], &frame[..]);
        }
    }
}
