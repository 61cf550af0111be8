//! The download protocol with one peer: the file request, its part status and hashset, an
//! upload slot, then the block transfer.

use std::ops::Range;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::DlError;
use super::blocks::{Pending, transfer};
use super::messages::{out, recv, wait_accept};
use super::parts::Download;
use crate::engine::client::peer::PeerCaps;
use crate::wire::hash::PART_SIZE;
use crate::wire::{Frame, PartStatus, PeerMessage};

/// The download protocol with one peer over an established connection.
pub(super) async fn drive(
    dl: &Arc<Download>,
    tx: &mpsc::Sender<Frame>,
    caps: PeerCaps,
    mut rx: mpsc::Receiver<PeerMessage>,
    peer: u64,
) -> Result<(), DlError> {
    let t = dl.s.cfg.peer_timeout;
    let hash = dl.hash;
    if dl.size > u64::from(u32::MAX) && !caps.large_files {
        return Err(DlError::Other(
            "peer does not support files over 4 GiB".into(),
        ));
    }
    out(
        tx,
        caps,
        &PeerMessage::RequestFilename { hash, ext: None },
        t,
    )
    .await?;
    out(tx, caps, &PeerMessage::SetReqFileId(hash), t).await?;
    let mut name = false;
    let mut status: Option<PartStatus> = None;
    while !name || (status.is_none() && dl.size >= PART_SIZE) {
        match recv(&mut rx, t, "file request answers").await? {
            PeerMessage::FilenameAnswer { .. } => name = true,
            PeerMessage::FileNotFound(_) => return Err(DlError::NotFound),
            PeerMessage::FileStatus { parts, .. } => {
                parts
                    .check_for_size(dl.size)
                    .map_err(|e| DlError::Other(e.to_string()))?;
                status = Some(parts);
            }
            _ => {}
        }
    }
    let mut status = status.unwrap_or_else(|| PartStatus::new(0));
    if dl.needs_hashset() {
        out(tx, caps, &PeerMessage::HashsetRequest(hash), t).await?;
        loop {
            match recv(&mut rx, t, "hashset").await? {
                PeerMessage::HashsetAnswer { hash: h, parts } if h == hash => {
                    if !dl.set_hashset(parts) {
                        return Err(DlError::Other(
                            "peer sent a hashset that does not match the file hash".into(),
                        ));
                    }
                    break;
                }
                PeerMessage::FileNotFound(_) => return Err(DlError::NotFound),
                PeerMessage::FileStatus { parts, .. } if parts.check_for_size(dl.size).is_ok() => {
                    status = parts;
                }
                _ => {}
            }
        }
    }
    out(tx, caps, &PeerMessage::StartUploadRequest(Some(hash)), t).await?;
    wait_accept(dl, &mut rx, &mut status).await?;
    let mut requeues = 0;
    let mut pending: Vec<Pending> = Vec::new();
    let res = transfer(
        dl,
        tx,
        caps,
        &mut rx,
        peer,
        &mut status,
        &mut pending,
        &mut requeues,
    )
    .await;
    let left: Vec<Range<u64>> = pending.iter().map(|p| p.range.clone()).collect();
    if !left.is_empty() {
        dl.release(peer, &left);
    }
    res
}
