//! The gateway's behaviour, one module per capability, in one test binary.
//! Each test starts what it needs (a gateway on port 0, a sandbox MP, the
//! binary) through `support`; nextest runs every test in a process of its
//! own, which the process-wide metrics recorder and tracing subscriber need.

mod support;

mod alarm_relay;
mod alarm_service;
mod auth_tls;
mod connection_limits;
mod grpcurl;
mod idempotency;
mod lifecycle;
mod load_shedding;
mod logs;
mod metrics;
mod order_service;
mod otlp_export;
mod product_cache;
mod product_service;
mod properties;
mod python_client;
mod redis_cluster;
mod redis_sentinel;
mod sandbox;
mod shared_subscriptions;
mod trace_context;
mod traffic_service;
mod upstream_failures;
mod upstream_limits;
