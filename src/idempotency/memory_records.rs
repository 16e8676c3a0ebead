//! Idempotency records in process (one replica, no Redis), with the same
//! lease and token rules as the Redis records.

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

impl Records {
    /// The live record under `key`.
    fn live(&self, key: &str) -> Option<&Record> {
        let now = Instant::now();
        self.by_key
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(record, _)| record)
    }

    /// True when `key` holds no live record or `token`'s.
    fn is_free_for(&self, key: &str, token: &str) -> bool {
        self.live(key).is_none_or(|record| record.token == token)
    }
}

impl MemoryRecords {
    fn records(&self) -> MutexGuard<'_, Records> {
        // Every update is a single insert or remove: a poisoned map is still consistent.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn claim(&self, key: &str, record: &Record, lease: Duration) -> Option<Record> {
        let now = Instant::now();
        let mut records = self.records();
        if records
            .last_sweep
            .is_none_or(|at| now.duration_since(at) > Duration::from_secs(60))
        {
            records.by_key.retain(|_, (_, expires)| *expires > now);
            records.last_sweep = Some(now);
        }
        if let Some(existing) = records.live(key) {
            return Some(existing.clone());
        }
        records
            .by_key
            .insert(key.to_owned(), (record.clone(), now + lease));
        None
    }

    pub(super) fn get(&self, key: &str) -> Option<Record> {
        self.records().live(key).cloned()
    }

    pub(super) fn renew(&self, key: &str, token: &str, lease: Duration) -> bool {
        let mut records = self.records();
        if records.live(key).is_none_or(|record| record.token != token) {
            return false;
        }
        if let Some((_, expires)) = records.by_key.get_mut(key) {
            *expires = Instant::now() + lease;
        }
        true
    }

    pub(super) fn settle(
        &self,
        key: &str,
        token: &str,
        record: Option<&Record>,
        ttl: Duration,
    ) -> bool {
        let mut records = self.records();
        if !records.is_free_for(key, token) {
            return false;
        }
        match record {
            Some(record) => {
                records
                    .by_key
                    .insert(key.to_owned(), (record.clone(), Instant::now() + ttl));
            }
            None => {
                records.by_key.remove(key);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::State;
    use super::*;

    fn claim(token: &str) -> Record {
        Record {
            fingerprint: "f".to_owned(),
            state: State::InProgress,
            claimed_at_millis: 0,
            token: token.to_owned(),
        }
    }

    #[test]
    fn an_unrenewed_claim_lapses_after_its_lease_and_the_id_can_be_claimed_again() {
        let records = MemoryRecords::default();
        let lease = Duration::from_millis(20);
        assert!(records.claim("k", &claim("a"), lease).is_none());
        assert!(records.claim("k", &claim("b"), lease).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(records.claim("k", &claim("b"), lease).is_none());
        assert!(!records.renew("k", "a", lease), "a's claim is gone");
    }

    #[test]
    fn only_the_claims_holder_replaces_it_and_a_lapsed_claim_is_replaced_too() {
        let records = MemoryRecords::default();
        let lease = Duration::from_millis(20);
        let ttl = Duration::from_secs(60);
        records.claim("k", &claim("a"), lease);
        assert!(!records.settle("k", "b", Some(&claim("b")), ttl));
        assert_eq!(records.get("k").map(|r| r.token), Some("a".to_owned()));
        std::thread::sleep(Duration::from_millis(30));
        assert!(records.settle("k", "a", Some(&claim("a")), ttl));
        assert_eq!(records.get("k").map(|r| r.token), Some("a".to_owned()));
    }
}
