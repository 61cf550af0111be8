//! Source requests and callbacks: the sources of a file (with Junction's own client first
//! for a bridged file), the callbacks a HighID client asks of a LowID one, and the unasked
//! ones the server makes for aMule (see `call_asker_back`).

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Shared, Who, frame, own_client, push};
use crate::engine::net::ConnError;
use crate::wire::server::{ObfuSource, Source, SourceRequest};
use crate::wire::{ClientId, Frame, Hash16, ServerMessage};

/// Sources returned per file (the count field is one byte).
const MAX_SOURCES: usize = 255;
/// How often one asker is called back unasked by one LowID source.
const CALL_BACK_EVERY: Duration = Duration::from_secs(300);
/// Most (asker, LowID) pairs remembered at once; beyond it no unasked callback is sent.
const MAX_CALLED_BACK: usize = 4096;

struct FoundSource {
    id: ClientId,
    port: u16,
    user_hash: Hash16,
}

/// `OP_GETSOURCES` (or its obfuscation form): the sources of each file asked for (at most
/// 64 files), and the unasked callbacks for the LowIDs among them.
pub(super) async fn answer(
    s: &Shared,
    tx: &mpsc::Sender<Frame>,
    who: Who,
    reqs: &[SourceRequest],
    obfu: bool,
) -> Result<(), ConnError> {
    for r in reqs.iter().take(64) {
        let msg = found_sources(s, r, who.key, obfu);
        push(tx, &msg).await?;
        call_asker_back(s, (who.key, who.id), who.peer, who.port, &msg);
    }
    Ok(())
}

fn found_sources(s: &Shared, r: &SourceRequest, requester: u64, obfu: bool) -> ServerMessage {
    let st = s.state();
    let mut list: Vec<FoundSource> = Vec::new();
    let mut listed = None;
    // A bridged file: Junction's own client, which fetches it for the asker.
    if let Some(on_demand) = &s.on_demand
        && on_demand.offers.get(&r.hash).is_some()
        && let Some((ckey, c)) = own_client(s, &st)
        && ckey != requester
    {
        on_demand.offers.want(&r.hash);
        listed = Some(ckey);
        list.push(FoundSource {
            id: c.id,
            port: c.port,
            user_hash: c.user_hash,
        });
    }
    if let Some(f) = st.index.get(&r.hash) {
        for (&ckey, _) in f.sources.iter() {
            if ckey == requester || listed == Some(ckey) {
                continue;
            }
            if let Some(c) = st.clients.get(&ckey) {
                list.push(FoundSource {
                    id: c.id,
                    port: c.port,
                    user_hash: c.user_hash,
                });
            }
            if list.len() >= MAX_SOURCES {
                break;
            }
        }
    }
    if obfu {
        ServerMessage::FoundSourcesObfu {
            hash: r.hash,
            sources: list
                .into_iter()
                .map(|c| ObfuSource {
                    client_id: c.id,
                    port: c.port,
                    crypt_options: crate::wire::server::CRYPT_USERHASH_FOLLOWS,
                    user_hash: Some(c.user_hash),
                })
                .collect(),
        }
    } else {
        ServerMessage::FoundSources {
            hash: r.hash,
            sources: list
                .into_iter()
                .map(|c| Source {
                    client_id: c.id,
                    port: c.port,
                })
                .collect(),
        }
    }
}

/// Asks each LowID source just listed to a HighID asker to connect to it, as the asker's
/// `OP_CALLBACKREQUEST` would. aMule 2.3.3 does not ask for that callback for a LowID it
/// already knows, e.g. one that has just downloaded from it (see adapters/ed2k/README.md);
/// the source's connection lets it ask for the file at once. Once per pair per
/// [`CALL_BACK_EVERY`].
fn call_asker_back(
    s: &Shared,
    asker: (u64, ClientId),
    peer: SocketAddrV4,
    port: u16,
    msg: &ServerMessage,
) {
    let ids: Vec<ClientId> = match msg {
        ServerMessage::FoundSources { sources, .. } => {
            sources.iter().map(|x| x.client_id).collect()
        }
        ServerMessage::FoundSourcesObfu { sources, .. } => {
            sources.iter().map(|x| x.client_id).collect()
        }
        _ => return,
    };
    if asker.1.is_low_id() || port == 0 {
        return;
    }
    let now = Instant::now();
    let mut st = s.state();
    st.called_back
        .retain(|_, t| now.duration_since(*t) < CALL_BACK_EVERY);
    for low in ids.into_iter().filter(|i| i.is_low_id()) {
        let Some(tx) = st
            .low_ids
            .get(&low.0)
            .and_then(|k| st.clients.get(k))
            .map(|c| c.tx.clone())
        else {
            continue;
        };
        if st.called_back.contains_key(&(asker.0, low.0)) || st.called_back.len() >= MAX_CALLED_BACK
        {
            continue;
        }
        let msg = ServerMessage::CallbackRequested {
            addr: SocketAddrV4::new(*peer.ip(), port),
            crypt: None,
        };
        if let Some(f) = frame(&msg)
            && tx.try_send(f).is_ok()
        {
            tracing::debug!(from = asker.1.0, to = low.0, "calling the asker back");
            st.called_back.insert((asker.0, low.0), now);
            st.unasked_callbacks += 1;
        }
    }
}

pub(super) async fn callback(
    s: &Shared,
    tx: &mpsc::Sender<Frame>,
    id: ClientId,
    peer: SocketAddrV4,
    key: u64,
    low_id: ClientId,
) -> Result<(), ConnError> {
    let target = {
        let st = s.state();
        let port = st.clients.get(&key).map_or(0, |c| c.port);
        st.low_ids
            .get(&low_id.0)
            .and_then(|k| st.clients.get(k))
            .map(|c| (c.tx.clone(), port))
    };
    match target {
        Some((ttx, port)) if !id.is_low_id() => {
            let msg = ServerMessage::CallbackRequested {
                addr: SocketAddrV4::new(*peer.ip(), port),
                crypt: None,
            };
            tracing::debug!(from = id.0, to = low_id.0, "relaying callback");
            if let Some(f) = frame(&msg)
                && ttx.try_send(f).is_ok()
            {
                return Ok(());
            }
            push(tx, &ServerMessage::CallbackFailed).await
        }
        _ => {
            tracing::debug!(from = id.0, to = low_id.0, "callback impossible");
            push(tx, &ServerMessage::CallbackFailed).await
        }
    }
}
