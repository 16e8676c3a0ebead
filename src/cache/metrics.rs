//! The product cache's counters (the `metrics` facade; `/metrics` renders them).

use metrics::{Counter, counter, describe_counter};

pub const HITS: &str = "mp_gateway_product_cache_hits_total";
pub const MISSES: &str = "mp_gateway_product_cache_misses_total";
pub const STALE_SERVED: &str = "mp_gateway_product_cache_stale_served_total";
pub const REFRESH_FAILURES: &str = "mp_gateway_product_cache_refresh_failures_total";
pub const MP_FETCHES: &str = "mp_gateway_mp_fetches_total";
pub const REDIS_ERRORS: &str = "mp_gateway_redis_errors_total";
pub const REDIS_OUTAGES: &str = "mp_gateway_redis_outages_total";

/// Registers the descriptions; call once the recorder is installed.
pub fn describe() {
    describe_counter!(
        HITS,
        "Product list requests answered by a cache level (level=l1|l2)"
    );
    describe_counter!(
        MISSES,
        "Product list requests a cache level could not answer (level=l1|l2)"
    );
    describe_counter!(
        STALE_SERVED,
        "Product lists served past their TTL while a refresh ran or MP failed"
    );
    describe_counter!(
        REFRESH_FAILURES,
        "Product list fetches from MP that failed (the last good list is served while it may be)"
    );
    describe_counter!(
        MP_FETCHES,
        "Calls to MP made by the gateway's caches (endpoint=...)"
    );
    describe_counter!(REDIS_ERRORS, "Redis calls that failed or timed out");
    describe_counter!(REDIS_OUTAGES, "Times Redis became unavailable");
}

/// Handles to the counters, resolved once so the hot path does no lookups.
#[derive(Debug, Clone)]
pub struct CacheMetrics {
    l1_hits: Counter,
    l1_misses: Counter,
    l2_hits: Counter,
    l2_misses: Counter,
    stale_served: Counter,
    refresh_failures: Counter,
    mp_fetches: Counter,
    redis_errors: Counter,
    redis_outages: Counter,
}

impl CacheMetrics {
    pub fn new() -> Self {
        Self {
            l1_hits: counter!(HITS, "level" => "l1"),
            l1_misses: counter!(MISSES, "level" => "l1"),
            l2_hits: counter!(HITS, "level" => "l2"),
            l2_misses: counter!(MISSES, "level" => "l2"),
            stale_served: counter!(STALE_SERVED),
            refresh_failures: counter!(REFRESH_FAILURES),
            mp_fetches: counter!(MP_FETCHES, "endpoint" => "v2/productList"),
            redis_errors: counter!(REDIS_ERRORS),
            redis_outages: counter!(REDIS_OUTAGES),
        }
    }

    pub fn l1_hit(&self) {
        self.l1_hits.increment(1);
    }
    pub fn l1_miss(&self) {
        self.l1_misses.increment(1);
    }
    pub fn l2_hit(&self) {
        self.l2_hits.increment(1);
    }
    pub fn l2_miss(&self) {
        self.l2_misses.increment(1);
    }
    pub fn stale_served(&self) {
        self.stale_served.increment(1);
    }
    pub fn refresh_failure(&self) {
        self.refresh_failures.increment(1);
    }
    pub fn mp_fetch(&self) {
        self.mp_fetches.increment(1);
    }
    pub fn redis_error(&self) {
        self.redis_errors.increment(1);
    }
    pub fn redis_outage(&self) {
        self.redis_outages.increment(1);
    }
}

impl Default for CacheMetrics {
    fn default() -> Self {
        Self::new()
    }
}
