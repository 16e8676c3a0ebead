//! The `MP_RATE_LIMIT_PER_SEC` token bucket, as GCRA (the "virtual
//! scheduling" form of a token bucket): one number, the theoretical arrival
//! time of the next call.
//!
//! Hand-written rather than `governor` because the gateway needs a
//! *reservation*: a call that may wait a little takes the next free slot
//! at once and sleeps until it is due, so waiters never race for a token
//! and a refused call learns exactly when the next one is due (its
//! `RetryInfo`). governor only answers "not until T" and takes nothing.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio::time::Instant;

/// `rate` calls per second sustained, up to `rate` at once after a quiet second.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time between two calls at the sustained rate.
    interval: Duration,
    /// How far ahead of the schedule a burst may run: `(burst - 1) * interval`.
    tolerance: Duration,
    /// When the next call is due on the schedule; `None` before the first call.
    next_due: Option<Instant>,
}

impl RateLimiter {
    /// A bucket of `rate` tokens refilled at `rate` per second.
    pub fn per_second(rate: NonZeroU32) -> Self {
        let interval = Duration::from_secs(1) / rate.get();
        Self {
            interval,
            tolerance: interval * (rate.get() - 1),
            next_due: None,
        }
    }

    /// Takes a start slot for a call made at `now`, if one comes within
    /// `max_wait`: `Ok(wait)` is how long to sleep before starting.
    /// Otherwise takes nothing; `Err(retry_after)` is when the next slot is due.
    pub fn reserve(&mut self, now: Instant, max_wait: Duration) -> Result<Duration, Duration> {
        let due = self.next_due.map_or(now, |due| due.max(now));
        let start = due.checked_sub(self.tolerance).map_or(now, |s| s.max(now));
        let wait = start - now;
        if wait > max_wait {
            return Err(wait);
        }
        self.next_due = Some(due + self.interval);
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limiter(rate: u32) -> RateLimiter {
        RateLimiter::per_second(NonZeroU32::new(rate).unwrap())
    }

    #[test]
    fn a_quiet_bucket_lets_a_burst_of_rate_calls_through_at_once() {
        let mut bucket = limiter(5);
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(bucket.reserve(now, Duration::ZERO), Ok(Duration::ZERO));
        }
        // The sixth is due one interval (200 ms) later.
        assert_eq!(bucket.reserve(now, Duration::ZERO), Err(200 * MS));
    }

    #[test]
    fn a_refused_call_takes_nothing_and_a_waiting_call_takes_the_next_slot() {
        let mut bucket = limiter(10);
        let now = Instant::now();
        for _ in 0..10 {
            bucket.reserve(now, Duration::ZERO).unwrap();
        }
        assert_eq!(bucket.reserve(now, 50 * MS), Err(100 * MS));
        assert_eq!(bucket.reserve(now, 100 * MS), Ok(100 * MS));
        // That slot is gone: the next caller waits one more interval.
        assert_eq!(bucket.reserve(now, 100 * MS), Err(200 * MS));
        assert_eq!(bucket.reserve(now + 100 * MS, 100 * MS), Ok(100 * MS));
    }

    #[test]
    fn the_sustained_rate_is_the_configured_one() {
        let mut bucket = limiter(4);
        let start = Instant::now();
        let mut started = 0;
        // Ten seconds of callers knocking every millisecond, never waiting.
        for ms in 0..10_000 {
            if bucket.reserve(start + ms * MS, Duration::ZERO).is_ok() {
                started += 1;
            }
        }
        // The burst of 4, then 4 per second.
        assert_eq!(started, 4 + 4 * 10 - 1);
    }

    #[test]
    fn a_rate_of_one_allows_no_burst() {
        let mut bucket = limiter(1);
        let now = Instant::now();
        assert_eq!(bucket.reserve(now, Duration::ZERO), Ok(Duration::ZERO));
        assert_eq!(bucket.reserve(now, Duration::ZERO), Err(1000 * MS));
        assert_eq!(
            bucket.reserve(now + 1000 * MS, Duration::ZERO),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn idle_time_refills_the_bucket_but_never_beyond_its_size() {
        let mut bucket = limiter(3);
        let now = Instant::now();
        for _ in 0..3 {
            bucket.reserve(now, Duration::ZERO).unwrap();
        }
        let later = now + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.reserve(later, Duration::ZERO), Ok(Duration::ZERO));
        }
        assert!(bucket.reserve(later, Duration::ZERO).is_err());
    }
}
