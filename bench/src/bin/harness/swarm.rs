//! One transfer over three networks against each network alone (issue 11): the lab's
//! large file, which eD2k peer 0, Gnutella leaf 1 and both BitTorrent seeders share, with
//! the seeders uncapped and capped.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use lab::{LabConfig, World};
use proto::v1 as pb;

use super::{MIB, Row, row, serve, wait_complete};

/// Seeders of the lab's large file over all networks (eD2k 1, Gnutella 1, BitTorrent 2).
const SEEDERS: u64 = 4;

struct Run {
    secs: f64,
    received: f64,
    shares: String,
}

pub async fn swarm_rows(mib: u64, cap_mib: u64) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for cap in [None, Some(cap_mib * MIB)] {
        let dir = tempfile::tempdir()?;
        let mut cfg = LabConfig::new(dir.path());
        cfg.seed = 11;
        cfg.large_size = mib * MIB;
        cfg.seed_rate_limit = cap;
        let world = World::start(&cfg).await?;
        let large = world
            .files
            .iter()
            .find(|f| f.large)
            .expect("the lab has a large file");
        let original = std::fs::read(&large.path)?;
        let mut runs = Vec::new();
        for only in ["", "ed2k", "gnutella", "bittorrent"] {
            // A fresh gateway each time: no run inherits another's connections or back-off.
            let gw_dir = tempfile::tempdir()?;
            let mut s = serve(gw_dir.path(), world.gateway_networks().await?, false).await?;
            let item = merged_item(&mut s.client, &large.name).await?;
            let r = fetch(&mut s.client, &item, only, &original).await?;
            s.stop().await;
            eprintln!(
                "   {} {}: {:.2} s, received {:.3} x size; {}",
                cap.map_or("uncapped".into(), |c| format!("capped {} MiB/s", c / MIB)),
                if only.is_empty() { "all three" } else { only },
                r.secs,
                r.received,
                r.shares
            );
            runs.push((only, r));
        }
        let best = runs[1..]
            .iter()
            .min_by(|a, b| a.1.secs.total_cmp(&b.1.secs))
            .expect("three single-network runs");
        let all = &runs[0].1;
        let seeders = match cap {
            None => "uncapped".to_owned(),
            Some(c) => format!(
                "each capped at {} MiB/s (ideal {:.2} s)",
                c / MIB,
                (mib * MIB) as f64 / (SEEDERS * c) as f64
            ),
        };
        rows.push(row(
            format!("swarm: {mib} MiB on 3 networks, seeders {seeders}"),
            format!(
                "{:.2} s = {:.2} x the best single network ({} {:.2} s); received {:.3} x size; {}",
                all.secs,
                all.secs / best.1.secs,
                best.0,
                best.1.secs,
                all.received,
                all.shares
            ),
            "faster than one network; received <= 1.03 x size",
            Some(all.secs < best.1.secs && all.received <= 1.03),
        ));
        for (only, r) in &runs[1..] {
            rows.push(row(
                format!("swarm reference: the same, {only} alone"),
                format!("{:.2} s; received {:.3} x size", r.secs, r.received),
                "-",
                None,
            ));
        }
        world.shutdown().await;
    }
    Ok(rows)
}

/// The search item for `name`, once it shows on all three networks.
async fn merged_item(
    client: &mut pb::gateway_client::GatewayClient<tonic::transport::Channel>,
    name: &str,
) -> Result<pb::Item> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let mut stream = client
            .search(pb::SearchRequest {
                query: "lab deep space".into(),
                timeout_ms: 3000,
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut found: Option<pb::Item> = None;
        while let Some(ev) = stream.message().await? {
            if let Some(pb::search_event::Event::Item(i) | pb::search_event::Event::Update(i)) =
                ev.event
                && i.name == name
            {
                found = Some(i);
            }
        }
        if let Some(i) = found.filter(|i| i.availability.len() >= 3) {
            return Ok(i);
        }
    }
    bail!("{name} never showed up on all three networks")
}

/// One transfer of the item, limited to `only` (or every network), then cancelled.
async fn fetch(
    client: &mut pb::gateway_client::GatewayClient<tonic::transport::Channel>,
    item: &pb::Item,
    only: &str,
    original: &[u8],
) -> Result<Run> {
    let started = Instant::now();
    let t = client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::ItemId(item.id.clone())),
            networks: if only.is_empty() {
                vec![]
            } else {
                vec![only.into()]
            },
            files: vec![],
        })
        .await?
        .into_inner();
    let done = wait_complete(client, &t.id, Duration::from_secs(600)).await?;
    let secs = started.elapsed().as_secs_f64();
    if std::fs::read(&done.path)? != original {
        bail!("{only}: the downloaded file differs from the original");
    }
    client
        .cancel_transfer(pb::CancelTransferRequest {
            id: t.id,
            keep_data: false,
        })
        .await?;
    let size = done.size as f64;
    let received: u64 = done.per_network.iter().map(|n| n.bytes_received).sum();
    let shares = done
        .per_network
        .iter()
        .filter(|n| n.bytes_received > 0)
        .map(|n| {
            format!(
                "{} {:.0}%",
                n.network,
                n.bytes_verified as f64 * 100.0 / size
            )
        })
        .collect::<Vec<_>>()
        .join(" · ");
    Ok(Run {
        secs,
        received: received as f64 / size,
        shares,
    })
}
