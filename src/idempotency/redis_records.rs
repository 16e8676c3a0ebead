//! Idempotency records in Redis, shared by all replicas: SET NX claims an id
//! for a short lease, the holder renews it while its call runs, and the
//! outcome replaces the claim only while the claim is still the holder's.

use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

use super::{IdempotencyError, Record};

/// Extends the claim's lease if the record still carries this holder's token.
const RENEW_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, record = pcall(cjson.decode, current)
if not ok or record.token ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// Replaces the claim with the outcome (ARGV[2], kept ARGV[3] ms) or removes
/// it (ARGV[2] empty), if the record is still this holder's or is gone (its
/// lease lapsed while Redis was away); never touches another holder's claim.
const SETTLE_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, record = pcall(cjson.decode, current)
  if not ok or record.token ~= ARGV[1] then return 0 end
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"#;

#[derive(Clone)]
pub(super) struct RedisRecords {
    conn: ConnectionManager,
    /// Versioned, so a change of the record format never reads old records wrongly.
    prefix: String,
    renew: Script,
    settle: Script,
}

fn unavailable(error: impl std::fmt::Display) -> IdempotencyError {
    IdempotencyError::Store(error.to_string())
}

impl RedisRecords {
    pub(super) fn new(conn: ConnectionManager, key_prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{key_prefix}:idempotency:v1:"),
            renew: Script::new(RENEW_SCRIPT),
            settle: Script::new(SETTLE_SCRIPT),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Claims `key` for `lease` (a claim that lands after its sender gave up
    /// lapses by itself), or returns the record already there.
    pub(super) async fn claim(
        &self,
        key: &str,
        record: &Record,
        lease: Duration,
    ) -> Result<Option<Record>, IdempotencyError> {
        let json = serde_json::to_string(record).map_err(unavailable)?;
        // SET NX ... GET: claims the key, or returns what is there, in one step.
        let existing: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(json)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(crate::millis::redis_px(lease))
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

    /// Extends the lease of `token`'s claim; false when the claim is no longer its.
    pub(super) async fn renew(
        &self,
        key: &str,
        token: &str,
        lease: Duration,
    ) -> Result<bool, IdempotencyError> {
        let renewed: i64 = self
            .renew
            .key(self.key(key))
            .arg(token)
            .arg(crate::millis::redis_px(lease))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(renewed == 1)
    }

    /// Stores `record` for `ttl` (or removes the claim when `None`) unless
    /// another holder's claim is there; false when it is.
    pub(super) async fn settle(
        &self,
        key: &str,
        token: &str,
        record: Option<&Record>,
        ttl: Duration,
    ) -> Result<bool, IdempotencyError> {
        let json = match record {
            Some(record) => serde_json::to_string(record).map_err(unavailable)?,
            None => String::new(),
        };
        let settled: i64 = self
            .settle
            .key(self.key(key))
            .arg(token)
            .arg(json)
            .arg(crate::millis::redis_px(ttl))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(settled == 1)
    }
}
