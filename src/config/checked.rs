//! [`Config::from_settings`]: the raw settings checked, one short function a concern.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use chrono::FixedOffset;
use redis::IntoConnectionInfo;
use secrecy::SecretString;
use url::Url;

use super::defaults::*;
use super::parse::{error, http_url, non_empty, parse_or, parse_positive};
use super::{
    Config, ConfigError, LogFormat, ProductCacheConfig, RedisConfig, RedisTopology, ReplicaAck,
    Settings, TlsFiles, Upstream,
};
use crate::alarms::BusConfig;
use crate::domain::CallbackUrl;
use crate::listeners::ListenerLimits;
use crate::mp::MpLimits;

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            upstream: upstream(s)?,
            grpc_addr: parse_or(
                "GRPC_ADDR",
                s.grpc_addr.as_deref(),
                default_addr(DEFAULT_GRPC_ADDR),
            )?,
            http_addr: parse_or(
                "HTTP_ADDR",
                s.http_addr.as_deref(),
                default_addr(DEFAULT_HTTP_ADDR),
            )?,
            callback_token: callback_token(s.callback_token.as_deref())?,
            public_callback_url: public_callback_url(s)?,
            mp_timeout: Duration::from_millis(parse_positive(
                "MP_TIMEOUT_MS",
                s.mp_timeout_ms.as_deref(),
                DEFAULT_MP_TIMEOUT_MS,
            )?),
            mp_limits: mp_limits(s)?,
            mp_time_zone: time_zone(s.mp_time_zone.as_deref())?,
            grpc_concurrency_limit_per_connection: parse_positive(
                "GRPC_CONCURRENCY_LIMIT_PER_CONNECTION",
                s.grpc_concurrency_limit_per_connection.as_deref(),
                DEFAULT_GRPC_CONCURRENCY_LIMIT_PER_CONNECTION,
            )?,
            shutdown_grace: Duration::from_secs(parse_or(
                "SHUTDOWN_GRACE_SECS",
                s.shutdown_grace_secs.as_deref(),
                DEFAULT_SHUTDOWN_GRACE_SECS,
            )?),
            log_format: log_format(s.log_format.as_ref())?,
            otlp_endpoint: otlp_endpoint(s.otel_exporter_otlp_endpoint.as_deref())?,
            redis: redis(s)?,
            alarm_bus: alarm_bus(s)?,
            idempotency_ttl: Duration::from_secs(parse_positive(
                "IDEMPOTENCY_TTL_SECS",
                s.idempotency_ttl_secs.as_deref(),
                DEFAULT_IDEMPOTENCY_TTL_SECS,
            )?),
            grpc_auth_tokens: tokens(s.grpc_auth_tokens.as_deref())?,
            grpc_auth_off: grpc_auth_off(s)?,
            metrics_addr: metrics_addr(s.metrics_addr.as_ref())?,
            access_log: on_off("ACCESS_LOG", s.access_log.as_ref(), DEFAULT_ACCESS_LOG)?,
            listener_limits: ListenerLimits {
                http_max_connections: parse_positive(
                    "HTTP_MAX_CONNECTIONS",
                    s.http_max_connections.as_deref(),
                    DEFAULT_HTTP_MAX_CONNECTIONS,
                )?,
                http_header_read_timeout: HTTP_HEADER_READ_TIMEOUT,
                grpc_preface_timeout: GRPC_PREFACE_TIMEOUT,
            },
            grpc_tls: tls_files(s)?,
            product_cache: product_cache(s)?,
        })
    }
}

fn default_addr(addr: &str) -> std::net::SocketAddr {
    addr.parse()
        .expect("the default listen addresses are socket addresses")
}

fn upstream(s: &Settings) -> Result<Upstream, ConfigError> {
    if s.sandbox {
        return Ok(Upstream::Sandbox);
    }
    let base_url = http_url(
        "MP_BASE_URL",
        required("MP_BASE_URL", s.mp_base_url.as_ref())?,
        "",
    )?;
    let access_key = required("MP_ACCESS_KEY", s.mp_access_key.as_ref())?;
    let secret_key = required("MP_SECRET_KEY", s.mp_secret_key.as_ref())?;
    Ok(Upstream::Mp {
        base_url,
        access_key: access_key.to_owned(),
        secret_key: SecretString::from(secret_key),
    })
}

fn required<'a>(variable: &'static str, raw: Option<&'a String>) -> Result<&'a str, ConfigError> {
    non_empty(raw).ok_or_else(|| error(variable, "is required unless MP_SANDBOX is set"))
}

fn public_callback_url(s: &Settings) -> Result<Option<CallbackUrl>, ConfigError> {
    non_empty(s.public_callback_url.as_ref())
        .map(|raw| CallbackUrl::parse(raw).map_err(|v| error("PUBLIC_CALLBACK_URL", v.description)))
        .transpose()
}

/// Only the shape of the addresses is checked: Redis may well be down at start.
fn redis(s: &Settings) -> Result<Option<RedisConfig>, ConfigError> {
    let Some(topology) = redis_topology(s)? else {
        return Ok(None);
    };
    Ok(Some(RedisConfig {
        topology,
        key_prefix: non_empty(s.redis_key_prefix.as_ref())
            .unwrap_or(DEFAULT_REDIS_KEY_PREFIX)
            .to_owned(),
        replica_ack: replica_ack(s)?,
    }))
}

/// Exactly one of the three ways to name Redis, or none (alarms in process).
fn redis_topology(s: &Settings) -> Result<Option<RedisTopology>, ConfigError> {
    let url = non_empty(s.redis_url.as_ref());
    let sentinels = non_empty(s.redis_sentinels.as_ref());
    let cluster = non_empty(s.redis_cluster_nodes.as_ref());
    let password = non_empty(s.redis_password.as_ref()).map(SecretString::from);
    match (url, sentinels, cluster) {
        (None, None, None) => Ok(None),
        (Some(url), None, None) => {
            url.into_connection_info()
                .map_err(|e| error("REDIS_URL", format!("is not a Redis URL: {e}")))?;
            if password.is_some() {
                return Err(error(
                    "REDIS_PASSWORD",
                    "is for REDIS_SENTINELS or REDIS_CLUSTER_NODES; with REDIS_URL put the password in the URL",
                ));
            }
            Ok(Some(RedisTopology::Url(SecretString::from(url))))
        }
        (None, Some(sentinels), None) => Ok(Some(RedisTopology::Sentinel {
            sentinels: host_ports("REDIS_SENTINELS", sentinels)?,
            master: non_empty(s.redis_sentinel_master.as_ref())
                .ok_or_else(|| {
                    error(
                        "REDIS_SENTINEL_MASTER",
                        "is required with REDIS_SENTINELS (the name the sentinels monitor the primary under)",
                    )
                })?
                .to_owned(),
            sentinel_password: non_empty(s.redis_sentinel_password.as_ref())
                .map(SecretString::from),
            password,
        })),
        (None, None, Some(nodes)) => Ok(Some(RedisTopology::Cluster {
            nodes: host_ports("REDIS_CLUSTER_NODES", nodes)?,
            password,
        })),
        _ => Err(error(
            "REDIS_URL",
            "REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES name Redis three ways: set exactly one of them",
        )),
    }
}

/// `host:port,host:port`: each item a host and a port.
fn host_ports(variable: &'static str, raw: &str) -> Result<Vec<String>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .map(|item| {
            let port = item
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            match port {
                Some((host, Ok(port))) if !host.is_empty() && port > 0 => Ok(item.to_owned()),
                _ => Err(error(
                    variable,
                    format!("{item:?} is not host:port (e.g. redis-0.redis:26379)"),
                )),
            }
        })
        .collect()
}

/// `REDIS_MIN_REPLICAS_ACK` of 0 (the default) needs no acknowledgement.
fn replica_ack(s: &Settings) -> Result<Option<ReplicaAck>, ConfigError> {
    let replicas = parse_or(
        "REDIS_MIN_REPLICAS_ACK",
        s.redis_min_replicas_ack.as_deref(),
        DEFAULT_REDIS_MIN_REPLICAS_ACK,
    )?;
    let timeout = Duration::from_millis(parse_positive(
        "REDIS_REPLICA_ACK_TIMEOUT_MS",
        s.redis_replica_ack_timeout_ms.as_deref(),
        DEFAULT_REDIS_REPLICA_ACK_TIMEOUT_MS,
    )?);
    Ok((replicas > 0).then_some(ReplicaAck { replicas, timeout }))
}

fn alarm_bus(s: &Settings) -> Result<BusConfig, ConfigError> {
    Ok(BusConfig {
        retention: parse_positive(
            "ALARM_RETENTION",
            s.alarm_retention.as_deref(),
            DEFAULT_ALARM_RETENTION,
        )?,
        dedup_window: Duration::from_secs(parse_or(
            "ALARM_DEDUP_WINDOW_SECS",
            s.alarm_dedup_window_secs.as_deref(),
            DEFAULT_ALARM_DEDUP_WINDOW_SECS,
        )?),
        subscriber_buffer: parse_positive(
            "ALARM_SUBSCRIBER_BUFFER",
            s.alarm_subscriber_buffer.as_deref(),
            DEFAULT_ALARM_SUBSCRIBER_BUFFER,
        )?,
        max_delivery_attempts: parse_positive(
            "ALARM_MAX_DELIVERY_ATTEMPTS",
            s.alarm_max_delivery_attempts.as_deref(),
            DEFAULT_ALARM_MAX_DELIVERY_ATTEMPTS,
        )?,
    })
}

fn log_format(raw: Option<&String>) -> Result<LogFormat, ConfigError> {
    match non_empty(raw).unwrap_or(DEFAULT_LOG_FORMAT) {
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        other => Err(error(
            "LOG_FORMAT",
            format!("must be json or pretty, got {other:?}"),
        )),
    }
}

fn otlp_endpoint(raw: Option<&str>) -> Result<Option<Url>, ConfigError> {
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

/// A secret that is set must hold something: an empty one would switch a
/// check off without anyone saying so.
fn set_but_empty(variable: &'static str, raw: &str) -> Result<(), ConfigError> {
    if raw.trim().is_empty() {
        return Err(error(
            variable,
            "is set but empty; give a value, or unset it to run without it",
        ));
    }
    Ok(())
}

fn callback_token(raw: Option<&str>) -> Result<Option<SecretString>, ConfigError> {
    raw.map(|token| {
        set_but_empty("CALLBACK_TOKEN", token)?;
        Ok(SecretString::from(token.trim()))
    })
    .transpose()
}

/// `a,b, c` → three tokens; an empty item is a typo, not a token.
fn tokens(raw: Option<&str>) -> Result<Vec<SecretString>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    set_but_empty("GRPC_AUTH_TOKENS", raw)?;
    let raw = raw.trim();
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

fn metrics_addr(raw: Option<&String>) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    non_empty(raw)
        .map(|raw| {
            raw.parse()
                .map_err(|e| error("METRICS_ADDR", format!("cannot parse {raw:?}: {e}")))
        })
        .transpose()
}

fn on_off(
    variable: &'static str,
    raw: Option<&String>,
    default: &str,
) -> Result<bool, ConfigError> {
    match non_empty(raw).unwrap_or(default) {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(error(variable, format!("must be on or off, got {other:?}"))),
    }
}

/// `GRPC_AUTH=off` says that no tokens is intended; with tokens it is a contradiction.
fn grpc_auth_off(s: &Settings) -> Result<bool, ConfigError> {
    match non_empty(s.grpc_auth.as_ref()).unwrap_or(DEFAULT_GRPC_AUTH) {
        "on" => Ok(false),
        "off" if s.grpc_auth_tokens.is_some() => Err(error(
            "GRPC_AUTH",
            "is off, but GRPC_AUTH_TOKENS is set: unset one of them",
        )),
        "off" => Ok(true),
        other => Err(error(
            "GRPC_AUTH",
            format!("must be on or off, got {other:?}"),
        )),
    }
}

/// Which PEM files to serve TLS with; they are read at start, not here.
fn tls_files(s: &Settings) -> Result<Option<TlsFiles>, ConfigError> {
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
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
            client_ca: client_ca.map(PathBuf::from),
        })),
    }
}

fn product_cache(s: &Settings) -> Result<ProductCacheConfig, ConfigError> {
    let ttl_secs = parse_positive(
        "PRODUCT_CACHE_TTL_SECS",
        s.product_cache_ttl_secs.as_deref(),
        DEFAULT_PRODUCT_CACHE_TTL_SECS,
    )?;
    let max_stale_secs = parse_or(
        "PRODUCT_CACHE_MAX_STALE_SECS",
        s.product_cache_max_stale_secs.as_deref(),
        DEFAULT_PRODUCT_CACHE_MAX_STALE_SECS,
    )?;
    Ok(ProductCacheConfig {
        ttl: Duration::from_secs(ttl_secs),
        max_stale: Duration::from_secs(max_stale_secs),
    })
}

fn mp_limits(s: &Settings) -> Result<MpLimits, ConfigError> {
    let max_concurrency = parse_positive(
        "MP_MAX_CONCURRENCY",
        s.mp_max_concurrency.as_deref(),
        DEFAULT_MP_MAX_CONCURRENCY,
    )?;
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

/// `+08:00`, `-05:30`, `Z` or `UTC`.
fn time_zone(raw: Option<&str>) -> Result<FixedOffset, ConfigError> {
    let raw = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_MP_TIME_ZONE);
    match raw {
        "Z" | "UTC" => Ok(FixedOffset::east_opt(0).expect("UTC is a valid offset")),
        raw => raw.parse().map_err(|_| {
            error(
                "MP_TIME_ZONE",
                format!("{raw:?} is not a UTC offset like +08:00"),
            )
        }),
    }
}
