//! What `serve` says when it starts: every port it opened and what for, which networks have
//! nothing to connect to yet, and how to give them something.

use crate::config::Config;

/// The lines, for stderr, after the API's own line. `kept` names the networks that have
/// endpoints kept from `endpoint add` (the gateway adds them again at start).
pub fn summary(cfg: &Config, kept: &[&str]) -> Vec<String> {
    let n = &cfg.networks;
    let (e, g, b) = (&n.ed2k.config, &n.gnutella.config, &n.bittorrent.config);
    let gnutella = if g.ultrapeer {
        "Gnutella peers, as an ultrapeer"
    } else {
        "Gnutella peers, as a leaf"
    };
    let all = [
        (
            n.ed2k.enabled,
            "ed2k",
            "TCP",
            e.listen,
            "eD2k peers: downloads, uploads",
        ),
        (
            n.ed2k.enabled && e.server.enabled,
            "ed2k",
            "TCP",
            Some(e.server.listen),
            "the eD2k index server",
        ),
        (
            n.gnutella.enabled,
            "gnutella",
            "TCP",
            Some(g.listen),
            gnutella,
        ),
        (
            n.bittorrent.enabled,
            "bittorrent",
            "TCP",
            Some(b.listen),
            "BitTorrent peers",
        ),
        (
            n.bittorrent.enabled && b.dht_listen.is_some(),
            "bittorrent",
            "UDP",
            b.dht_listen,
            "the DHT",
        ),
        // The tracker runs whether or not the BitTorrent peer does.
        (
            b.tracker.enabled,
            "bittorrent",
            "TCP+UDP",
            Some(b.tracker.listen),
            "the tracker",
        ),
    ];
    // An eD2k peer without a listener is firewalled: it has no port to name.
    let ports: Vec<_> = all.iter().filter(|p| p.0 && p.3.is_some()).collect();
    let mut lines = Vec::new();
    if !ports.is_empty() {
        lines.push("junction: the networks listen on".to_owned());
        for (_, net, proto, at, what) in ports {
            let at = format!("{proto} {}", at.map_or(String::new(), |a| a.to_string()));
            lines.push(format!("  {net:<11} {at:<24} {what}"));
        }
    }
    // What each network would connect to; a peer may still connect in to a listening port.
    let mut missing = Vec::new();
    let none_kept = |net: &str| !kept.contains(&net);
    if n.ed2k.enabled && e.servers.is_empty() && none_kept("ed2k") {
        missing.push(("ed2k", "HOST:PORT", "an eD2k server", "[ed2k] servers"));
    }
    if n.gnutella.enabled && g.peers.is_empty() && none_kept("gnutella") {
        missing.push((
            "gnutella",
            "HOST:PORT",
            "a Gnutella host",
            "[gnutella] peers",
        ));
    }
    if n.bittorrent.enabled
        && b.trackers.is_empty()
        && (b.dht_listen.is_none() || b.dht_bootstrap.is_empty())
        && none_kept("bittorrent")
    {
        missing.push((
            "bittorrent",
            "HOST:PORT",
            "a DHT node, or a tracker URL",
            "[bittorrent.dht] bootstrap",
        ));
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|m| m.0).collect();
        lines.push(format!(
            "junction: nothing to connect to yet on {}; add endpoints with",
            names.join(", ")
        ));
        for (net, addr, what, key) in &missing {
            lines.push(format!(
                "  junction endpoint add {net} {addr}   ({what}; or {key} in the config)"
            ));
        }
    }
    // Absolute: the default is relative to wherever `serve` was started.
    let data = std::path::absolute(&cfg.gateway.data_dir).unwrap_or(cfg.gateway.data_dir.clone());
    lines.push(format!(
        "junction: data in {}, finished files in {}",
        data.display(),
        data.join("downloads").display()
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_name_every_port_and_what_is_missing() {
        let got = summary(&Config::default(), &[]).join("\n");
        let want = "\
junction: the networks listen on
  ed2k        TCP 0.0.0.0:4662         eD2k peers: downloads, uploads
  gnutella    TCP 0.0.0.0:6346         Gnutella peers, as a leaf
  bittorrent  TCP 0.0.0.0:6881         BitTorrent peers
  bittorrent  UDP 0.0.0.0:6881         the DHT
junction: nothing to connect to yet on ed2k, gnutella, bittorrent; add endpoints with
  junction endpoint add ed2k HOST:PORT   (an eD2k server; or [ed2k] servers in the config)
  junction endpoint add gnutella HOST:PORT   (a Gnutella host; or [gnutella] peers in the config)
  junction endpoint add bittorrent HOST:PORT   (a DHT node, or a tracker URL; or [bittorrent.dht] bootstrap in the config)
junction: data in ";
        assert!(got.starts_with(want), "\n{got}");
        let data = std::env::current_dir().unwrap().join("junction-data");
        assert!(
            got.ends_with(&format!(
                "data in {}, finished files in {}",
                data.display(),
                data.join("downloads").display()
            )),
            "\n{got}"
        );
    }

    #[test]
    fn a_configured_network_is_not_said_to_miss_anything() {
        let cfg = Config::parse(
            "[ed2k]\nservers = [\"198.51.100.1:4661\"]\n[gnutella]\nenabled = false\n\
             [bittorrent]\ntrackers = [\"http://198.51.100.2/announce\"]\n",
        )
        .unwrap();
        let got = summary(&cfg, &[]).join("\n");
        assert!(!got.contains("nothing to connect to"), "{got}");
        assert!(!got.contains("gnutella"), "{got}");
    }

    #[test]
    fn endpoints_kept_from_endpoint_add_count_as_something_to_connect_to() {
        let got = summary(&Config::default(), &["gnutella", "bittorrent"]).join("\n");
        assert!(
            got.contains("nothing to connect to yet on ed2k;"),
            "only eD2k has none:\n{got}"
        );
        assert!(!got.contains("endpoint add gnutella"), "{got}");
        assert!(!got.contains("endpoint add bittorrent"), "{got}");
    }
}
