//! The bridge in the lab: what the gateway downloads from one network, it hashes for
//! every network and offers everywhere, so another network's own clients find it and
//! fetch it from the gateway.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::swarm::{MemStore, Swarm, SwarmSink};
use junction_core::{FetchRequest, HashKind, Hit, NetworkId, RangeSet};
use lab::{LabFile, World};
use proto::v1 as pb;
use proto::v1::transfer::State;

use crate::harness::{Running, wait_until};
use crate::lab::{gateway, search_until_complete, world};

/// Searches from a lab peer until a hit for `name` comes from a source the lab's own
/// peers are not (the gateway).
async fn find_from_gateway(world: &World, net: NetworkId, name: &str) -> Hit {
    let peer = world.peer(net, 0).unwrap();
    let word = name.split(' ').nth(1).unwrap().to_lowercase();
    for _ in 0..60 {
        // A Gnutella peer between neighbours ends its search at once with why.
        let q = junction_core::query::parse(&word).unwrap();
        let Ok(mut hits) = peer.search(q).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
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
    let (id, ed2k) = downloaded_and_hashed_for_every_network(&mut gw, &world, file, &data).await;
    links_name_it_by_every_hash_and_lead_back(&mut gw, &id, file, &ed2k).await;

    // An eD2k user finds it on the index server, offered by the gateway, and fetches it
    // from the gateway: BitTorrent content reaches eD2k.
    let hit = find_from_gateway(&world, NetworkId::ED2K, &file.name).await;
    assert_eq!(hit.id.get(HashKind::Ed2k), Some(&ed2k[..]));
    let size = data.len() as u64;
    let got = fetch_with(&world, NetworkId::ED2K, &hit).await;
    assert_eq!(got, data, "the eD2k peer got other bytes");

    every_network_counts_the_offer(&mut gw, size).await;
    a_gnutella_user_finds_and_fetches_it(&world, file, &data).await;
    gw.stop().await;
}

/// The lab's BitTorrent-only `file` (its bytes `data`) downloaded through the gateway:
/// complete, then hashed for every network, so the transfer names it by them all.
/// Returns the transfer's id and the file's ed2k root.
async fn downloaded_and_hashed_for_every_network(
    gw: &mut Running,
    world: &World,
    file: &LabFile,
    data: &[u8],
) -> (String, [u8; 16]) {
    let items = search_until_complete(gw, world, "lab").await;
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
    let ed2k = junction_core::hashing::ed2k::ed2k_hash(data).root;
    let urns = &done.content.unwrap().urns;
    assert!(
        urns.contains(&format!("urn:ed2k:{}", hex::encode(ed2k))),
        "{urns:?}"
    );
    (t.id, ed2k)
}

/// Links out: an ed2k link with the AICH root (and part hashes past one part), a
/// magnet with every hash, and a .torrent whose info-hash is the one BitTorrent seeds
/// the file under: the gateway built the same info dictionary from its own hashes.
/// Every link form leads back to transfer `id`. `ed2k` is the file's ed2k root.
async fn links_name_it_by_every_hash_and_lead_back(
    gw: &mut Running,
    id: &str,
    file: &LabFile,
    ed2k: &[u8],
) {
    let links = gw
        .client
        .get_links(pb::GetLinksRequest {
            target: Some(pb::get_links_request::Target::TransferId(id.to_owned())),
        })
        .await
        .unwrap()
        .into_inner();
    let ed2k_link = junction_core::link::parse_link(&links.ed2k).unwrap();
    assert_eq!(ed2k_link.id.get(HashKind::Ed2k), Some(ed2k));
    assert!(ed2k_link.id.get(HashKind::Aich).is_some(), "{}", links.ed2k);
    let magnet = junction_core::link::parse_link(&links.magnet).unwrap();
    // It names the tracker BitTorrent announces to, for a friend without the DHT.
    assert!(links.magnet.contains("&tr=http"), "{}", links.magnet);
    // The lab's torrents are v1+v2 hybrids: the magnet carries the v2 info-hash too.
    for kind in [
        HashKind::Btih,
        HashKind::Btmh,
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
    // Every link form leads back to this transfer.
    for source in [
        pb::start_transfer_request::Source::Link(links.ed2k.clone()),
        pb::start_transfer_request::Source::Link(links.magnet.clone()),
        pb::start_transfer_request::Source::Torrent(links.torrent.clone()),
    ] {
        let again = gw
            .client
            .start_transfer(pb::StartTransferRequest {
                source: Some(source.clone()),
                networks: vec![],
                files: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.id, id, "{source:?} started another transfer");
    }
}

/// ListNetworks counts what each network offers: the one file, of `size` bytes.
async fn every_network_counts_the_offer(gw: &mut Running, size: u64) {
    let nets = gw
        .client
        .list_networks(pb::ListNetworksRequest {})
        .await
        .unwrap()
        .into_inner();
    for n in &nets.networks {
        assert_eq!(n.files_offered, 1, "{n:?}");
        assert_eq!(n.bytes_offered, size, "{n:?}");
    }
}

/// A Gnutella user finds it too, with its SHA-1 and Tiger tree root, and fetches it from
/// the gateway.
async fn a_gnutella_user_finds_and_fetches_it(world: &World, file: &LabFile, data: &[u8]) {
    let hit = find_from_gateway(world, NetworkId::GNUTELLA, &file.name).await;
    let gnutella = junction_core::hashing::hash_bytes(
        data,
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
    // The hit names it on the other networks too, as Shareaza's do: `urn:ed2khash:` and
    // `urn:btih:` (the torrent the gateway seeds it as).
    let ed2k = junction_core::hashing::ed2k::ed2k_hash(data).root;
    assert_eq!(hit.id.get(HashKind::Ed2k), Some(&ed2k[..]), "{:?}", hit.id);
    assert!(
        hit.id.get(HashKind::Btih).is_some(),
        "no urn:btih: {:?}",
        hit.id
    );
    // …and fetches it from the gateway, checked on the way by the Tiger tree it serves.
    let got = fetch_with(world, NetworkId::GNUTELLA, &hit).await;
    assert_eq!(got, data, "the Gnutella leaf got other bytes");
}

/// A lab peer of `net` fetches a hit into a checking sink; returns the bytes.
async fn fetch_with(world: &World, net: NetworkId, hit: &Hit) -> Vec<u8> {
    fetch_from(world.peer(net, 0).unwrap(), hit).await
}

/// `peer` fetches a hit into a checking sink; returns the bytes.
pub(crate) async fn fetch_from(peer: &dyn junction_core::DynNetwork, hit: &Hit) -> Vec<u8> {
    let size = hit.size;
    let net = peer.id();
    let swarm = Arc::new(Swarm::new(MemStore::new(size), size, RangeSet::new()));
    let sink = SwarmSink::new(swarm.clone(), net);
    let req = FetchRequest {
        id: hit.id.clone(),
        name: hit.name.clone(),
        size,
        sources: hit.locations.clone(),
        trackers: Vec::new(),
        torrent: None,
    };
    let mut events = peer.fetch(req, sink.clone()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !junction_core::TransferSink::wanted(&*sink).is_empty() {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    swarm.store().bytes()
}

/// Downloads the lab's BitTorrent-only file through a gateway; returns its data.
async fn download_bt_only(
    gw: &mut crate::harness::Running,
    world: &World,
) -> (lab::LabFile, Vec<u8>, String) {
    let file = world
        .files
        .iter()
        .find(|f| f.is_on(NetworkId::BITTORRENT) && f.networks().count() == 1)
        .unwrap()
        .clone();
    let data = std::fs::read(&file.path).unwrap();
    let items = search_until_complete(gw, world, "lab").await;
    let item = items.iter().find(|i| i.name == file.name).unwrap();
    let t = crate::harness::start_item(&mut gw.client, &item.id).await;
    wait_until(&mut gw.client, &t.id, 60, |t| {
        let urns = t.content.as_ref().map_or(&[][..], |c| &c.urns[..]);
        t.state() == State::Complete && urns.iter().any(|u| u.starts_with("urn:tree:tiger:"))
    })
    .await;
    (file, data, t.id)
}

/// Whether a lab eD2k peer finds `name` on the index server in three searches (each
/// given time to answer: a search cut short under load sees nothing).
async fn ed2k_offers(world: &World, name: &str) -> bool {
    let peer = world.peer(NetworkId::ED2K, 0).unwrap();
    let word = name.split(' ').nth(1).unwrap().to_lowercase();
    for _ in 0..3 {
        let mut hits = peer
            .search(junction_core::query::parse(&word).unwrap())
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(4), hits.next()).await {
                Ok(Some(Ok(h))) if h.name == name => return true,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => eprintln!("ed2k_offers: search error {e}"),
                Ok(None) | Err(_) => break,
            }
        }
        // A search that ended at once (the server answered before the offer) is asked
        // again a little later.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// With the bridge off (`share_downloads = []`, `bridge_on_demand = false`) a download is
/// still hashed for every network, but offered on none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_the_bridge_off_stops_the_offers() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 8, None).await;
    let networks = world.gateway_networks().await.unwrap();
    let mut gw = crate::harness::start_with(dir.path(), networks, |c| {
        c.share_downloads = vec![];
        c.bridge_on_demand = false;
    })
    .await;
    let (file, _, _) = download_bt_only(&mut gw, &world).await;
    assert!(
        !ed2k_offers(&world, &file.name).await,
        "offered with the bridge off"
    );
    // Nor on Gnutella: the leaf's search by name finds no hit from the gateway.
    let peer = world.peer(NetworkId::GNUTELLA, 0).unwrap();
    let word = file.name.split(' ').nth(1).unwrap().to_lowercase();
    let mut hits = peer
        .search(junction_core::query::parse(&word).unwrap())
        .await
        .unwrap();
    while let Ok(Some(Ok(h))) = tokio::time::timeout(Duration::from_secs(3), hits.next()).await {
        assert_ne!(h.name, file.name, "offered on Gnutella with the bridge off");
    }
    let shares = gw
        .client
        .list_shares(pb::ListSharesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(shares.files.is_empty(), "{shares:?}");
    gw.stop().await;
}

/// A restart offers every finished download again from the hashes in the store: the file
/// is not read again (its bytes are swapped for others of the same size and time while
/// the gateway is down, and the offer still names the original).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_offers_again_without_reading_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 8, None).await;
    let mut gw = gateway(&world, dir.path()).await;
    let (file, data, _) = download_bt_only(&mut gw, &world).await;
    let listed = |s: pb::ListSharesResponse| s.files.into_iter().find(|f| f.name == file.name);
    let mut before = None;
    for _ in 0..100 {
        let s = gw
            .client
            .list_shares(pb::ListSharesRequest {})
            .await
            .unwrap();
        before = listed(s.into_inner());
        if before.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = before.expect("the download is shared");
    gw.stop().await;

    let path = std::path::Path::new(&before.path);
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    let other: Vec<u8> = data.iter().map(|b| b ^ 0xff).collect();
    std::fs::write(path, &other).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(modified)
        .unwrap();

    let mut gw = gateway(&world, dir.path()).await;
    let mut offered = false;
    for _ in 0..10 {
        offered = ed2k_offers(&world, &file.name).await;
        if offered {
            break;
        }
    }
    if !offered {
        let nets = gw.client.list_networks(pb::ListNetworksRequest {}).await;
        let shares = gw.client.list_shares(pb::ListSharesRequest {}).await;
        panic!("not offered again after the restart: {nets:#?} {shares:#?}");
    }
    let after = listed(
        gw.client
            .list_shares(pb::ListSharesRequest {})
            .await
            .unwrap()
            .into_inner(),
    )
    .unwrap();
    assert_eq!(after.content, before.content, "the file was read again");
    // Offered again on every network, not only eD2k; a Gnutella user finds it by the
    // SHA-1 of the original bytes, so Gnutella did not read the file again either.
    for net in ["ed2k", "gnutella", "bittorrent"] {
        assert!(after.networks.iter().any(|n| n == net), "{net}: {after:?}");
    }
    let sha1 = junction_core::hashing::hash_bytes(
        &data,
        junction_core::hashing::Want {
            sha1: true,
            ..Default::default()
        },
    )
    .sha1
    .unwrap();
    let hit = find_from_gateway(&world, NetworkId::GNUTELLA, &file.name).await;
    assert_eq!(hit.id.get(HashKind::Sha1), Some(&sha1[..]));
    gw.stop().await;
}
