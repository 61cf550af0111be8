//! The bridge in the lab: what the gateway downloads from one network, it hashes for
//! every network and offers everywhere, so another network's own clients find it and
//! fetch it from the gateway.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::swarm::{MemStore, Swarm, SwarmSink};
use junction_core::{FetchEvent, FetchRequest, HashKind, Hit, NetworkId, RangeSet};
use lab::World;
use proto::v1 as pb;
use proto::v1::transfer::State;

use crate::harness::wait_until;
use crate::lab::{gateway, search_until_complete, world};

/// Searches from a lab peer until a hit for `name` comes from a source the lab's own
/// peers are not (the gateway).
async fn find_from_gateway(world: &World, net: NetworkId, name: &str) -> Hit {
    let peer = world.peer(net, 0).unwrap();
    let word = name.split(' ').nth(1).unwrap().to_lowercase();
    for _ in 0..60 {
        let mut hits = peer
            .search(junction_core::query::parse(&word).unwrap())
            .await
            .unwrap();
        while let Ok(Some(Ok(h))) = tokio::time::timeout(Duration::from_secs(2), hits.next()).await
        {
            if h.name == name {
                return h;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{net}: no hit for {name:?} from the gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bittorrent_download_is_offered_on_ed2k_and_gnutella() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 8, None).await;
    let mut gw = gateway(&world, dir.path()).await;
    let file = world
        .files
        .iter()
        .find(|f| f.is_on(NetworkId::BITTORRENT) && f.networks().count() == 1)
        .expect("the lab has a BitTorrent-only file");
    let data = std::fs::read(&file.path).unwrap();
    let items = search_until_complete(&mut gw, &world, "lab").await;
    let item = items.iter().find(|i| i.name == file.name).unwrap();
    let t = crate::harness::start_item(&mut gw.client, &item.id).await;
    // Complete, then hashed for every network: the transfer names it by them all.
    let done = wait_until(&mut gw.client, &t.id, 60, |t| {
        let urns = t.content.as_ref().map_or(&[][..], |c| &c.urns[..]);
        t.state() == State::Complete
            && ["urn:sha1:", "urn:ed2k:", "urn:aich:", "urn:tree:tiger:"]
                .iter()
                .all(|k| urns.iter().any(|u| u.starts_with(k)))
    })
    .await;
    let ed2k = junction_core::hashing::ed2k::ed2k_hash(&data).root;
    let urns = &done.content.unwrap().urns;
    assert!(
        urns.contains(&format!("urn:ed2k:{}", hex::encode(ed2k))),
        "{urns:?}"
    );

    // Links out: an ed2k link with the AICH root (and part hashes past one part), a
    // magnet with every hash, and a .torrent whose info-hash is the one BitTorrent seeds
    // the file under: the gateway built the same info dictionary from its own hashes.
    let links = gw
        .client
        .get_links(pb::GetLinksRequest {
            target: Some(pb::get_links_request::Target::TransferId(t.id.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    let ed2k_link = junction_core::link::parse_link(&links.ed2k).unwrap();
    assert_eq!(ed2k_link.id.get(HashKind::Ed2k), Some(&ed2k[..]));
    assert!(ed2k_link.id.get(HashKind::Aich).is_some(), "{}", links.ed2k);
    let magnet = junction_core::link::parse_link(&links.magnet).unwrap();
    for kind in [
        HashKind::Btih,
        HashKind::Sha1,
        HashKind::Ed2k,
        HashKind::Tth,
    ] {
        assert!(
            magnet.id.get(kind).is_some(),
            "{kind:?} in {}",
            links.magnet
        );
    }
    let torrent = junction_core::link::parse_torrent(&links.torrent).unwrap();
    assert_eq!(
        torrent.id.get(HashKind::Btih),
        file.id.get(HashKind::Btih),
        "the gateway's torrent is the one the lab seeds"
    );
    let bad = gw
        .client
        .get_links(pb::GetLinksRequest { target: None })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // An eD2k user finds it on the index server, offered by the gateway, and fetches it
    // from the gateway: BitTorrent content reaches eD2k.
    let hit = find_from_gateway(&world, NetworkId::ED2K, &file.name).await;
    assert_eq!(hit.id.get(HashKind::Ed2k), Some(&ed2k[..]));
    let size = data.len() as u64;
    let swarm = Arc::new(Swarm::new(MemStore::new(size), size, RangeSet::new()));
    let sink = SwarmSink::new(swarm.clone(), NetworkId::ED2K);
    let req = FetchRequest {
        id: hit.id.clone(),
        name: hit.name.clone(),
        size,
        sources: hit.locations.clone(),
        trackers: Vec::new(),
        torrent: None,
    };
    let peer = world.peer(NetworkId::ED2K, 0).unwrap();
    let mut events = peer.fetch(req, sink.clone()).await.unwrap();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(60), events.next()).await {
        if matches!(&e, FetchEvent::Note(n) if n.starts_with("complete")) {
            break;
        }
    }
    assert_eq!(swarm.store().bytes(), data, "the eD2k peer got other bytes");

    // A Gnutella user finds it too, with its SHA-1 and Tiger tree root.
    let hit = find_from_gateway(&world, NetworkId::GNUTELLA, &file.name).await;
    let gnutella = junction_core::hashing::hash_bytes(
        &data,
        junction_core::hashing::Want {
            sha1: true,
            tth: true,
            ..Default::default()
        },
    );
    assert_eq!(
        hit.id.get(HashKind::Sha1),
        gnutella.sha1.as_ref().map(|h| &h[..])
    );
    assert_eq!(
        hit.id.get(HashKind::Tth),
        gnutella.tth.as_ref().map(|h| &h[..])
    );
    gw.stop().await;
}
