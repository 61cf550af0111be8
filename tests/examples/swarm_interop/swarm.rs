//! The swarm check of `swarm_interop.rs`: one transfer from a magnet naming both the
//! eD2k and the BitTorrent swarm of one file, followed to its end, then checked (bytes,
//! verified bytes from each network, no more than 1.10x the size received).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use junction_core::NetworkId;
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use proto::v1::transfer::State;
use tonic::transport::Channel;

use super::{Files, NAME, Settings, amule_said, log, lt_status, mib, percent};

fn net(t: &pb::Transfer, id: NetworkId) -> Option<&pb::TransferNetwork> {
    t.per_network.iter().find(|n| n.network == id.as_str())
}

pub fn summary(t: &pb::Transfer) -> String {
    t.per_network
        .iter()
        .map(|n| {
            format!(
                "{} {} recv {} verified {} discarded, {} src, {}/s, {}{}",
                n.network,
                mib(n.bytes_received),
                mib(n.bytes_verified),
                mib(n.bytes_discarded),
                n.sources,
                mib(n.rate_bytes_per_sec),
                n.state,
                if n.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", n.note)
                }
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The one transfer from both networks: the magnet carrying both hashes, followed until
/// it completes, then checked. With BRIDGE_ONLY set, it is started and cancelled.
/// The outer error ends the run at once (the gateway refused the start or the cancel);
/// the inner result is the swarm's outcome.
pub async fn swarm(
    client: &mut GatewayClient<Channel>,
    s: &Settings,
    f: &Files,
    btih: &str,
    tracker_url: &str,
    only: &str,
) -> Result<Result<()>> {
    let magnet = format!(
        "magnet:?xt=urn:btih:{btih}&xt=urn:ed2k:{}&xl={}&dn={}&tr={}",
        f.ed2k_hex,
        f.size,
        percent(NAME),
        percent(tracker_url)
    );
    log(format!("magnet {magnet}"));
    let started = Instant::now();
    let t = client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(magnet)),
            networks: vec![],
            files: vec![],
        })
        .await?
        .into_inner();
    let result = if only.is_empty() {
        follow(client, &t.id, f.size, s.timeout, &s.lt_status_file(), &s.ec).await
    } else {
        client
            .cancel_transfer(pb::CancelTransferRequest {
                id: t.id.clone(),
                keep_data: false,
            })
            .await?;
        Err(anyhow::anyhow!("skipped (BRIDGE_ONLY)"))
    };
    let took = started.elapsed();

    Ok(match result {
        Ok(done) => check(&done, &f.data, took),
        Err(e) => Err(e),
    })
}

/// Polls the transfer every second, printing each network's figures, until it completes,
/// fails or `timeout` seconds pass.
async fn follow(
    client: &mut GatewayClient<Channel>,
    id: &str,
    size: u64,
    timeout: u64,
    lt_status_file: &Path,
    ec: &str,
) -> Result<pb::Transfer> {
    let started = Instant::now();
    let mut last_ul = String::new();
    let mut poll = 0u64;
    loop {
        poll += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = client
            .get_transfer(pb::TransferRef { id: id.into() })
            .await?
            .into_inner();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {secs:5.1}s {:5.1}% {}",
            t.bytes_verified as f64 * 100.0 / size as f64,
            summary(&t)
        );
        match t.state() {
            State::Complete => return Ok(t),
            State::Failed | State::Cancelled => {
                bail!(
                    "transfer ended {:?}: {} ({})",
                    t.state(),
                    t.error,
                    summary(&t)
                )
            }
            _ => {}
        }
        if poll.is_multiple_of(5) {
            // What the seeds say they upload, now and then.
            let ul = amule_said(ec, "show ul");
            if ul != last_ul {
                log(format!(
                    "aMule uploads: {ul}; libtorrent {}/s",
                    mib(lt_status(lt_status_file, "ul_rate").unwrap_or(0.0) as u64)
                ));
                last_ul = ul;
            }
        }
        if secs > timeout as f64 {
            bail!(
                "transfer not complete after {timeout} s: {} of {size} bytes verified ({}){}",
                t.bytes_verified,
                summary(&t),
                if t.error.is_empty() {
                    String::new()
                } else {
                    format!(", last error: {}", t.error)
                }
            );
        }
    }
}

/// The checks on a completed transfer.
fn check(done: &pb::Transfer, data: &[u8], took: Duration) -> Result<()> {
    let size = data.len() as u64;
    let mut failures = Vec::new();
    let got = std::fs::read(&done.path).with_context(|| format!("reading {}", done.path))?;
    if got == data {
        println!(
            "PASS swarm bytes: {} is byte-identical to the original ({size} bytes)",
            done.path
        );
    } else {
        let first = got.iter().zip(data).position(|(a, b)| a != b);
        failures.push(format!(
            "the file differs from the original ({} bytes, first difference at {first:?})",
            got.len()
        ));
    }
    for id in [NetworkId::ED2K, NetworkId::BITTORRENT] {
        match net(done, id) {
            Some(n) if n.bytes_verified > 0 => println!(
                "PASS swarm {id}: {} verified bytes ({:.1}% of the file), {} received, {} discarded, {} sources dropped",
                n.bytes_verified,
                n.bytes_verified as f64 * 100.0 / size as f64,
                n.bytes_received,
                n.bytes_discarded,
                n.sources_dropped
            ),
            Some(n) => failures.push(format!("{id} verified no bytes: {n:?}")),
            None => failures.push(format!(
                "{id} is not in per_network: {:?}",
                done.per_network
            )),
        }
    }
    let received: u64 = done.per_network.iter().map(|n| n.bytes_received).sum();
    let ratio = received as f64 / size as f64;
    if ratio <= 1.10 {
        println!("PASS swarm received {received} bytes for {size}: {ratio:.3}x the size");
    } else {
        failures.push(format!(
            "received {received} bytes for {size} ({ratio:.3}x, more than 1.10x): {}",
            summary(done)
        ));
    }
    let verified: u64 = done.per_network.iter().map(|n| n.bytes_verified).sum();
    println!(
        "swarm figures: {size} bytes in {:.1} s ({:.2} MB/s); {}; received {ratio:.3}x, verified {:.3}x the size",
        took.as_secs_f64(),
        size as f64 / took.as_secs_f64() / 1e6,
        done.per_network
            .iter()
            .map(|n| format!(
                "{} {:.1}%",
                n.network,
                n.bytes_verified as f64 * 100.0 / size as f64
            ))
            .collect::<Vec<_>>()
            .join(", "),
        verified as f64 / size as f64
    );
    if failures.is_empty() {
        Ok(())
    } else {
        for f in &failures {
            println!("FAIL swarm: {f}");
        }
        bail!("{} checks failed", failures.len())
    }
}
