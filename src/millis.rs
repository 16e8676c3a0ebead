//! Time in whole milliseconds, as the stores write it.

use std::time::Duration;

/// Unix milliseconds now.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `duration` as a Redis `PX` argument: whole milliseconds, at least 1 (Redis
/// refuses 0), saturating rather than wrapping.
pub(crate) fn redis_px(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
