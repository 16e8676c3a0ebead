//! Whether Redis keeps what it is given across its own restart.

use std::time::Duration;

use redis::RedisError;

use super::Redis;

/// `mp_gateway_redis_persistence`: 1 when Redis keeps data across a restart
/// (AOF or RDB), 0 when it does not; absent until Redis has answered.
pub const PERSISTENCE: &str = "mp_gateway_redis_persistence";

/// Registers the descriptions; call once the recorder is installed.
pub(super) fn describe() {
    metrics::describe_gauge!(
        PERSISTENCE,
        "1 when Redis persists (appendonly or save is on), 0 when a Redis restart loses the idempotency records and the alarm log"
    );
}

/// How Redis keeps what it is given across its own restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persistence {
    /// `appendonly yes`.
    pub aof: bool,
    /// `save` has at least one snapshot rule.
    pub rdb: bool,
}

impl Persistence {
    /// From the values of `CONFIG GET appendonly` and `CONFIG GET save`.
    pub fn from_config(appendonly: &str, save: &str) -> Self {
        Self {
            aof: appendonly.eq_ignore_ascii_case("yes"),
            rdb: !save.trim().is_empty(),
        }
    }

    pub fn any(self) -> bool {
        self.aof || self.rdb
    }
}

impl Redis {
    /// Asks Redis how it persists (managed offerings may refuse `CONFIG`).
    pub async fn persistence(&self) -> Result<Persistence, RedisError> {
        let mut conn = self.shared();
        let config: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .arg("save")
            .query_async(&mut conn)
            .await?;
        let value = |name: &str| config.get(name).map_or("", String::as_str);
        Ok(Persistence::from_config(value("appendonly"), value("save")))
    }
}

/// Checks once Redis answers (it may be down at start) whether it persists:
/// without AOF or RDB a Redis restart forgets every request id, and a retry
/// then orders again. Says so at WARN and sets [`PERSISTENCE`].
pub async fn check_persistence(redis: Redis) {
    const RETRY: Duration = Duration::from_secs(5);
    let persistence = loop {
        match redis.persistence().await {
            Ok(persistence) => break persistence,
            Err(error)
                if error.kind()
                    == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                tracing::info!(%error, "cannot read Redis's persistence settings (CONFIG refused); make sure it has AOF or RDB on");
                return;
            }
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    };
    metrics::gauge!(PERSISTENCE).set(if persistence.any() { 1.0 } else { 0.0 });
    if persistence.any() {
        tracing::info!(
            aof = persistence.aof,
            rdb = persistence.rdb,
            "Redis persists its data"
        );
    } else {
        tracing::warn!(
            "Redis has neither AOF (appendonly) nor RDB (save) on: when it restarts, every idempotency record is lost and a retried CreateOrder/TopUpOrder orders again; the alarm log is lost too. Turn on appendonly"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Persistence;

    #[test]
    fn either_aof_or_a_save_rule_counts_as_persistent() {
        assert!(!Persistence::from_config("no", "").any());
        assert!(Persistence::from_config("yes", "").any());
        assert!(Persistence::from_config("no", "3600 1 300 100").any());
        assert!(!Persistence::from_config("no", "  ").any());
    }
}
