//! Idempotency records in process (one replica, no Redis).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Record;

#[derive(Clone, Default)]
pub(super) struct MemoryRecords {
    records: Arc<Mutex<Records>>,
}

#[derive(Default)]
struct Records {
    by_key: HashMap<String, (Record, Instant)>,
    last_sweep: Option<Instant>,
}

impl MemoryRecords {
    fn records(&self) -> MutexGuard<'_, Records> {
        // Every update is a single insert or remove: a poisoned map is still consistent.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn claim(&self, key: &str, record: &Record, ttl: Duration) -> Option<Record> {
        let now = Instant::now();
        let mut records = self.records();
        if records
            .last_sweep
            .is_none_or(|at| now.duration_since(at) > Duration::from_secs(60))
        {
            records.by_key.retain(|_, (_, expires)| *expires > now);
            records.last_sweep = Some(now);
        }
        match records.by_key.get(key) {
            Some((existing, expires)) if *expires > now => Some(existing.clone()),
            _ => {
                records
                    .by_key
                    .insert(key.to_owned(), (record.clone(), now + ttl));
                None
            }
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<Record> {
        let now = Instant::now();
        match self.records().by_key.get(key) {
            Some((record, expires)) if *expires > now => Some(record.clone()),
            _ => None,
        }
    }

    pub(super) fn put(&self, key: &str, record: &Record, ttl: Duration) {
        self.records()
            .by_key
            .insert(key.to_owned(), (record.clone(), Instant::now() + ttl));
    }

    pub(super) fn remove(&self, key: &str) {
        self.records().by_key.remove(key);
    }
}
