//! Captured aMule traffic (`tests/data/`, see its README): every frame each side sent
//! decodes as a message we model (a peer message between clients, a server message between
//! aMule and Junction's index server), and re-encodes to the bytes it came in (a compressed
//! frame: to the same payload once inflated).

use std::fmt::Debug;
use std::path::PathBuf;

use bytes::BytesMut;
use junction_ed2k::wire::server::{FileEntry, offer_magic, tcp_flags};
use junction_ed2k::wire::tag::ct;
use junction_ed2k::wire::{
    Frame, PeerMessage, Protocol, SearchExpr, ServerMessage, TagEncoding, TagsExt, frame,
};

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

/// Whether one of `encodings` gives frame `f` again (the payload of a packed frame inflated).
fn same_again(encodings: &[Frame], f: &Frame) -> bool {
    encodings.iter().any(|g| {
        g.opcode == f.opcode
            && g.payload == f.payload
            && (g.protocol == f.protocol || f.protocol == Protocol::Packed)
    })
}

/// A decoded message and what it encodes to with classic and with compact tags.
type Decoded<M> = (M, Vec<Frame>);

fn encodings(to_frame: impl Fn(TagEncoding) -> Option<Frame>) -> Vec<Frame> {
    [TagEncoding::Classic, TagEncoding::Compact]
        .into_iter()
        .filter_map(to_frame)
        .collect()
}

fn peer_message(f: &Frame) -> Result<Decoded<PeerMessage>, String> {
    let m = PeerMessage::decode_frame(f).map_err(|e| e.to_string())?;
    if matches!(m, PeerMessage::Unparsed { .. }) {
        return Err(format!("not modelled ({:?})", f.protocol));
    }
    let again = encodings(|enc| m.to_frame(enc).ok());
    Ok((m, again))
}

fn server_message(f: &Frame) -> Result<Decoded<ServerMessage>, String> {
    let m = ServerMessage::decode_frame(f).map_err(|e| e.to_string())?;
    let again = encodings(|enc| m.to_frame(enc).ok());
    Ok((m, again))
}

/// Decodes every frame of a recording with `decode` and checks each round trip.
fn decoded<M: Debug>(name: &str, decode: fn(&Frame) -> Result<Decoded<M>, String>) -> Vec<M> {
    frames(name)
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (m, again) = decode(f)
                .unwrap_or_else(|e| panic!("{name} frame {i} (opcode {:#04x}): {e}", f.opcode));
            assert!(
                same_again(&again, f),
                "{name} frame {i}: {m:?} re-encodes differently"
            );
            m
        })
        .collect()
}

/// The messages' names (their variants, from their `Debug` form).
fn names<M: Debug>(messages: &[M]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            format!("{m:?}")
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// Asserts that `got` (the names of what `who` sent) has each of `want`.
fn sent_each(who: &str, got: &[String], want: &[&str]) {
    for w in want {
        assert!(got.iter().any(|m| m == w), "{who} sent no {w}: {got:?}");
    }
}

/// Junction downloads a compressible file of one part and 5,000 bytes from aMule 2.3.3,
/// with its AICH root: what aMule sent covers the hello answer, the file's status, its
/// hashset, AICH recovery data and compressed parts.
#[test]
fn junction_downloads_from_amule() {
    let name = "01-junction-downloads-from-amule";
    let ours = names(&decoded(&format!("{name}.a2b.bin"), peer_message));
    let amule = names(&decoded(&format!("{name}.b2a.bin"), peer_message));
    sent_each(
        "Junction",
        &ours,
        &["Hello", "HashsetRequest", "RequestParts"],
    );
    sent_each(
        "aMule",
        &amule,
        &[
            "HelloAnswer",
            "FileStatus",
            "HashsetAnswer",
            "AichAnswer",
            "CompressedPart",
        ],
    );
}

/// aMule 2.3.3 logs into Junction's index server, offers its files, searches for a file
/// Junction shares, downloads it from the results and asks the server for its sources.
#[test]
fn amule_logs_into_junction_server() {
    let name = "02-amule-logs-into-junction-server";
    let amule = decoded(&format!("{name}.a2b.bin"), server_message);
    let server = decoded(&format!("{name}.b2a.bin"), server_message);
    sent_each(
        "aMule",
        &names(&amule),
        &["LoginRequest", "OfferFiles", "SearchRequest", "GetSources"],
    );
    sent_each(
        "the server",
        &names(&server),
        &[
            "Message",
            "IdChange",
            "ServerStatus",
            "ServerIdent",
            "SearchResult",
            "FoundSources",
        ],
    );

    // The login comes first, with aMule's nick; the server gives aMule a HighID (it
    // connected back) and says it compresses.
    let Some(ServerMessage::LoginRequest(login)) = amule.first() else {
        panic!(
            "aMule's first message is not its login: {:?}",
            amule.first()
        );
    };
    assert_eq!(
        login.tags.string_of(ct::NAME).map(|n| n.to_string()),
        Some("amule-interop".to_owned())
    );
    let id = server.iter().find_map(|m| match m {
        ServerMessage::IdChange(c) => Some(*c),
        _ => None,
    });
    let id = id.expect("no ID change");
    assert!(!id.client_id.is_low_id(), "{id:?}");
    assert_ne!(id.tcp_flags.unwrap_or(0) & tcp_flags::COMPRESSION, 0);

    // aMule offers its files as complete (the magic ID and port for a server that
    // compresses), the 10 MiB one among them.
    let offered: Vec<&FileEntry> = amule
        .iter()
        .filter_map(|m| match m {
            ServerMessage::OfferFiles(f) => Some(f),
            _ => None,
        })
        .flatten()
        .collect();
    let big = offered
        .iter()
        .find(|f| f.name().map(|n| n.to_string()).as_deref() == Some("amulesrc big.bin"))
        .expect("aMule did not offer amulesrc big.bin");
    assert_eq!(big.size(), Some(10 * 1024 * 1024 + 4321));
    assert_eq!(big.client_id.0, offer_magic::COMPLETE_ID);
    assert_eq!(big.port, offer_magic::COMPLETE_PORT);

    // aMule's search finds Junction's file, and aMule asks for the sources of that file.
    assert!(
        amule.contains(&ServerMessage::SearchRequest(SearchExpr::keywords(
            "junctioncap"
        )))
    );
    let found: Vec<&FileEntry> = server
        .iter()
        .filter_map(|m| match m {
            ServerMessage::SearchResult(r) => Some(&r.files),
            _ => None,
        })
        .flatten()
        .collect();
    let [hit] = found[..] else {
        panic!("not one search result: {found:?}");
    };
    assert_eq!(
        hit.name().map(|n| n.to_string()).as_deref(),
        Some("junctioncap small.bin")
    );
    assert_eq!(hit.size(), Some(300_000));
    let asked = amule.iter().any(|m| {
        matches!(m, ServerMessage::GetSources(r)
            if r.iter().any(|r| r.hash == hit.hash && r.size == 300_000))
    });
    assert!(asked, "aMule did not ask for the sources of {:?}", hit.hash);
    let sources = server.iter().find_map(|m| match m {
        ServerMessage::FoundSources { hash, sources } if *hash == hit.hash => Some(sources),
        _ => None,
    });
    let sources = sources.expect("no sources for the file found");
    assert_eq!(sources.len(), 1, "Junction is the one source: {sources:?}");
}
