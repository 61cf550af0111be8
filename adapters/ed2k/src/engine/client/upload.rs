//! The upload queue of one peer connection: the client's place in the queue and its rank
//! message, the slot it is granted, the blocks served in that slot (sent by `block.rs`), and
//! the hold on a bridged file (one the gateway fetches from the other networks while the
//! client waits).
//!
//! It knows the connection only as a [`Link`] (where its messages go), so `peer.rs`, which
//! runs the connection, uses this module and not the other way round.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::{Shared, SharedFile};
use crate::engine::net::{ConnError, send};
use crate::wire::hash::BLOCK_SIZE;
use crate::wire::peer::ByteRange;
use crate::wire::{Frame, Hash16, PeerMessage, TagEncoding};

mod block;

/// How long a hash-set request for a bridged file is held while the gateway fetches it
/// (aMule asks for the hash set before it queues). A request still unanswered then is
/// left unanswered: "file not found" would put Junction on aMule's dead-source list for
/// 45 minutes.
const HASHSET_HOLD: Duration = Duration::from_secs(600);
/// aMule drops a connection on which nothing arrived for 40 s (`CONNECTION_TIMEOUT`,
/// reset by any packet): a client waiting on a bridged file is told its queue rank again
/// this often, which aMule only records.
const QUEUE_KEEPALIVE: Duration = Duration::from_secs(25);
/// How often a queued client's bridged file is looked for among the shares.
pub(super) const PENDING_POLL: Duration = Duration::from_millis(500);

/// Largest single range we serve in one request slot (eMule rejects > 3 blocks).
const MAX_SERVED_RANGE: u64 = 3 * BLOCK_SIZE;
/// How many served blocks a slot remembers to skip re-listed requests.
const SERVED_MEMORY: usize = 32;

/// Where the queue's messages go: the connection's writer, in the tag encoding and the
/// rank message its client reads.
pub(super) struct Link<'a> {
    pub tx: &'a mpsc::Sender<Frame>,
    pub enc: TagEncoding,
    /// An eMule-compatible client (reads `QueueRanking`, not `QueueRank`).
    pub emule: bool,
    pub limit: Duration,
}

impl Link<'_> {
    pub(super) async fn send(&self, m: &PeerMessage) -> Result<(), ConnError> {
        send(self.tx, m.to_frame(self.enc)?, self.limit).await
    }

    /// The client's place in the upload queue, in the message its client reads.
    fn queue_rank(&self, s: &Shared) -> PeerMessage {
        let rank = s.queued.load(Ordering::Relaxed) + 1;
        let rank = u16::try_from(rank).unwrap_or(u16::MAX);
        if self.emule {
            PeerMessage::QueueRanking(rank)
        } else {
            PeerMessage::QueueRank(rank.into())
        }
    }
}

/// One connection's upload state.
pub(super) struct Upload {
    pub file: Option<Arc<SharedFile>>,
    pub permit: Option<OwnedSemaphorePermit>,
    /// Queued for a slot (counted in `Shared::queued`).
    pub waiting: bool,
    /// Blocks served in this slot, newest last (at most `SERVED_MEMORY`). eMule and aMule
    /// re-list their still-pending blocks in every `OP_REQUESTPARTS` (a sliding window of
    /// three), so a block already sent is skipped, as eMule's uploader does.
    served: VecDeque<(Hash16, u64, u64)>,
    /// A bridged file this client is queued for until the gateway has it, and when it
    /// was last told its queue rank.
    pub pending: Option<(Hash16, tokio::time::Instant)>,
}

impl Upload {
    pub fn new() -> Self {
        Self {
            file: None,
            permit: None,
            waiting: false,
            served: VecDeque::new(),
            pending: None,
        }
    }

    pub fn end_slot(&mut self) {
        self.permit = None;
        self.served.clear();
    }

    /// Was this block already sent in this slot?
    pub fn was_served(&self, key: &(Hash16, u64, u64)) -> bool {
        self.served.contains(key)
    }

    pub fn mark_served(&mut self, key: (Hash16, u64, u64)) {
        if self.served.len() == SERVED_MEMORY {
            self.served.pop_front();
        }
        self.served.push_back(key);
    }

    /// `OP_REQUESTPARTS`: sends each requested block of a shared file in the slot this
    /// client holds, skipping blocks already sent in it (ignored without a slot).
    pub async fn send_parts(
        &mut self,
        s: &Shared,
        link: &Link<'_>,
        compression: bool,
        peer: SocketAddr,
        hash: Hash16,
        ranges: &[ByteRange],
    ) -> Result<(), ConnError> {
        if self.permit.is_none() {
            tracing::info!(peer = %peer, "part request without an upload slot; ignored");
            return Ok(());
        }
        let Some(f) = s.file(&hash) else {
            return link.send(&PeerMessage::FileNotFound(hash)).await;
        };
        self.file = Some(f.clone());
        for r in ranges.iter().filter(|r| !r.is_empty()) {
            if r.end > f.size || r.len() > MAX_SERVED_RANGE {
                return Err(ConnError::Protocol(format!(
                    "bad part request {}..{} for a {} byte file",
                    r.start, r.end, f.size
                )));
            }
            let key = (hash, r.start, r.end);
            if self.was_served(&key) {
                tracing::trace!(peer = %peer, start = r.start, end = r.end, "block already sent; re-listed request skipped");
                continue;
            }
            tracing::trace!(peer = %peer, start = r.start, end = r.end, "serving block");
            block::send_block(s, link, compression, &f, r.start, r.end).await?;
            self.mark_served(key);
        }
        Ok(())
    }

    /// Every [`PENDING_POLL`] while a bridged file is pending: once the gateway shares it
    /// the client queues for a slot as usual; until then it is told its rank again every
    /// [`QUEUE_KEEPALIVE`].
    pub async fn poll_pending(
        &mut self,
        s: &Shared,
        link: &Link<'_>,
        peer: SocketAddr,
    ) -> Result<(), ConnError> {
        let Some((hash, told)) = self.pending else {
            return Ok(());
        };
        // The bridged file is complete and shared: queue for a slot as usual.
        if let Some(f) = s.file(&hash) {
            tracing::info!(%peer, name = %f.name, "bridged file ready for a queued client");
            self.pending = None;
            self.file = Some(f);
            self.waiting = true;
            s.queued.fetch_add(1, Ordering::Relaxed);
        } else if told.elapsed() >= QUEUE_KEEPALIVE {
            self.pending = Some((hash, tokio::time::Instant::now()));
            link.send(&link.queue_rank(s)).await?;
        }
        Ok(())
    }

    /// A queued client got a slot.
    pub async fn granted(
        &mut self,
        s: &Shared,
        link: &Link<'_>,
        permit: OwnedSemaphorePermit,
    ) -> Result<(), ConnError> {
        self.waiting = false;
        s.queued.fetch_sub(1, Ordering::Relaxed);
        self.permit = Some(permit);
        link.send(&PeerMessage::AcceptUploadRequest).await
    }

    /// `OP_STARTUPLOADREQ`: a slot now if one is free, else a place in the queue; for a
    /// bridged file, a place held until the gateway has it.
    pub async fn start(
        &mut self,
        s: &Shared,
        link: &Link<'_>,
        hash: Option<Hash16>,
    ) -> Result<(), ConnError> {
        if let Some(h) = hash {
            match s.file(&h) {
                Some(f) => self.file = Some(f),
                None if s.on_demand.offers.want(&h).is_some() => {
                    // Queued until the gateway has fetched the file for it.
                    if self.pending.is_none() {
                        self.pending = Some((h, tokio::time::Instant::now()));
                        link.send(&link.queue_rank(s)).await?;
                    }
                    return Ok(());
                }
                None => return link.send(&PeerMessage::FileNotFound(h)).await,
            }
        }
        if self.file.is_none() {
            return Ok(());
        }
        if self.permit.is_some() {
            link.send(&PeerMessage::AcceptUploadRequest).await?;
        } else if let Ok(p) = s.upload_slots.clone().try_acquire_owned() {
            self.permit = Some(p);
            link.send(&PeerMessage::AcceptUploadRequest).await?;
        } else if !self.waiting {
            self.waiting = true;
            let m = link.queue_rank(s);
            s.queued.fetch_add(1, Ordering::Relaxed);
            link.send(&m).await?;
        }
        Ok(())
    }

    /// The connection ends: it leaves the queue.
    pub fn leave(&self, s: &Shared) {
        if self.waiting {
            s.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A bridged file once the gateway has it and shares it (waiting at most [`HASHSET_HOLD`],
/// the connection kept alive meanwhile).
pub(super) async fn hold(
    s: &Shared,
    link: &Link<'_>,
    hash: &Hash16,
) -> Result<Option<Arc<SharedFile>>, ConnError> {
    if s.on_demand.offers.want(hash).is_none() {
        return Ok(None);
    }
    let start = tokio::time::Instant::now();
    let mut told = start;
    while start.elapsed() < HASHSET_HOLD {
        tokio::select! {
            () = s.cancel.cancelled() => return Ok(None),
            () = tokio::time::sleep(PENDING_POLL) => {}
        }
        if let Some(f) = s.file(hash) {
            return Ok(Some(f));
        }
        if told.elapsed() >= QUEUE_KEEPALIVE {
            told = tokio::time::Instant::now();
            link.send(&link.queue_rank(s)).await?;
        }
    }
    Ok(None)
}
