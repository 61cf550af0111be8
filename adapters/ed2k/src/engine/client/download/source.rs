//! Where a source is (an address, or a LowID reached by callback), the list of a download's
//! sources with their back-off, and the task that connects to one and runs the download
//! protocol.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::DlError;
use super::parts::Download;
use super::peer_session::drive;
use crate::engine::client::Shared;
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
    pub(super) fn parse(addr: &junction_core::PeerAddr) -> Option<Src> {
        match *addr {
            junction_core::PeerAddr::LowId(v) => {
                (ClientId(v).is_low_id() && v != 0).then_some(Src::Low(v))
            }
            junction_core::PeerAddr::Direct(std::net::SocketAddr::V4(a)) => {
                (a.port() != 0).then_some(Src::High(a))
            }
            _ => None,
        }
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
    let cancel = s.cancel.clone();
    // in the source's span, which names the peer
    junction_core::task::spawn(tracing::Span::current(), cancel, async move {
        if let Err(e) = peer::run(s2, conn, Some(dtx)).await {
            tracing::debug!(error = %e, "download connection ended");
        }
    });
    let r = drive(&dl, &ctx, caps, drx, key).await;
    // Its parts no longer count toward rarity.
    dl.sink.availability(key, None);
    r
}

/// A source's turn: its key (the download knows the peer by it, for bans), how often it
/// failed, and when it may be tried again.
struct SrcState {
    key: u64,
    tries: u32,
    next_try: Instant,
    active: bool,
}

/// The sources of one download, each tried again after a back-off.
pub(super) struct Sources {
    map: HashMap<Src, SrcState>,
    next_key: u64,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            next_key: 1,
        }
    }
}

impl Sources {
    /// Adds a source unless it is this client, is known already, or 1,000 are.
    pub(super) fn add(&mut self, s: &Shared, src: Src) {
        let me = s.id();
        let mine = match src {
            Src::Low(id) => me.is_low_id() && id == me.0,
            Src::High(a) => {
                !me.is_low_id() && ClientId::from_ipv4(*a.ip()) == me && a.port() == s.port
            }
        };
        if !mine && !self.map.contains_key(&src) && self.map.len() < 1000 {
            self.map.insert(
                src,
                SrcState {
                    key: self.next_key,
                    tries: 0,
                    next_try: Instant::now(),
                    active: false,
                },
            );
            self.next_key += 1;
        }
    }

    /// A source's task ended: it is tried again 2 s after it finished, or after 5 s times
    /// the number of its failures.
    pub(super) fn ended(&mut self, src: Src, res: Result<(), DlError>) {
        let Some(st) = self.map.get_mut(&src) else {
            return;
        };
        st.active = false;
        match res {
            Ok(()) => st.next_try = Instant::now() + Duration::from_secs(2),
            Err(e) => {
                tracing::debug!(?src, error = %e, "source failed");
                st.tries += 1;
                st.next_try = Instant::now() + Duration::from_secs(5) * st.tries;
            }
        }
    }

    /// Starts a task for each source whose turn it is (not running, not failed five
    /// times, not banned), up to `max_peers_per_download` tasks.
    pub(super) fn start_due(
        &mut self,
        dl: &Arc<Download>,
        tasks: &mut JoinSet<(Src, Result<(), DlError>)>,
        now: Instant,
    ) {
        let max = dl.s.cfg.max_peers_per_download.max(1);
        for (src, st) in self.map.iter_mut() {
            if tasks.len() >= max {
                break;
            }
            if st.active || st.next_try > now || st.tries >= 5 || dl.banned(st.key) {
                continue;
            }
            st.active = true;
            let (dl2, src2, key) = (dl.clone(), *src, st.key);
            let span = tracing::debug_span!("ed2k_source", src = ?src2);
            tasks.spawn(async move { (src2, source_task(dl2, src2, key).await) }.instrument(span));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        let parse = |text: &str| Src::parse(&text.parse().unwrap());
        assert_eq!(parse("lowid:5"), Some(Src::Low(5)));
        assert_eq!(parse("lowid:0"), None);
        assert_eq!(parse("lowid:99999999"), None);
        assert_eq!(
            parse("127.0.0.1:4662"),
            Some(Src::High("127.0.0.1:4662".parse().unwrap()))
        );
        assert_eq!(parse("127.0.0.1:0"), None);
        assert_eq!(parse("[::1]:4662"), None, "eD2k peers are IPv4");
        assert_eq!(
            parse("push:00000000000000000000000000000001@1.1.1.1:1"),
            None
        );
        assert_eq!(Src::from_id(ClientId(7), 0), Some(Src::Low(7)));
        assert_eq!(Src::from_id(ClientId(0), 0), None);
    }
}
