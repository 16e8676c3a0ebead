//! The configuration contract (DESIGN.md section 4): each setting is an env
//! variable with a matching `--flag`. A missing or malformed value is a
//! [`ConfigError`] naming the variable; `main` prints it and exits 64.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use chrono::FixedOffset;
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use url::Url;

use crate::alarms::BusConfig;
use crate::domain::CallbackUrl;
use crate::mp::MpLimits;

/// Command line of the `mp-gateway` binary.
#[derive(Debug, Parser)]
#[command(
    name = "mp-gateway",
    version,
    about = "LinksField MP eSIM API as a typed gRPC service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run only the MP simulator, for client teams testing their MP integration.
    Sandbox {
        /// Port to listen on (127.0.0.1).
        #[arg(long, default_value_t = 18080)]
        port: u16,
        /// Access key the simulator accepts.
        #[arg(long, default_value = SANDBOX_ACCESS_KEY)]
        access_key: String,
        /// Secret key the simulator accepts.
        #[arg(long, default_value = SANDBOX_SECRET_KEY)]
        secret_key: String,
        /// How fast in-use orders consume data.
        #[arg(long, default_value_t = 10.0)]
        traffic_mb_per_sec: f64,
    },
}

/// The keys of the embedded simulator (they protect nothing; it listens on loopback only).
pub const SANDBOX_ACCESS_KEY: &str = "SANDBOX0001";
pub const SANDBOX_SECRET_KEY: &str = "sandbox-secret";

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
    /// gRPC listen address [default: 0.0.0.0:50051].
    #[arg(long, env = "GRPC_ADDR")]
    pub grpc_addr: Option<String>,
    /// Callback, health and metrics listen address [default: 0.0.0.0:8080].
    #[arg(long, env = "HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Secret MP must present as ?token= on /mp/alarm-callback.
    #[arg(long, env = "CALLBACK_TOKEN", hide_env_values = true)]
    pub callback_token: Option<String>,
    /// The URL MP should call with alarms (used by RegisterCallback).
    #[arg(long, env = "PUBLIC_CALLBACK_URL")]
    pub public_callback_url: Option<String>,
    /// Upper bound of one MP call in milliseconds [default: 10000].
    #[arg(long, env = "MP_TIMEOUT_MS")]
    pub mp_timeout_ms: Option<String>,
    /// Most MP calls in flight at once; excess waits briefly, then gets RESOURCE_EXHAUSTED [default: 32].
    #[arg(long, env = "MP_MAX_CONCURRENCY")]
    pub mp_max_concurrency: Option<String>,
    /// Most MP calls started per second; excess waits briefly, then gets RESOURCE_EXHAUSTED [default: no limit].
    #[arg(long, env = "MP_RATE_LIMIT_PER_SEC")]
    pub mp_rate_limit_per_sec: Option<String>,
    /// Most gRPC calls in flight on one client connection; excess gets RESOURCE_EXHAUSTED at once [default: 256].
    #[arg(long, env = "GRPC_CONCURRENCY_LIMIT_PER_CONNECTION")]
    pub grpc_concurrency_limit_per_connection: Option<String>,
    /// UTC offset of the times MP sends, e.g. +08:00 [default: +08:00].
    #[arg(long, env = "MP_TIME_ZONE")]
    pub mp_time_zone: Option<String>,
    /// Seconds in-flight calls get to finish after SIGTERM [default: 8].
    #[arg(long, env = "SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<String>,
    /// Redis, e.g. redis://redis:6379: the alarm log shared by all replicas. Unset: in process (one replica).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key the gateway uses [default: mp-gateway].
    #[arg(long, env = "REDIS_KEY_PREFIX")]
    pub redis_key_prefix: Option<String>,
    /// Alarms kept for subscribers that resume [default: 100000].
    #[arg(long, env = "ALARM_RETENTION")]
    pub alarm_retention: Option<String>,
    /// A callback MP repeats within this many seconds is relayed once [default: 600].
    #[arg(long, env = "ALARM_DEDUP_WINDOW_SECS")]
    pub alarm_dedup_window_secs: Option<String>,
    /// Alarms a subscriber may fall behind before its stream ends with RESOURCE_EXHAUSTED [default: 1024].
    #[arg(long, env = "ALARM_SUBSCRIBER_BUFFER")]
    pub alarm_subscriber_buffer: Option<String>,
    /// How long a CreateOrder/TopUpOrder outcome is kept per request_id [default: 86400].
    #[arg(long, env = "IDEMPOTENCY_TTL_SECS")]
    pub idempotency_ttl_secs: Option<String>,
    /// Comma-separated bearer tokens accepted on the gRPC API; unset = no auth.
    #[arg(long, env = "GRPC_AUTH_TOKENS", hide_env_values = true)]
    pub grpc_auth_tokens: Option<String>,
    /// PEM certificate (chain) to serve gRPC over TLS.
    #[arg(long, env = "GRPC_TLS_CERT")]
    pub grpc_tls_cert: Option<String>,
    /// PEM private key for GRPC_TLS_CERT.
    #[arg(long, env = "GRPC_TLS_KEY")]
    pub grpc_tls_key: Option<String>,
    /// PEM CA certificate(s): require client certificates signed by it (mTLS).
    #[arg(long, env = "GRPC_TLS_CLIENT_CA")]
    pub grpc_tls_client_ca: Option<String>,
    /// Seconds a product list stays fresh [default: 300].
    #[arg(long, env = "PRODUCT_CACHE_TTL_SECS")]
    pub product_cache_ttl_secs: Option<String>,
    /// Seconds past its freshness a product list may still be served while it
    /// is refreshed (or while MP fails); never after that [default: 3600].
    #[arg(long, env = "PRODUCT_CACHE_MAX_STALE_SECS")]
    pub product_cache_max_stale_secs: Option<String>,
    /// Log format: json or pretty [default: json].
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<String>,
    /// OTLP/gRPC collector that receives traces, e.g. http://otel-collector:4317; unset = no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
}

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
    /// Unset: plaintext gRPC.
    pub grpc_tls: Option<GrpcTls>,
    pub product_cache: ProductCacheConfig,
}

/// The PEM material for serving gRPC over TLS, read at start.
#[derive(Debug, Clone)]
pub struct GrpcTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: SecretSlice<u8>,
    /// Set: clients must present a certificate signed by this CA.
    pub client_ca_pem: Option<Vec<u8>>,
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
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
    pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(3600);
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
    /// May hold a password, hence secret.
    pub url: SecretString,
    pub key_prefix: String,
}

impl RedisConfig {
    pub fn client(&self) -> Result<redis::Client, redis::RedisError> {
        redis::Client::open(self.url.expose_secret())
    }

    /// The replica's shared Redis connection. Lazy: Redis may be down at start.
    /// Short timeouts, so a dead Redis fails calls fast instead of hanging them.
    pub fn connection_manager(&self) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
        const TIMEOUT: Duration = Duration::from_millis(500);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        redis::aio::ConnectionManager::new_lazy_with_config(self.client()?, config)
    }
}

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

fn error(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.into(),
    }
}

/// Parses an optional setting with `FromStr`, naming the variable on failure.
fn parse_or<T: FromStr>(
    variable: &'static str,
    raw: Option<&str>,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| error(variable, format!("cannot parse {raw:?}: {e}"))),
    }
}

/// `parse_or` for counts and durations where 0 would disable the thing.
fn parse_positive<T: FromStr + PartialEq + Default>(
    variable: &'static str,
    raw: Option<&str>,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let value = parse_or(variable, raw, default)?;
    if value == T::default() {
        return Err(error(variable, "must be greater than 0"));
    }
    Ok(value)
}

/// An absolute http(s) URL with a host.
fn http_url(variable: &'static str, raw: &str, example: &str) -> Result<Url, ConfigError> {
    Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| {
            error(
                variable,
                format!("{raw:?} is not an absolute http(s) URL{example}"),
            )
        })
}

fn non_empty(raw: Option<&String>) -> Option<&str> {
    raw.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let upstream = if s.sandbox {
            Upstream::Sandbox
        } else {
            let base = non_empty(s.mp_base_url.as_ref())
                .ok_or_else(|| error("MP_BASE_URL", "is required unless MP_SANDBOX is set"))?;
            let base_url = http_url("MP_BASE_URL", base, "")?;
            let access_key = non_empty(s.mp_access_key.as_ref())
                .ok_or_else(|| error("MP_ACCESS_KEY", "is required unless MP_SANDBOX is set"))?;
            let secret_key = non_empty(s.mp_secret_key.as_ref())
                .ok_or_else(|| error("MP_SECRET_KEY", "is required unless MP_SANDBOX is set"))?;
            Upstream::Mp {
                base_url,
                access_key: access_key.to_owned(),
                secret_key: SecretString::from(secret_key),
            }
        };
        let public_callback_url = non_empty(s.public_callback_url.as_ref())
            .map(|raw| {
                CallbackUrl::parse(raw).map_err(|v| error("PUBLIC_CALLBACK_URL", v.description))
            })
            .transpose()?;
        let redis = non_empty(s.redis_url.as_ref())
            .map(|url| {
                let config = RedisConfig {
                    url: SecretString::from(url),
                    key_prefix: non_empty(s.redis_key_prefix.as_ref())
                        .unwrap_or("mp-gateway")
                        .to_owned(),
                };
                // Only the scheme and shape are checked here: Redis may well be down at start.
                config
                    .client()
                    .map(|_| config)
                    .map_err(|e| error("REDIS_URL", format!("is not a Redis URL: {e}")))
            })
            .transpose()?;
        let alarm_bus = BusConfig {
            retention: parse_positive("ALARM_RETENTION", s.alarm_retention.as_deref(), 100_000)?,
            dedup_window: Duration::from_secs(parse_or(
                "ALARM_DEDUP_WINDOW_SECS",
                s.alarm_dedup_window_secs.as_deref(),
                600,
            )?),
            subscriber_buffer: parse_positive(
                "ALARM_SUBSCRIBER_BUFFER",
                s.alarm_subscriber_buffer.as_deref(),
                1024,
            )?,
        };
        let idempotency_ttl = Duration::from_secs(parse_positive(
            "IDEMPOTENCY_TTL_SECS",
            s.idempotency_ttl_secs.as_deref(),
            86_400,
        )?);
        let mp_timeout_ms: u64 =
            parse_positive("MP_TIMEOUT_MS", s.mp_timeout_ms.as_deref(), 10_000)?;
        let grpc_concurrency_limit_per_connection: usize = parse_positive(
            "GRPC_CONCURRENCY_LIMIT_PER_CONNECTION",
            s.grpc_concurrency_limit_per_connection.as_deref(),
            256,
        )?;
        Ok(Self {
            upstream,
            grpc_addr: parse_or(
                "GRPC_ADDR",
                s.grpc_addr.as_deref(),
                ([0, 0, 0, 0], 50051).into(),
            )?,
            http_addr: parse_or(
                "HTTP_ADDR",
                s.http_addr.as_deref(),
                ([0, 0, 0, 0], 8080).into(),
            )?,
            callback_token: non_empty(s.callback_token.as_ref()).map(SecretString::from),
            public_callback_url,
            mp_timeout: Duration::from_millis(mp_timeout_ms),
            mp_limits: parse_mp_limits(s)?,
            mp_time_zone: parse_time_zone(s.mp_time_zone.as_deref())?,
            grpc_concurrency_limit_per_connection,
            shutdown_grace: Duration::from_secs(parse_or(
                "SHUTDOWN_GRACE_SECS",
                s.shutdown_grace_secs.as_deref(),
                8,
            )?),
            log_format: match non_empty(s.log_format.as_ref()) {
                None | Some("json") => LogFormat::Json,
                Some("pretty") => LogFormat::Pretty,
                Some(other) => {
                    return Err(error(
                        "LOG_FORMAT",
                        format!("must be json or pretty, got {other:?}"),
                    ));
                }
            },
            otlp_endpoint: parse_otlp_endpoint(s.otel_exporter_otlp_endpoint.as_deref())?,
            redis,
            alarm_bus,
            idempotency_ttl,
            grpc_auth_tokens: parse_tokens(s.grpc_auth_tokens.as_deref())?,
            grpc_tls: parse_tls(s)?,
            product_cache: product_cache_config(s)?,
        })
    }
}

fn parse_otlp_endpoint(raw: Option<&str>) -> Result<Option<Url>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    http_url(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        raw,
        ", e.g. http://otel-collector:4317",
    )
    .map(Some)
}

/// `a,b, c` → three tokens; an empty item is a typo, not a token.
fn parse_tokens(raw: Option<&str>) -> Result<Vec<SecretString>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .map(|token| {
            if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(error(
                    "GRPC_AUTH_TOKENS",
                    "has an empty token or one with spaces",
                ))
            } else {
                Ok(SecretString::from(token))
            }
        })
        .collect()
}

fn read_pem(variable: &'static str, path: &str) -> Result<Vec<u8>, ConfigError> {
    let pem =
        std::fs::read(path).map_err(|e| error(variable, format!("cannot read {path:?}: {e}")))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(error(variable, format!("{path:?} is not a PEM file")));
    }
    Ok(pem)
}

fn parse_tls(s: &Settings) -> Result<Option<GrpcTls>, ConfigError> {
    let cert = non_empty(s.grpc_tls_cert.as_ref());
    let key = non_empty(s.grpc_tls_key.as_ref());
    let client_ca = non_empty(s.grpc_tls_client_ca.as_ref());
    match (cert, key) {
        (None, None) if client_ca.is_some() => Err(error(
            "GRPC_TLS_CLIENT_CA",
            "needs GRPC_TLS_CERT and GRPC_TLS_KEY (mTLS is TLS first)",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(error("GRPC_TLS_KEY", "is required with GRPC_TLS_CERT")),
        (None, Some(_)) => Err(error("GRPC_TLS_CERT", "is required with GRPC_TLS_KEY")),
        (Some(cert), Some(key)) => Ok(Some(GrpcTls {
            cert_pem: read_pem("GRPC_TLS_CERT", cert)?,
            key_pem: read_pem("GRPC_TLS_KEY", key)?.into(),
            client_ca_pem: client_ca
                .map(|ca| read_pem("GRPC_TLS_CLIENT_CA", ca))
                .transpose()?,
        })),
    }
}

fn product_cache_config(s: &Settings) -> Result<ProductCacheConfig, ConfigError> {
    let ttl_secs: u64 = parse_positive(
        "PRODUCT_CACHE_TTL_SECS",
        s.product_cache_ttl_secs.as_deref(),
        ProductCacheConfig::DEFAULT_TTL.as_secs(),
    )?;
    let max_stale_secs: u64 = parse_or(
        "PRODUCT_CACHE_MAX_STALE_SECS",
        s.product_cache_max_stale_secs.as_deref(),
        ProductCacheConfig::DEFAULT_MAX_STALE.as_secs(),
    )?;
    Ok(ProductCacheConfig {
        ttl: Duration::from_secs(ttl_secs),
        max_stale: Duration::from_secs(max_stale_secs),
    })
}

fn parse_mp_limits(s: &Settings) -> Result<MpLimits, ConfigError> {
    let max_concurrency: usize =
        parse_positive("MP_MAX_CONCURRENCY", s.mp_max_concurrency.as_deref(), 32)?;
    let rate_limit_per_sec = non_empty(s.mp_rate_limit_per_sec.as_ref())
        .map(|raw| {
            let rate: u32 = parse_or("MP_RATE_LIMIT_PER_SEC", Some(raw), 0)?;
            NonZeroU32::new(rate).ok_or_else(|| {
                error(
                    "MP_RATE_LIMIT_PER_SEC",
                    "must be greater than 0 (leave it unset for no limit)",
                )
            })
        })
        .transpose()?;
    Ok(MpLimits {
        max_concurrency,
        rate_limit_per_sec,
    })
}

/// `+08:00`, `-05:30`, `Z` or `UTC`. MP's document gives no zone; LinksField
/// runs MP from UTC+8, hence the default.
fn parse_time_zone(raw: Option<&str>) -> Result<FixedOffset, ConfigError> {
    let default = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some("Z" | "UTC") => Ok(FixedOffset::east_opt(0).expect("UTC is a valid offset")),
        Some(raw) => raw.parse().map_err(|_| {
            error(
                "MP_TIME_ZONE",
                format!("{raw:?} is not a UTC offset like +08:00"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        let mut argv = vec!["mp-gateway"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().settings
    }

    const MP: &[&str] = &[
        "--mp-base-url",
        "https://lk-api-v2.linksfield.net",
        "--mp-access-key",
        "SG00000010",
        "--mp-secret-key",
        "s3cret",
    ];

    #[test]
    fn sandbox_needs_no_mp_settings_and_gets_the_defaults() {
        let config = Config::from_settings(&settings(&["--sandbox"])).unwrap();
        assert!(matches!(config.upstream, Upstream::Sandbox));
        assert_eq!(config.grpc_addr, "0.0.0.0:50051".parse().unwrap());
        assert_eq!(config.http_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.mp_timeout, Duration::from_secs(10));
        assert_eq!(config.mp_time_zone.local_minus_utc(), 8 * 3600);
        assert_eq!(config.shutdown_grace, Duration::from_secs(8));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.product_cache.ttl, Duration::from_secs(300));
        assert_eq!(config.product_cache.max_stale, Duration::from_secs(3600));
        assert_eq!(config.mp_limits, MpLimits::default());
        assert_eq!(config.mp_limits.max_concurrency, 32);
        assert_eq!(config.mp_limits.rate_limit_per_sec, None);
        assert_eq!(config.grpc_concurrency_limit_per_connection, 256);
        assert_eq!(config.otlp_endpoint, None);
    }

    #[test]
    fn the_otlp_endpoint_is_read() {
        let config = Config::from_settings(&settings(&[
            "--sandbox",
            "--otel-exporter-otlp-endpoint",
            "http://otel-collector:4317",
        ]))
        .unwrap();
        assert_eq!(
            config.otlp_endpoint.map(String::from).as_deref(),
            Some("http://otel-collector:4317/")
        );
    }

    #[test]
    fn product_cache_settings_are_read() {
        let config = Config::from_settings(&settings(&[
            "--sandbox",
            "--product-cache-ttl-secs",
            "60",
            "--product-cache-max-stale-secs",
            "0",
        ]))
        .unwrap();
        assert_eq!(config.product_cache.ttl, Duration::from_secs(60));
        assert_eq!(config.product_cache.max_stale, Duration::ZERO);
    }

    #[test]
    fn limits_are_read_from_their_variables() {
        let mut args = MP.to_vec();
        args.extend_from_slice(&[
            "--mp-max-concurrency",
            "4",
            "--mp-rate-limit-per-sec",
            "20",
            "--grpc-concurrency-limit-per-connection",
            "64",
        ]);
        let config = Config::from_settings(&settings(&args)).unwrap();
        assert_eq!(config.mp_limits.max_concurrency, 4);
        assert_eq!(config.mp_limits.rate_limit_per_sec, NonZeroU32::new(20));
        assert_eq!(config.grpc_concurrency_limit_per_connection, 64);
    }

    #[test]
    fn a_missing_mp_setting_is_named() {
        let err = Config::from_settings(&settings(&[])).unwrap_err();
        assert_eq!(err.variable, "MP_BASE_URL");
        let err = Config::from_settings(&settings(&MP[..4])).unwrap_err();
        assert_eq!(err.variable, "MP_SECRET_KEY");
    }

    #[test]
    fn malformed_values_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--grpc-addr", "localhost"], "GRPC_ADDR"),
            (&["--http-addr", "1.2.3.4:99999"], "HTTP_ADDR"),
            (&["--mp-timeout-ms", "soon"], "MP_TIMEOUT_MS"),
            (&["--mp-timeout-ms", "0"], "MP_TIMEOUT_MS"),
            (&["--mp-time-zone", "Asia/Shanghai"], "MP_TIME_ZONE"),
            (&["--mp-max-concurrency", "0"], "MP_MAX_CONCURRENCY"),
            (&["--mp-max-concurrency", "many"], "MP_MAX_CONCURRENCY"),
            (&["--mp-max-concurrency=-1"], "MP_MAX_CONCURRENCY"),
            (&["--mp-rate-limit-per-sec", "0"], "MP_RATE_LIMIT_PER_SEC"),
            (&["--mp-rate-limit-per-sec", "2.5"], "MP_RATE_LIMIT_PER_SEC"),
            (
                &["--mp-rate-limit-per-sec", "fast"],
                "MP_RATE_LIMIT_PER_SEC",
            ),
            (
                &["--grpc-concurrency-limit-per-connection", "0"],
                "GRPC_CONCURRENCY_LIMIT_PER_CONNECTION",
            ),
            (
                &["--grpc-concurrency-limit-per-connection", "lots"],
                "GRPC_CONCURRENCY_LIMIT_PER_CONNECTION",
            ),
            (&["--log-format", "xml"], "LOG_FORMAT"),
            (
                &["--public-callback-url", "/relative"],
                "PUBLIC_CALLBACK_URL",
            ),
            (&["--shutdown-grace-secs=-1"], "SHUTDOWN_GRACE_SECS"),
            (&["--redis-url", "localhost:6379"], "REDIS_URL"),
            (&["--redis-url", "redis://"], "REDIS_URL"),
            (
                &["--product-cache-ttl-secs", "5m"],
                "PRODUCT_CACHE_TTL_SECS",
            ),
            (&["--product-cache-ttl-secs", "0"], "PRODUCT_CACHE_TTL_SECS"),
            (
                &["--product-cache-max-stale-secs=-1"],
                "PRODUCT_CACHE_MAX_STALE_SECS",
            ),
            (&["--alarm-retention", "0"], "ALARM_RETENTION"),
            (
                &["--alarm-dedup-window-secs", "ten"],
                "ALARM_DEDUP_WINDOW_SECS",
            ),
            (
                &["--alarm-subscriber-buffer", "0"],
                "ALARM_SUBSCRIBER_BUFFER",
            ),
            (
                &["--otel-exporter-otlp-endpoint", "otel-collector:4317"],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[
                    "--otel-exporter-otlp-endpoint",
                    "grpc://otel-collector:4317",
                ],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
        ];
        for (args, variable) in cases {
            let mut all = MP.to_vec();
            all.extend_from_slice(args);
            let err = Config::from_settings(&settings(&all)).unwrap_err();
            assert_eq!(err.variable, *variable, "{args:?}");
        }
        let mut bad_url = vec!["--mp-base-url", "lk-api-v2.linksfield.net"];
        bad_url.extend_from_slice(&MP[2..]);
        assert_eq!(
            Config::from_settings(&settings(&bad_url))
                .unwrap_err()
                .variable,
            "MP_BASE_URL"
        );
    }

    #[test]
    fn the_secret_key_and_redis_password_never_print() {
        let mut args = MP.to_vec();
        args.extend_from_slice(&["--redis-url", "redis://:hunter2@redis:6379"]);
        let config = Config::from_settings(&settings(&args)).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"));
        assert!(!printed.contains("hunter2"));
        assert_eq!(config.redis.unwrap().key_prefix, "mp-gateway");
    }
}
