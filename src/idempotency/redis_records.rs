//! Idempotency records in Redis, shared by all replicas: SET NX claims an id
//! for a short lease, the holder renews it while its call runs, and the
//! outcome replaces the claim only while the claim is still the holder's.

use std::time::Duration;

use redis::Script;

use super::{IdempotencyError, Record};
use crate::config::ReplicaAck;
use crate::redis::{Connection, DurableScript, Redis, WriteError};

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
    conn: Connection,
    /// Versioned, so a change of the record format never reads old records wrongly.
    prefix: String,
    renew: Script,
    settle: std::sync::Arc<DurableScript>,
    /// Set: a claim and an outcome count only once replicas have them, so a
    /// failover cannot lose them and let a retry order again.
    replica_ack: Option<ReplicaAck>,
}

fn unavailable(error: impl std::fmt::Display) -> IdempotencyError {
    IdempotencyError::Store(error.to_string())
}

impl RedisRecords {
    pub(super) fn new(redis: &Redis) -> Self {
        Self {
            conn: redis.shared(),
            prefix: format!("{}:idempotency:v1:", redis.key_prefix()),
            renew: Script::new(RENEW_SCRIPT),
            settle: std::sync::Arc::new(DurableScript::new(SETTLE_SCRIPT)),
            replica_ack: redis.replica_ack(),
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
        let mut set = redis::cmd("SET");
        set.arg(self.key(key))
            .arg(json)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(crate::millis::redis_px(lease));
        let claimed = crate::redis::write(
            &mut self.conn.clone(),
            set,
            self.replica_ack,
            "idempotency_claim",
        )
        .await;
        let existing: Option<String> = match claimed {
            Ok(existing) => existing,
            Err(error @ WriteError::NotAcknowledged { .. }) => {
                // A claim a failover may lose could let a retry order twice:
                // nothing goes to MP; the claim is taken back if it is ours.
                self.release_unacknowledged(key, &record.token).await;
                return Err(unavailable(error));
            }
            Err(error) => return Err(unavailable(error)),
        };
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
        let write = if record.is_some() {
            "idempotency_record"
        } else {
            "idempotency_release"
        };
        let settled: i64 = self
            .settle
            .key(self.key(key))
            .arg(token)
            .arg(json)
            .arg(crate::millis::redis_px(ttl))
            .invoke(&mut self.conn.clone(), self.replica_ack, write)
            .await
            .map_err(unavailable)?;
        Ok(settled == 1)
    }

    /// Removes `token`'s claim (if it is still there) without waiting for
    /// replicas; if this fails too, the claim lapses after its lease.
    async fn release_unacknowledged(&self, key: &str, token: &str) {
        let released: Result<i64, _> = self
            .settle
            .key(self.key(key))
            .arg(token)
            .arg("")
            .arg(1)
            .invoke(&mut self.conn.clone(), None, "idempotency_release")
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, key, "could not take back a claim too few replicas acknowledged; it lapses after its lease");
        }
    }
}
