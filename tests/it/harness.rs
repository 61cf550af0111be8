//! Starting a gateway on 127.0.0.1 with test networks, and a gRPC client to it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gateway::{Gateway, GatewayConfig};
use junction_core::DynNetwork;
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub mod http;

pub struct Running {
    pub addr: SocketAddr,
    pub gw: Gateway,
    pub client: GatewayClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

pub async fn start(dir: &Path, networks: Vec<Arc<dyn DynNetwork>>, token: Option<&str>) -> Running {
    start_with(dir, networks, |c| c.token = token.map(str::to_owned)).await
}

/// Starts a gateway with its config adjusted by `adjust`; the client is plain HTTP/2,
/// so a TLS gateway needs its own client.
pub async fn start_with(
    dir: &Path,
    networks: Vec<Arc<dyn DynNetwork>>,
    adjust: impl FnOnce(&mut GatewayConfig),
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = GatewayConfig {
        listen: addr,
        data_dir: dir.to_path_buf(),
        search_timeout_secs: 5,
        ..Default::default()
    };
    adjust(&mut config);
    let tls = config.tls_cert.is_some();
    let gw = Gateway::open(config, networks).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = gw.clone();
    let server = tokio::spawn(async move {
        gateway::api::serve(served, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let client = match tls {
        // Never used for TLS gateways; a lazy channel avoids a handshake that would fail.
        true => GatewayClient::new(
            Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect_lazy(),
        ),
        false => GatewayClient::new(channel(addr).await),
    };
    Running {
        addr,
        gw,
        client,
        stop: Some(stop),
        server: Some(server),
    }
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

impl Running {
    /// Stops serving and shuts the gateway down, as Ctrl-C does.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
        self.gw.shutdown().await;
    }
}

/// Runs a search to its end and returns every event.
pub async fn search_all(
    client: &mut GatewayClient<Channel>,
    query: &str,
    timeout_ms: u32,
) -> Vec<pb::search_event::Event> {
    let req = pb::SearchRequest {
        query: query.into(),
        timeout_ms,
        ..Default::default()
    };
    let mut stream = client.search(req).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(ev) = stream.next().await {
        out.push(ev.unwrap().event.unwrap());
    }
    out
}

/// Polls a transfer until `done` says so, or fails the test after `secs`.
pub async fn wait_until(
    client: &mut GatewayClient<Channel>,
    id: &str,
    secs: u64,
    done: impl Fn(&pb::Transfer) -> bool,
) -> pb::Transfer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let t = client
            .get_transfer(pb::TransferRef { id: id.into() })
            .await
            .unwrap()
            .into_inner();
        if done(&t) {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "transfer never got there: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a transfer of `source` on any network, with the files numbered in `files` (none:
/// all of them).
pub async fn start_source(
    client: &mut GatewayClient<Channel>,
    source: pb::start_transfer_request::Source,
    files: Vec<u32>,
) -> pb::Transfer {
    client
        .start_transfer(pb::StartTransferRequest {
            source: Some(source),
            networks: vec![],
            files,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Starts a transfer of a link, on any network.
pub async fn start_link(client: &mut GatewayClient<Channel>, link: String) -> pb::Transfer {
    start_source(
        client,
        pb::start_transfer_request::Source::Link(link),
        vec![],
    )
    .await
}

/// Starts a transfer of a search item, on any network.
pub async fn start_item(client: &mut GatewayClient<Channel>, item_id: &str) -> pb::Transfer {
    let source = pb::start_transfer_request::Source::ItemId(item_id.into());
    start_source(client, source, vec![]).await
}

/// Starts a transfer of a `.torrent`'s files numbered in `files` (none: all of them).
pub async fn start_torrent(
    client: &mut GatewayClient<Channel>,
    torrent: Vec<u8>,
    files: Vec<u32>,
) -> pb::Transfer {
    let source = pb::start_transfer_request::Source::Torrent(torrent);
    start_source(client, source, files).await
}
