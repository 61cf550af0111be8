//! What the qBittorrent front keeps beyond the transfers themselves: its categories, and per
//! transfer the hash the apps track it by, its category and its dates. Kept in the gateway's
//! database so Sonarr and Radarr find their downloads again after a restart.
//!
//! The hash is fixed when a transfer is first seen here: a transfer that later learns a
//! real info-hash (sharing a finished file on BitTorrent makes one) keeps the synthetic
//! one the app derived from the magnet, or the app would lose track of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::store::{Store, Table};

/// Categories at most; the apps make one each.
const MAX_CATEGORIES: usize = 1000;
/// Longest category name or save path accepted, in bytes.
pub const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    /// Where the user wants it; reported back as given (files stay in the downloads folder).
    #[serde(rename = "savePath")]
    pub save_path: String,
}

/// One transfer as the front knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Lowercase hex of the info-hash the apps track it by (real or synthetic).
    pub hash: String,
    #[serde(default)]
    pub category: String,
    /// Unix seconds.
    #[serde(default)]
    pub added_on: i64,
    /// Unix seconds; when the front first saw it complete.
    #[serde(default)]
    pub completion_on: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("the category name is empty")]
    Empty,
    #[error(
        "{0:?} is not a valid category name (at most {MAX_NAME} bytes, no control characters, no leading, trailing or doubled '/')"
    )]
    Invalid(String),
    #[error("category {0:?} already exists")]
    Exists(String),
    #[error("there are already {MAX_CATEGORIES} categories; remove some first")]
    Full,
    #[error(transparent)]
    Store(#[from] crate::GatewayError),
}

#[derive(Debug)]
pub struct Book {
    store: Arc<Store>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    categories: BTreeMap<String, Category>,
    /// By transfer id.
    entries: HashMap<String, Entry>,
}

impl Book {
    /// Loads what the database holds; unreadable records were already skipped by the store.
    pub fn open(store: Arc<Store>) -> crate::Result<Book> {
        let categories = store
            .all::<Category>(Table::QbtCategories)?
            .into_iter()
            .map(|(_, c)| (c.name.clone(), c))
            .collect();
        let entries = store
            .all::<Entry>(Table::QbtTorrents)?
            .into_iter()
            .collect();
        Ok(Book {
            store,
            inner: Mutex::new(Inner {
                categories,
                entries,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn categories(&self) -> Vec<Category> {
        self.lock().categories.values().cloned().collect()
    }

    pub fn has_category(&self, name: &str) -> bool {
        self.lock().categories.contains_key(name)
    }

    /// Creates a category; `exists_ok` for `add`, which creates one it is given, as
    /// qBittorrent does.
    pub fn create_category(
        &self,
        name: &str,
        save_path: &str,
        exists_ok: bool,
    ) -> Result<(), BookError> {
        check_name(name)?;
        if save_path.len() > MAX_NAME || save_path.chars().any(char::is_control) {
            return Err(BookError::Invalid(save_path.into()));
        }
        let mut g = self.lock();
        if g.categories.contains_key(name) {
            return if exists_ok {
                Ok(())
            } else {
                Err(BookError::Exists(name.into()))
            };
        }
        if g.categories.len() >= MAX_CATEGORIES {
            return Err(BookError::Full);
        }
        let c = Category {
            name: name.into(),
            save_path: save_path.into(),
        };
        self.store.put(Table::QbtCategories, name, &c)?;
        g.categories.insert(name.into(), c);
        Ok(())
    }

    pub fn remove_category(&self, name: &str) -> Result<(), BookError> {
        let mut g = self.lock();
        if g.categories.remove(name).is_some() {
            self.store.remove(Table::QbtCategories, name)?;
            // Its transfers become uncategorised, as in qBittorrent.
            let ids: Vec<String> = g
                .entries
                .iter()
                .filter(|(_, e)| e.category == name)
                .map(|(id, _)| id.clone())
                .collect();
            for id in ids {
                if let Some(e) = g.entries.get_mut(&id) {
                    e.category.clear();
                    self.store.put(Table::QbtTorrents, &id, e)?;
                }
            }
        }
        Ok(())
    }

    pub fn entry(&self, transfer: &str) -> Option<Entry> {
        self.lock().entries.get(transfer).cloned()
    }

    /// Records a transfer's entry (replacing any).
    pub fn put(&self, transfer: &str, entry: Entry) -> crate::Result<()> {
        let mut g = self.lock();
        if g.entries.get(transfer) != Some(&entry) {
            self.store.put(Table::QbtTorrents, transfer, &entry)?;
            g.entries.insert(transfer.into(), entry);
        }
        Ok(())
    }

    pub fn forget(&self, transfer: &str) -> crate::Result<()> {
        if self.lock().entries.remove(transfer).is_some() {
            self.store.remove(Table::QbtTorrents, transfer)?;
        }
        Ok(())
    }

    /// Drops entries whose transfer is gone (cancelled through another front).
    pub fn retain(&self, alive: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self
            .lock()
            .entries
            .keys()
            .filter(|id| !alive(id))
            .cloned()
            .collect();
        for id in gone {
            if let Err(e) = self.forget(&id) {
                tracing::warn!(%id, error = %e, "could not forget a qBittorrent entry");
            }
        }
    }
}

/// qBittorrent's rule (no leading, trailing or doubled `/`, which nest categories), plus
/// a bound and no control characters.
pub fn check_name(name: &str) -> Result<(), BookError> {
    if name.is_empty() {
        return Err(BookError::Empty);
    }
    if name.len() > MAX_NAME
        || name.starts_with('/')
        || name.ends_with('/')
        || name.contains("//")
        || name.chars().any(char::is_control)
    {
        return Err(BookError::Invalid(name.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let book = Book::open(Arc::new(Store::open(&path).unwrap())).unwrap();
            book.create_category("tv-sonarr", "/media/tv", false)
                .unwrap();
            book.create_category("radarr", "", false).unwrap();
            assert!(matches!(
                book.create_category("radarr", "", false),
                Err(BookError::Exists(_))
            ));
            book.create_category("radarr", "", true).unwrap();
            assert!(matches!(
                book.create_category("", "", false),
                Err(BookError::Empty)
            ));
            assert!(matches!(
                book.create_category("/a", "", false),
                Err(BookError::Invalid(_))
            ));
            let e = Entry {
                hash: "ab".repeat(20),
                category: "radarr".into(),
                added_on: 5,
                completion_on: None,
            };
            book.put("t1", e.clone()).unwrap();
            book.put("t2", e).unwrap();
            book.retain(|id| id == "t1");
            book.remove_category("radarr").unwrap();
        }
        let book = Book::open(Arc::new(Store::open(&path).unwrap())).unwrap();
        assert_eq!(
            book.categories(),
            vec![Category {
                name: "tv-sonarr".into(),
                save_path: "/media/tv".into()
            }]
        );
        let e = book.entry("t1").unwrap();
        assert_eq!((e.category.as_str(), e.added_on), ("", 5));
        assert!(book.entry("t2").is_none());
    }
}
