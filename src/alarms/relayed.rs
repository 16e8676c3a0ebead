//! What a replica's stream reader relayed lately, by dedup key. The publish
//! script already drops a repeat within the dedup window, but only while its
//! dedup record exists: when a Redis failover loses an alarm the reader had
//! already relayed (it was on the old primary only, so MP got a 503 and
//! sent it again), the repeat lands in the stream as a new entry. The reader
//! drops it, so subscribers still get each alarm once.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

pub(super) struct RecentlyRelayed {
    window: Duration,
    capacity: usize,
    /// Oldest first.
    order: VecDeque<(Instant, String)>,
    keys: HashSet<String>,
}

impl RecentlyRelayed {
    /// Remembers keys for `window`, at most `capacity` of them (the oldest go first).
    pub(super) fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            order: VecDeque::new(),
            keys: HashSet::new(),
        }
    }

    /// True unless `key` was relayed within the window; remembers it.
    pub(super) fn first(&mut self, key: String, now: Instant) -> bool {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.window && self.order.len() < self.capacity
            {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        if self.keys.contains(&key) || self.window.is_zero() {
            return !self.keys.contains(&key);
        }
        self.keys.insert(key.clone());
        self.order.push_back((now, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_relayed_within_the_window_is_a_repeat() {
        let mut recent = RecentlyRelayed::new(Duration::from_secs(10), 100);
        let start = Instant::now();
        assert!(recent.first("a".into(), start));
        assert!(!recent.first("a".into(), start + Duration::from_secs(9)));
        assert!(recent.first("b".into(), start + Duration::from_secs(9)));
        assert!(recent.first("a".into(), start + Duration::from_secs(11)));
    }

    #[test]
    fn memory_is_bounded_and_a_zero_window_remembers_nothing() {
        let mut recent = RecentlyRelayed::new(Duration::from_secs(10), 2);
        let now = Instant::now();
        for key in ["a", "b", "c"] {
            assert!(recent.first(key.into(), now));
        }
        assert!(recent.keys.len() <= 2);
        assert!(recent.first("a".into(), now), "the oldest was forgotten");
        let mut none = RecentlyRelayed::new(Duration::ZERO, 10);
        assert!(none.first("a".into(), now));
        assert!(none.first("a".into(), now));
    }
}
