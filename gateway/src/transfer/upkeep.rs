//! What every running transfer needs now and then: its verified ranges saved, its rates
//! and give-up clock advanced, a full disk noticed and, once there is room again, the
//! transfer resumed. A save (an fsync and a commit) comes once a second at most; what
//! verifies in between is in the transfer's journal (`journal.rs`), so a crash loses none
//! of it.

use std::sync::Arc;
use std::time::Duration;

use super::run::{halt, resume};
use super::{Inner, State, Transfer};

/// How often rates are computed and written ranges and the clocks persisted.
const TICK: Duration = Duration::from_secs(1);
/// Free space a transfer paused for a full disk waits for (or what it still lacks).
const ROOM_TO_RESUME: u64 = 16 << 20;

/// No source on any network for the give-up time: stop fetching, keep what is verified,
/// and say what the user can do.
fn give_up(inner: &Inner, t: &Transfer) {
    let id = halt(t);
    let after = inner
        .give_up
        .map_or_else(String::new, |d| format!(" for {}", super::clock::human(d)));
    let why = format!(
        "no source on any network{after}; the file may be gone. Retry with `junction resume \
         {id}`, or remove it with `junction cancel {id}`"
    );
    tracing::info!(%id, "no source on any network; the transfer failed");
    let _ = inner.set_state(t, State::Failed, Some(why));
}

/// A write found the disk full: the transfer stops (its verified bytes stay) and says
/// so, and `tick` starts it again once `ROOM_TO_RESUME` is free.
fn pause_for_space(inner: &Inner, t: &Transfer) {
    let id = halt(t);
    {
        let mut m = t.run_state();
        m.record.waiting_for_space = true;
        m.record.free_at_pause = junction_core::free_space(&inner.incomplete).map_or(0, |f| f.all);
    }
    let why = format!(
        "the disk holding {} is full: the transfer is paused with what it has verified, and \
         goes on by itself once {} MiB are free (or free space, then `junction resume {id}`)",
        inner.incomplete.display(),
        ROOM_TO_RESUME >> 20
    );
    tracing::warn!(%id, "disk full; the transfer waits for space");
    let _ = inner.set_state(t, State::Paused, Some(why));
}

/// Whether a transfer paused for a full disk now has room to go on.
fn room_again(inner: &Inner, t: &Transfer) -> bool {
    let sink = t.sink();
    let needed = ROOM_TO_RESUME.min(sink.size().saturating_sub(sink.verified_bytes()));
    let at_pause = t.run_state().record.free_at_pause;
    // Root writes into the file system's reserve, so it fills the disk past what others
    // may use: for it, room means that much more free than when it paused.
    junction_core::free_space(&inner.incomplete)
        .is_ok_and(|f| f.available > needed || f.all > at_pause.saturating_add(needed))
}

/// Once a second: rates, the give-up clock, persisting verified ranges, and progress
/// events.
pub(super) async fn tick(inner: Arc<Inner>) {
    let mut interval = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = inner.shutdown.cancelled() => return,
        }
        let now = std::time::Instant::now();
        // Copied out: no map guard is held while a transfer is saved or changes state.
        let all: Vec<Arc<Transfer>> = inner.transfers.iter().map(|e| e.value().clone()).collect();
        let mut to_save = Vec::new();
        for t in &all {
            let fresh = t.sink().take_fresh_bytes();
            let figures = t.sink().figures();
            let complete = t.sink().is_complete();
            let (active, give_up, save_clock) = {
                let mut m = t.run_state();
                m.rate = fresh;
                for (net, f) in &figures {
                    let s = m.nets.entry(*net).or_default();
                    s.rate = f.received.saturating_sub(s.last_received);
                    s.last_received = f.received;
                }
                let active = m.record.state == State::Active;
                // A source is a peer any network reports, or bytes that came in.
                let has_source = fresh > 0 || m.nets.values().any(|s| s.peers() > 0);
                let give_up =
                    active && !complete && m.clock.advance(now, has_source, inner.give_up);
                (active, give_up, m.clock.take_save())
            };
            if give_up {
                self::give_up(&inner, t);
                continue;
            }
            if active && t.sink().take_out_of_space() {
                pause_for_space(&inner, t);
                continue;
            }
            let waiting = {
                let m = t.run_state();
                m.record.waiting_for_space && m.record.state == State::Paused
            };
            if waiting && room_again(&inner, t) {
                tracing::info!(id = %t.run_state().record.id, "room on the disk again; the transfer goes on");
                let _ = resume(&inner, t);
                continue;
            }
            if t.sink().take_dirty() || save_clock {
                to_save.push(t.clone());
            }
            if active && (fresh > 0 || t.is_running()) {
                inner.emit(t.info(), false);
            }
        }
        save_off_the_runtime(&inner, to_save).await;
    }
}

/// Saves transfers on the blocking pool: each save syncs the file and commits.
async fn save_off_the_runtime(inner: &Arc<Inner>, transfers: Vec<Arc<Transfer>>) {
    if transfers.is_empty() {
        return;
    }
    let inner = inner.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for t in transfers {
            inner.persist(&t);
        }
    })
    .await;
}
