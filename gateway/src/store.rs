//! The embedded database (redb): transfers with their verified ranges, and the share index.
//! Records are JSON, so a field added later reads old records with its default.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::Result;

const TRANSFERS: TableDefinition<&str, &[u8]> = TableDefinition::new("transfers");
const SHARES: TableDefinition<&str, &[u8]> = TableDefinition::new("shares");
const IDENTITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("identities");
/// Endpoints added through the API, added again at start-up.
const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
/// The qBittorrent front's categories, and what it knows of each transfer (its hash, category).
const QBT_CATEGORIES: TableDefinition<&str, &[u8]> = TableDefinition::new("qbt_categories");
const QBT_TORRENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("qbt_torrents");
/// A magnet transfer's info dict (hex) once its swarm sent it, by transfer id: written once,
/// apart from the record that is saved every second.
const METADATA: TableDefinition<&str, &[u8]> = TableDefinition::new("metadata");

#[derive(Debug)]
pub struct Store {
    db: Database,
}

#[derive(Clone, Copy)]
pub enum Table {
    Transfers,
    Shares,
    Identities,
    Endpoints,
    QbtCategories,
    QbtTorrents,
    Metadata,
}

impl Table {
    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Transfers => TRANSFERS,
            Table::Shares => SHARES,
            Table::Identities => IDENTITIES,
            Table::Endpoints => ENDPOINTS,
            Table::QbtCategories => QBT_CATEGORIES,
            Table::QbtTorrents => QBT_TORRENTS,
            Table::Metadata => METADATA,
        }
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = Database::create(path)?;
        // Create the tables once so readers never meet a missing table.
        let txn = db.begin_write()?;
        txn.open_table(TRANSFERS)?;
        txn.open_table(SHARES)?;
        txn.open_table(IDENTITIES)?;
        txn.open_table(ENDPOINTS)?;
        txn.open_table(QBT_CATEGORIES)?;
        txn.open_table(QBT_TORRENTS)?;
        txn.open_table(METADATA)?;
        txn.commit()?;
        Ok(Store { db })
    }

    pub fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| crate::GatewayError::Store(e.to_string()))?;
        let txn = self.db.begin_write()?;
        txn.open_table(table.def())?.insert(key, bytes.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    pub fn remove(&self, table: Table, key: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(table.def())?.remove(key)?;
        txn.commit()?;
        Ok(())
    }

    /// One record, if there is one that parses.
    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table.def())?;
        Ok(t.get(key)?
            .and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    /// Every record of a table; records that no longer parse are skipped with a warning.
    pub fn all<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table.def())?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            match serde_json::from_slice(v.value()) {
                Ok(rec) => out.push((k.value().to_owned(), rec)),
                Err(e) => tracing::warn!(key = k.value(), error = %e, "skipping unreadable record"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let s = Store::open(&path).unwrap();
            s.put(Table::Transfers, "a", &vec![1u64, 2]).unwrap();
            s.put(Table::Transfers, "b", &vec![3u64]).unwrap();
            s.remove(Table::Transfers, "b").unwrap();
        }
        let s = Store::open(&path).unwrap();
        let all: Vec<(String, Vec<u64>)> = s.all(Table::Transfers).unwrap();
        assert_eq!(all, vec![("a".to_owned(), vec![1, 2])]);
        assert!(s.all::<Vec<u64>>(Table::Shares).unwrap().is_empty());
    }
}
