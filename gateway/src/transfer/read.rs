//! `ReadContent`: verified bytes from any offset, waiting for ranges still in flight.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::FileSink;
use crate::error::{GatewayError, Result};

/// Bytes per chunk sent to a reader.
const CHUNK: usize = 256 * 1024;

/// Chunks as (offset, bytes); an error ends the stream.
pub type ContentStream = mpsc::Receiver<Result<(u64, Bytes)>>;

pub(super) fn start(
    sink: Arc<FileSink>,
    id: &str,
    offset: u64,
    length: u64,
) -> Result<ContentStream> {
    let size = sink.size();
    if offset > size {
        return Err(GatewayError::Invalid(format!(
            "offset {offset} is past the end of transfer {id} ({size} bytes)"
        )));
    }
    let end = match length {
        0 => size,
        n => offset.saturating_add(n).min(size),
    };
    let (tx, rx) = mpsc::channel(4);
    let id = id.to_owned();
    tokio::spawn(async move {
        let mut changed = sink.subscribe();
        let mut pos = offset;
        while pos < end {
            let want = CHUNK.min((end - pos) as usize);
            match sink.read_verified(pos, want) {
                Ok(Some(bytes)) => {
                    let n = bytes.len() as u64;
                    if tx.send(Ok((pos, bytes))).await.is_err() {
                        break;
                    }
                    pos += n;
                }
                Ok(None) => {
                    // Not verified yet: ask for this range first, then wait for progress.
                    sink.set_priority(Some(pos));
                    if sink.is_retired() {
                        let _ = tx
                            .send(Err(GatewayError::NotFound(format!(
                                "transfer {id} was cancelled"
                            ))))
                            .await;
                        break;
                    }
                    tokio::select! {
                        r = changed.changed() => if r.is_err() {
                            let _ = tx.send(Err(GatewayError::NotFound(format!("transfer {id} is gone")))).await;
                            break;
                        },
                        () = tx.closed() => break,
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    break;
                }
            }
        }
        sink.set_priority(None);
    });
    Ok(rx)
}
