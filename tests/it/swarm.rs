//! One transfer, every network: a file on eD2k, Gnutella and BitTorrent in the lab is
//! fetched as one swarm. Each byte comes once, from whichever network is free; every
//! network's bytes are verified by whatever hash covers them; a lying source is dropped
//! and its bytes never reach the file.

use std::time::{Duration, Instant};

use junction_core::NetworkId;
use lab::World;
use proto::v1 as pb;
use proto::v1::transfer::State;

use crate::harness::wait_until;
use crate::lab::{MIB, gateway, search_until_complete, world};

/// Seeders of the large file: eD2k peer 0, Gnutella leaf 1, BitTorrent seeders 0 and 1.
const LARGE_SEEDERS: u64 = 4;

fn share(t: &pb::Transfer, net: NetworkId) -> Option<&pb::TransferNetwork> {
    t.per_network.iter().find(|n| n.network == net.as_str())
}

async fn start_large(gw: &mut crate::harness::Running, world: &World) -> (pb::Transfer, u64) {
    let items = search_until_complete(gw, world, "lab").await;
    let large = world.files.iter().find(|f| f.large).unwrap();
    let item = items.iter().find(|i| i.name == large.name).unwrap();
    let t = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::ItemId(item.id.clone())),
            networks: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    (t, large.size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_on_three_networks_comes_once_from_all_of_them() {
    const RATE: u64 = 2 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 64, Some(RATE)).await;
    let mut gw = gateway(&world, dir.path()).await;
    let (t, size) = start_large(&mut gw, &world).await;
    let started = Instant::now();
    let mut client = gw.client.clone();
    let id = t.id.clone();
    let timeline = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(t) = client
                .get_transfer(pb::TransferRef { id: id.clone() })
                .await
            else {
                break;
            };
            let t = t.into_inner();
            eprintln!(
                "  {:>4.1}s {}",
                started.elapsed().as_secs_f64(),
                t.per_network
                    .iter()
                    .map(|n| format!(
                        "{} {}MiB {} src",
                        n.network,
                        n.bytes_received >> 20,
                        n.sources
                    ))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            if t.state() == State::Complete {
                break;
            }
        }
    });
    let done = wait_until(&mut gw.client, &t.id, 120, |t| t.state() == State::Complete).await;
    timeline.abort();
    let took = started.elapsed();
    let large = world.files.iter().find(|f| f.large).unwrap();
    assert!(std::fs::read(&done.path).unwrap() == std::fs::read(&large.path).unwrap());

    let received: u64 = done.per_network.iter().map(|n| n.bytes_received).sum();
    let ideal = Duration::from_secs_f64(size as f64 / (LARGE_SEEDERS * RATE) as f64);
    eprintln!(
        "swarm: {size} bytes in {took:.1?} (ideal {ideal:.1?}, {:.2}x); received {:.3}x the size; {}",
        took.as_secs_f64() / ideal.as_secs_f64(),
        received as f64 / size as f64,
        done.per_network
            .iter()
            .map(|n| format!(
                "{} {:.0}%",
                n.network,
                n.bytes_verified as f64 * 100.0 / size as f64
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        received as f64 <= 1.03 * size as f64,
        "fetched {received} bytes for {size}: {:?}",
        done.per_network
    );
    for net in [NetworkId::ED2K, NetworkId::GNUTELLA, NetworkId::BITTORRENT] {
        let n = share(&done, net).unwrap_or_else(|| panic!("{net} did not take part"));
        assert!(
            n.bytes_verified * 100 >= 15 * size,
            "{net} delivered only {} of {size}: {:?}",
            n.bytes_verified,
            done.per_network
        );
    }
    assert_eq!(done.peers, 0, "a finished transfer has no peers");
    assert!(
        took.as_secs_f64() <= ideal.as_secs_f64() / 0.8,
        "took {took:?}, more than the ideal {ideal:?} / 0.8"
    );
    gw.stop().await;
    world.shutdown().await;
}
