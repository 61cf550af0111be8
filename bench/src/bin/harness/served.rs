//! The gateway the parts measure through, served on loopback as `junction serve` does, and
//! the steps they share: sharing a file on an adapter, waiting for a transfer.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use gateway::{Gateway, GatewayConfig};
use junction_core::{ContentId, DynNetwork, SharedItem};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use proto::v1::transfer::State;
use tonic::transport::Channel;

pub(super) struct Served {
    pub(super) gw: Gateway,
    pub(super) client: GatewayClient<Channel>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

/// Serves a gateway on a fresh loopback port, as `junction serve` does. With `nodelay`,
/// the listening socket has TCP_NODELAY, which Linux hands down to accepted connections:
/// the diagnostic for the first-item delay (the gateway itself does not set it).
pub(super) async fn serve(
    dir: &Path,
    networks: Vec<Arc<dyn DynNetwork>>,
    nodelay: bool,
) -> Result<Served> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_nodelay(nodelay)?;
    socket.bind(loopback())?;
    let listener = socket.listen(1024)?;
    let addr = listener.local_addr()?;
    let config = GatewayConfig {
        listen: addr,
        data_dir: dir.to_path_buf(),
        search_timeout_secs: 5,
        ..Default::default()
    };
    let gw = Gateway::open(config, networks).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = gw.clone();
    let server = tokio::spawn(async move {
        let done = async {
            let _ = stopped.await;
        };
        if let Err(e) = gateway::api::serve(served, listener, done).await {
            eprintln!("gateway API: {e}");
        }
    });
    let client = GatewayClient::connect(format!("http://{addr}")).await?;
    Ok(Served {
        gw,
        client,
        stop,
        server,
    })
}

impl Served {
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.gw.shutdown().await;
    }
}

/// Polls a transfer until it completes; fails on FAILED/CANCELLED or after `limit`.
pub(super) async fn wait_complete(
    client: &mut GatewayClient<Channel>,
    id: &str,
    limit: Duration,
) -> Result<pb::Transfer> {
    let deadline = Instant::now() + limit;
    loop {
        let t = client
            .get_transfer(pb::TransferRef { id: id.into() })
            .await?
            .into_inner();
        match t.state() {
            State::Complete => return Ok(t),
            State::Failed | State::Cancelled => bail!("transfer {id} ended: {t:?}"),
            _ if Instant::now() > deadline => bail!("transfer {id} not done after {limit:?}"),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

pub(super) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub(super) async fn share(net: &dyn DynNetwork, path: &Path) -> Result<ContentId> {
    Ok(net
        .share(SharedItem {
            path: path.to_path_buf(),
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: std::fs::metadata(path)?.len(),
            id: ContentId::new(None),
            hashes: None,
        })
        .await?)
}
