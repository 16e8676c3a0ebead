//! Protecting MP and the gateway: at most `MP_MAX_CONCURRENCY` calls in
//! flight and `MP_RATE_LIMIT_PER_SEC` started per second. A call over a
//! limit waits only briefly ([`MAX_ADMISSION_WAIT`]), then is refused with
//! [`MpError::Overloaded`] (RESOURCE_EXHAUSTED): no unbounded queue.

use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::error::{MpError, UpstreamLimit};
use super::rate_limit::RateLimiter;

/// The longest a call waits for a free slot under the limits (less when the
/// caller's deadline is nearer).
pub const MAX_ADMISSION_WAIT: Duration = Duration::from_millis(100);
/// The `RetryInfo` of a call refused by the concurrency limit: about the
/// time an MP call takes to free its slot.
pub const CONCURRENCY_RETRY_AFTER: Duration = Duration::from_millis(500);

/// The limits on MP calls (DESIGN.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpLimits {
    /// `MP_MAX_CONCURRENCY`: most MP calls in flight at once.
    pub max_concurrency: usize,
    /// `MP_RATE_LIMIT_PER_SEC`: most MP calls started per second; `None` = no limit.
    pub rate_limit_per_sec: Option<NonZeroU32>,
}

impl Default for MpLimits {
    fn default() -> Self {
        Self {
            max_concurrency: 32,
            rate_limit_per_sec: None,
        }
    }
}

/// Hands out the right to send one MP request.
#[derive(Debug)]
pub struct Admission {
    in_flight: Semaphore,
    rate: Option<Mutex<RateLimiter>>,
}

impl Admission {
    pub fn new(limits: MpLimits) -> Self {
        Self {
            in_flight: Semaphore::new(limits.max_concurrency.max(1)),
            rate: limits
                .rate_limit_per_sec
                .map(|rate| Mutex::new(RateLimiter::per_second(rate))),
        }
    }

    /// Waits at most `wait` for a start slot (rate) and then a free place
    /// (concurrency); the permit is the place, held until the call ends.
    /// The rate slot is taken first, so a call never holds a place while it
    /// sleeps for its slot.
    pub async fn admit(&self, wait: Duration) -> Result<SemaphorePermit<'_>, MpError> {
        let started = Instant::now();
        if let Some(rate) = &self.rate {
            let slot = rate
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .reserve(started, wait);
            match slot {
                Ok(delay) if delay.is_zero() => {}
                Ok(delay) => tokio::time::sleep(delay).await,
                Err(retry_after) => {
                    return Err(MpError::Overloaded {
                        limit: UpstreamLimit::Rate,
                        retry_after,
                    });
                }
            }
        }
        let left = wait.saturating_sub(started.elapsed());
        // `timeout` polls the acquisition first: a free place is taken even with no time left.
        match tokio::time::timeout(left, self.in_flight.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(MpError::Overloaded {
                limit: UpstreamLimit::Concurrency,
                retry_after: CONCURRENCY_RETRY_AFTER,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_concurrency: usize, rate: Option<u32>) -> Admission {
        Admission::new(MpLimits {
            max_concurrency,
            rate_limit_per_sec: rate.and_then(NonZeroU32::new),
        })
    }

    fn limit_of(result: Result<SemaphorePermit<'_>, MpError>) -> Option<UpstreamLimit> {
        match result {
            Err(MpError::Overloaded { limit, .. }) => Some(limit),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_full_house_refuses_after_the_wait_and_a_freed_place_is_reused() {
        let admission = admission(2, None);
        let first = admission.admit(Duration::ZERO).await.unwrap();
        let _second = admission.admit(Duration::ZERO).await.unwrap();
        let started = Instant::now();
        let refused = admission.admit(Duration::from_millis(30)).await;
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(limit_of(refused), Some(UpstreamLimit::Concurrency));
        drop(first);
        assert!(admission.admit(Duration::ZERO).await.is_ok());
    }

    #[tokio::test]
    async fn a_waiting_call_gets_a_place_freed_within_its_wait() {
        let admission = std::sync::Arc::new(admission(1, None));
        let held = admission.admit(Duration::ZERO).await.unwrap();
        let waiter = {
            let admission = admission.clone();
            tokio::spawn(async move {
                admission
                    .admit(Duration::from_secs(5))
                    .await
                    .map(drop)
                    .is_ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn the_rate_limit_refuses_with_the_time_the_next_slot_is_due() {
        let admission = admission(10, Some(2));
        let _a = admission.admit(Duration::ZERO).await.unwrap();
        let _b = admission.admit(Duration::ZERO).await.unwrap();
        match admission.admit(Duration::from_millis(100)).await {
            Err(MpError::Overloaded {
                limit: UpstreamLimit::Rate,
                retry_after,
            }) => {
                assert!(retry_after > Duration::from_millis(100), "{retry_after:?}");
                assert!(retry_after <= Duration::from_millis(500), "{retry_after:?}");
            }
            other => panic!("expected the rate limit, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_rate_slot_due_within_the_wait_is_waited_for() {
        let admission = admission(10, Some(20));
        for _ in 0..20 {
            drop(admission.admit(Duration::ZERO).await.unwrap());
        }
        let started = Instant::now();
        drop(admission.admit(Duration::from_millis(100)).await.unwrap());
        assert!(started.elapsed() >= Duration::from_millis(45));
    }
}
