//! Recent search items, so `StartTransfer(item_id)` works after the search stream ends.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::Item;

/// A bounded map of item id → item; the oldest items leave first.
#[derive(Debug)]
pub struct ResultCache {
    cap: usize,
    inner: Mutex<(HashMap<String, Item>, VecDeque<String>)>,
}

impl ResultCache {
    pub fn new(cap: usize) -> Self {
        ResultCache {
            cap: cap.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// Inserts or refreshes an item (a refresh keeps its place in line).
    pub fn put(&self, item: Item) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(item.id.clone(), item.clone()).is_none() {
            order.push_back(item.id);
            while order.len() > self.cap {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<Item> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::ContentId;

    fn item(id: &str) -> Item {
        Item {
            id: id.into(),
            name: id.into(),
            size: 1,
            content: ContentId::new(Some(1)),
            availability: vec![],
            other_names: vec![],
            score: 0.0,
            file_type: None,
            links: vec![],
            sources: vec![],
        }
    }

    #[test]
    fn evicts_the_oldest_beyond_its_bound() {
        let c = ResultCache::new(2);
        c.put(item("a"));
        c.put(item("b"));
        c.put(item("a"));
        c.put(item("c"));
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some() && c.get("c").is_some());
    }
}
