//! Spawning an adapter's tasks.
//!
//! Every task an adapter starts goes through [`spawn`], so that two things hold everywhere
//! without each call site remembering them: its log lines carry what the task is about
//! (the peer, the torrent, the server), and it ends when its adapter (or the connection,
//! the torrent it serves) shuts down, instead of outliving it and holding sockets and
//! files. Shutdown is then one order in every adapter: cancel the token, then wait, bounded,
//! only for what must say goodbye to the network (a tracker's `stopped`, a Gnutella Bye).

use std::future::Future;

use futures::future::Either;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

/// Spawns `fut` inside `span`; it is dropped when `cancel` is cancelled.
///
/// The handle yields `Some(output)` when the task ended by itself and `None` when it was
/// cancelled. The task is polled before the token, so one that also watches the token
/// (to leave a queue, to send a last event) still runs that ending up to its next await;
/// what must await on the network after shutdown (a goodbye) is awaited by the adapter's
/// `shutdown`, bounded, not left to a task that the token drops.
pub fn spawn<F>(span: Span, cancel: CancellationToken, fut: F) -> JoinHandle<Option<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let run = async move {
        let fut = std::pin::pin!(fut);
        let cancelled = std::pin::pin!(cancel.cancelled());
        match futures::future::select(fut, cancelled).await {
            Either::Left((out, _)) => Some(out),
            Either::Right(((), _)) => None,
        }
    };
    tokio::spawn(run.instrument(span))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn cancel_ends_the_task() {
        let cancel = CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let task = spawn(Span::none(), cancel.clone(), async move {
            // holds `tx` until dropped: the channel closes only when the task is gone
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        cancel.cancel();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .unwrap()
                .unwrap(),
            None
        );
        assert!(rx.recv().await.is_none(), "the future was dropped");
    }

    #[tokio::test]
    async fn a_task_that_ends_returns_its_output() {
        let task = spawn(Span::none(), CancellationToken::new(), async { 7 });
        assert_eq!(task.await.unwrap(), Some(7));
    }

    #[tokio::test]
    async fn a_task_watching_the_token_runs_its_own_ending() {
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let task = spawn(Span::none(), cancel.clone(), async move {
            token.cancelled().await;
            "left"
        });
        cancel.cancel();
        assert_eq!(task.await.unwrap(), Some("left"));
    }

    #[tokio::test]
    async fn a_cancelled_token_ends_a_child_task() {
        let parent = CancellationToken::new();
        let task = spawn(
            Span::none(),
            parent.child_token(),
            std::future::pending::<()>(),
        );
        parent.cancel();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .unwrap()
                .unwrap(),
            None
        );
    }

    #[test]
    fn the_span_is_entered() {
        use std::sync::{Arc, Mutex};

        use tracing::{Id, Metadata, span};

        /// Records, for each event, the name of the span entered when it was logged.
        #[derive(Default)]
        struct Spans {
            names: Mutex<Vec<&'static str>>,
            stack: Mutex<Vec<&'static str>>,
            events: Arc<Mutex<Vec<Option<&'static str>>>>,
        }
        impl tracing::Subscriber for Spans {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, attrs: &span::Attributes<'_>) -> Id {
                let mut names = self.names.lock().unwrap();
                names.push(attrs.metadata().name());
                Id::from_u64(names.len() as u64)
            }
            fn record(&self, _: &Id, _: &span::Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, _: &tracing::Event<'_>) {
                let top = self.stack.lock().unwrap().last().copied();
                self.events.lock().unwrap().push(top);
            }
            fn enter(&self, id: &Id) {
                let name = self.names.lock().unwrap()[usize::try_from(id.into_u64()).unwrap() - 1];
                self.stack.lock().unwrap().push(name);
            }
            fn exit(&self, _: &Id) {
                self.stack.lock().unwrap().pop();
            }
        }

        let subscriber = Spans::default();
        let events = subscriber.events.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let _rt = rt.enter();
            let task = spawn(
                tracing::info_span!("the_task"),
                CancellationToken::new(),
                async {
                    tracing::info!("inside");
                },
            );
            rt.block_on(task).unwrap().unwrap();
        });
        assert_eq!(*events.lock().unwrap(), vec![Some("the_task")]);
    }
}
