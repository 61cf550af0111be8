//! Downloads: one orchestrator per fetch that finds sources (request sources, callbacks for
//! LowIDs) and runs a driver per peer. Drivers pick blocks the transfer grants them (its
//! sink is shared with the other networks). The hashset a peer sends is checked against the
//! ed2k hash and given to the sink, which verifies every part whoever fetched it; a peer
//! whose bytes fail is dropped.

mod blocks;
mod messages;
mod parts;
mod peer_session;
mod source;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use junction_core::{FetchEvent, FetchEvents, FetchRequest, HashKind, NetworkError, TransferSink};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Shared;
use super::recovery::Recovery;
use super::server_session::Cmd;
use crate::engine::net::ConnError;
use crate::wire::hash::PART_SIZE;
use crate::wire::{ClientId, Hash16};
use parts::{Download, Inner};
use source::{Sources, Src};

/// Why a driver stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DlError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("peer does not have the file")]
    NotFound,
    #[error("peer sent corrupt data and was dropped")]
    Banned,
    #[error("sink: {0}")]
    Sink(#[from] junction_core::SinkError),
    #[error("{0}")]
    Other(String),
}

/// Starts a fetch; events end when it has nothing more to do.
pub(crate) async fn start(
    s: Arc<Shared>,
    req: FetchRequest,
    sink: Arc<dyn TransferSink>,
) -> Result<FetchEvents, NetworkError> {
    let hash: Hash16 = req
        .id
        .get(HashKind::Ed2k)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| NetworkError::Invalid("an eD2k fetch needs an ed2k hash".into()))?;
    let size = if req.size > 0 {
        req.size
    } else {
        req.id.size.unwrap_or(0)
    };
    if size == 0 || size > crate::wire::hash::MAX_FILE_SIZE {
        return Err(NetworkError::Invalid(format!("bad eD2k file size {size}")));
    }
    if sink.size() != size {
        return Err(NetworkError::Invalid(format!(
            "sink holds {} bytes, the file has {size}",
            sink.size()
        )));
    }
    let (etx, erx) = mpsc::channel(64);
    let dl = Arc::new(Download {
        s: s.clone(),
        hash,
        size,
        sink,
        aich: Recovery::new(req.id.get(HashKind::Aich).and_then(|h| h.try_into().ok())),
        st: Mutex::new(Inner::default()),
        changed: Notify::new(),
        events: etx,
    });
    // One part: its MD4 is the ed2k hash. Larger files give the sink their part MD4s
    // once a peer sent the hashset.
    if size < PART_SIZE && !dl.learn(&[hash]) {
        return Err(NetworkError::Invalid(
            "eD2k fetches only into a sink that checks parts".into(),
        ));
    }
    let initial: Vec<Src> = req
        .sources
        .iter()
        .filter_map(|x| Src::parse(&x.address))
        .collect();
    let span = tracing::info_span!("ed2k_fetch", hash = %crate::wire::hash::to_hex(&hash), size);
    let cancel = dl.s.cancel.clone();
    junction_core::task::spawn(span, cancel, orchestrate(dl, initial));
    Ok(tokio_stream::wrappers::ReceiverStream::new(erx).boxed())
}

async fn orchestrate(dl: Arc<Download>, initial: Vec<Src>) {
    let s = dl.s.clone();
    let cancel = s.cancel.child_token();
    let _drop_guard = cancel.clone().drop_guard();
    let (src_tx, mut src_rx) = mpsc::channel::<Vec<(ClientId, u16)>>(16);
    let mut sources = Sources::default();
    for src in initial {
        sources.add(&s, src);
    }
    let mut tasks: JoinSet<(Src, Result<(), DlError>)> = JoinSet::new();
    let mut next_query = Instant::now();
    let mut idle_since = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_peers = u32::MAX;
    loop {
        if dl.is_done() {
            dl.note("complete: every part verified".into());
            break;
        }
        let active = tasks.len() as u32;
        if active != last_peers {
            last_peers = active;
            let _ = dl.events.try_send(FetchEvent::Peers(active));
        }
        if active > 0 {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= s.cfg.fetch_idle_timeout {
            dl.note("no usable eD2k source left".into());
            break;
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = dl.events.closed() => break,
            Some(list) = src_rx.recv() => {
                for (id, port) in list {
                    if let Some(src) = Src::from_id(id, port) {
                        sources.add(&s, src);
                    }
                }
                continue;
            }
            Some(j) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((src, res)) = j {
                    sources.ended(src, res);
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if now >= next_query {
            next_query = now + s.cfg.source_requery;
            let _ = s.server_session.try_send(Cmd::GetSources {
                hash: dl.hash,
                size: dl.size,
                sources: src_tx.clone(),
            });
        }
        sources.start_due(&dl, &mut tasks, now);
    }
    let _ = dl.events.try_send(FetchEvent::Peers(0));
    tasks.shutdown().await;
}

/// Finds sources for a hash through the server session.
pub(crate) async fn locate(
    s: &Arc<Shared>,
    hash: Hash16,
    size: u64,
) -> Result<mpsc::Receiver<Vec<(ClientId, u16)>>, NetworkError> {
    let (tx, rx) = mpsc::channel(8);
    s.server_session
        .send(Cmd::GetSources {
            hash,
            size,
            sources: tx,
        })
        .await
        .map_err(|_| NetworkError::Shutdown)?;
    Ok(rx)
}
