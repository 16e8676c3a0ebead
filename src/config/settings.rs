//! The raw settings, as flags or env variables give them (DESIGN.md section 4);
//! [`Config::from_settings`](super::Config::from_settings) checks them.

use clap::Args;

use super::defaults::{
    DEFAULT_ALARM_DEDUP_WINDOW_SECS, DEFAULT_ALARM_MAX_DELIVERY_ATTEMPTS, DEFAULT_ALARM_RETENTION,
    DEFAULT_ALARM_SUBSCRIBER_BUFFER, DEFAULT_GRPC_ADDR,
    DEFAULT_GRPC_CONCURRENCY_LIMIT_PER_CONNECTION, DEFAULT_HTTP_ADDR, DEFAULT_HTTP_MAX_CONNECTIONS,
    DEFAULT_IDEMPOTENCY_TTL_SECS, DEFAULT_LOG_FORMAT, DEFAULT_MP_MAX_CONCURRENCY,
    DEFAULT_MP_TIME_ZONE, DEFAULT_MP_TIMEOUT_MS, DEFAULT_PRODUCT_CACHE_MAX_STALE_SECS,
    DEFAULT_PRODUCT_CACHE_TTL_SECS, DEFAULT_REDIS_KEY_PREFIX, DEFAULT_REDIS_MIN_REPLICAS_ACK,
    DEFAULT_REDIS_REPLICA_ACK_TIMEOUT_MS, DEFAULT_SHUTDOWN_GRACE_SECS,
};

/// Raw settings, as given by flags or env; [`Config::from_settings`] checks them.
#[derive(Debug, Default, Args)]
pub struct Settings {
    /// MP host, e.g. https://lk-api-v2.linksfield.net (required unless --sandbox).
    #[arg(long, env = "MP_BASE_URL")]
    pub mp_base_url: Option<String>,
    /// MP access key (partner code).
    #[arg(long, env = "MP_ACCESS_KEY")]
    pub mp_access_key: Option<String>,
    /// MP secret key.
    #[arg(long, env = "MP_SECRET_KEY", hide_env_values = true)]
    pub mp_secret_key: Option<String>,
    /// Run against the embedded MP simulator (no MP account needed).
    #[arg(long, env = "MP_SANDBOX")]
    pub sandbox: bool,
    #[arg(long, env = "GRPC_ADDR", help = format!("gRPC listen address. [default: {DEFAULT_GRPC_ADDR}]"))]
    pub grpc_addr: Option<String>,
    #[arg(long, env = "HTTP_ADDR", help = format!("Callback, health and metrics listen address. [default: {DEFAULT_HTTP_ADDR}]"))]
    pub http_addr: Option<String>,
    /// Secret MP must present as ?token= on /mp/alarm-callback; unset = open
    /// (warned at start). Set but empty is an error.
    #[arg(long, env = "CALLBACK_TOKEN", hide_env_values = true)]
    pub callback_token: Option<String>,
    /// The URL MP should call with alarms (used by RegisterCallback).
    #[arg(long, env = "PUBLIC_CALLBACK_URL")]
    pub public_callback_url: Option<String>,
    #[arg(long, env = "MP_TIMEOUT_MS", help = format!("Upper bound of one MP call in milliseconds. [default: {DEFAULT_MP_TIMEOUT_MS}]"))]
    pub mp_timeout_ms: Option<String>,
    #[arg(long, env = "MP_MAX_CONCURRENCY", help = format!("Most MP calls in flight at once; excess waits briefly, then gets RESOURCE_EXHAUSTED. [default: {DEFAULT_MP_MAX_CONCURRENCY}]"))]
    pub mp_max_concurrency: Option<String>,
    /// Most MP calls started per second; excess waits briefly, then gets RESOURCE_EXHAUSTED [default: no limit].
    #[arg(long, env = "MP_RATE_LIMIT_PER_SEC")]
    pub mp_rate_limit_per_sec: Option<String>,
    #[arg(long, env = "GRPC_CONCURRENCY_LIMIT_PER_CONNECTION", help = format!("Most gRPC calls in flight on one client connection; excess gets RESOURCE_EXHAUSTED at once. [default: {DEFAULT_GRPC_CONCURRENCY_LIMIT_PER_CONNECTION}]"))]
    pub grpc_concurrency_limit_per_connection: Option<String>,
    #[arg(long, env = "MP_TIME_ZONE", help = format!("UTC offset of the times MP sends, e.g. +08:00. [default: {DEFAULT_MP_TIME_ZONE}]"))]
    pub mp_time_zone: Option<String>,
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", help = format!("Seconds in-flight calls get to finish after SIGTERM. [default: {DEFAULT_SHUTDOWN_GRACE_SECS}]"))]
    pub shutdown_grace_secs: Option<String>,
    /// Redis, e.g. redis://redis:6379: the alarm log shared by all replicas. Unset: in process (one replica).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    #[arg(long, env = "REDIS_KEY_PREFIX", help = format!("Prefix of every Redis key the gateway uses. [default: {DEFAULT_REDIS_KEY_PREFIX}]"))]
    pub redis_key_prefix: Option<String>,
    /// Redis Sentinel instead of REDIS_URL: the sentinels' host:port,host:port,… (with REDIS_SENTINEL_MASTER).
    #[arg(long, env = "REDIS_SENTINELS")]
    pub redis_sentinels: Option<String>,
    /// The name the sentinels monitor the primary under (required with REDIS_SENTINELS).
    #[arg(long, env = "REDIS_SENTINEL_MASTER")]
    pub redis_sentinel_master: Option<String>,
    /// Password of the sentinels themselves (requirepass in sentinel.conf).
    #[arg(long, env = "REDIS_SENTINEL_PASSWORD", hide_env_values = true)]
    pub redis_sentinel_password: Option<String>,
    /// Redis Cluster instead of REDIS_URL: some of its nodes' host:port,host:port,… (the rest are discovered).
    #[arg(long, env = "REDIS_CLUSTER_NODES")]
    pub redis_cluster_nodes: Option<String>,
    /// Password of the Redis data nodes with REDIS_SENTINELS or REDIS_CLUSTER_NODES (with REDIS_URL it goes in the URL).
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    #[arg(long, env = "REDIS_MIN_REPLICAS_ACK", help = format!("Replicas that must have a callback, an idempotency record or claim (WAIT) before it counts as stored; 0: the primary alone. [default: {DEFAULT_REDIS_MIN_REPLICAS_ACK}]"))]
    pub redis_min_replicas_ack: Option<String>,
    #[arg(long, env = "REDIS_REPLICA_ACK_TIMEOUT_MS", help = format!("How long a write waits for REDIS_MIN_REPLICAS_ACK replicas before it fails (callback: 503). [default: {DEFAULT_REDIS_REPLICA_ACK_TIMEOUT_MS}]"))]
    pub redis_replica_ack_timeout_ms: Option<String>,
    #[arg(long, env = "ALARM_RETENTION", help = format!("Alarms kept for subscribers that resume. [default: {DEFAULT_ALARM_RETENTION}]"))]
    pub alarm_retention: Option<String>,
    #[arg(long, env = "ALARM_DEDUP_WINDOW_SECS", help = format!("A callback MP repeats within this many seconds is relayed once. [default: {DEFAULT_ALARM_DEDUP_WINDOW_SECS}]"))]
    pub alarm_dedup_window_secs: Option<String>,
    #[arg(long, env = "ALARM_SUBSCRIBER_BUFFER", help = format!("Alarms a subscriber may fall behind before its stream ends with RESOURCE_EXHAUSTED. [default: {DEFAULT_ALARM_SUBSCRIBER_BUFFER}]"))]
    pub alarm_subscriber_buffer: Option<String>,
    #[arg(long, env = "ALARM_MAX_DELIVERY_ATTEMPTS", help = format!("Deliveries of one alarm to a shared subscription (ConsumeAlarms) before it leaves the subscription's pending list. [default: {DEFAULT_ALARM_MAX_DELIVERY_ATTEMPTS}]"))]
    pub alarm_max_delivery_attempts: Option<String>,
    #[arg(long, env = "IDEMPOTENCY_TTL_SECS", help = format!("How long a CreateOrder/TopUpOrder outcome is kept per request_id. [default: {DEFAULT_IDEMPOTENCY_TTL_SECS}]"))]
    pub idempotency_ttl_secs: Option<String>,
    /// Comma-separated bearer tokens accepted on the gRPC API; unset = no auth
    /// (warned at start). Set but empty is an error.
    #[arg(long, env = "GRPC_AUTH_TOKENS", hide_env_values = true)]
    pub grpc_auth_tokens: Option<String>,
    /// `off`: the gRPC API takes calls without a token, on purpose (no tokens
    /// may be set then); `on` needs nothing else [default: on].
    #[arg(long, env = "GRPC_AUTH")]
    pub grpc_auth: Option<String>,
    /// `on`: an INFO `rpc finished` line for every gRPC call (buffered, off
    /// the request path); `off`: only failed and slow calls, at WARN [default: off].
    #[arg(long, env = "ACCESS_LOG")]
    pub access_log: Option<String>,
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", help = format!("Most connections open at once on HTTP_ADDR; the excess is closed at once. [default: {DEFAULT_HTTP_MAX_CONNECTIONS}]"))]
    pub http_max_connections: Option<String>,
    /// Serve /metrics here instead of on HTTP_ADDR (it is unauthenticated), e.g. 127.0.0.1:9090.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// PEM certificate (chain) to serve gRPC over TLS.
    #[arg(long, env = "GRPC_TLS_CERT")]
    pub grpc_tls_cert: Option<String>,
    /// PEM private key for GRPC_TLS_CERT.
    #[arg(long, env = "GRPC_TLS_KEY")]
    pub grpc_tls_key: Option<String>,
    /// PEM CA certificate(s): require client certificates signed by it (mTLS).
    #[arg(long, env = "GRPC_TLS_CLIENT_CA")]
    pub grpc_tls_client_ca: Option<String>,
    #[arg(long, env = "PRODUCT_CACHE_TTL_SECS", help = format!("Seconds a product list stays fresh. [default: {DEFAULT_PRODUCT_CACHE_TTL_SECS}]"))]
    pub product_cache_ttl_secs: Option<String>,
    #[arg(long, env = "PRODUCT_CACHE_MAX_STALE_SECS", help = format!("Seconds past its freshness a product list may still be served while it is refreshed (or while MP fails); never after that. [default: {DEFAULT_PRODUCT_CACHE_MAX_STALE_SECS}]"))]
    pub product_cache_max_stale_secs: Option<String>,
    #[arg(long, env = "LOG_FORMAT", help = format!("Log format: json or pretty. [default: {DEFAULT_LOG_FORMAT}]"))]
    pub log_format: Option<String>,
    /// OTLP/gRPC collector that receives traces, e.g. http://otel-collector:4317; unset = no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
}
