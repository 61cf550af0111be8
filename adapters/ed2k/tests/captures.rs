//! Captured aMule traffic (`tests/data/`, see its README): every frame each side sent
//! decodes as a peer message we model, and re-encodes to the bytes it came in (a compressed
//! frame: to the same payload once inflated).

use std::path::PathBuf;

use bytes::BytesMut;
use junction_ed2k::wire::{Frame, PeerMessage, Protocol, TagEncoding, frame};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The frames of one side's recording; the recording holds whole frames only.
fn frames(name: &str) -> Vec<Frame> {
    let bytes = std::fs::read(data_dir().join(name)).unwrap();
    let mut buf = BytesMut::from(&bytes[..]);
    let mut out = Vec::new();
    while let Some(f) = frame::decode(&mut buf).unwrap() {
        out.push(f);
    }
    assert!(
        buf.is_empty(),
        "{name}: {} bytes after the last frame",
        buf.len()
    );
    out
}

/// Whether `m`, encoded again, gives frame `f` (the payload of a packed frame inflated).
fn same_again(m: &PeerMessage, f: &Frame) -> bool {
    [TagEncoding::Classic, TagEncoding::Compact]
        .iter()
        .filter_map(|enc| m.to_frame(*enc).ok())
        .any(|g| {
            g.opcode == f.opcode
                && g.payload == f.payload
                && (g.protocol == f.protocol || f.protocol == Protocol::Packed)
        })
}

/// Decodes every frame of a recording, checks each round trip, and names the messages.
fn decoded(name: &str) -> Vec<String> {
    frames(name)
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let m = PeerMessage::decode_frame(f)
                .unwrap_or_else(|e| panic!("{name} frame {i} (opcode {:#04x}): {e}", f.opcode));
            assert!(
                !matches!(m, PeerMessage::Unparsed { .. }),
                "{name} frame {i}: opcode {:#04x} ({:?}) is not modelled",
                f.opcode,
                f.protocol
            );
            assert!(
                same_again(&m, f),
                "{name} frame {i}: {m:?} re-encodes differently"
            );
            let shown = format!("{m:?}");
            shown
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// Junction downloads a compressible file of one part and 5,000 bytes from aMule 2.3.3,
/// with its AICH root: what aMule sent covers the hello answer, the file's status, its
/// hashset, AICH recovery data and compressed parts.
#[test]
fn junction_downloads_from_amule() {
    let name = "01-junction-downloads-from-amule";
    let ours = decoded(&format!("{name}.a2b.bin"));
    let amule = decoded(&format!("{name}.b2a.bin"));
    for want in ["Hello", "HashsetRequest", "RequestParts"] {
        assert!(
            ours.iter().any(|m| m == want),
            "Junction sent no {want}: {ours:?}"
        );
    }
    for want in [
        "HelloAnswer",
        "FileStatus",
        "HashsetAnswer",
        "AichAnswer",
        "CompressedPart",
    ] {
        assert!(
            amule.iter().any(|m| m == want),
            "aMule sent no {want}: {amule:?}"
        );
    }
}
