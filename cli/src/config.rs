//! The config file (TOML), its embedded defaults, and `JUNCTION_*` overrides.

use std::path::Path;

use anyhow::{Context, Result};
use gateway::GatewayConfig;
use gateway::http::HttpConfig;
use junction_core::addr::{RESOLVE_TIMEOUT, resolve_blocking};
use networks::NetworksConfig;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The whole config file. Every key has a default; unknown keys are an error.
#[derive(Debug, Default)]
pub struct Config {
    pub gateway: GatewayConfig,
    /// The HTTP fronts (players, Torznab), beside the gRPC API.
    pub http: HttpConfig,
    /// `[ed2k]`, `[gnutella]`, `[bittorrent]` (each adapter crate reads its own table) and
    /// `[limits]`: what one remote IP may do on every port, the networks', the tracker's,
    /// the DHT's, the gRPC API's and the HTTP fronts'.
    pub networks: NetworksConfig,
}

/// The top-level tables by hand: serde's `flatten` would let unknown tables through.
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct File;
        impl<'de> Visitor<'de> for File {
            type Value = Config;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Junction config file")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
                let mut cfg = Config::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "gateway" => cfg.gateway = map.next_value()?,
                        "http" => cfg.http = map.next_value()?,
                        k if cfg.networks.read_table(k, &mut map)? => {}
                        k => {
                            let all = ["gateway", "http"].iter().chain(NetworksConfig::TABLES);
                            let all: Vec<String> = all.map(|t| format!("`{t}`")).collect();
                            return Err(serde::de::Error::custom(format!(
                                "unknown table `{k}`, expected one of {}",
                                all.join(", ")
                            )));
                        }
                    }
                }
                Ok(cfg)
            }
        }
        d.deserialize_map(File)
    }
}

/// A `--listen`/`--http` value: an address, or a name such as `localhost:4470`, resolved as
/// the config's `listen` keys are.
pub fn listen_arg(value: &str) -> Result<std::net::SocketAddr, String> {
    resolve_blocking(value, RESOLVE_TIMEOUT).map_err(|e| e.to_string())
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                Config::parse(&text).with_context(|| format!("in {}", p.display()))?
            }
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        Ok(cfg)
    }

    pub fn parse(text: &str) -> Result<Config> {
        Ok(toml::from_str(text)?)
    }

    /// `JUNCTION_LISTEN`, `JUNCTION_HTTP_LISTEN`, `JUNCTION_DATA_DIR`, `JUNCTION_TOKEN`, `JUNCTION_TLS_CERT`,
    /// `JUNCTION_TLS_KEY`, `JUNCTION_SEARCH_TIMEOUT_SECS` override the file.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = var("JUNCTION_HTTP_LISTEN") {
            self.http.listen = resolve_blocking(&v, RESOLVE_TIMEOUT)
                .with_context(|| format!("JUNCTION_HTTP_LISTEN={v:?}"))?;
        }
        let g = &mut self.gateway;
        if let Some(v) = var("JUNCTION_LISTEN") {
            g.listen = resolve_blocking(&v, RESOLVE_TIMEOUT)
                .with_context(|| format!("JUNCTION_LISTEN={v:?}"))?;
        }
        if let Some(v) = var("JUNCTION_DATA_DIR") {
            g.data_dir = v.into();
        }
        if let Some(v) = var("JUNCTION_TOKEN") {
            g.token = Some(v);
        }
        if let Some(v) = var("JUNCTION_TLS_CERT") {
            g.tls_cert = Some(v.into());
        }
        if let Some(v) = var("JUNCTION_TLS_KEY") {
            g.tls_key = Some(v.into());
        }
        if let Some(v) = var("JUNCTION_SEARCH_TIMEOUT_SECS") {
            g.search_timeout_secs = v
                .parse()
                .context("JUNCTION_SEARCH_TIMEOUT_SECS is not a number")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table of the shipped example, `[]` being the top level.
    fn tables(t: &toml::Table, at: &str, out: &mut Vec<String>) {
        out.push(at.to_owned());
        for (k, v) in t {
            if let toml::Value::Table(inner) = v {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                tables(inner, &path, out);
            }
        }
    }

    /// A misspelt key is refused wherever it is, naming it, never silently ignored.
    #[test]
    fn an_unknown_key_in_any_table_of_the_example_is_refused_by_name() {
        let text = include_str!("../../junction.example.toml");
        let example: toml::Table = text.parse().unwrap();
        let mut all = Vec::new();
        tables(&example, "", &mut all);
        assert!(all.len() >= 10, "tables found: {all:?}");
        for path in &all {
            let mut t = example.clone();
            let mut at = &mut t;
            for part in path.split('.').filter(|p| !p.is_empty()) {
                at = at[part].as_table_mut().unwrap();
            }
            at.insert("upload_limt_kib".into(), toml::Value::Integer(1));
            let err = Config::parse(&toml::to_string(&t).unwrap())
                .map(|_| ())
                .expect_err(&format!("[{path}] took an unknown key"));
            assert!(
                format!("{err:#}").contains("upload_limt_kib"),
                "[{path}]: {err:#}"
            );
        }
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../junction.example.toml");
        let cfg = Config::parse(text).unwrap();
        assert_eq!(cfg.gateway, GatewayConfig::default());
        assert_eq!(cfg.http, HttpConfig::default());
        let n = &cfg.networks;
        assert!(n.ed2k.enabled && n.gnutella.enabled && n.bittorrent.enabled);
        // The example shows every default: it reads as no file at all.
        let d = NetworksConfig::default();
        assert_eq!(n.ed2k.config.listen, d.ed2k.config.listen);
        assert_eq!(n.ed2k.config.server.listen, d.ed2k.config.server.listen);
        assert_eq!(n.ed2k.config.upload_limit, None);
        assert_eq!(n.gnutella.config, d.gnutella.config);
        let (b, db) = (&n.bittorrent.config, &d.bittorrent.config);
        assert_eq!((b.listen, b.dht_listen), (db.listen, db.dht_listen));
        assert_eq!(b.max_peers_per_torrent, db.max_peers_per_torrent);
        assert_eq!(b.tracker, db.tracker);
        assert_eq!(b.upload_rate_limit, None);
        assert_eq!(n.limits, d.limits);
        assert!(
            b.dht_bootstrap.is_empty(),
            "no bootstrap to the internet by default"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::parse("[gateway]\nlisten_on = \"x\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("listen_on"), "{err:#}");
        let err = format!("{:#}", Config::parse("[gatway]\n").unwrap_err());
        assert!(
            err.contains("`gatway`") && err.contains("`gateway`"),
            "{err}"
        );
    }

    #[test]
    fn listen_flags_take_names_too() {
        assert_eq!(
            listen_arg("localhost:4471"),
            Ok("127.0.0.1:4471".parse().unwrap())
        );
        let err = listen_arg("4471").unwrap_err();
        assert!(err.contains("4471"), "{err}");
    }

    #[test]
    fn listen_addresses_may_be_names() {
        let cfg = Config::parse(
            "[gateway]\nlisten = \"localhost:4471\"\n[gnutella]\nlisten = \"localhost:0\"\n\
             [bittorrent.dht]\nlisten = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        assert_eq!(cfg.gateway.listen, "127.0.0.1:4471".parse().unwrap());
        let g = &cfg.networks.gnutella.config;
        assert_eq!(g.listen, "127.0.0.1:0".parse().unwrap());
        let dht = cfg.networks.bittorrent.config.dht_listen;
        assert_eq!(dht, Some("127.0.0.1:0".parse().unwrap()));
        // A name that does not resolve is named, with where it is.
        let err = Config::parse("[ed2k]\nlisten = \"nowhere.invalid:4662\"\n").unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("nowhere.invalid:4662") && err.contains("listen"),
            "{err}"
        );
        let err = Config::parse("[http]\nlisten = \"4480\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("not a host:port"), "{err:#}");
    }

    #[test]
    fn env_overrides_the_file() {
        let mut cfg = Config::parse("[gateway]\nsearch_timeout_secs = 3\n").unwrap();
        cfg.apply_env(|k| (k == "JUNCTION_SEARCH_TIMEOUT_SECS").then(|| "7".to_owned()))
            .unwrap();
        assert_eq!(cfg.gateway.search_timeout_secs, 7);
        assert!(
            cfg.apply_env(|k| (k == "JUNCTION_LISTEN").then(|| "nope".to_owned()))
                .is_err()
        );
        cfg.apply_env(|k| (k == "JUNCTION_LISTEN").then(|| "localhost:4472".to_owned()))
            .unwrap();
        assert_eq!(cfg.gateway.listen, "127.0.0.1:4472".parse().unwrap());
    }
}
