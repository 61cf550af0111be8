//! A source's THEX (Tiger tree) answer: fetched once per transfer on an open connection,
//! checked against the TTH known before asking, and handed to the sink as a unit grid.

use bytes::BytesMut;
use junction_core::swarm::{UnitAlgo, UnitHashes};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use super::BODY_STALL;
use super::exchange::{exchange, skip_body};
use super::plan::Ctx;
use super::source::SourceInfo;
use crate::engine::error::ServentError;
use crate::wire::http::RequestHead;
use crate::wire::thex;

/// Longest `X-Thex-URI` path we follow.
const MAX_THEX_PATH: usize = 512;

/// The request path of an `X-Thex-URI` value (`<path>[;<root>]`); the root a source
/// announces there is never trusted.
pub(super) fn thex_path(v: &str) -> Option<String> {
    let p = v.split(';').next()?.trim();
    (p.starts_with('/') && p.len() <= MAX_THEX_PATH && p.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| p.to_owned())
}

/// Fetch the THEX tree at `path` on the open connection, check it against the TTH we
/// knew before asking, and give its deepest level to the sink as a unit grid.
/// `Ok(false)`: the source had no usable tree (ignored; the connection is fine).
#[allow(clippy::too_many_arguments)]
pub(super) async fn fetch_thex(
    info: &SourceInfo,
    ctx: &Ctx,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    host: &str,
    ua: &str,
    path: &str,
) -> Result<bool, ServentError> {
    let Some(root) = ctx.tth else {
        return Ok(false);
    };
    let req = RequestHead::new(
        "GET",
        path,
        junction_core::http::Headers::new()
            .with("Host", host)
            .with("User-Agent", ua),
    );
    let resp = exchange(ctx, s, buf, &req, ("THEX request", "THEX response")).await?;
    if resp.headers.get("Transfer-Encoding").is_some()
        || resp
            .headers
            .get("Content-Encoding")
            .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(ServentError::Protocol("encoded THEX answer".into()));
    }
    let len = resp
        .content_length()
        .ok_or_else(|| ServentError::Protocol("THEX answer without Content-Length".into()))?;
    if resp.code != 200 {
        skip_body(s, buf, len).await?;
        info!(source = %info.addr, code = resp.code, "no THEX tree from this source");
        return Ok(false);
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= thex::MAX_ANSWER)
        .ok_or_else(|| ServentError::Protocol(format!("THEX answer of {len} bytes")))?;
    let mut body = BytesMut::with_capacity(len);
    let from_buf = buf.len().min(len);
    body.extend_from_slice(&buf.split_to(from_buf));
    let mut tmp = [0u8; 16 * 1024];
    while body.len() < len {
        let want = (len - body.len()).min(tmp.len());
        let n = timeout(BODY_STALL, s.read(&mut tmp[..want]))
            .await
            .map_err(|_| ServentError::Timeout("THEX body"))??;
        if n == 0 {
            return Err(ServentError::Closed("THEX body"));
        }
        body.extend_from_slice(&tmp[..n]);
    }
    ctx.shared.stats.add_in(len as u64);
    let level = match thex::decode_answer(&body.freeze(), ctx.size, &root) {
        Ok(l) => l,
        Err(e) => {
            // Ignored: the source earns nothing for it.
            warn!(source = %info.addr, %e, "bad THEX tree ignored");
            return Ok(false);
        }
    };
    if level.nodes.len() < 2 {
        debug!(source = %info.addr, "THEX tree holds only the root");
        return Ok(false);
    }
    let units = UnitHashes::uniform(
        UnitAlgo::TigerTree,
        level.unit_len,
        level.nodes.iter().map(|n| n.0.to_vec()).collect(),
    );
    let learnt = ctx.sink.learn(units);
    info!(
        source = %info.addr,
        depth = level.depth,
        unit_len = level.unit_len,
        units = level.nodes.len(),
        learnt,
        "THEX tree checked against the known TTH"
    );
    Ok(learnt)
}
