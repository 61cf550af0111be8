//! The bridge: every download Junction finishes is read once for every hash any network
//! names it by, linked in the identity graph (so later hits merge and later transfers
//! find sources on every network), and offered on the networks the config names, the
//! way every P2P client shares its incoming folder.

mod demand;
mod recent;

use std::collections::HashSet;

use junction_core::ContentId;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use crate::transfer::{State, TransferInfo};
use crate::{Gateway, GatewayError, Result};

pub use demand::OnDemand;

/// The networks `share_downloads` names, checked against the ones this gateway runs.
pub fn offer_networks(gw: &Gateway) -> Result<Vec<String>> {
    let running: Vec<String> = gw.networks.iter().map(|n| n.id().to_string()).collect();
    let wanted = &gw.config.share_downloads;
    if wanted.iter().any(|w| w == "all") {
        return Ok(running);
    }
    for w in wanted {
        if !running.contains(w) {
            return Err(GatewayError::Invalid(format!(
                "gateway.share_downloads names {w:?}; use \"all\", [] or some of: {}",
                running.join(", ")
            )));
        }
    }
    Ok(wanted.clone())
}

/// Adopts every finished download, those finished before start-up first.
pub async fn run(gw: Gateway, offer_on: Vec<String>) {
    let mut events = gw.transfers.subscribe();
    let mut done: HashSet<String> = HashSet::new();
    let mut backlog = gw.transfers.list();
    loop {
        let t = match backlog.pop() {
            Some(t) => t,
            None => tokio::select! {
                e = events.recv() => match e {
                    Ok(e) if !e.removed => e.transfer,
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
                () = gw.closing.cancelled() => return,
            },
        };
        // Hashing a large file takes a while; a stopping gateway does not wait for it.
        tokio::select! {
            () = adopt(&gw, &t, &offer_on, &mut done) => {}
            () = gw.closing.cancelled() => return,
        }
    }
}

async fn adopt(gw: &Gateway, t: &TransferInfo, offer_on: &[String], done: &mut HashSet<String>) {
    if t.state != State::Complete {
        return;
    }
    if t.path.is_dir() {
        return adopt_folder(gw, t, offer_on, done).await;
    }
    if !done.insert(t.id.clone()) {
        return;
    }
    // Adopted in an earlier run: sharing again at start-up has offered it already.
    if gw.shares.record(&t.path).ok().flatten().is_some() {
        return;
    }
    let span = tracing::info_span!("adopt_download", id = %t.id, name = %t.name);
    let adopted = gw.shares.adopt_download(&t.path, &t.content, offer_on);
    match adopted.instrument(span).await {
        Ok(all) if all.hashes().count() > t.content.hashes().count() => {
            if let Err(e) = gw.transfers.add_hashes(&t.id, &all) {
                tracing::warn!(error = %e, "could not record the download's hashes");
            }
            tracing::info!(
                hashes = all.hashes().count(),
                "download hashed for every network"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "finished download not adopted"),
    }
}

/// A folder of files (a multi-file torrent): BitTorrent seeds it as it is, and each file
/// wanted and verified is hashed and offered on its own, as the other networks know files
/// one by one. Files chosen later are adopted when the transfer completes again.
async fn adopt_folder(
    gw: &Gateway,
    t: &TransferInfo,
    offer_on: &[String],
    done: &mut HashSet<String>,
) {
    // An empty file is nothing any network can fetch.
    let ready = t
        .files
        .iter()
        .filter(|f| f.wanted && f.size > 0 && f.bytes_verified == f.size);
    for f in ready {
        let path = t.path.join(&f.path);
        let key = format!("{}/{}", t.id, f.path.display());
        if done.contains(&key) || gw.shares.record(&path).ok().flatten().is_some() {
            continue;
        }
        let span = tracing::info_span!("adopt_download", id = %t.id, file = %f.path.display());
        // Nothing names the file alone yet: its hashes come from this read.
        let fetched_by = ContentId::new(Some(f.size));
        let adopted = gw.shares.adopt_download(&path, &fetched_by, offer_on);
        // A failure (the file busy, a read error) is tried again when the transfer is next
        // reported complete.
        match adopted.instrument(span).await {
            Ok(all) => {
                done.insert(key);
                tracing::info!(
                    hashes = all.hashes().count(),
                    "file of a folder hashed for every network"
                );
            }
            Err(e) => tracing::warn!(error = %e, "file of a finished folder not adopted"),
        }
    }
}
