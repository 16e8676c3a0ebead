//! What the api tests share, by concern: the gateway under test and its
//! builder, orders, Redis, child processes, `/metrics`, MP callbacks.

mod callbacks;
mod canned_mp;
mod gateway;
mod grpc;
mod metrics;
mod mp_double;
mod orders;
mod processes;
mod products;
mod redis;
mod redis_topology;

use std::net::SocketAddr;
use std::time::Duration;

pub use callbacks::{callback_body, post_callback};
pub use canned_mp::canned_mp;
pub use gateway::{
    ACCESS_KEY, SECRET_KEY, TestGateway, config_for, gateway, gateway_with_sandbox, start_sandbox,
    start_sandbox_with_traffic,
};
pub use grpc::{
    error_reason, list_subscriptions, padded_callback_body, subscriber_that_never_reads,
    violated_fields, with_timeout, with_token,
};
pub use metrics::{counter, metric, metrics_page};
pub use mp_double::{MpDouble, Reply};
pub use orders::{active_order, new_order, order};
pub use processes::{
    free_port, gateway_binary, loopback, sandbox_binary, sigterm_and_wait, wait_until_ready,
};
pub use products::{get_product, list_products, listed_ids};
pub use redis::{
    OwnRedis, SHARED_REDIS, redis_config, redis_connection, redis_get, redis_xlen, shared_redis,
    unique_prefix, unreachable_redis_url,
};
pub use redis_topology::{ClusterTopology, DOWN_AFTER, SentinelTopology};

/// A plain-HTTP client; reqwest needs the process's rustls provider first.
pub fn http_client() -> reqwest::Client {
    mp_gateway::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// A loopback port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// Polls `condition` every 20 ms until it holds; panics after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
