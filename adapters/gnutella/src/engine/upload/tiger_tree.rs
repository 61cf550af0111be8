//! THEX served: `GET /uri-res/N2X?<urn>` answered with the file's Tiger tree in DIME, and
//! the `X-Thex-URI` that points there.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tracing::debug;

use crate::engine::Shared;
use crate::engine::error::ServentError;
use crate::engine::net::write;
use crate::engine::shares::hash_file;
use crate::wire::http::{HttpHead, ResponseExt, ResponseHead};
use crate::wire::thex::encode_answer;
use crate::wire::urn::{Sha1Hash, TigerHash, Urn};
use junction_core::http::Headers;

/// `X-Thex-URI`: `/uri-res/N2X?urn:sha1:<SHA-1>;<TTH>` (gtk-gnutella `upload_thex_uri_add`).
pub fn thex_uri(sha1: &Sha1Hash, tth: &TigerHash) -> String {
    format!("/uri-res/N2X?{};{}", Urn::Sha1(*sha1), tth.to_base32())
}

/// Answer `GET /uri-res/N2X?<urn>` with the file's Tiger tree in DIME, at the depth
/// gtk-gnutella serves; `404` when we do not share it or have no TTH for it. The tree
/// of a file whose hashes came from a cache is built (one read) when first asked for.
pub(super) async fn serve_thex<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    shared: &Arc<Shared>,
    urn: &Urn,
    head_only: bool,
    close: bool,
) -> Result<(), ServentError> {
    let server = shared.cfg.user_agent.clone();
    let found = {
        let idx = shared.shares();
        let f = match (urn.sha1(), urn.tiger()) {
            (Some(h), _) => idx.by_sha1(&h),
            (None, Some(t)) => idx.by_tth(&t),
            (None, None) => None,
        };
        f.and_then(|f| {
            f.tth
                .map(|t| (f.sha1, t, f.size, f.path.clone(), f.tree.clone()))
        })
    };
    let tree = match found {
        None => None,
        Some((_, _, size, _, Some(tree))) => Some((tree, size)),
        Some((sha1, tth, size, path, None)) => {
            let computed = tokio::task::spawn_blocking(move || hash_file(&path, false))
                .await
                .ok()
                .and_then(Result::ok)
                .filter(|(n, _, l)| *n == size && l.root() == Some(tth));
            match computed {
                Some((_, _, level)) => {
                    shared
                        .shares_mut()
                        .set_tiger(&sha1, tth, Some(level.clone()));
                    Some((Arc::new(level), size))
                }
                None => {
                    debug!(%urn, "the shared file no longer has its Tiger tree root");
                    None
                }
            }
        }
    };
    let Some(body) = tree.and_then(|(t, size)| encode_answer(size, &t).ok()) else {
        return write(s, &ResponseHead::not_found(&server).to_bytes(), shared).await;
    };
    let mut h = Headers::new()
        .with("Server", &server)
        .with("Content-Type", "application/dime")
        .with("Content-Length", body.len().to_string());
    if close {
        h.push("Connection", "close");
    }
    write(s, &ResponseHead::new(200, "OK", h).to_bytes(), shared).await?;
    if !head_only {
        write(s, &body, shared).await?;
        s.flush().await?;
    }
    Ok(())
}
