//! Reaching a source: a direct connection, or a push (sent through the core) that a
//! firewalled source answers with `GIV`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;
use tracing::debug;

use super::plan::Ctx;
use super::source::SourceInfo;
use crate::servent::conn::CONNECT_TIMEOUT;
use crate::servent::core::{Command, CoreMsg};
use crate::servent::error::ServentError;

/// Wait for a pushed servent's `GIV`.
const GIV_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn open(
    info: &SourceInfo,
    ctx: &Ctx,
) -> Result<(TcpStream, BytesMut), ServentError> {
    let wait = if info.push {
        Duration::from_secs(5)
    } else {
        CONNECT_TIMEOUT
    };
    let direct =
        crate::servent::conn::connect_from(ctx.shared.cfg.listen, SocketAddr::V4(info.addr), wait)
            .await;
    let err = match direct {
        Ok(s) => {
            s.set_nodelay(true)?;
            return Ok((s, BytesMut::new()));
        }
        Err(e) => e,
    };
    let Some(servent) = info.servent else {
        return Err(err);
    };
    debug!(%err, "direct connect failed; asking for a push");
    let (tx, rx) = oneshot::channel();
    ctx.core
        .send(CoreMsg::Cmd(Command::Push {
            servent,
            index: info.index.unwrap_or(0),
            reply: tx,
        }))
        .await
        .map_err(|_| ServentError::Shutdown)?;
    timeout(GIV_TIMEOUT, rx)
        .await
        .map_err(|_| ServentError::Timeout("GIV"))?
        .map_err(|_| ServentError::Timeout("GIV"))
}
