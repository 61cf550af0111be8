//! Requesting blocks of one peer and receiving them, plain or compressed, with the AICH
//! block hashes asked on the way.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use junction_core::RangeSet;
use tokio::sync::mpsc;

use super::DlError;
use super::messages::{out, recv, wait_accept};
use super::parts::Download;
use crate::engine::client::peer::PeerCaps;
use crate::engine::client::recovery::Asked;
use crate::engine::net::ConnError;
use crate::wire::hash::{AichHash, BLOCK_SIZE};
use crate::wire::peer::ByteRange;
use crate::wire::{Frame, PartStatus, PeerMessage};

/// Largest compressed block we buffer (a block plus zlib's worst-case overhead).
const MAX_PACKED_BLOCK: u64 = 3 * BLOCK_SIZE + 4096;

pub(super) struct Pending {
    pub(super) range: Range<u64>,
    got: RangeSet,
    packed: Vec<u8>,
    /// The block's packets as they came, written in one piece once the block is whole.
    chunks: Vec<(u64, Bytes)>,
}

/// Requests blocks and receives them, keeping up to two `OP_REQUESTPARTS` (six blocks) in
/// flight so the uploader never waits for our next request.
#[allow(clippy::too_many_arguments)]
pub(super) async fn transfer(
    dl: &Arc<Download>,
    tx: &mpsc::Sender<Frame>,
    caps: PeerCaps,
    rx: &mut mpsc::Receiver<PeerMessage>,
    peer: u64,
    status: &mut PartStatus,
    pending: &mut Vec<Pending>,
    requeues: &mut u32,
) -> Result<(), DlError> {
    let t = dl.s.cfg.peer_timeout;
    let hash = dl.hash;
    // One AICH request at a time per peer, as eMule keeps it; none once it could not answer.
    let mut aich_asked = Asked {
        recovery: &dl.aich,
        part: None,
    };
    let mut aich_ok = caps.aich;
    loop {
        if pending.is_empty() {
            if dl.is_done() {
                let _ = out(tx, caps, &PeerMessage::EndOfDownload(hash), t).await;
                return Ok(());
            }
            if dl.banned(peer) {
                let _ = out(tx, caps, &PeerMessage::CancelTransfer, t).await;
                return Err(DlError::Banned);
            }
        }
        if pending.len() <= 3 && !dl.banned(peer) {
            let blocks = dl.pick(peer, status, 3);
            if !blocks.is_empty() {
                let ranges = byte_ranges(&blocks)?;
                if aich_ok && aich_asked.part.is_none() {
                    ask_aich(dl, tx, caps, &blocks, &mut aich_asked).await?;
                }
                pending.extend(blocks.into_iter().map(Pending::new));
                out(tx, caps, &PeerMessage::RequestParts { hash, ranges }, t).await?;
            }
        }
        if pending.is_empty() {
            // Everything left is in flight elsewhere or being verified.
            wait_for_blocks(dl, rx, status).await?;
            continue;
        }
        let m = recv(rx, t, "part data").await?;
        if let PeerMessage::SendingPart { data, .. } | PeerMessage::CompressedPart { data, .. } = &m
        {
            // Under a download cap, the reader behind `rx` stalls while this waits, so
            // TCP slows the peer down.
            dl.s.download_limit.take(data.len() as u64).await;
        }
        match m {
            PeerMessage::SendingPart {
                hash: h,
                range,
                data,
            } if h == hash => receive_plain(dl, peer, pending, range, data)?,
            PeerMessage::CompressedPart {
                hash: h,
                start,
                packed_total,
                data,
            } if h == hash => receive_compressed(dl, peer, pending, start, packed_total, &data)?,
            PeerMessage::FileStatus { parts, .. } if parts.check_for_size(dl.size).is_ok() => {
                *status = parts;
            }
            PeerMessage::AichAnswer {
                hash: h,
                part,
                master,
                recovery,
            } if h == hash && aich_asked.part == Some(part) => {
                aich_asked.part = None;
                if !aich_answered(dl, part, &master, &recovery) {
                    aich_ok = false;
                }
            }
            PeerMessage::AichAnswerFailed(h) if h == hash => {
                if let Some(part) = aich_asked.part.take() {
                    dl.aich.unanswered(part);
                }
                aich_ok = false;
            }
            PeerMessage::OutOfPartRequests
            | PeerMessage::CancelTransfer
            | PeerMessage::QueueRank(_)
            | PeerMessage::QueueRanking(_) => {
                // The peer ended our slot: give the blocks back and ask again.
                let left: Vec<Range<u64>> = pending.drain(..).map(|p| p.range).collect();
                dl.release(peer, &left);
                *requeues += 1;
                if *requeues > 3 {
                    return Ok(());
                }
                out(tx, caps, &PeerMessage::StartUploadRequest(Some(hash)), t).await?;
                wait_accept(dl, rx, status).await?;
            }
            PeerMessage::FileNotFound(_) => return Err(DlError::NotFound),
            _ => {}
        }
    }
}

impl Pending {
    fn new(range: Range<u64>) -> Self {
        Self {
            range,
            got: RangeSet::new(),
            packed: Vec::new(),
            chunks: Vec::new(),
        }
    }
}

/// The wire ranges of up to three picked blocks (an `OP_REQUESTPARTS` carries three; unused
/// ones stay empty).
fn byte_ranges(blocks: &[Range<u64>]) -> Result<[ByteRange; 3], DlError> {
    let mut ranges = [ByteRange::default(); 3];
    for (i, b) in blocks.iter().enumerate() {
        ranges[i] = ByteRange::new(b.start, b.end).map_err(|e| DlError::Other(e.to_string()))?;
    }
    Ok(ranges)
}

/// Asks the peer for the AICH block hashes of one part of `blocks`, if one is still to be
/// asked ([`Recovery::next_request`](crate::engine::client::recovery::Recovery::next_request)).
async fn ask_aich(
    dl: &Download,
    tx: &mpsc::Sender<Frame>,
    caps: PeerCaps,
    blocks: &[Range<u64>],
    asked: &mut Asked<'_>,
) -> Result<(), DlError> {
    let starts = blocks.iter().map(|b| b.start);
    if let Some((part, master)) = dl.aich.next_request(dl.size, starts) {
        asked.part = Some(part);
        let hash = dl.hash;
        let t = dl.s.cfg.peer_timeout;
        out(
            tx,
            caps,
            &PeerMessage::AichRequest { hash, part, master },
            t,
        )
        .await?;
    }
    Ok(())
}

/// Waits, with nothing requested of this peer, until the download changes (a block or a
/// part was given back), a second passes, or the peer says which parts it has now.
async fn wait_for_blocks(
    dl: &Download,
    rx: &mut mpsc::Receiver<PeerMessage>,
    status: &mut PartStatus,
) -> Result<(), DlError> {
    let notified = dl.changed.notified();
    tokio::select! {
        () = notified => {}
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
        m = rx.recv() => match m {
            None => return Err(ConnError::Closed.into()),
            Some(PeerMessage::FileStatus { parts, .. }) if parts.check_for_size(dl.size).is_ok() => *status = parts,
            Some(_) => {}
        },
    }
    Ok(())
}

/// A packet of plain block data: kept until its block is whole, then written.
fn receive_plain(
    dl: &Download,
    peer: u64,
    pending: &mut Vec<Pending>,
    range: ByteRange,
    data: Bytes,
) -> Result<(), DlError> {
    let i = pending
        .iter()
        .position(|p| range.start >= p.range.start && range.end <= p.range.end)
        .ok_or_else(|| {
            DlError::Other(format!("unrequested data {}..{}", range.start, range.end))
        })?;
    pending[i].got.insert(range.start..range.end);
    pending[i].chunks.push((range.start, data));
    if pending[i].got.contains(pending[i].range.clone()) {
        // The block goes to disk in one write of whole pages (blocks start on
        // page boundaries), which the sink can keep out of the page cache.
        let mut p = pending.remove(i);
        let block = assemble(&p.range, &mut p.chunks);
        dl.sink.write_from(peer, p.range.start, &block)?;
        dl.block_done(peer, p.range);
    }
    Ok(())
}

/// A packet of a compressed block: kept until all `packed_total` bytes came, then inflated
/// to exactly the block's length and written.
fn receive_compressed(
    dl: &Download,
    peer: u64,
    pending: &mut Vec<Pending>,
    start: u64,
    packed_total: u32,
    data: &[u8],
) -> Result<(), DlError> {
    let i = pending
        .iter()
        .position(|p| p.range.start == start)
        .ok_or_else(|| DlError::Other(format!("unrequested compressed block at {start}")))?;
    let p = &mut pending[i];
    let total = u64::from(packed_total);
    if total > MAX_PACKED_BLOCK || (p.packed.len() + data.len()) as u64 > total {
        return Err(DlError::Other(
            "compressed block larger than announced".into(),
        ));
    }
    p.packed.extend_from_slice(data);
    if p.packed.len() as u64 == total {
        let want = usize::try_from(p.range.end - p.range.start).unwrap_or(0);
        let plain = crate::wire::frame::inflate(&p.packed, want)
            .map_err(|e| DlError::Other(e.to_string()))?;
        if plain.len() != want {
            return Err(DlError::Other(format!(
                "compressed block inflates to {} bytes, {want} expected",
                plain.len()
            )));
        }
        dl.sink.write_from(peer, start, &plain)?;
        let p = pending.remove(i);
        dl.block_done(peer, p.range);
    }
    Ok(())
}

/// The peer's AICH recovery data for `part`: true if it proved the block hashes, false if
/// it was refused (then this peer is asked no more).
fn aich_answered(dl: &Download, part: u16, master: &AichHash, recovery: &[u8]) -> bool {
    match dl.aich.answered(dl.size, &*dl.sink, part, master, recovery) {
        Ok(()) => {
            tracing::debug!(part, "AICH block hashes verified");
            true
        }
        Err(why) => {
            tracing::info!(part, %why, "AICH recovery data refused");
            false
        }
    }
}

/// One block's bytes from the packets that brought it (each inside `range`, together
/// covering it; overlaps carry the same bytes).
fn assemble(range: &Range<u64>, chunks: &mut [(u64, Bytes)]) -> Vec<u8> {
    chunks.sort_by_key(|c| c.0);
    let len = usize::try_from(range.end - range.start).unwrap_or(0);
    let mut block = Vec::with_capacity(len);
    for (start, data) in chunks.iter() {
        let at = usize::try_from(start - range.start).unwrap_or(usize::MAX);
        if at > block.len() {
            block.resize(at.min(len), 0);
        }
        if let Some(rest) = data.get(block.len().saturating_sub(at)..) {
            block.extend_from_slice(rest);
        }
    }
    block.resize(len, 0);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_assembled_from_packets_in_any_order() {
        let mut chunks = vec![
            (107, Bytes::from_static(b"world")),
            (100, Bytes::from_static(b"hello, ")),
            (105, Bytes::from_static(b", w")), // overlaps, same bytes
        ];
        assert_eq!(assemble(&(100..112), &mut chunks), b"hello, world");
    }
}
