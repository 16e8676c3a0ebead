//! The configuration contract's checks.

use std::num::NonZeroU32;
use std::time::Duration;

use clap::Parser;

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
fn settings_left_unset_in_code_get_the_command_line_defaults() {
    let from_code = Config::from_settings(&Settings {
        sandbox: true,
        ..Settings::default()
    })
    .unwrap();
    let from_cli = Config::from_settings(&settings(&["--sandbox"])).unwrap();
    assert_eq!(format!("{from_code:?}"), format!("{from_cli:?}"));
}

#[test]
fn tls_files_are_named_not_read() {
    let config = Config::from_settings(&settings(&[
        "--sandbox",
        "--grpc-tls-cert",
        "/no/such/cert.pem",
        "--grpc-tls-key",
        "/no/such/key.pem",
    ]))
    .unwrap();
    let files = config.grpc_tls.unwrap();
    assert_eq!(files.cert, std::path::Path::new("/no/such/cert.pem"));
    assert_eq!(files.client_ca, None);
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
            &["--alarm-max-delivery-attempts", "0"],
            "ALARM_MAX_DELIVERY_ATTEMPTS",
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

#[test]
fn a_secret_set_but_empty_is_an_error_not_a_switch() {
    for (flag, variable) in [
        ("--grpc-auth-tokens=", "GRPC_AUTH_TOKENS"),
        ("--grpc-auth-tokens= ", "GRPC_AUTH_TOKENS"),
        ("--callback-token=", "CALLBACK_TOKEN"),
    ] {
        let err = Config::from_settings(&settings(&["--sandbox", flag])).unwrap_err();
        assert_eq!(err.variable, variable, "{flag}");
        assert!(err.reason.contains("set but empty"), "{err}");
    }
}

#[test]
fn grpc_auth_off_is_explicit_and_excludes_tokens() {
    let unset = Config::from_settings(&settings(&["--sandbox"])).unwrap();
    assert!(unset.grpc_auth_tokens.is_empty() && !unset.grpc_auth_off);
    let off = Config::from_settings(&settings(&["--sandbox", "--grpc-auth", "off"])).unwrap();
    assert!(off.grpc_auth_tokens.is_empty() && off.grpc_auth_off);
    let on = Config::from_settings(&settings(&["--sandbox", "--grpc-auth-tokens", "a,b"])).unwrap();
    assert_eq!((on.grpc_auth_tokens.len(), on.grpc_auth_off), (2, false));
    for args in [
        &["--grpc-auth", "off", "--grpc-auth-tokens", "a"][..],
        &["--grpc-auth", "maybe"][..],
    ] {
        let mut all = vec!["--sandbox"];
        all.extend_from_slice(args);
        let err = Config::from_settings(&settings(&all)).unwrap_err();
        assert_eq!(err.variable, "GRPC_AUTH", "{args:?}");
    }
}

#[test]
fn the_metrics_address_is_read() {
    let config = Config::from_settings(&settings(&["--sandbox"])).unwrap();
    assert_eq!(config.metrics_addr, None);
    let config = Config::from_settings(&settings(&[
        "--sandbox",
        "--metrics-addr",
        "127.0.0.1:9090",
    ]))
    .unwrap();
    assert_eq!(config.metrics_addr, Some("127.0.0.1:9090".parse().unwrap()));
    let err = Config::from_settings(&settings(&["--sandbox", "--metrics-addr", "metrics:9090"]))
        .unwrap_err();
    assert_eq!(err.variable, "METRICS_ADDR");
}

#[test]
fn redis_is_named_by_a_url_sentinels_or_cluster_nodes() {
    let config = Config::from_settings(&settings(&["--sandbox"])).unwrap();
    assert!(config.redis.is_none());
    let sentinel = Config::from_settings(&settings(&[
        "--sandbox",
        "--redis-sentinels",
        "s-0:26379, s-1:26379",
        "--redis-sentinel-master",
        "mymaster",
        "--redis-sentinel-password",
        "sentinel-secret",
        "--redis-password",
        "data-secret",
    ]))
    .unwrap()
    .redis
    .unwrap();
    let printed = format!("{sentinel:?}");
    assert!(!printed.contains("sentinel-secret") && !printed.contains("data-secret"));
    match sentinel.topology {
        RedisTopology::Sentinel {
            sentinels, master, ..
        } => {
            assert_eq!(sentinels, ["s-0:26379", "s-1:26379"]);
            assert_eq!(master, "mymaster");
        }
        other => panic!("expected sentinels, got {other:?}"),
    }
    let cluster = Config::from_settings(&settings(&[
        "--sandbox",
        "--redis-cluster-nodes",
        "10.0.0.1:6379,10.0.0.2:6379",
    ]))
    .unwrap()
    .redis
    .unwrap();
    assert!(
        matches!(&cluster.topology, RedisTopology::Cluster { nodes, password: None } if nodes.len() == 2)
    );
    assert_eq!(cluster.replica_ack, None);
}

#[test]
fn more_than_one_way_to_name_redis_is_an_error_naming_them() {
    for args in [
        &[
            "--redis-url",
            "redis://r:6379",
            "--redis-sentinels",
            "s:26379",
            "--redis-sentinel-master",
            "m",
        ][..],
        &[
            "--redis-url",
            "redis://r:6379",
            "--redis-cluster-nodes",
            "c:6379",
        ][..],
        &[
            "--redis-sentinels",
            "s:26379",
            "--redis-sentinel-master",
            "m",
            "--redis-cluster-nodes",
            "c:6379",
        ][..],
    ] {
        let mut all = vec!["--sandbox"];
        all.extend_from_slice(args);
        let err = Config::from_settings(&settings(&all)).unwrap_err();
        let line = err.to_string();
        assert!(
            line.contains("REDIS_URL")
                && line.contains("REDIS_SENTINELS")
                && line.contains("REDIS_CLUSTER_NODES")
                && !line.contains('\n'),
            "{line}"
        );
    }
}

#[test]
fn bad_sentinel_cluster_and_replica_ack_settings_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["--redis-sentinels", "s:26379"], "REDIS_SENTINEL_MASTER"),
        (
            &["--redis-sentinels", "s", "--redis-sentinel-master", "m"],
            "REDIS_SENTINELS",
        ),
        (
            &[
                "--redis-sentinels",
                "s:26379,",
                "--redis-sentinel-master",
                "m",
            ],
            "REDIS_SENTINELS",
        ),
        (&["--redis-cluster-nodes", "c:port"], "REDIS_CLUSTER_NODES"),
        (&["--redis-cluster-nodes", ":6379"], "REDIS_CLUSTER_NODES"),
        (
            &["--redis-url", "redis://r:6379", "--redis-password", "p"],
            "REDIS_PASSWORD",
        ),
        (
            &[
                "--redis-url",
                "redis://r:6379",
                "--redis-min-replicas-ack=-1",
            ],
            "REDIS_MIN_REPLICAS_ACK",
        ),
        (
            &[
                "--redis-url",
                "redis://r:6379",
                "--redis-replica-ack-timeout-ms",
                "0",
            ],
            "REDIS_REPLICA_ACK_TIMEOUT_MS",
        ),
    ];
    for (args, variable) in cases {
        let mut all = vec!["--sandbox"];
        all.extend_from_slice(args);
        let err = Config::from_settings(&settings(&all)).unwrap_err();
        assert_eq!(err.variable, *variable, "{args:?}");
    }
}

#[test]
fn replica_acknowledgement_is_off_by_default_and_has_a_default_timeout() {
    let off = Config::from_settings(&settings(&["--sandbox", "--redis-url", "redis://r:6379"]))
        .unwrap()
        .redis
        .unwrap();
    assert_eq!(off.replica_ack, None);
    let on = Config::from_settings(&settings(&[
        "--sandbox",
        "--redis-url",
        "redis://r:6379",
        "--redis-min-replicas-ack",
        "1",
    ]))
    .unwrap()
    .redis
    .unwrap();
    assert_eq!(
        on.replica_ack,
        Some(ReplicaAck {
            replicas: 1,
            timeout: Duration::from_millis(1000)
        })
    );
}
