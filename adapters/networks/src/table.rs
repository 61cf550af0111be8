//! One network's table: `enabled` and `shared` are the gateway's, every other key is the
//! adapter crate's own `Config`, which refuses what it does not know.

use std::marker::PhantomData;
use std::path::PathBuf;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _};
use serde::{Deserialize, Deserializer};

/// `[ed2k]`, `[gnutella]`, `[bittorrent]`: whether the network runs, the folders it
/// offers, and the adapter's config.
#[derive(Debug, Clone)]
pub struct Network<T> {
    pub enabled: bool,
    /// Folders the gateway shares on this network only.
    pub shared: Vec<PathBuf>,
    pub config: T,
}

impl<T: DeserializeOwned> Network<T> {
    /// The table `name` read from `d`. serde's `flatten` would let unknown keys through, so
    /// the table is split by hand: the crate's `Config` sees every key but ours, and names
    /// an unknown one.
    pub fn read<'de, D: Deserializer<'de>>(name: &str, d: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        let enabled = take(name, &mut table, "enabled")?.unwrap_or(true);
        let shared = take(name, &mut table, "shared")?.unwrap_or_default();
        let config = T::deserialize(toml::Value::Table(table)).map_err(|e| {
            let e = e.to_string();
            // The crate lists its own keys; ours are valid too.
            let ours = match e.starts_with("unknown field") {
                true => " (or `enabled`, `shared`)",
                false => "",
            };
            D::Error::custom(format!("[{name}] {}{ours}", e.trim_end()))
        })?;
        Ok(Network {
            enabled,
            shared,
            config,
        })
    }

    /// What an empty table means: running, sharing nothing, the crate's file defaults.
    pub fn from_empty(name: &str) -> Result<Self, toml::de::Error> {
        Self::read(name, toml::Value::Table(toml::Table::new()))
    }
}

/// One of our keys, taken out of the table before the crate sees it.
fn take<V: DeserializeOwned, E: serde::de::Error>(
    name: &str,
    table: &mut toml::Table,
    key: &str,
) -> Result<Option<V>, E> {
    table
        .remove(key)
        .map(|v| V::deserialize(v).map_err(|e| E::custom(format!("[{name}] {key}: {e}"))))
        .transpose()
}

/// Reads a [`Network`] as a map value, knowing its table's name for the errors.
pub(crate) struct Named<T>(pub &'static str, pub PhantomData<T>);

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Named<T> {
    type Value = Network<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Network<T>, D::Error> {
        Network::read(self.0, d)
    }
}
