//! The configuration contract (DESIGN.md section 4): each setting is an env
//! variable with a matching `--flag`. A missing or malformed value is a
//! [`ConfigError`] naming the variable; `main` prints it and exits 64.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use chrono::FixedOffset;
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use url::Url;

use crate::domain::CallbackUrl;

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
    /// UTC offset of the times MP sends, e.g. +08:00 [default: +08:00].
    #[arg(long, env = "MP_TIME_ZONE")]
    pub mp_time_zone: Option<String>,
    /// Seconds in-flight calls get to finish after SIGTERM [default: 8].
    #[arg(long, env = "SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<String>,
    /// Log format: json or pretty [default: json].
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Redis, e.g. redis://127.0.0.1:6379 [default: unset = in-process cache only].
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Seconds a product list stays fresh [default: 300].
    #[arg(long, env = "PRODUCT_CACHE_TTL_SECS")]
    pub product_cache_ttl_secs: Option<String>,
    /// Seconds past its freshness a product list may still be served while it
    /// is refreshed (or while MP fails) [default: 3600].
    #[arg(long, env = "PRODUCT_CACHE_MAX_STALE_SECS")]
    pub product_cache_max_stale_secs: Option<String>,
    /// Prefix of every Redis key, so several deployments can share one Redis [default: mp-gateway].
    #[arg(long, env = "CACHE_KEY_PREFIX")]
    pub cache_key_prefix: Option<String>,
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
    pub mp_time_zone: FixedOffset,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// Redis (a secret: its URL may hold a password); `None` keeps everything in process.
    pub redis_url: Option<SecretString>,
    pub product_cache: ProductCacheConfig,
}

/// How long product lists are kept and where in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductCacheConfig {
    /// How long a fetched list is fresh (`PRODUCT_CACHE_TTL_SECS`).
    pub ttl: Duration,
    /// How long past `ttl` a list may still be served, stale, while a refresh
    /// runs or MP fails (`PRODUCT_CACHE_MAX_STALE_SECS`); never after that.
    pub max_stale: Duration,
    /// Prefix of every Redis key (`CACHE_KEY_PREFIX`).
    pub key_prefix: String,
}

impl ProductCacheConfig {
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
    pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(3600);
    pub const DEFAULT_KEY_PREFIX: &str = "mp-gateway";
}

impl Default for ProductCacheConfig {
    fn default() -> Self {
        Self {
            ttl: Self::DEFAULT_TTL,
            max_stale: Self::DEFAULT_MAX_STALE,
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
        }
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
            let base_url = Url::parse(base)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .ok_or_else(|| {
                    error(
                        "MP_BASE_URL",
                        format!("{base:?} is not an absolute http(s) URL"),
                    )
                })?;
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
        let mp_timeout_ms: u64 = parse_or("MP_TIMEOUT_MS", s.mp_timeout_ms.as_deref(), 10_000)?;
        if mp_timeout_ms == 0 {
            return Err(error("MP_TIMEOUT_MS", "must be greater than 0"));
        }
        let redis_url = non_empty(s.redis_url.as_ref())
            .map(parse_redis_url)
            .transpose()?;
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
            mp_time_zone: parse_time_zone(s.mp_time_zone.as_deref())?,
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
            redis_url,
            product_cache: product_cache_config(s)?,
        })
    }
}

/// A URL the redis crate can connect with (`redis://`, `rediss://`, `unix://`);
/// kept secret because it may carry a password.
fn parse_redis_url(raw: &str) -> Result<SecretString, ConfigError> {
    match redis::Client::open(raw) {
        Ok(_) => Ok(SecretString::from(raw)),
        // The redis crate's message can quote the URL, password included: say only what kind.
        Err(e) => Err(error(
            "REDIS_URL",
            format!("is not a Redis URL like redis://host:6379 ({:?})", e.kind()),
        )),
    }
}

fn product_cache_config(s: &Settings) -> Result<ProductCacheConfig, ConfigError> {
    let ttl_secs: u64 = parse_or(
        "PRODUCT_CACHE_TTL_SECS",
        s.product_cache_ttl_secs.as_deref(),
        ProductCacheConfig::DEFAULT_TTL.as_secs(),
    )?;
    if ttl_secs == 0 {
        return Err(error("PRODUCT_CACHE_TTL_SECS", "must be greater than 0"));
    }
    let max_stale_secs: u64 = parse_or(
        "PRODUCT_CACHE_MAX_STALE_SECS",
        s.product_cache_max_stale_secs.as_deref(),
        ProductCacheConfig::DEFAULT_MAX_STALE.as_secs(),
    )?;
    let key_prefix =
        non_empty(s.cache_key_prefix.as_ref()).unwrap_or(ProductCacheConfig::DEFAULT_KEY_PREFIX);
    if key_prefix
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(error(
            "CACHE_KEY_PREFIX",
            format!("{key_prefix:?} must not contain spaces or control characters"),
        ));
    }
    Ok(ProductCacheConfig {
        ttl: Duration::from_secs(ttl_secs),
        max_stale: Duration::from_secs(max_stale_secs),
        key_prefix: key_prefix.to_owned(),
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
        assert!(config.redis_url.is_none());
        assert_eq!(config.product_cache, ProductCacheConfig::default());
        assert_eq!(config.product_cache.ttl, Duration::from_secs(300));
        assert_eq!(config.product_cache.max_stale, Duration::from_secs(3600));
    }

    #[test]
    fn cache_settings_are_read() {
        let config = Config::from_settings(&settings(&[
            "--sandbox",
            "--redis-url",
            "redis://127.0.0.1:6380/2",
            "--product-cache-ttl-secs",
            "60",
            "--product-cache-max-stale-secs",
            "0",
            "--cache-key-prefix",
            "staging",
        ]))
        .unwrap();
        assert!(config.redis_url.is_some());
        assert_eq!(config.product_cache.ttl, Duration::from_secs(60));
        assert_eq!(config.product_cache.max_stale, Duration::ZERO);
        assert_eq!(config.product_cache.key_prefix, "staging");
    }

    #[test]
    fn the_redis_password_never_prints() {
        let config = Config::from_settings(&settings(&[
            "--sandbox",
            "--redis-url",
            "redis://:hunter2@127.0.0.1:6379",
        ]))
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = Config::from_settings(&settings(&[
            "--sandbox",
            "--redis-url",
            "http://:hunter2@127.0.0.1:6379",
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "REDIS_URL");
        assert!(!err.to_string().contains("hunter2"));
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
            (&["--cache-key-prefix", "a b"], "CACHE_KEY_PREFIX"),
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
    fn the_secret_key_never_prints() {
        let config = Config::from_settings(&settings(MP)).unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
