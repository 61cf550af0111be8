use super::*;

fn parse(text: &str) -> Result<NetworksConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

#[test]
fn enabled_and_shared_are_the_gateways_and_the_rest_is_the_crates() {
    let cfg = parse(
        "[ed2k]\nenabled = false\nshared = [\"/srv/a\"]\nupload_slots = 2\n\
         [bittorrent]\nshared = [\"/srv/b\"]\nmax_peers = 9\n",
    )
    .unwrap();
    assert!(!cfg.ed2k.enabled);
    assert_eq!(cfg.ed2k.shared, [std::path::PathBuf::from("/srv/a")]);
    assert_eq!(cfg.ed2k.config.upload_slots, 2);
    assert!(
        cfg.bittorrent.enabled && cfg.gnutella.enabled,
        "on unless said"
    );
    assert_eq!(cfg.bittorrent.config.max_peers_per_torrent, 9);
    assert_eq!(cfg.bittorrent.shared, [std::path::PathBuf::from("/srv/b")]);
}

#[test]
fn an_unknown_key_is_refused_naming_it_and_its_table() {
    for (text, table, key) in [
        ("[ed2k]\nuplaod_slots = 1", "[ed2k]", "uplaod_slots"),
        ("[ed2k.server]\nport = 1", "[ed2k]", "port"),
        ("[gnutella]\nultra = true", "[gnutella]", "ultra"),
        ("[bittorrent.dht]\nnodes = []", "[bittorrent]", "nodes"),
        ("[bittorrent.tracker]\nudp = true", "[bittorrent]", "udp"),
        ("[limits]\nper_ip = 1", "", "per_ip"),
        ("[kad]\nenabled = true", "", "kad"),
    ] {
        let err = parse(text).unwrap_err();
        assert!(err.contains(key) && err.contains(table), "{text}: {err}");
    }
    let err = parse("[gnutella]\nenabled = \"yes\"").unwrap_err();
    assert!(err.contains("[gnutella] enabled"), "{err}");
}

#[test]
fn the_defaults_are_the_crates_with_peers_able_to_reach_every_port() {
    let d = NetworksConfig::default();
    assert_eq!(d.ed2k.config.listen, ed2k::Config::default().listen);
    assert_eq!(d.ed2k.config.listen, Some("0.0.0.0:4662".parse().unwrap()));
    assert_eq!(d.gnutella.config, gnutella::Config::default());
    assert_eq!(d.gnutella.config.listen, "0.0.0.0:6346".parse().unwrap());
    let bt = &d.bittorrent.config;
    assert_eq!(bt.listen, bittorrent::Config::default().listen);
    assert_eq!(bt.listen, "0.0.0.0:6881".parse().unwrap());
    assert_eq!(
        bt.dht_listen,
        Some(bt.listen),
        "the DHT follows the peer port"
    );
    assert!(!bt.tracker.enabled && !d.ed2k.config.server.enabled);
    assert_eq!(d.limits, LimitsSection::default());
    let empty = parse("").unwrap();
    assert_eq!(empty.bittorrent.config.dht_listen, bt.dht_listen);
}

/// Every network and the tracker on loopback, on ports the system picks.
fn loopback() -> NetworksConfig {
    parse(
        "[ed2k]\nlisten = \"127.0.0.1:0\"\n[gnutella]\nlisten = \"127.0.0.1:0\"\n\
         [bittorrent]\nlisten = \"127.0.0.1:0\"\n\
         [bittorrent.tracker]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
         [limits]\nupload_limit_kib = 64\n",
    )
    .unwrap()
}

#[test]
fn every_adapter_gets_the_limits_and_one_shared_set_of_caps() {
    let mut cfg = loopback();
    cfg.limits.connections_per_ip = 3;
    let p = start::prepare(&cfg).unwrap();
    assert_eq!(p.limits.max_conns_per_ip, 3);
    assert_eq!(p.ed2k.limits, p.limits);
    assert_eq!(p.ed2k.server.limits, p.limits);
    assert_eq!(
        (&p.gnutella.limits, &p.bittorrent.limits),
        (&p.limits, &p.limits)
    );
    assert_eq!(p.ed2k.caps.upload.rate(), Some(64 * 1024));
    assert!(p.ed2k.caps.download.is_unlimited());
    // Equal caps draw from the same buckets: one budget over the three networks.
    assert_eq!(p.ed2k.caps, p.gnutella.caps);
    assert_eq!(p.ed2k.caps, p.bittorrent.caps);
    assert_ne!(
        p.ed2k.caps,
        cfg.limits.caps(),
        "a second call makes new buckets"
    );
}

#[tokio::test]
async fn start_all_starts_each_enabled_network_and_the_tracker() {
    let started = start_all(&loopback()).await.unwrap();
    let ids: Vec<String> = started
        .networks
        .iter()
        .map(|(n, _)| n.id().to_string())
        .collect();
    assert_eq!(ids, ["ed2k", "gnutella", "bittorrent"]);
    assert!(started.ed2k.is_some() && started.gnutella.is_some());
    assert!(started.bittorrent.is_some());
    assert!(started.tracker.is_some());
    started.shutdown().await;

    let mut off = loopback();
    off.ed2k.enabled = false;
    off.bittorrent.enabled = false;
    let started = start_all(&off).await.unwrap();
    assert_eq!(started.networks.len(), 1);
    assert!(started.ed2k.is_none() && started.bittorrent.is_none());
    assert!(
        started.tracker.is_some(),
        "the tracker runs without our peer"
    );
    started.shutdown().await;
    off.bittorrent.config.tracker.enabled = false;
    assert!(start_all(&off).await.unwrap().tracker.is_none());
}

#[tokio::test]
async fn a_port_in_use_names_the_network_and_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = loopback();
    cfg.gnutella.config.listen = taken.local_addr().unwrap();
    let err = start_all(&cfg).await.map(|_| ()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            StartError::Network {
                network: "gnutella",
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("[gnutella] listen"), "{text}");
    let mut zero = loopback();
    zero.limits.requests_burst = 0;
    let err = start_all(&zero).await.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("requests_burst"), "{err}");
}
