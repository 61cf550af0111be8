//! One HTTP exchange with a source, as the range worker and the THEX fetch both make it:
//! the request out and the response head in, each counted and under its deadline; and an
//! error body skipped, so the connection can be used again.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::plan::Ctx;
use super::{BODY_STALL, RESPONSE_TIMEOUT};
use crate::engine::error::ServentError;
use crate::engine::net::{WRITE_TIMEOUT, read_head};
use crate::wire::http::{HttpHead, RequestHead, ResponseHead};

/// Sends `req` and reads the response's head, both counted; `what` names each for a
/// timeout.
pub(super) async fn exchange(
    ctx: &Ctx,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    req: &RequestHead,
    what: (&'static str, &'static str),
) -> Result<ResponseHead, ServentError> {
    let bytes = req.to_bytes();
    timeout(WRITE_TIMEOUT, s.write_all(&bytes))
        .await
        .map_err(|_| ServentError::Timeout(what.0))??;
    ctx.shared.stats.add_out(bytes.len() as u64);
    let resp = read_head(s, buf, what.1, RESPONSE_TIMEOUT, ResponseHead::parse).await?;
    ctx.shared.stats.add_in(resp.to_bytes().len() as u64);
    Ok(resp)
}

/// Reads past a response body of `len` bytes (an error page), at most 1 MiB.
pub(super) async fn skip_body(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    len: u64,
) -> Result<(), ServentError> {
    if len > 1 << 20 {
        return Err(ServentError::Protocol("large error body".into()));
    }
    let mut left = len;
    let take = left.min(buf.len() as u64);
    let _ = buf.split_to(usize::try_from(take).unwrap_or(0));
    left -= take;
    let mut tmp = [0u8; 4096];
    while left > 0 {
        let n = timeout(BODY_STALL, s.read(&mut tmp))
            .await
            .map_err(|_| ServentError::Timeout("body"))??;
        if n == 0 {
            return Err(ServentError::Closed("body"));
        }
        left = left.saturating_sub(n as u64);
    }
    Ok(())
}
