//! Idempotency records in Redis, shared by all replicas: SET NX claims an id.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{IdempotencyError, Record};

#[derive(Clone)]
pub(super) struct RedisRecords {
    conn: ConnectionManager,
    /// Versioned, so a change of the record format never reads old records wrongly.
    prefix: String,
}

fn unavailable(error: impl std::fmt::Display) -> IdempotencyError {
    IdempotencyError::Store(error.to_string())
}

impl RedisRecords {
    pub(super) fn new(conn: ConnectionManager, key_prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{key_prefix}:idempotency:v1:"),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub(super) async fn claim(
        &self,
        key: &str,
        record: &Record,
        ttl: Duration,
    ) -> Result<Option<Record>, IdempotencyError> {
        let json = serde_json::to_string(record).map_err(unavailable)?;
        // SET NX ... GET: claims the key, or returns what is there, in one step.
        let existing: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(json)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(crate::millis::redis_px(ttl))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        existing
            .map(|json| serde_json::from_str(&json).map_err(unavailable))
            .transpose()
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Record>, IdempotencyError> {
        let existing: Option<String> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        existing
            .map(|json| serde_json::from_str(&json).map_err(unavailable))
            .transpose()
    }

    pub(super) async fn put(
        &self,
        key: &str,
        record: &Record,
        ttl: Duration,
    ) -> Result<(), IdempotencyError> {
        let json = serde_json::to_string(record).map_err(unavailable)?;
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(json)
            .arg("PX")
            .arg(crate::millis::redis_px(ttl))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    pub(super) async fn remove(&self, key: &str) -> Result<(), IdempotencyError> {
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }
}
