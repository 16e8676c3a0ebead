//! The product catalogue ProductService answers from: a two-level cache in
//! front of MP's `v2/productList` (DESIGN.md section 1).
//!
//! - L1 ([`l1`]) is this process's memory; L2 ([`redis_l2`]) is Redis,
//!   shared by every replica, when `REDIS_URL` is set.
//! - A list is fresh for the TTL. After it, callers still get the stale list
//!   at once while one background refresh runs, until the stale limit, after
//!   which it is never served.
//! - Misses are single-flight ([`single_flight`]): one MP call per replica,
//!   and with Redis one per fleet (a short lock; see [`fill`]).
//! - Redis failing only costs sharing: lists come from memory, else MP.

mod fill;
pub(crate) mod l1;
pub(crate) mod metrics;
mod outage;
pub(crate) mod redis_l2;
pub(crate) mod single_flight;
pub mod snapshot;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::domain::RequestId;
use crate::error::GatewayError;
use crate::mp::{Call, MpClient, MpError};
use crate::proto::Product;
use crate::redis::Redis;

use fill::Purpose;
use l1::L1;
use metrics::CacheMetrics;
use redis_l2::RedisL2;
use single_flight::{Flight, SingleFlight};
use snapshot::{Freshness, Lifetimes, Snapshot};

pub use redis_l2::{Keys, StoreError};

/// The longest pause between refresh attempts while MP fails.
const MAX_REFRESH_RETRY: Duration = Duration::from_secs(5);

/// How the catalogue keeps lists.
#[derive(Debug, Clone, Copy)]
pub struct CatalogueSettings {
    pub lifetimes: Lifetimes,
    /// Upper bound of one MP call; the fleet-wide fetch lock lasts a little longer.
    pub mp_timeout: Duration,
}

/// Where ProductService gets product lists. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProductCatalogue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    mp: MpClient,
    lifetimes: Lifetimes,
    lock_hold: Duration,
    l1: L1,
    l2: Option<RedisL2>,
    /// Loads and refreshes share one flight: both end with a fresh list in L1.
    fills: SingleFlight<FillResult>,
    /// `bypass_cache` calls share another, which always asks MP: concurrent
    /// bypasses get one fresh fetch between them, not the cache.
    bypasses: SingleFlight<FillResult>,
    /// No background refresh starts before this (set after a failed one).
    refresh_not_before: Mutex<Option<Instant>>,
    metrics: CacheMetrics,
}

type FillResult = Result<Arc<Snapshot>, MpError>;

impl ProductCatalogue {
    /// The catalogue of MP account `account`, in process, plus the Redis level
    /// when there is a Redis. Redis is not contacted here: one that is down at
    /// start is used once it answers.
    pub fn new(
        mp: MpClient,
        settings: CatalogueSettings,
        redis: Option<&Redis>,
        account: &str,
    ) -> Result<Self, redis::RedisError> {
        let l2 = redis
            .map(|redis| RedisL2::new(redis, account, CacheMetrics::new()))
            .transpose()?;
        let lifetimes = settings.lifetimes;
        Ok(Self {
            inner: Arc::new(Inner {
                mp,
                lifetimes,
                lock_hold: settings.mp_timeout + Duration::from_secs(1),
                l1: L1::new(lifetimes),
                l2,
                fills: SingleFlight::new(),
                bypasses: SingleFlight::new(),
                refresh_not_before: Mutex::new(None),
                metrics: CacheMetrics::new(),
            }),
        })
    }

    /// The reseller's products: cached, or from MP when `bypass_cache` is set
    /// (which also refreshes the cache).
    pub async fn products(
        &self,
        call: Call<'_>,
        bypass_cache: bool,
    ) -> Result<Arc<[Product]>, GatewayError> {
        let inner = &self.inner;
        if bypass_cache {
            let flight = self.start(&inner.bypasses, Purpose::Bypass, call.request_id);
            return Ok(wait(call, flight).await?.products().clone());
        }
        if let Some(snapshot) = inner.l1.get() {
            match inner.lifetimes.freshness(&snapshot, SystemTime::now()) {
                Freshness::Fresh => {
                    inner.metrics.l1_hit();
                    return Ok(snapshot.products().clone());
                }
                Freshness::Stale => {
                    inner.metrics.l1_hit();
                    inner.metrics.stale_served();
                    self.refresh_in_background(call.request_id);
                    return Ok(snapshot.products().clone());
                }
                Freshness::Expired => {}
            }
        }
        inner.metrics.l1_miss();
        let flight = self.start(&inner.fills, Purpose::Load, call.request_id);
        let snapshot = wait(call, flight).await?;
        if inner.lifetimes.freshness(&snapshot, SystemTime::now()) != Freshness::Fresh {
            // Redis had only a stale list, or MP failed and the last good one was kept.
            inner.metrics.stale_served();
            self.refresh_in_background(call.request_id);
        }
        Ok(snapshot.products().clone())
    }

    /// Starts a refresh unless one runs already or the last one failed moments ago.
    fn refresh_in_background(&self, request_id: &RequestId) {
        let inner = &self.inner;
        if inner.fills.is_running() {
            return;
        }
        {
            let not_before = inner
                .refresh_not_before
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if not_before.is_some_and(|t| Instant::now() < t) {
                return;
            }
        }
        drop(self.start(&inner.fills, Purpose::Refresh, request_id));
    }

    fn start(
        &self,
        flights: &SingleFlight<FillResult>,
        purpose: Purpose,
        request_id: &RequestId,
    ) -> Flight<FillResult> {
        flights.join_or_start(|| {
            let inner = self.inner.clone();
            let request_id = request_id.clone();
            async move { inner.fill(purpose, request_id).await }
        })
    }
}

impl Inner {
    /// After a failed fetch, refreshes pause a while (MP is not hammered
    /// once per request while it is down).
    fn pause_refreshes(&self) {
        let pause = self.lifetimes.ttl.min(MAX_REFRESH_RETRY);
        *self
            .refresh_not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + pause);
    }
}

/// Waits for a flight, within what is left of the caller's deadline.
async fn wait(call: Call<'_>, flight: Flight<FillResult>) -> Result<Arc<Snapshot>, GatewayError> {
    let outcome = match call.deadline {
        None => flight.await,
        Some(_) => {
            let limit = call.upstream_timeout(Duration::MAX);
            tokio::time::timeout(limit, flight)
                .await
                .map_err(|_| MpError::Timeout(limit))?
        }
    };
    match outcome {
        Ok(Ok(snapshot)) => Ok(snapshot),
        Ok(Err(error)) => Err(GatewayError::Mp(error)),
        Err(aborted) => Err(GatewayError::Internal(format!(
            "fetching the product list: {aborted}"
        ))),
    }
}
