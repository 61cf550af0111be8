//! The networks a gateway runs: the config file's `[ed2k]`, `[gnutella]`, `[bittorrent]`
//! and `[limits]` tables, and [`start_all`], which starts every enabled adapter and the
//! roles beside them. `junction serve`, the lab and the bench start their gateway's own
//! networks here, so the three start them the same way.
//!
//! Each adapter crate owns its table (its `Config` is `Deserialize`, with its defaults and
//! `deny_unknown_fields`); this crate adds only `enabled` and `shared`. A new network adds
//! its table to its own `config.rs` and one field, one arm of [`NetworksConfig::read_table`]
//! and one block of [`start_all`] here.

mod limits;
mod start;
mod table;

use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub use limits::{LimitsError, LimitsSection};
pub use start::{StartError, Started, start_all};
pub use table::Network;

use table::Named;

/// Every network's table, and `[limits]`.
#[derive(Debug, Clone)]
pub struct NetworksConfig {
    pub ed2k: Network<ed2k::Config>,
    pub gnutella: Network<gnutella::Config>,
    pub bittorrent: Network<bittorrent::Config>,
    /// What one remote IP may do on every port, and the caps over all networks.
    pub limits: LimitsSection,
}

impl NetworksConfig {
    /// The top-level tables this crate reads.
    pub const TABLES: &[&str] = &["ed2k", "gnutella", "bittorrent", "limits"];

    /// Reads the top-level table `key` from `map` if it is one of [`Self::TABLES`], and
    /// says whether it was: a file that holds other tables too (the CLI's `[gateway]`)
    /// reads them itself and still refuses keys nobody knows.
    pub fn read_table<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        match key {
            "ed2k" => self.ed2k = map.next_value_seed(Named("ed2k", PhantomData))?,
            "gnutella" => self.gnutella = map.next_value_seed(Named("gnutella", PhantomData))?,
            "bittorrent" => {
                self.bittorrent = map.next_value_seed(Named("bittorrent", PhantomData))?
            }
            "limits" => self.limits = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// What a config file without these tables means: every network on, with the crates'
/// file defaults (BitTorrent then joins the DHT on its peer port).
impl Default for NetworksConfig {
    fn default() -> Self {
        let why = "a crate's defaults read from an empty table";
        NetworksConfig {
            ed2k: Network::from_empty("ed2k").expect(why),
            gnutella: Network::from_empty("gnutella").expect(why),
            bittorrent: Network::from_empty("bittorrent").expect(why),
            limits: LimitsSection::default(),
        }
    }
}

impl<'de> Deserialize<'de> for NetworksConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Tables;
        impl<'de> Visitor<'de> for Tables {
            type Value = NetworksConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "the tables {}", NetworksConfig::TABLES.join(", "))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NetworksConfig, A::Error> {
                let mut cfg = NetworksConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    if !cfg.read_table(&key, &mut map)? {
                        let err = serde::de::Error::unknown_field(&key, NetworksConfig::TABLES);
                        return Err(err);
                    }
                }
                Ok(cfg)
            }
        }
        d.deserialize_map(Tables)
    }
}

#[cfg(test)]
mod tests;
