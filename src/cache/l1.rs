//! Level 1: the product list in this process's memory.

use std::sync::Arc;

use moka::ops::compute::Op;
use moka::sync::Cache;

use super::snapshot::{Lifetimes, Snapshot};

/// The in-process copy of the product list. There is one list per MP
/// account, hence one key; moka keeps it off the hot path's locks.
#[derive(Clone)]
pub struct L1 {
    cache: Cache<(), Arc<Snapshot>>,
}

impl L1 {
    /// Entries leave memory once they may no longer be served.
    pub fn new(lifetimes: Lifetimes) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(1)
                .time_to_live(lifetimes.servable_for())
                .build(),
        }
    }

    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.cache.get(&())
    }

    /// Keeps `snapshot` unless a newer one is already held (a slow fetch
    /// never replaces a list fetched after it). The comparison and the
    /// insert are one step, so two flights finishing together cannot undo it.
    pub fn put(&self, snapshot: Arc<Snapshot>) {
        self.cache
            .entry(())
            .and_compute_with(|current| match current {
                Some(current) if current.value().fetched_at() > snapshot.fetched_at() => Op::Nop,
                _ => Op::Put(snapshot),
            });
    }
}

impl std::fmt::Debug for L1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1")
            .field("held", &self.cache.contains_key(&()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn an_older_list_does_not_replace_a_newer_one() {
        let l1 = L1::new(Lifetimes {
            ttl: Duration::from_secs(60),
            max_stale: Duration::from_secs(60),
        });
        assert!(l1.get().is_none());
        let now = SystemTime::now();
        l1.put(Arc::new(Snapshot::new(Vec::new(), now)));
        l1.put(Arc::new(Snapshot::new(
            Vec::new(),
            now - Duration::from_secs(1),
        )));
        assert_eq!(l1.get().unwrap().fetched_at(), now);
        let later = now + Duration::from_secs(1);
        l1.put(Arc::new(Snapshot::new(Vec::new(), later)));
        assert_eq!(l1.get().unwrap().fetched_at(), later);
    }
}
