//! The one place Redis connections are made, with one timeout policy: every
//! connection attempt and command is bounded, so a dead or hung Redis fails
//! calls fast instead of hanging them. Nothing here connects at start: Redis
//! may be down then, and is used once it answers.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError};
use secrecy::ExposeSecret;

use crate::config::RedisConfig;

/// How a connection bounds its work.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// One connection attempt.
    pub connect: Duration,
    /// One command.
    pub response: Duration,
    /// Reconnect-and-retry attempts of one command.
    pub retries: usize,
}

/// The replica's shared connection (alarm log writes, idempotency records).
pub const SHARED: Bounds = Bounds {
    connect: Duration::from_millis(500),
    response: Duration::from_millis(500),
    retries: 1,
};

/// The product cache's own connection: a slow cache is worse than none, and
/// the cache's own backoff paces retries.
pub const CACHE: Bounds = Bounds {
    connect: Duration::from_millis(250),
    response: Duration::from_millis(250),
    retries: 0,
};

/// Where the gateway's Redis is, its shared connection, and the others it makes there.
#[derive(Clone)]
pub struct Redis {
    client: Client,
    shared: ConnectionManager,
    key_prefix: String,
}

impl Redis {
    /// Checks the URL and prepares the shared connection; opens nothing.
    pub fn new(config: &RedisConfig) -> Result<Self, RedisError> {
        let client = Client::open(config.url.expose_secret())?;
        let shared = managed(&client, SHARED)?;
        Ok(Self {
            client,
            shared,
            key_prefix: config.key_prefix.clone(),
        })
    }

    /// The prefix of every key the gateway writes.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The replica's shared multiplexed connection (cheap to clone).
    pub fn shared(&self) -> ConnectionManager {
        self.shared.clone()
    }

    /// A multiplexed connection of its own, made lazily and remade after failures.
    pub fn dedicated(&self, bounds: Bounds) -> Result<ConnectionManager, RedisError> {
        managed(&self.client, bounds)
    }

    /// A connection of its own for blocking reads (`XREAD BLOCK block`): a
    /// command may take the block time and then a little.
    pub async fn blocking_reader(
        &self,
        block: Duration,
    ) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(SHARED.connect))
            .set_response_timeout(Some(block + Duration::from_secs(3)));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

fn managed(client: &Client, bounds: Bounds) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(bounds.connect))
        .set_response_timeout(Some(bounds.response))
        .set_number_of_retries(bounds.retries);
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

/// `mp_gateway_redis_persistence`: 1 when Redis keeps data across a restart
/// (AOF or RDB), 0 when it does not; absent until Redis has answered.
pub const PERSISTENCE: &str = "mp_gateway_redis_persistence";

/// Registers the descriptions; call once the recorder is installed.
pub fn describe() {
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
