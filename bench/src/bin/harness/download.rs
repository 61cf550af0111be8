//! Part 3: download throughput over loopback through each real network, against a raw TCP
//! copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use futures::StreamExt;
use junction_bench::proc::content;
use junction_core::{DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use proto::v1::search_event::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

use super::served::{loopback, serve, share, wait_complete};
use super::{MIB, Row, row};

/// Raw loopback copy rate: one TCP connection, 256 KiB writes and reads, in MB/s.
async fn loopback_copy(bytes: u64) -> Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = sock.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        anyhow::Ok(got)
    });
    let buf = content(256 * 1024, 5);
    let started = Instant::now();
    let mut sock = tokio::net::TcpStream::connect(addr).await?;
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(buf.len() as u64) as usize;
        sock.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    sock.shutdown().await?;
    let got = reader.await??;
    let secs = started.elapsed().as_secs_f64();
    if got != bytes {
        bail!("loopback copy moved {got} of {bytes} bytes");
    }
    Ok(bytes as f64 / secs / 1e6)
}

/// Searches `query` on one network until an item of `size` bytes is found there.
async fn find(
    client: &mut GatewayClient<Channel>,
    net: &str,
    query: &str,
    size: u64,
) -> Result<pb::Item> {
    for _ in 0..30 {
        let req = pb::SearchRequest {
            query: query.into(),
            networks: vec![net.into()],
            timeout_ms: 3000,
            ..Default::default()
        };
        let mut stream = client.search(req).await?.into_inner();
        let mut found = None;
        while let Some(ev) = stream.next().await {
            if let Some(Event::Item(i) | Event::Update(i)) = ev?.event
                && i.size == size
                && i.availability.iter().any(|a| a.network == net)
            {
                found = Some(i);
            }
        }
        if let Some(i) = found {
            return Ok(i);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("{query:?} never found on {net}")
}

/// The networks benchmarked, in order.
const NETWORKS: [&str; 3] = ["ed2k", "gnutella", "bittorrent"];

/// Writes one payload of `size` bytes per network into `dir`, each different.
fn write_payloads(dir: &Path, size: u64) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for (i, net) in NETWORKS.iter().enumerate() {
        let path = dir.join(format!("benchdl {net} payload.bin"));
        // Seeds two apart: content() sets the low bit, so 100 and 101 would be one file.
        std::fs::write(&path, content(size as usize, 100 + 2 * i as u64))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The other side of each network: what the gateway's peers download from.
struct Seeders {
    ed2k: ed2k::Adapter,
    ultrapeer: gnutella::Adapter,
    bittorrent: bittorrent::Adapter,
    /// The eD2k peers' index server, held until the end.
    _server: ed2k::IndexServer,
    tracker: bittorrent::TrackerServer,
}

/// Starts each network's seeder (with the eD2k index server and the BitTorrent tracker),
/// then the gateway's own peers on them as `junction serve` starts its networks; returns
/// the seeders and the gateway's peers, in [`NETWORKS`] order.
async fn start_networks() -> Result<(Seeders, Vec<Arc<dyn DynNetwork>>)> {
    // eD2k: an index server and a seeding peer.
    let server = ed2k::IndexServer::start(ed2k::ServerConfig {
        enabled: true,
        listen: loopback(),
        ..Default::default()
    })
    .await?;
    let ed2k_cfg = || ed2k::Config {
        listen: Some(loopback()),
        servers: vec![server.local_addr().to_string()],
        source_requery: Duration::from_secs(2),
        ..Default::default()
    };
    let ed2k_seed = ed2k::Adapter::start(ed2k_cfg()).await?;
    if !ed2k_seed.wait_logged_in(Duration::from_secs(15)).await {
        bail!("the eD2k seeder never logged in");
    }
    // Gnutella: a seeding ultrapeer.
    let ultrapeer = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        ultrapeer: true,
        ..Default::default()
    })
    .await?;
    // BitTorrent: a tracker and a seeder.
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2).await?;
    let bt_seed = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        trackers: vec![tracker.announce_url()],
        ..Default::default()
    })
    .await?;
    // The gateway's peers: an eD2k client of the server, a Gnutella leaf of the
    // ultrapeer, a BitTorrent peer that finds the seeder through the magnet's tracker.
    let mut own = networks::NetworksConfig::default();
    own.ed2k.config = ed2k_cfg();
    own.gnutella.config = gnutella::Config {
        listen: loopback(),
        peers: vec![ultrapeer.local_addr().to_string()],
        ..Default::default()
    };
    own.bittorrent.config = bittorrent::Config {
        listen: loopback(),
        ..Default::default()
    };
    let own = networks::start_all(&own).await?;
    let logged_in = match &own.ed2k {
        Some(e) => e.wait_logged_in(Duration::from_secs(15)).await,
        None => false,
    };
    if !logged_in {
        bail!("the gateway's eD2k peer never logged in");
    }
    let seeders = Seeders {
        ed2k: ed2k_seed,
        ultrapeer,
        bittorrent: bt_seed,
        _server: server,
        tracker,
    };
    Ok((seeders, own.dyn_networks()))
}

/// Where the gateway downloads `net`'s payload from: a magnet for BitTorrent (its seeder
/// shared it as `btih`), the item a search finds for the others.
async fn source(
    client: &mut GatewayClient<Channel>,
    net: &str,
    size: u64,
    btih: &junction_core::ContentId,
    tracker: &bittorrent::TrackerServer,
) -> Result<pb::start_transfer_request::Source> {
    Ok(if net == "bittorrent" {
        let btih = btih
            .get(HashKind::Btih)
            .ok_or_else(|| anyhow!("the seeder returned no btih"))?;
        pb::start_transfer_request::Source::Link(format!(
            "magnet:?xt=urn:btih:{}&xl={size}&dn=bt.bin&tr={}",
            HashKind::Btih.format(btih),
            tracker.announce_url()
        ))
    } else {
        let item = find(client, net, &format!("benchdl {net}"), size).await?;
        pb::start_transfer_request::Source::ItemId(item.id)
    })
}

/// Downloads `source` through `net` alone, checks the file against `path`, and returns
/// the row: the rate against the raw loopback copy's `reference` (MB/s).
async fn download_row(
    client: &mut GatewayClient<Channel>,
    net: &str,
    source: pb::start_transfer_request::Source,
    path: &Path,
    size: u64,
    reference: f64,
) -> Result<Row> {
    let started = Instant::now();
    let t = client
        .start_transfer(pb::StartTransferRequest {
            source: Some(source),
            networks: vec![net.into()],
            files: vec![],
        })
        .await?
        .into_inner();
    let done = wait_complete(client, &t.id, Duration::from_secs(600)).await?;
    let secs = started.elapsed().as_secs_f64();
    let rate = size as f64 / secs / 1e6;
    let same = std::fs::read(&done.path)? == std::fs::read(path)?;
    if !same {
        bail!("{net}: the downloaded file differs from the shared one");
    }
    eprintln!("   {net}: {} MiB in {secs:.2} s, verified", size / MIB);
    Ok(row(
        format!(
            "download over loopback: {net} ({} MiB, 1 seeder)",
            size / MIB
        ),
        format!(
            "{rate:.0} MB/s = {:.3} x raw loopback copy ({reference:.0} MB/s)",
            rate / reference
        ),
        "- (reference: raw copy)",
        None,
    ))
}

pub(super) async fn download_rows(size: u64) -> Result<Vec<Row>> {
    let files = tempfile::tempdir()?;
    let paths = write_payloads(files.path(), size)?;
    let (seeders, nets) = start_networks().await?;

    let t = Instant::now();
    share(&seeders.ed2k, &paths[0]).await?;
    share(&seeders.ultrapeer, &paths[1]).await?;
    let btih = share(&seeders.bittorrent, &paths[2]).await?;
    eprintln!(
        "   seeders hashed 3 x {} MiB in {:?}",
        size / MIB,
        t.elapsed()
    );

    let dir = tempfile::tempdir()?;
    let mut s = serve(dir.path(), nets, false).await?;

    let reference = loopback_copy(size).await?;
    eprintln!("   raw loopback TCP copy: {reference:.0} MB/s");
    let mut rows = Vec::new();
    for (net, path) in NETWORKS.iter().zip(&paths) {
        let source = source(&mut s.client, net, size, &btih, &seeders.tracker).await?;
        rows.push(download_row(&mut s.client, net, source, path, size, reference).await?);
    }
    s.stop().await;
    drop(seeders);
    Ok(rows)
}
