//! When a failed MP GET is tried again (DESIGN.md section 5: POSTs never
//! are): which failures, how long to pause, and the budget that keeps an MP
//! outage from multiplying the load on MP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

use super::MpError;

/// Retries after the first attempt, at most.
pub const MAX_RETRIES: u32 = 2;
/// The pause ceiling before the first retry; it doubles for each next one.
pub const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// The pause ceiling never grows beyond this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(1);
/// A retry is made only if at least this much of the caller's deadline is
/// left after the pause: less would only turn into DEADLINE_EXCEEDED.
pub const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(100);
/// How long a call counts as "recent" for the retry budget.
pub const BUDGET_TTL: Duration = Duration::from_secs(10);
/// Retries always allowed, per second of [`BUDGET_TTL`], however few calls were made.
pub const BUDGET_MIN_RETRIES_PER_SEC: u32 = 10;
/// Share of recent calls that may be retried on top of the floor.
pub const BUDGET_RETRY_RATIO: f32 = 0.1;

/// Whether a failed GET is worth another try. `configured_timeout` is
/// `MP_TIMEOUT_MS`: a timeout shorter than it was the caller's deadline
/// running out, and another try could not finish in time either.
pub fn is_retryable(error: &MpError, configured_timeout: Duration) -> bool {
    match error {
        MpError::NotSent(_) | MpError::Unreachable(_) => true,
        MpError::HttpStatus { status, .. } => matches!(status, 429 | 502 | 503 | 504),
        MpError::Timeout(timeout) => *timeout >= configured_timeout,
        MpError::AuthFailed
        | MpError::Malformed(_)
        | MpError::Business { .. }
        | MpError::NullData(_)
        | MpError::Overloaded { .. } => false,
    }
}

/// The pause before retry number `retry` (0 for the first), with full
/// jitter: `jitter` (in `[0, 1)`) times `min(BACKOFF_CAP, BACKOFF_BASE * 2^retry)`.
/// `remaining` is what is left of the caller's deadline: the pause leaves
/// [`MIN_ATTEMPT_TIME`] of it for the retry, and `None` means there is not
/// enough time left for one.
pub fn backoff(retry: u32, jitter: f64, remaining: Option<Duration>) -> Option<Duration> {
    let ceiling = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(retry))
        .min(BACKOFF_CAP);
    let pause = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
    match remaining {
        None => Some(pause),
        Some(remaining) => {
            let spare = remaining.checked_sub(MIN_ATTEMPT_TIME)?;
            Some(pause.min(spare))
        }
    }
}

/// The client's shared retry budget and retry count.
#[derive(Debug)]
pub struct Retries {
    budget: TpsBudget,
    made: AtomicU64,
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            budget: TpsBudget::new(BUDGET_TTL, BUDGET_MIN_RETRIES_PER_SEC, BUDGET_RETRY_RATIO),
            made: AtomicU64::new(0),
        }
    }
}

impl Retries {
    /// Notes a call: each one earns [`BUDGET_RETRY_RATIO`] of a retry.
    pub fn deposit(&self) {
        self.budget.deposit();
    }

    /// Takes one retry from the budget, if it has one, and counts it.
    pub fn withdraw(&self) -> bool {
        let granted = self.budget.withdraw();
        if granted {
            self.made.fetch_add(1, Ordering::Relaxed);
        }
        granted
    }

    /// Retries made since the client was built.
    pub fn made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_backoff_ceiling_doubles_up_to_the_cap() {
        let almost_one = 1.0 - f64::EPSILON;
        let ceilings: Vec<_> = (0..8)
            .map(|retry| backoff(retry, almost_one, None).unwrap())
            .collect();
        for (retry, ceiling) in ceilings.iter().enumerate() {
            let expected = (BACKOFF_BASE * 2u32.pow(retry as u32)).min(BACKOFF_CAP);
            assert!(*ceiling <= expected, "retry {retry}: {ceiling:?}");
            assert!(*ceiling + MS > expected, "retry {retry}: {ceiling:?}");
        }
        assert_eq!(backoff(0, 0.0, None), Some(Duration::ZERO));
        assert_eq!(backoff(1, 0.5, None), Some(50 * MS));
    }

    #[test]
    fn the_backoff_never_exceeds_the_cap_even_for_absurd_retry_numbers() {
        for retry in [10, 31, 32, 1000, u32::MAX] {
            for jitter in [0.0, 0.3, 0.999, 1.0, 7.0] {
                let pause = backoff(retry, jitter, None).unwrap();
                assert!(pause <= BACKOFF_CAP, "retry {retry}, jitter {jitter}");
            }
        }
    }

    #[test]
    fn the_backoff_never_sleeps_into_the_time_the_retry_needs() {
        for remaining in [150, 120, 101, 100] {
            let remaining = remaining * MS;
            let pause = backoff(5, 0.99, Some(remaining)).unwrap();
            assert!(pause + MIN_ATTEMPT_TIME <= remaining, "{remaining:?}");
        }
        // A long deadline leaves the jittered pause as it is.
        assert_eq!(backoff(1, 0.5, Some(Duration::from_secs(5))), Some(50 * MS));
    }

    #[test]
    fn no_retry_is_made_when_the_deadline_leaves_too_little_time() {
        assert_eq!(backoff(0, 0.5, Some(99 * MS)), None);
        assert_eq!(backoff(0, 0.5, Some(Duration::ZERO)), None);
    }

    #[test]
    fn only_failures_a_retry_can_cure_are_retried() {
        let configured = Duration::from_secs(10);
        let retryable = [
            MpError::NotSent("refused".into()),
            MpError::Unreachable("reset".into()),
            MpError::http(429),
            MpError::http(502),
            MpError::http(503),
            MpError::http(504),
            MpError::Timeout(configured),
        ];
        for error in &retryable {
            assert!(is_retryable(error, configured), "{error}");
        }
        let final_ = [
            MpError::http(500),
            MpError::http(400),
            MpError::AuthFailed,
            MpError::Malformed("html".into()),
            MpError::Business {
                code: 500,
                msg: "no".into(),
            },
            MpError::NullData("order X".into()),
            MpError::Overloaded {
                limit: super::super::UpstreamLimit::Concurrency,
                retry_after: MS,
            },
            // The caller's deadline, not MP_TIMEOUT_MS, cut this one short.
            MpError::Timeout(300 * MS),
        ];
        for error in &final_ {
            assert!(!is_retryable(error, configured), "{error}");
        }
    }

    #[test]
    fn the_budget_allows_the_floor_plus_a_tenth_of_recent_calls() {
        let retries = Retries::default();
        let floor = u64::from(BUDGET_MIN_RETRIES_PER_SEC) * BUDGET_TTL.as_secs();
        for _ in 0..500 {
            retries.deposit();
        }
        let mut granted = 0;
        while retries.withdraw() {
            granted += 1;
            assert!(granted <= 1000, "the budget never runs out");
        }
        assert_eq!(granted, floor + 50);
        assert_eq!(retries.made(), granted);
    }
}
