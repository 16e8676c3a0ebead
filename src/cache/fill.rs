//! Filling the cache: what one flight does to get a list into L1 — from
//! L1 itself (another flight just filled it), from Redis, or from MP, with
//! at most one replica asking MP at a time.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::snapshot::{Freshness, Snapshot};
use super::{FillResult, Inner};
use crate::domain::RequestId;
use crate::mp::{Call, MpError};

/// How often a replica waiting for another's fetch looks in Redis.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// Why a flight runs; it decides which cached lists are good enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Nothing servable in L1: any servable list will do, fresh or stale.
    Load,
    /// L1 is stale: only a fresh list will do; on failure keep the stale one.
    Refresh,
    /// The caller asked for MP's list (`bypass_cache`).
    Bypass,
}

impl Purpose {
    fn accepts(self, freshness: Freshness) -> bool {
        match self {
            Self::Load => freshness != Freshness::Expired,
            Self::Refresh => freshness == Freshness::Fresh,
            Self::Bypass => false,
        }
    }
}

impl Inner {
    /// One flight. Publishes its list into L1 before it ends (single-flight's rule).
    pub(super) async fn fill(
        self: Arc<Self>,
        purpose: Purpose,
        request_id: RequestId,
    ) -> FillResult {
        let held = self.l1.get();
        if let Some(snapshot) = &held
            && purpose.accepts(self.freshness(snapshot))
        {
            return Ok(snapshot.clone());
        }
        let shared = match purpose {
            Purpose::Bypass => None,
            Purpose::Load | Purpose::Refresh => self.read_l2().await,
        };
        if let Some(snapshot) = &shared
            && purpose.accepts(self.freshness(snapshot))
        {
            self.metrics.l2_hit();
            self.l1.put(snapshot.clone());
            return Ok(snapshot.clone());
        }
        let fetched = match purpose {
            Purpose::Bypass => self.fetch_and_share(&request_id).await,
            Purpose::Load | Purpose::Refresh => self.fetch_once_for_all(&request_id).await,
        };
        match fetched {
            Ok(snapshot) => {
                self.l1.put(snapshot.clone());
                Ok(snapshot)
            }
            Err(error) => self.after_failure(purpose, error, [held, shared]),
        }
    }

    /// MP failed: report it, and keep serving the last good list while it may be served.
    fn after_failure(
        &self,
        purpose: Purpose,
        error: MpError,
        candidates: [Option<Arc<Snapshot>>; 2],
    ) -> FillResult {
        self.metrics.refresh_failure();
        self.pause_refreshes();
        let last_good = candidates
            .into_iter()
            .flatten()
            .filter(|s| self.freshness(s) != Freshness::Expired)
            .max_by_key(|s| s.fetched_at());
        match last_good {
            Some(snapshot) if purpose != Purpose::Bypass => {
                tracing::warn!(
                    %error,
                    age = ?snapshot.age(SystemTime::now()),
                    "cannot refresh the product list from MP; serving the last good one"
                );
                self.l1.put(snapshot.clone());
                Ok(snapshot)
            }
            _ => {
                tracing::warn!(%error, ?purpose, "cannot fetch the product list from MP");
                Err(error)
            }
        }
    }

    /// Fetches from MP unless another replica already is: then waits (a
    /// bounded time) for the list it stores in Redis.
    async fn fetch_once_for_all(&self, request_id: &RequestId) -> FillResult {
        let Some(l2) = &self.l2 else {
            return self.fetch_and_share(request_id).await;
        };
        // Every exit but one goes to MP: Redis did not have the list.
        let fetch = || {
            self.metrics.l2_miss();
            self.fetch_and_share(request_id)
        };
        let token = uuid::Uuid::new_v4().to_string();
        let give_up = Instant::now() + self.lock_hold;
        loop {
            match l2.try_lock(&token, self.lock_hold).await {
                Ok(true) => {
                    // The previous holder may have stored the list between
                    // our last read and this lock: then MP need not be asked.
                    let fetched = match l2.get().await {
                        Ok(Some(snapshot)) if self.freshness(&snapshot) == Freshness::Fresh => {
                            self.metrics.l2_hit();
                            Ok(Arc::new(snapshot))
                        }
                        _ => fetch().await,
                    };
                    if let Err(error) = l2.unlock(&token).await {
                        tracing::debug!(%error, "cannot release the product list lock; it expires by itself");
                    }
                    return fetched;
                }
                Ok(false) => {}
                // Redis is down: nobody can coordinate, so fetch.
                Err(_) => return fetch().await,
            }
            tokio::time::sleep(LOCK_POLL).await;
            match l2.get().await {
                Ok(Some(snapshot)) if self.freshness(&snapshot) == Freshness::Fresh => {
                    self.metrics.l2_hit();
                    return Ok(Arc::new(snapshot));
                }
                Ok(_) => {}
                Err(_) => return fetch().await,
            }
            if Instant::now() >= give_up {
                tracing::warn!(
                    "the replica holding the product list lock did not store a list in time; fetching"
                );
                return fetch().await;
            }
        }
    }

    /// Fetches from MP and stores the list in Redis for the other replicas.
    async fn fetch_and_share(&self, request_id: &RequestId) -> FillResult {
        self.metrics.mp_fetch();
        let call = Call {
            request_id,
            deadline: None,
        };
        let products = self.mp.product_list(call).await?;
        let snapshot = Arc::new(Snapshot::new(products, SystemTime::now()));
        if let Some(l2) = &self.l2
            && let Err(error) = l2.put(&snapshot, self.lifetimes.servable_for()).await
        {
            tracing::debug!(%error, "cannot store the product list in Redis");
        }
        Ok(snapshot)
    }

    /// The list in Redis; Redis failing counts as nothing there (it is logged by the store).
    async fn read_l2(&self) -> Option<Arc<Snapshot>> {
        let l2 = self.l2.as_ref()?;
        l2.get().await.ok().flatten().map(Arc::new)
    }

    fn freshness(&self, snapshot: &Snapshot) -> Freshness {
        self.lifetimes.freshness(snapshot, SystemTime::now())
    }
}
