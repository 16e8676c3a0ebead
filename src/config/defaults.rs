//! Every setting's default, in one table: the checked [`Config`](super::Config)
//! and the `--help` text both read them from here.

/// `GRPC_ADDR`.
pub const DEFAULT_GRPC_ADDR: &str = "0.0.0.0:50051";
/// `HTTP_ADDR`.
pub const DEFAULT_HTTP_ADDR: &str = "0.0.0.0:8080";
/// `MP_TIMEOUT_MS`.
pub const DEFAULT_MP_TIMEOUT_MS: u64 = 10_000;
/// `MP_MAX_CONCURRENCY`.
pub const DEFAULT_MP_MAX_CONCURRENCY: usize = 32;
/// `GRPC_CONCURRENCY_LIMIT_PER_CONNECTION`.
pub const DEFAULT_GRPC_CONCURRENCY_LIMIT_PER_CONNECTION: usize = 256;
/// `MP_TIME_ZONE`: MP's document gives no zone; LinksField runs MP from UTC+8.
pub const DEFAULT_MP_TIME_ZONE: &str = "+08:00";
/// `SHUTDOWN_GRACE_SECS`.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 8;
/// `REDIS_KEY_PREFIX`.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "mp-gateway";
/// `REDIS_MIN_REPLICAS_ACK`: the primary alone (what a single Redis gives).
pub const DEFAULT_REDIS_MIN_REPLICAS_ACK: usize = 0;
/// `REDIS_REPLICA_ACK_TIMEOUT_MS`: replication on one network takes
/// milliseconds; a second means the replica is gone or far behind.
pub const DEFAULT_REDIS_REPLICA_ACK_TIMEOUT_MS: u64 = 1000;
/// `ALARM_RETENTION`.
pub const DEFAULT_ALARM_RETENTION: usize = 100_000;
/// `ALARM_DEDUP_WINDOW_SECS`.
pub const DEFAULT_ALARM_DEDUP_WINDOW_SECS: u64 = 600;
/// `ALARM_SUBSCRIBER_BUFFER`.
pub const DEFAULT_ALARM_SUBSCRIBER_BUFFER: usize = 1024;
/// `ALARM_MAX_DELIVERY_ATTEMPTS`.
pub const DEFAULT_ALARM_MAX_DELIVERY_ATTEMPTS: u32 = 10;
/// `IDEMPOTENCY_TTL_SECS`.
pub const DEFAULT_IDEMPOTENCY_TTL_SECS: u64 = 86_400;
/// `PRODUCT_CACHE_TTL_SECS`.
pub const DEFAULT_PRODUCT_CACHE_TTL_SECS: u64 = 300;
/// `PRODUCT_CACHE_MAX_STALE_SECS`.
pub const DEFAULT_PRODUCT_CACHE_MAX_STALE_SECS: u64 = 3600;
/// `GRPC_AUTH`: tokens are checked when `GRPC_AUTH_TOKENS` names some.
pub const DEFAULT_GRPC_AUTH: &str = "on";
/// `HTTP_MAX_CONNECTIONS`: far more than MP, probes and a scraper need, far
/// fewer than a process's usual file-descriptor limit.
pub const DEFAULT_HTTP_MAX_CONNECTIONS: usize = 512;
/// Time for an HTTP request head to arrive (and for an idle keep-alive connection).
pub const HTTP_HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Time for a gRPC connection's first bytes (HTTP/2 preface or TLS hello).
pub const GRPC_PREFACE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// `ACCESS_LOG`: per-call lines cost throughput; failed and slow calls are logged anyway.
pub const DEFAULT_ACCESS_LOG: &str = "off";
/// `LOG_FORMAT`.
pub const DEFAULT_LOG_FORMAT: &str = "json";

/// The keys of the embedded simulator (they protect nothing; it listens on loopback only).
pub const SANDBOX_ACCESS_KEY: &str = "SANDBOX0001";
pub const SANDBOX_SECRET_KEY: &str = "sandbox-secret";
/// `mp-gateway sandbox --port`.
pub const DEFAULT_SANDBOX_PORT: u16 = 18080;
/// `mp-gateway sandbox --traffic-mb-per-sec`.
pub const DEFAULT_SANDBOX_TRAFFIC_MB_PER_SEC: f64 = 10.0;
