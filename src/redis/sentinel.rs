//! The primary that Redis Sentinel names, followed across a failover: a
//! command that finds the primary gone (connection lost or refused, timed
//! out) or demoted (`READONLY`) asks the sentinels again and is retried a
//! bounded number of times, so a call fails fast during the failover and
//! works again once the sentinels have promoted a replica.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisError, RedisFuture,
    RedisResult, ServerErrorKind, Value,
};
use secrecy::{ExposeSecret, SecretString};

use super::Bounds;

/// How to ask the sentinels for the primary.
#[derive(Clone)]
pub(super) struct SentinelTarget {
    sentinels: Vec<ConnectionAddr>,
    master: String,
    sentinel_password: Option<SecretString>,
    password: Option<SecretString>,
}

impl SentinelTarget {
    pub(super) fn new(
        sentinels: &[String],
        master: &str,
        sentinel_password: Option<&SecretString>,
        password: Option<&SecretString>,
    ) -> Result<Self, RedisError> {
        let sentinels = sentinels
            .iter()
            .map(|address| tcp_address(address))
            .collect::<Result<_, _>>()?;
        let target = Self {
            sentinels,
            master: master.to_owned(),
            sentinel_password: sentinel_password.cloned(),
            password: password.cloned(),
        };
        target.client()?;
        Ok(target)
    }

    fn client(&self) -> Result<SentinelClient, RedisError> {
        let mut builder = SentinelClientBuilder::new(
            self.sentinels.clone(),
            &self.master,
            SentinelServerType::Master,
        )?;
        if let Some(password) = &self.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password.expose_secret());
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password.expose_secret());
        }
        builder.build()
    }
}

fn tcp_address(address: &str) -> Result<ConnectionAddr, RedisError> {
    address
        .rsplit_once(':')
        .and_then(|(host, port)| Some(ConnectionAddr::Tcp(host.to_owned(), port.parse().ok()?)))
        .ok_or_else(|| {
            RedisError::from((
                ErrorKind::InvalidClientConfig,
                "a sentinel address is not host:port",
                address.to_owned(),
            ))
        })
}

/// A multiplexed connection to the current primary (cheap to clone).
#[derive(Clone)]
pub struct SentinelConnection(Arc<Shared>);

struct Shared {
    /// One resolution at a time: callers that fail together ask the sentinels once.
    sentinels: tokio::sync::Mutex<Result<SentinelClient, RedisError>>,
    /// The connection to the primary last named, and how many were made before it.
    current: Mutex<(u64, Option<MultiplexedConnection>)>,
    config: AsyncConnectionConfig,
    bounds: Bounds,
}

impl SentinelConnection {
    /// Connects on first use.
    pub(super) fn new(target: &SentinelTarget, bounds: Bounds) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(bounds.connect))
            .set_response_timeout(Some(bounds.response));
        Self(Arc::new(Shared {
            sentinels: tokio::sync::Mutex::new(target.client()),
            current: Mutex::new((0, None)),
            config,
            bounds,
        }))
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        let current = self
            .0
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        current.1.clone().map(|conn| (current.0, conn))
    }

    /// The current primary's connection, asking the sentinels if there is none.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let mut sentinels = self.0.sentinels.lock().await;
        // Another caller may have found the primary while this one waited.
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let sentinels = sentinels.as_mut().map_err(|e| e.clone())?;
        // Asking a sentinel, then connecting to the primary it names.
        let limit = self.0.bounds.connect * 2;
        let found = tokio::time::timeout(limit, async {
            sentinels
                .async_get_client()
                .await?
                .get_multiplexed_async_connection_with_config(&self.0.config)
                .await
        })
        .await
        .map_err(|_| {
            RedisError::from((
                ErrorKind::Io,
                "the sentinels did not name a reachable primary in time",
            ))
        })??;
        let mut current = self
            .0
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        current.0 += 1;
        current.1 = Some(found.clone());
        Ok((current.0, found))
    }

    /// Drops the connection `generation` unless a newer one replaced it already.
    fn forget(&self, generation: u64) {
        let mut current = self
            .0
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if current.0 == generation {
            current.1 = None;
        }
    }

    /// Runs `send` on the primary; after a failure that says the primary is
    /// gone or demoted, finds the primary again and retries (bounded).
    async fn run<T, F>(&self, send: impl Fn(MultiplexedConnection) -> F) -> RedisResult<T>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let mut retries = self.0.bounds.retries;
        loop {
            let (generation, conn) = self.connection().await?;
            match send(conn).await {
                Err(error) if lost_primary(&error) => {
                    self.forget(generation);
                    if retries == 0 {
                        return Err(error);
                    }
                    retries -= 1;
                }
                done => return done,
            }
        }
    }
}

/// The failures after which the primary must be looked up again.
fn lost_primary(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.run(move |mut conn| async move { conn.req_packed_command(cmd).await }))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.run(move |mut conn| async move {
            conn.req_packed_commands(pipeline, offset, count).await
        }))
    }

    fn get_db(&self) -> i64 {
        0
    }
}
