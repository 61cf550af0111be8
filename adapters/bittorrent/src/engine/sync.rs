//! The one locking helper every task shares (the torrents, the DHT, the adapter's index).

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the data over if a holder panicked: every critical section here
/// leaves the data consistent between statements, so a poisoned lock is still usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
