//! Single-flight: however many callers want the same work at once, it runs
//! once and they all get its result.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

/// The work stopped without a result (it panicked or its runtime shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the shared work stopped without a result")]
pub struct Aborted;

/// A running piece of work that any number of callers can await.
pub type Flight<T> = Shared<BoxFuture<'static, Result<T, Aborted>>>;

/// At most one flight at a time. The work runs in its own task, so a caller
/// that gives up (its deadline passed, it disconnected) does not cancel it for
/// the others.
pub struct SingleFlight<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

struct Slot<T> {
    current: Option<(u64, Flight<T>)>,
    started: u64,
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    pub fn new() -> Self {
        Self {
            slot: Arc::new(Mutex::new(Slot {
                current: None,
                started: 0,
            })),
        }
    }

    /// The flight in progress, or else a new one running `start()`. The slot
    /// empties when the work ends, so work should publish its result (e.g.
    /// into a cache) before it ends: whoever comes later finds it there.
    pub fn join_or_start<F>(&self, start: impl FnOnce() -> F) -> Flight<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let mut slot = lock(&self.slot);
        if let Some((_, flight)) = &slot.current {
            return flight.clone();
        }
        slot.started += 1;
        let id = slot.started;
        let work = start();
        let landing = Landing {
            slot: self.slot.clone(),
            id,
        };
        let task = tokio::spawn(async move {
            // Dropped after the work, even if it panics: the slot never stays taken.
            let _landing = landing;
            work.await
        });
        let flight = task
            .map(|joined| joined.map_err(|_| Aborted))
            .boxed()
            .shared();
        slot.current = Some((id, flight.clone()));
        flight
    }

    /// Whether a flight is in progress.
    pub fn is_running(&self) -> bool {
        lock(&self.slot).current.is_some()
    }
}

impl<T: Clone + Send + Sync + 'static> Default for SingleFlight<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for SingleFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight")
            .field("running", &lock(&self.slot).current.is_some())
            .finish()
    }
}

/// Empties the slot when its flight's work ends.
struct Landing<T> {
    slot: Arc<Mutex<Slot<T>>>,
    id: u64,
}

impl<T> Drop for Landing<T> {
    fn drop(&mut self) {
        let mut slot = lock(&self.slot);
        if slot.current.as_ref().is_some_and(|(id, _)| *id == self.id) {
            slot.current = None;
        }
    }
}

/// The slot holds no invariant a panic could break halfway, so a poisoned lock is still usable.
fn lock<T>(slot: &Mutex<Slot<T>>) -> MutexGuard<'_, Slot<T>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights = SingleFlight::<usize>::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let waiters: Vec<_> = (0..50)
            .map(|_| {
                let runs = runs.clone();
                let release = release.clone();
                flights.join_or_start(move || async move {
                    release.notified().await;
                    runs.fetch_add(1, Ordering::SeqCst) + 1
                })
            })
            .collect();
        assert!(flights.is_running());
        release.notify_one();
        for result in futures::future::join_all(waiters).await {
            assert_eq!(result, Ok(1));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!flights.is_running());
    }

    #[tokio::test]
    async fn a_new_run_starts_after_the_last_one_ended() {
        let flights = SingleFlight::<u32>::new();
        assert_eq!(flights.join_or_start(|| async { 1 }).await, Ok(1));
        assert_eq!(flights.join_or_start(|| async { 2 }).await, Ok(2));
    }

    #[tokio::test]
    async fn a_panicking_run_is_aborted_and_frees_the_slot() {
        let flights = SingleFlight::<u32>::new();
        let panicked = flights.join_or_start(|| async { panic!("boom") });
        assert_eq!(panicked.await, Err(Aborted));
        assert!(!flights.is_running());
        assert_eq!(flights.join_or_start(|| async { 3 }).await, Ok(3));
    }
}
