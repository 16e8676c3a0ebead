//! Test Redis: the machine's shared one under key prefixes of a test's own,
//! and `redis-server`s of a test's own for tests that stop Redis.

use std::time::Duration;

use mp_gateway::config::RedisConfig;

use super::{closed_port, eventually};

/// The machine's shared Redis (scripts/start-redis). Tests that use it each
/// take a key prefix of their own ([`unique_prefix`]) and never stop it.
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// A Redis key prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    format!("mp-gateway-test:{test}:{}", uuid::Uuid::new_v4())
}

/// Redis at `url` under `prefix`.
pub fn redis_config(url: &str, prefix: &str) -> RedisConfig {
    RedisConfig::url(url, prefix)
}

/// The shared Redis, under a key prefix no other test uses.
pub fn shared_redis() -> RedisConfig {
    redis_config(SHARED_REDIS, &unique_prefix("shared"))
}

/// A Redis URL nothing answers at.
pub async fn unreachable_redis_url() -> String {
    format!("redis://{}", closed_port().await)
}

/// A connection to the test Redis at `url`.
pub async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("test Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("test Redis answers")
}

/// The raw value stored under `key`, if any.
pub async fn redis_get(url: &str, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut redis_connection(url).await)
        .await
        .expect("GET works")
}

/// The length (`XLEN`) of the stream under `key`; 0 if there is none.
pub async fn redis_xlen(url: &str, key: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(key)
        .query_async(&mut redis_connection(url).await)
        .await
        .expect("XLEN works")
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok()
}

/// A `redis-server` of the test's own, on a free loopback port, keeping
/// nothing on disk, for tests that stop Redis. Killed when dropped.
pub struct OwnRedis {
    port: u16,
    server: Option<tokio::process::Child>,
}

impl OwnRedis {
    pub async fn start() -> Self {
        let port = closed_port().await.port();
        let mut redis = Self { port, server: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, empty) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        let server = tokio::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is on PATH (scripts/install-dev-tools installs it)");
        self.server = Some(server);
        let url = self.url();
        eventually(Duration::from_secs(10), "redis-server answers PING", || {
            let url = url.clone();
            async move { ping(&url).await }
        })
        .await;
    }

    /// Freezes it (SIGSTOP): connections stay open but nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .server
            .as_ref()
            .and_then(|server| server.id())
            .expect("redis-server is running");
        super::processes::kill(signal, pid);
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill().await.expect("kill redis-server");
        }
    }
}
