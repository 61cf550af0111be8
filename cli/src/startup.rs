//! What `serve` says when it starts: every port it opened and what for, which networks have
//! nothing to connect to yet, and how to give them something.

use crate::config::Config;

/// The lines, for stderr, after the API's own line. `kept` names the networks that have
/// endpoints kept from `endpoint add` (the gateway adds them again at start).
pub fn summary(cfg: &Config, kept: &[&str]) -> Vec<String> {
    let n = &cfg.networks;
    let (e, g, b) = (&n.ed2k.config, &n.gnutella.config, &n.bittorrent.config);
    let mut lines = listening(cfg);
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

/// Every port the networks listen on and what for. An eD2k peer without a listener is
/// firewalled: it has no port to name.
fn listening(cfg: &Config) -> Vec<String> {
    let n = &cfg.networks;
    let (e, g, b) = (&n.ed2k.config, &n.gnutella.config, &n.bittorrent.config);
    let on = |enabled: bool, at: Option<std::net::SocketAddr>| at.filter(|_| enabled);
    let leaf_or_ultrapeer = match g.ultrapeer {
        true => "Gnutella peers, as an ultrapeer",
        false => "Gnutella peers, as a leaf",
    };
    let (ed2k, bt) = (n.ed2k.enabled, n.bittorrent.enabled);
    let all = [
        (
            on(ed2k, e.listen),
            "ed2k",
            "TCP",
            "eD2k peers: downloads, uploads",
        ),
        (
            on(ed2k && e.server.enabled, Some(e.server.listen)),
            "ed2k",
            "TCP",
            "the eD2k index server",
        ),
        (
            on(n.gnutella.enabled, Some(g.listen)),
            "gnutella",
            "TCP",
            leaf_or_ultrapeer,
        ),
        (
            on(bt, Some(b.listen)),
            "bittorrent",
            "TCP",
            "BitTorrent peers",
        ),
        (on(bt, b.dht_listen), "bittorrent", "UDP", "the DHT"),
        // The tracker runs whether or not the BitTorrent peer does.
        (
            on(b.tracker.enabled, Some(b.tracker.listen)),
            "bittorrent",
            "TCP+UDP",
            "the tracker",
        ),
    ];
    let mut lines = Vec::new();
    for (at, net, proto, what) in all {
        if let Some(at) = at {
            if lines.is_empty() {
                lines.push("junction: the networks listen on".to_owned());
            }
            let at = format!("{proto} {at}");
            lines.push(format!("  {net:<11} {at:<24} {what}"));
        }
    }
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
