//! The configuration contract (DESIGN.md section 4): each setting is an env
//! variable with a matching `--flag` ([`Settings`], read by [`Cli`]), checked
//! into a [`Config`] whose defaults all come from [`defaults`]. A missing or
//! malformed value is a [`ConfigError`] naming the variable; `main` prints it
//! and exits 64. Config parses; it opens nothing (no file, no socket).

mod checked;
mod cli;
pub mod defaults;
mod parse;
mod settings;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::FixedOffset;
use secrecy::SecretString;
use url::Url;

use crate::alarms::BusConfig;
use crate::domain::CallbackUrl;
use crate::listeners::ListenerLimits;
use crate::mp::MpLimits;

pub use cli::{Cli, Command};
use defaults::{DEFAULT_PRODUCT_CACHE_MAX_STALE_SECS, DEFAULT_PRODUCT_CACHE_TTL_SECS};
pub use defaults::{SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY};
pub use parse::ConfigError;
pub use settings::Settings;

/// Where MP calls go.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The embedded simulator, started on a loopback port.
    Sandbox,
    Mp {
        base_url: Url,
        access_key: String,
        secret_key: SecretString,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub upstream: Upstream,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub callback_token: Option<SecretString>,
    pub public_callback_url: Option<CallbackUrl>,
    pub mp_timeout: Duration,
    pub mp_limits: MpLimits,
    pub mp_time_zone: FixedOffset,
    /// Calls one gRPC connection may have in flight; the rest are shed.
    pub grpc_concurrency_limit_per_connection: usize,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// Where traces are exported (OTLP over gRPC); unset: spans are made
    /// (trace context still flows to MP) but not exported.
    pub otlp_endpoint: Option<Url>,
    /// Unset: alarms stay in process (one replica).
    pub redis: Option<RedisConfig>,
    pub alarm_bus: BusConfig,
    pub idempotency_ttl: Duration,
    /// Empty: the gRPC API needs no token.
    pub grpc_auth_tokens: Vec<SecretString>,
    /// `GRPC_AUTH=off`: no tokens, and that is intended (logged, not warned).
    pub grpc_auth_off: bool,
    /// An INFO line for every gRPC call (`ACCESS_LOG=on`).
    pub access_log: bool,
    /// Connection budgets and timeouts of the two listeners.
    pub listener_limits: ListenerLimits,
    /// Set: /metrics is served there, not on `http_addr`.
    pub metrics_addr: Option<SocketAddr>,
    /// Unset: plaintext gRPC.
    pub grpc_tls: Option<TlsFiles>,
    pub product_cache: ProductCacheConfig,
}

/// The PEM files to serve gRPC over TLS; [`crate::tls::GrpcTls::read`] reads them at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Set: clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// How long product lists are kept (in process, and in Redis when set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductCacheConfig {
    /// How long a fetched list is fresh (`PRODUCT_CACHE_TTL_SECS`).
    pub ttl: Duration,
    /// How long past `ttl` a list may still be served, stale, while a refresh
    /// runs or MP fails (`PRODUCT_CACHE_MAX_STALE_SECS`); never after that.
    pub max_stale: Duration,
}

impl ProductCacheConfig {
    pub const DEFAULT_TTL: Duration = Duration::from_secs(DEFAULT_PRODUCT_CACHE_TTL_SECS);
    pub const DEFAULT_MAX_STALE: Duration =
        Duration::from_secs(DEFAULT_PRODUCT_CACHE_MAX_STALE_SECS);
}

impl Default for ProductCacheConfig {
    fn default() -> Self {
        Self {
            ttl: Self::DEFAULT_TTL,
            max_stale: Self::DEFAULT_MAX_STALE,
        }
    }
}

/// How to reach Redis and where the gateway's keys live.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub topology: RedisTopology,
    pub key_prefix: String,
    /// Set: writes that must survive a failover wait for this many replicas.
    pub replica_ack: Option<ReplicaAck>,
}

impl RedisConfig {
    /// One Redis at `url` (`REDIS_URL`), no replica acknowledgement.
    pub fn url(url: &str, key_prefix: &str) -> Self {
        Self {
            topology: RedisTopology::Url(SecretString::from(url)),
            key_prefix: key_prefix.to_owned(),
            replica_ack: None,
        }
    }
}

/// Which of `REDIS_URL`, `REDIS_SENTINELS` and `REDIS_CLUSTER_NODES` is set.
#[derive(Debug, Clone)]
pub enum RedisTopology {
    /// May hold a password, hence secret.
    Url(SecretString),
    /// The primary is whichever the sentinels name.
    Sentinel {
        /// `host:port` of each sentinel.
        sentinels: Vec<String>,
        master: String,
        sentinel_password: Option<SecretString>,
        /// Of the primary and replicas.
        password: Option<SecretString>,
    },
    Cluster {
        /// `host:port` of some nodes; the rest are discovered.
        nodes: Vec<String>,
        password: Option<SecretString>,
    },
}

/// `WAIT replicas timeout` after a write that must survive a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAck {
    /// `REDIS_MIN_REPLICAS_ACK`, at least 1.
    pub replicas: usize,
    /// `REDIS_REPLICA_ACK_TIMEOUT_MS`.
    pub timeout: Duration,
}
