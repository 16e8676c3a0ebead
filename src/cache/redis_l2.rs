//! Level 2: the product list in Redis, shared by every replica, and the
//! short lock that lets one replica fetch for all of them.
//!
//! Every call is bounded by a short timeout, and while Redis is down it is
//! skipped (see [`Outage`]), so a dead or hung Redis never slows a request.

use std::future::Future;
use std::time::{Duration, Instant};

use redis::{RedisError, Script};

use super::metrics::CacheMetrics;
use super::outage::Outage;
use super::snapshot::Snapshot;
use crate::redis::{Connection, Redis};

/// The layout of the stored value; bump it when [`Snapshot::encode`] changes
/// meaning, so a replica never reads another version's data.
const FORMAT_VERSION: &str = "v1";

/// How long Redis is left alone after a failure.
const OUTAGE_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis is down; not retried yet")]
    BackingOff,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis failed: {0}")]
    Redis(#[from] RedisError),
}

/// The Redis keys of one MP account's product list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub products: String,
    pub lock: String,
}

impl Keys {
    /// `{prefix}:product-list:v1:{account}`, and the same with `:lock`.
    pub fn new(prefix: &str, account: &str) -> Self {
        let products = format!("{prefix}:product-list:{FORMAT_VERSION}:{account}");
        let lock = format!("{products}:lock");
        Self { products, lock }
    }
}

/// The product list's home in Redis. The connection is made lazily and
/// remade after failures, so a Redis that is down at start is used once it answers.
pub struct RedisL2 {
    connection: Connection,
    keys: Keys,
    outage: Outage,
    metrics: CacheMetrics,
    unlock: Script,
}

impl RedisL2 {
    /// Prepares a connection of its own (with the cache's short bounds)
    /// without connecting, so a Redis that is down at start does not matter.
    pub fn new(redis: &Redis, account: &str, metrics: CacheMetrics) -> Result<Self, RedisError> {
        let connection = redis.dedicated(crate::redis::CACHE)?;
        let keys = Keys::new(redis.key_prefix(), account);
        Ok(Self {
            connection,
            keys,
            outage: Outage::new(OUTAGE_BACKOFF),
            metrics,
            // Deletes the lock only if it is still ours (it may have expired and been retaken).
            unlock: Script::new(
                r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#,
            ),
        })
    }

    /// The stored list, if any. An unreadable value counts as none.
    pub async fn get(&self) -> Result<Option<Snapshot>, StoreError> {
        let key = self.keys.products.clone();
        let bytes: Option<Vec<u8>> = self
            .run(|mut conn| async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        match Snapshot::decode(&bytes) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(error) => {
                tracing::warn!(key = %self.keys.products, %error, "ignoring an unreadable product list in Redis");
                Ok(None)
            }
        }
    }

    /// Stores `snapshot`; Redis drops it once it may no longer be served.
    pub async fn put(&self, snapshot: &Snapshot, keep_for: Duration) -> Result<(), StoreError> {
        let key = self.keys.products.clone();
        let value = snapshot.encode();
        let px = crate::millis::redis_px(keep_for);
        self.run(|mut conn| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(px)
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// Takes the fetch lock for `hold` unless another replica holds it.
    pub async fn try_lock(&self, token: &str, hold: Duration) -> Result<bool, StoreError> {
        let key = self.keys.lock.clone();
        let token = token.to_owned();
        let px = crate::millis::redis_px(hold);
        let reply: Option<String> = self
            .run(|mut conn| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(px)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(reply.is_some())
    }

    /// Releases the fetch lock if it is still ours.
    pub async fn unlock(&self, token: &str) -> Result<(), StoreError> {
        let mut invocation = self.unlock.key(&self.keys.lock);
        invocation.arg(token);
        self.run(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await
            .map(|_| ())
    }

    /// Runs one Redis call with the timeout, the outage backoff and its bookkeeping.
    async fn run<T, F>(&self, call: impl FnOnce(Connection) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        if self.outage.should_skip(Instant::now()) {
            return Err(StoreError::BackingOff);
        }
        // The manager bounds commands too; this also bounds its (re)connecting.
        let limit = crate::redis::CACHE.response + crate::redis::CACHE.connect;
        let result = match tokio::time::timeout(limit, call(self.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::Redis(error)),
            Err(_) => Err(StoreError::Timeout(limit)),
        };
        match &result {
            Ok(_) => self.outage.succeeded(),
            Err(error) => {
                self.outage.failed(error, &self.metrics);
            }
        }
        result
    }
}

impl std::fmt::Debug for RedisL2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisL2")
            .field("keys", &self.keys)
            .field("down", &self.outage.is_down())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_and_versioned() {
        let keys = Keys::new("mp-gateway", "SG00000010");
        assert_eq!(keys.products, "mp-gateway:product-list:v1:SG00000010");
        assert_eq!(keys.lock, "mp-gateway:product-list:v1:SG00000010:lock");
    }
}
