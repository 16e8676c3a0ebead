//! Whether Redis is reachable: an outage is logged once when it starts and
//! once when it ends, and while it lasts Redis is tried at most once per
//! backoff period, so callers do not each pay a timeout.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::metrics::CacheMetrics;

#[derive(Debug)]
pub struct Outage {
    backoff: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Set while Redis is down: when the outage began and when to try again.
    down: Option<Down>,
}

#[derive(Debug, Clone, Copy)]
struct Down {
    since: Instant,
    retry_at: Instant,
}

impl Outage {
    pub fn new(backoff: Duration) -> Self {
        Self {
            backoff,
            state: Mutex::default(),
        }
    }

    /// Whether to skip Redis now: it is down and the backoff has not passed.
    /// When it has, the next caller probes (and others keep skipping).
    pub fn should_skip(&self, now: Instant) -> bool {
        let mut state = self.lock();
        match &mut state.down {
            None => false,
            Some(down) if now < down.retry_at => true,
            Some(down) => {
                down.retry_at = now + self.backoff;
                false
            }
        }
    }

    /// A Redis call failed: starts an outage (logged and counted once; then
    /// `true`) or extends it.
    pub fn failed(&self, error: &dyn std::fmt::Display, metrics: &CacheMetrics) -> bool {
        let now = Instant::now();
        metrics.redis_error();
        let mut state = self.lock();
        match &mut state.down {
            Some(down) => {
                down.retry_at = now + self.backoff;
                false
            }
            None => {
                state.down = Some(Down {
                    since: now,
                    retry_at: now + self.backoff,
                });
                metrics.redis_outage();
                tracing::warn!(
                    %error,
                    "Redis is unavailable: product lists come from memory or MP until it answers again"
                );
                true
            }
        }
    }

    /// A Redis call succeeded: ends the outage, if there was one.
    pub fn succeeded(&self) {
        let mut state = self.lock();
        if let Some(down) = state.down.take() {
            tracing::info!(
                outage = ?down.since.elapsed(),
                "Redis answers again: sharing product lists through it"
            );
        }
    }

    pub fn is_down(&self) -> bool {
        self.lock().down.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is always consistent between statements, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_skips_redis_until_the_backoff_passes_then_one_caller_probes() {
        let outage = Outage::new(Duration::from_secs(1));
        let metrics = CacheMetrics::new();
        let now = Instant::now();
        assert!(!outage.should_skip(now));
        assert!(
            outage.failed(&"connection refused", &metrics),
            "an outage begins"
        );
        assert!(
            !outage.failed(&"connection refused", &metrics),
            "the same outage"
        );
        assert!(outage.is_down());
        assert!(outage.should_skip(Instant::now()));
        let later = Instant::now() + Duration::from_secs(2);
        assert!(!outage.should_skip(later), "the first caller probes");
        assert!(outage.should_skip(later), "the others keep skipping");
        outage.succeeded();
        assert!(!outage.is_down());
        assert!(!outage.should_skip(later));
        assert!(outage.failed(&"timeout", &metrics), "a new outage");
    }
}
