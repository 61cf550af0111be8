//! Bridged searches by hash, remembered a while and run once however many ask. Legacy
//! clients ask for the same hash again and again (gtk-gnutella re-queries the SHA-1 of
//! every file it downloads, aMule re-asks its server for sources every few minutes), and
//! each bridged search costs a query on every other network. A hash nobody has is
//! remembered for [`MISS_TTL`], an answer for [`HIT_TTL`] (its source counts age), and
//! an identical search under way is joined rather than started again. So however many
//! ask, one hash costs at most one search of the other networks every 15 s; the miss is
//! kept short because content appears (a DHT index learns a torrent, a share is added)
//! and a client that asks again soon should find it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use junction_core::BridgedItem;

/// How long "no network has it" stands.
pub const MISS_TTL: Duration = Duration::from_secs(15);
/// How long a found answer stands.
pub const HIT_TTL: Duration = Duration::from_secs(60);
/// Answers remembered at once; the oldest go first.
const MAX_DONE: usize = 4096;
/// Searches joined at once; beyond it a search runs on its own.
const MAX_RUNNING: usize = 256;

type Running = Shared<BoxFuture<'static, Vec<BridgedItem>>>;

#[derive(Debug, Default)]
pub struct Recent {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    done: HashMap<String, (Instant, Vec<BridgedItem>)>,
    /// Keys of `done`, oldest first.
    order: VecDeque<String>,
    running: HashMap<String, Running>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("done", &self.done.len())
            .field("running", &self.running.len())
            .finish()
    }
}

impl Recent {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer for `key`: remembered, joined, or from `search`, which runs only when
    /// neither is there.
    pub async fn answer(
        &self,
        key: String,
        search: impl FnOnce() -> BoxFuture<'static, Vec<BridgedItem>>,
    ) -> Vec<BridgedItem> {
        let (running, leader) = {
            let mut s = self.state();
            if let Some((at, items)) = s.done.get(&key) {
                let ttl = if items.is_empty() { MISS_TTL } else { HIT_TTL };
                if at.elapsed() < ttl {
                    return items.clone();
                }
            }
            match s.running.get(&key) {
                Some(r) => (r.clone(), false),
                None => {
                    let r = search().shared();
                    if s.running.len() < MAX_RUNNING {
                        s.running.insert(key.clone(), r.clone());
                    }
                    (r, true)
                }
            }
        };
        if !leader {
            return running.await;
        }
        // Leaving early (the client went) must not leave the search listed for ever.
        let _listed = Unlist {
            recent: self,
            key: &key,
        };
        let items = running.await;
        self.remember(key.clone(), items.clone());
        items
    }

    fn remember(&self, key: String, items: Vec<BridgedItem>) {
        let mut s = self.state();
        if s.done
            .insert(key.clone(), (Instant::now(), items))
            .is_none()
        {
            s.order.push_back(key);
        }
        while s.order.len() > MAX_DONE {
            if let Some(old) = s.order.pop_front() {
                s.done.remove(&old);
            }
        }
    }
}

struct Unlist<'a> {
    recent: &'a Recent,
    key: &'a str,
}

impl Drop for Unlist<'_> {
    fn drop(&mut self) {
        self.recent.state().running.remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use junction_core::ContentId;

    use super::*;

    fn counting(
        runs: &Arc<AtomicUsize>,
        found: Vec<BridgedItem>,
    ) -> impl FnOnce() -> BoxFuture<'static, Vec<BridgedItem>> + use<> {
        let runs = runs.clone();
        move || {
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                found
            }
            .boxed()
        }
    }

    fn item() -> BridgedItem {
        BridgedItem {
            name: "a".into(),
            id: ContentId::new(Some(1)),
            sources: 1,
        }
    }

    #[tokio::test]
    async fn a_miss_is_remembered_and_searches_under_way_are_joined() {
        let recent = Recent::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (a, b) = tokio::join!(
            recent.answer("k".into(), counting(&runs, Vec::new())),
            recent.answer("k".into(), counting(&runs, Vec::new())),
        );
        assert!(a.is_empty() && b.is_empty());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "joined, not run twice");
        let again = recent.answer("k".into(), counting(&runs, Vec::new())).await;
        assert!(again.is_empty());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the miss is remembered");
        let other = recent
            .answer("other".into(), counting(&runs, vec![item()]))
            .await;
        assert_eq!(other, vec![item()]);
        assert_eq!(runs.load(Ordering::SeqCst), 2, "another key runs");
    }

    #[tokio::test]
    async fn an_answer_goes_stale_and_a_leader_that_leaves_unlists_its_search() {
        let recent = Recent::default();
        let runs = Arc::new(AtomicUsize::new(0));
        // The leader gives up before the search ends.
        let left = tokio::time::timeout(
            Duration::from_millis(10),
            recent.answer("k".into(), counting(&runs, vec![item()])),
        )
        .await;
        assert!(left.is_err());
        assert!(recent.state().running.is_empty(), "not listed for ever");
        // A found answer older than its TTL is searched again.
        recent
            .state()
            .done
            .insert("k".into(), (Instant::now() - HIT_TTL, vec![item()]));
        let fresh = recent.answer("k".into(), counting(&runs, vec![])).await;
        assert!(fresh.is_empty(), "searched again");
    }
}
