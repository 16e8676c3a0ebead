//! The one place Redis connections are made, with one timeout policy: every
//! connection attempt and command is bounded, so a dead or hung Redis fails
//! calls fast instead of hanging them. Nothing here connects at start: Redis
//! may be down then, and is used once it answers.
//!
//! Redis is one server (`REDIS_URL`), a primary the sentinels name
//! (`REDIS_SENTINELS`), or a cluster (`REDIS_CLUSTER_NODES`); callers see one
//! [`Connection`] type either way.

mod connection;
mod durable;
mod persistence;
mod sentinel;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::{AsyncConnectionConfig, Client, RedisError};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{RedisConfig, RedisTopology, ReplicaAck};
pub use connection::Connection;
pub use durable::{DurableScript, WriteError, write};
pub use persistence::{PERSISTENCE, Persistence, check_persistence};
use sentinel::{SentinelConnection, SentinelTarget};

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

/// Where connections go: the three ways to name Redis.
#[derive(Clone)]
enum Target {
    Single(Client),
    Sentinel(SentinelTarget),
    Cluster(Box<ClusterClient>),
}

/// Where the gateway's Redis is, its shared connection, and the others it makes there.
#[derive(Clone)]
pub struct Redis {
    target: Target,
    shared: Connection,
    key_prefix: String,
    replica_ack: Option<ReplicaAck>,
}

impl Redis {
    /// Checks the addresses and prepares the shared connection; opens nothing.
    pub fn new(config: &RedisConfig) -> Result<Self, RedisError> {
        let target = match &config.topology {
            RedisTopology::Url(url) => Target::Single(Client::open(url.expose_secret())?),
            RedisTopology::Sentinel {
                sentinels,
                master,
                sentinel_password,
                password,
            } => Target::Sentinel(SentinelTarget::new(
                sentinels,
                master,
                sentinel_password.as_ref(),
                password.as_ref(),
            )?),
            RedisTopology::Cluster { nodes, password } => {
                Target::Cluster(Box::new(cluster_client(nodes, password.as_ref())?))
            }
        };
        // A write that waits for replicas takes up to their timeout more.
        let shared_bounds = Bounds {
            response: SHARED.response + config.replica_ack.map_or(Duration::ZERO, |a| a.timeout),
            ..SHARED
        };
        let shared = connect(&target, shared_bounds)?;
        Ok(Self {
            target,
            shared,
            key_prefix: config.key_prefix.clone(),
            replica_ack: config.replica_ack,
        })
    }

    /// The prefix of every key the gateway writes.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// How many replicas must have a write that has to survive a failover.
    pub fn replica_ack(&self) -> Option<ReplicaAck> {
        self.replica_ack
    }

    /// The replica's shared multiplexed connection (cheap to clone).
    pub fn shared(&self) -> Connection {
        self.shared.clone()
    }

    /// A multiplexed connection of its own, made lazily and remade after failures.
    pub fn dedicated(&self, bounds: Bounds) -> Result<Connection, RedisError> {
        connect(&self.target, bounds)
    }

    /// A connection of its own for blocking reads (`XREAD BLOCK block`): a
    /// command may take the block time and then a little. Made anew after
    /// each failure, it finds the primary (or the key's node) again.
    pub async fn blocking_reader(&self, block: Duration) -> Result<Connection, RedisError> {
        let bounds = Bounds {
            response: block + Duration::from_secs(3),
            retries: 0,
            ..SHARED
        };
        match &self.target {
            Target::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(bounds.connect))
                    .set_response_timeout(Some(bounds.response));
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Connection::Direct(conn))
            }
            Target::Sentinel(_) | Target::Cluster(_) => connect(&self.target, bounds),
        }
    }
}

fn connect(target: &Target, bounds: Bounds) -> Result<Connection, RedisError> {
    Ok(match target {
        Target::Single(client) => Connection::Single(managed(client, bounds)?),
        Target::Sentinel(target) => Connection::Sentinel(SentinelConnection::new(target, bounds)),
        Target::Cluster(client) => {
            let config = ClusterConfig::new()
                .set_connection_timeout(bounds.connect)
                .set_response_timeout(bounds.response);
            Connection::Cluster(client.get_pending_async_connection_with_config(config))
        }
    })
}

fn managed(client: &Client, bounds: Bounds) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(bounds.connect))
        .set_response_timeout(Some(bounds.response))
        .set_number_of_retries(bounds.retries);
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

/// A cluster client that retries a moved slot or a failed-over node a few
/// times, briefly: a call must fail fast rather than hang.
fn cluster_client(
    nodes: &[String],
    password: Option<&SecretString>,
) -> Result<ClusterClient, RedisError> {
    let urls = nodes.iter().map(|node| format!("redis://{node}"));
    let mut builder = ClusterClientBuilder::new(urls)
        .retries(3)
        .min_retry_wait(10)
        .max_retry_wait(200);
    if let Some(password) = password {
        builder = builder.password(password.expose_secret());
    }
    builder.build()
}

/// Registers the descriptions; call once the recorder is installed.
pub fn describe() {
    persistence::describe();
    durable::describe();
}
