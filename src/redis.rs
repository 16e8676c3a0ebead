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
