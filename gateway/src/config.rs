//! The `[gateway]` section of the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where the gRPC API listens. Loopback by default; anything else needs a token.
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// Where transfers, shares and the database live.
    pub data_dir: PathBuf,
    /// Bearer token every RPC must carry (`authorization: Bearer …`); none when empty.
    pub token: Option<String>,
    /// PEM certificate chain and key; both set turns TLS on.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Default per-network deadline of a search.
    pub search_timeout_secs: u64,
    /// Default cap on merged items per search.
    pub max_search_items: u32,
    /// Networks that offer each finished download, as every P2P client shares its
    /// incoming folder: `["all"]` (the default), some network names, or `[]` for none.
    /// A finished download is hashed for every network either way.
    pub share_downloads: Vec<String>,
    /// Whether the networks' own clients (aMule through Junction's eD2k index server,
    /// Gnutella leaves) find and fetch through Junction what only the other networks have.
    pub bridge_on_demand: bool,
    /// How long a legacy client's search waits for the other networks.
    pub bridge_search_secs: u64,
    /// A transfer with no source on any network for this long (counted while it runs)
    /// fails, its error saying why; resuming it tries again. 0 never gives up.
    pub transfer_give_up_secs: u64,
    /// What one remote IP may do on the gRPC API and the HTTP fronts: the `[limits]`
    /// section, which the CLI copies here (not a key of `[gateway]`).
    #[serde(skip)]
    pub limits: junction_core::limit::PeerLimits,
    /// A connection to the API or the HTTP fronts from another host that has not sent its
    /// opening (a byte on the HTTP fronts, the HTTP/2 preface on the API) within this long
    /// is closed, freeing its pending-handshake slot (not a config key). On the HTTP
    /// fronts it is also the header timeout, from any host: a request head (the first, or
    /// the next on a kept-alive connection) not in within it closes the connection, and so
    /// does a first request that has not reached the router.
    #[serde(skip)]
    pub first_byte_timeout: std::time::Duration,
    /// A connection to the API or the HTTP fronts is asked to close once it is this old
    /// (HTTP/2 GOAWAY; on HTTP/1, after its current response): what it is serving finishes
    /// first, and clients open a new one for their next call, as gRPC's
    /// `MAX_CONNECTION_AGE` does. It bounds a client that holds a connection with pings and
    /// never asks anything (not a config key).
    #[serde(skip)]
    pub max_connection_age: std::time::Duration,
}

/// A `listen` key: `ip:port`, or `host:port` resolved once as the config is read
/// (`localhost:4470` is 127.0.0.1:4470); the same helper every network's table uses.
pub use junction_core::config::listen_addr;

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 4470)),
            data_dir: PathBuf::from("junction-data"),
            token: None,
            tls_cert: None,
            tls_key: None,
            search_timeout_secs: 10,
            max_search_items: 1000,
            share_downloads: vec!["all".into()],
            bridge_on_demand: true,
            bridge_search_secs: 5,
            transfer_give_up_secs: 7 * 24 * 3600,
            limits: junction_core::limit::PeerLimits::default(),
            first_byte_timeout: std::time::Duration::from_secs(10),
            max_connection_age: std::time::Duration::from_secs(600),
        }
    }
}

impl GatewayConfig {
    /// Refuses settings that would expose the gateway or cannot work.
    pub fn validate(&self) -> Result<(), String> {
        let token_set = self.token.as_deref().is_some_and(|t| !t.is_empty());
        if !self.listen.ip().is_loopback() && !token_set {
            return Err(format!(
                "refusing to listen on {} without a token: anyone who reaches it could \
                 download through this host. Set gateway.token (or --token / JUNCTION_TOKEN), \
                 or listen on 127.0.0.1",
                self.listen
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("TLS needs both gateway.tls_cert and gateway.tls_key".into());
        }
        if self.search_timeout_secs == 0 {
            return Err("gateway.search_timeout_secs must be at least 1".into());
        }
        if self.bridge_on_demand && !(1..=60).contains(&self.bridge_search_secs) {
            return Err("gateway.bridge_search_secs must be 1 to 60".into());
        }
        Ok(())
    }

    /// How long a transfer may go without a source before it fails; None: forever.
    pub fn transfer_give_up(&self) -> Option<std::time::Duration> {
        (self.transfer_give_up_secs > 0)
            .then(|| std::time::Duration::from_secs(self.transfer_give_up_secs))
    }
}
