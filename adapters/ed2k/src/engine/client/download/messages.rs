//! Sending a message to the peer and awaiting its next one, with time limits; and waiting
//! for an upload slot at it.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::DlError;
use super::parts::Download;
use crate::engine::client::peer::PeerCaps;
use crate::engine::net::{ConnError, send};
use crate::wire::{Frame, PartStatus, PeerMessage};

pub(super) async fn recv(
    rx: &mut mpsc::Receiver<PeerMessage>,
    limit: Duration,
    what: &'static str,
) -> Result<PeerMessage, DlError> {
    match tokio::time::timeout(limit, rx.recv()).await {
        Err(_) => Err(ConnError::Timeout(what).into()),
        Ok(None) => Err(ConnError::Closed.into()),
        Ok(Some(m)) => Ok(m),
    }
}

pub(super) async fn out(
    tx: &mpsc::Sender<Frame>,
    caps: PeerCaps,
    m: &PeerMessage,
    limit: Duration,
) -> Result<(), DlError> {
    Ok(send(tx, m.to_frame(caps.enc()).map_err(ConnError::from)?, limit).await?)
}

/// Waits for an upload slot at the peer.
pub(super) async fn wait_accept(
    dl: &Download,
    rx: &mut mpsc::Receiver<PeerMessage>,
    status: &mut PartStatus,
) -> Result<(), DlError> {
    let deadline = Instant::now() + dl.s.cfg.queue_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match recv(rx, left, "an upload slot").await? {
            PeerMessage::AcceptUploadRequest => return Ok(()),
            PeerMessage::QueueRank(r) => dl.note(format!("queued at rank {r}")),
            PeerMessage::QueueRanking(r) => dl.note(format!("queued at rank {r}")),
            PeerMessage::FileNotFound(_) => return Err(DlError::NotFound),
            PeerMessage::FileStatus { parts, .. } if parts.check_for_size(dl.size).is_ok() => {
                *status = parts;
            }
            _ => {}
        }
    }
}
