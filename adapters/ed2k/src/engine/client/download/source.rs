//! Where a source is (an address, or a LowID reached by callback), and the task that
//! connects to it and runs the download protocol.

use std::net::SocketAddrV4;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::DlError;
use super::parts::Download;
use super::peer_session::drive;
use crate::engine::client::peer;
use crate::engine::client::server_session::Cmd;
use crate::engine::net::ConnError;
use crate::wire::ClientId;

/// Where a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Src {
    High(SocketAddrV4),
    Low(u32),
}

impl Src {
    pub(super) fn parse(addr: &str) -> Option<Src> {
        if let Some(id) = addr.strip_prefix("lowid:") {
            return id
                .parse()
                .ok()
                .filter(|&v| ClientId(v).is_low_id() && v != 0)
                .map(Src::Low);
        }
        addr.parse::<SocketAddrV4>()
            .ok()
            .filter(|a| a.port() != 0)
            .map(Src::High)
    }
    pub(super) fn from_id(id: ClientId, port: u16) -> Option<Src> {
        if id.is_low_id() {
            (id.0 != 0).then_some(Src::Low(id.0))
        } else {
            (port != 0).then(|| Src::High(SocketAddrV4::new(id.to_ipv4(), port)))
        }
    }
}

pub(super) async fn source_task(dl: Arc<Download>, src: Src, key: u64) -> Result<(), DlError> {
    let s = dl.s.clone();
    let conn = match src {
        Src::High(a) => peer::connect(&s, a).await?,
        Src::Low(id) => {
            if s.id().is_low_id() || s.port == 0 {
                return Err(DlError::Other(
                    "a LowID source cannot reach us: we are LowID too".into(),
                ));
            }
            let (tx, rx) = oneshot::channel();
            s.callbacks().insert(id, tx);
            if s.server_session
                .try_send(Cmd::Callback(ClientId(id)))
                .is_err()
            {
                s.callbacks().remove(&id);
                return Err(DlError::Other("server session busy".into()));
            }
            match tokio::time::timeout(s.cfg.callback_timeout, rx).await {
                Ok(Ok(c)) => c,
                _ => {
                    s.callbacks().remove(&id);
                    return Err(DlError::Conn(ConnError::Timeout("LowID callback")));
                }
            }
        }
    };
    let (dtx, drx) = mpsc::channel(64);
    let caps = conn.caps;
    let ctx = conn.tx.clone();
    let s2 = s.clone();
    tokio::spawn(
        async move {
            if let Err(e) = peer::run(s2, conn, Some(dtx)).await {
                tracing::debug!(error = %e, "download connection ended");
            }
        }
        .in_current_span(),
    );
    let r = drive(&dl, &ctx, caps, drx, key).await;
    // Its parts no longer count toward rarity.
    dl.sink.availability(key, None);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(Src::parse("lowid:5"), Some(Src::Low(5)));
        assert_eq!(Src::parse("lowid:0"), None);
        assert_eq!(Src::parse("lowid:99999999"), None);
        assert_eq!(
            Src::parse("127.0.0.1:4662"),
            Some(Src::High("127.0.0.1:4662".parse().unwrap()))
        );
        assert_eq!(Src::parse("127.0.0.1:0"), None);
        assert_eq!(Src::parse("junk"), None);
        assert_eq!(Src::from_id(ClientId(7), 0), Some(Src::Low(7)));
        assert_eq!(Src::from_id(ClientId(0), 0), None);
    }
}
