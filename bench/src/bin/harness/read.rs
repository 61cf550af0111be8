//! Part 4: `ReadContent` throughput of a completed transfer over gRPC, and in-process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use gateway::transfer::StartSpec;
use junction_bench::memnet::{MemNet, synthetic_byte};
use junction_core::{ContentId, HashKind};
use proto::v1 as pb;

use super::served::{serve, wait_complete};
use super::{MIB, Row, cpu_secs, row};

pub(super) async fn read_rows(size: u64) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let id = ContentId::new(Some(size)).with(HashKind::Sha1, &[7u8; 20]);
    let net = MemNet::serving("mem", vec![id.clone()]);
    let mut s = serve(dir.path(), vec![Arc::new(net)], false).await?;
    let t = Instant::now();
    let info = s.gw.transfers.start(StartSpec {
        name: "synthetic.bin".into(),
        size: Some(size),
        content: id,
        networks: vec!["mem".into()],
        ..Default::default()
    })?;
    wait_complete(&mut s.client, &info.id, Duration::from_secs(600)).await?;
    eprintln!(
        "   {} MiB transfer written in {:?}",
        size / MIB,
        t.elapsed()
    );
    // The same stream in-process, without gRPC: what the transfer layer alone delivers.
    let mut inproc = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let mut rx = s.gw.transfers.read(&info.id, 0, 0).await?;
        let mut got = 0u64;
        while let Some(chunk) = rx.recv().await {
            got += chunk?.1.len() as u64;
        }
        if got != size {
            bail!("in-process read got {got} of {size} bytes");
        }
        inproc.push(size as f64 / started.elapsed().as_secs_f64() / 1e9);
    }
    inproc.sort_by(f64::total_cmp);
    let mut rates = Vec::new();
    let cpu_before = cpu_secs();
    for _ in 0..3 {
        let started = Instant::now();
        let mut stream = s
            .client
            .read_content(pb::ReadContentRequest {
                transfer_id: info.id.clone(),
                offset: 0,
                length: 0,
            })
            .await?
            .into_inner();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let c = chunk?;
            if c.offset != got {
                bail!("chunk at {} where {got} was expected", c.offset);
            }
            // Spot-check the bytes (a full compare would time the checker, not the read).
            for i in (0..c.data.len()).step_by(4093) {
                if c.data[i] != synthetic_byte(c.offset + i as u64) {
                    bail!("wrong byte at {}", c.offset + i as u64);
                }
            }
            got += c.data.len() as u64;
        }
        let secs = started.elapsed().as_secs_f64();
        if got != size {
            bail!("read {got} of {size} bytes");
        }
        rates.push(size as f64 / secs / 1e9);
    }
    // CPU spent by the whole process (server and client) per GB read: unlike the rate,
    // it does not depend on what else the machine is doing.
    let cpu_per_gb = (cpu_secs() - cpu_before) / (3.0 * size as f64 / 1e9);
    s.stop().await;
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    Ok(vec![
        row(
            format!(
                "ReadContent over gRPC, completed {} MiB transfer, client in-process",
                size / MIB
            ),
            format!(
                "{median:.2} GB/s (median of 3; {}); {cpu_per_gb:.2} CPU-s per GB (server + client)",
                rates
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "≥ 1 GB/s",
            Some(median >= 1.0),
        ),
        row(
            "diagnostic: same stream in-process (TransferManager::read, no gRPC)",
            format!("{:.2} GB/s (median of 3)", inproc[1]),
            "-",
            None,
        ),
    ])
}
