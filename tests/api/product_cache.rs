//! The product cache (DESIGN.md sections 1 and 5): one MP call per miss,
//! shared through Redis, stale-while-revalidate, and Redis failing without
//! ListProducts failing. MP calls are counted at the sandbox; Redis is real.

use std::time::{Duration, SystemTime};

use crate::support::{
    ACCESS_KEY, OwnRedis, SHARED_REDIS, TestGateway, counter, eventually, gateway, get_product,
    list_products, listed_ids, redis_config, redis_get, start_sandbox, unique_prefix,
    unreachable_redis_url, with_timeout,
};
use futures::future::join_all;
use mp_gateway::cache::Keys;
use mp_gateway::cache::snapshot::Snapshot;
use mp_gateway::config::RedisConfig;
use mp_gateway::proto::ListProductsRequest;
use mp_gateway::sandbox::{Fault, Sandbox};
use tonic::Code;

const PRODUCT_LIST: &str = "v2/productList";

/// Calls ListProducts `n` times at once; panics unless every call returns the 3 products.
async fn list_concurrently(gateway: &TestGateway, n: usize) {
    let calls = (0..n).map(|_| {
        let mut client = gateway.products();
        async move { client.list_products(ListProductsRequest::default()).await }
    });
    for reply in join_all(calls).await {
        let products = reply.expect("ListProducts answers").into_inner().products;
        assert_eq!(products.len(), 3);
    }
}

async fn list_once(gateway: &TestGateway) -> Result<usize, tonic::Status> {
    let reply = gateway
        .products()
        .list_products(ListProductsRequest::default())
        .await?;
    Ok(reply.into_inner().products.len())
}

async fn bypass(gateway: &TestGateway) {
    let reply = gateway
        .products()
        .list_products(ListProductsRequest {
            bypass_cache: true,
            ..Default::default()
        })
        .await
        .expect("a bypassing ListProducts answers");
    assert_eq!(reply.into_inner().products.len(), 3);
}

/// The list stored in Redis at `url` under `prefix`, decoded.
async fn stored(url: &str, prefix: &str) -> Option<Snapshot> {
    let bytes = redis_get(url, &Keys::new(prefix, ACCESS_KEY).products).await?;
    Some(Snapshot::decode(&bytes).expect("the stored list decodes"))
}

/// A product list's time to live in the tests of going stale.
const SHORT_TTL: Duration = Duration::from_secs(1);

/// A gateway in front of `sandbox` with [`SHORT_TTL`] and `max_stale`,
/// holding a fresh list.
async fn warm_gateway(sandbox: &Sandbox, max_stale: Duration) -> TestGateway {
    let gateway = gateway()
        .cache_ttl(SHORT_TTL, max_stale)
        .start_on(sandbox)
        .await;
    list_concurrently(&gateway, 1).await;
    gateway
}

/// Waits until a list fetched now has gone stale.
async fn outlive_the_short_ttl() {
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(100)).await;
}

async fn wait_for_mp_calls(sandbox: &Sandbox, calls: u64) {
    eventually(
        Duration::from_secs(10),
        &format!("{calls} productList calls"),
        || async { sandbox.calls(PRODUCT_LIST) >= calls },
    )
    .await;
}

#[tokio::test]
async fn two_hundred_concurrent_calls_on_a_cold_cache_make_one_mp_call() {
    let sandbox = start_sandbox().await;
    let prefix = unique_prefix("cold-200");
    let gateway = gateway()
        .redis_at(SHARED_REDIS, &prefix)
        .start_on(&sandbox)
        .await;
    list_concurrently(&gateway, 200).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 1);
    assert!(
        stored(SHARED_REDIS, &prefix).await.is_some(),
        "the list is shared in Redis"
    );
}

#[tokio::test]
async fn without_redis_two_hundred_concurrent_calls_make_one_mp_call() {
    let sandbox = start_sandbox().await;
    let gateway = gateway().start_on(&sandbox).await;
    list_concurrently(&gateway, 200).await;
    list_concurrently(&gateway, 50).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 1);
}

#[tokio::test]
async fn a_second_gateway_on_the_same_redis_does_not_call_mp() {
    let sandbox = start_sandbox().await;
    let config = gateway()
        .redis_at(SHARED_REDIS, &unique_prefix("second"))
        .config(&sandbox.base_url());
    let first = TestGateway::start(config.clone()).await;
    list_concurrently(&first, 20).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 1);

    let second = TestGateway::start(config).await;
    list_concurrently(&second, 200).await;
    assert_eq!(
        sandbox.calls(PRODUCT_LIST),
        1,
        "the second found it in Redis"
    );
}

#[tokio::test]
async fn gateways_starting_together_on_one_redis_fetch_once() {
    gateways_starting_together_fetch_once(redis_config(SHARED_REDIS, &unique_prefix("together")))
        .await;
}

/// Two replicas on `redis`, both missing at once: the Redis lock lets one fetch.
pub(crate) async fn gateways_starting_together_fetch_once(redis: RedisConfig) {
    let sandbox = start_sandbox().await;
    // MP answering slowly keeps both replicas' misses overlapping.
    sandbox.set_fault(Some(Fault::Delay(Duration::from_millis(300))));
    let config = gateway().redis(Some(redis)).config(&sandbox.base_url());
    let first = TestGateway::start(config.clone()).await;
    let second = TestGateway::start(config).await;
    tokio::join!(
        list_concurrently(&first, 100),
        list_concurrently(&second, 100)
    );
    assert_eq!(
        sandbox.calls(PRODUCT_LIST),
        1,
        "the Redis lock let one replica fetch"
    );
}

#[tokio::test]
async fn filters_and_get_product_work_on_the_cached_list() {
    let sandbox = start_sandbox().await;
    let gateway = gateway().start_on(&sandbox).await;
    let mut client = gateway.products();
    list_concurrently(&gateway, 1).await;
    let by_goods = ListProductsRequest {
        goods_id: Some(35),
        ..Default::default()
    };
    assert_eq!(listed_ids(&mut client, by_goods).await, [5, 8]);
    let in_china = ListProductsRequest {
        cover_country: "460".into(),
        ..Default::default()
    };
    let china = list_products(&mut client, in_china).await;
    assert!(china.iter().all(|p| p.cover_country == "460"));
    let product = get_product(&mut client, 6).await.unwrap();
    assert_eq!(product.product_name, "1GB/7days");
    let missing = get_product(&mut client, 999).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(sandbox.calls(PRODUCT_LIST), 1);
}

#[tokio::test]
async fn after_the_ttl_one_background_refresh_runs() {
    let sandbox = start_sandbox().await;
    let ttl = Duration::from_secs(4);
    let gateway = gateway()
        .redis_at(SHARED_REDIS, &unique_prefix("ttl"))
        .cache_ttl(ttl, Duration::from_secs(60))
        .start_on(&sandbox)
        .await;
    list_concurrently(&gateway, 10).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 1);

    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    list_concurrently(&gateway, 100).await;
    wait_for_mp_calls(&sandbox, 2).await;
    list_concurrently(&gateway, 100).await;
    assert_eq!(
        sandbox.calls(PRODUCT_LIST),
        2,
        "one refresh for all those calls"
    );
}

#[tokio::test]
async fn a_stale_list_is_served_without_waiting_for_the_refresh() {
    let sandbox = start_sandbox().await;
    let gateway = warm_gateway(&sandbox, Duration::from_secs(60)).await;
    outlive_the_short_ttl().await;

    sandbox.set_fault(Some(Fault::Delay(Duration::from_secs(10))));
    // Waiting for the refresh would miss this deadline.
    let request = with_timeout(ListProductsRequest::default(), Duration::from_secs(3));
    let reply = gateway.products().list_products(request).await;
    assert_eq!(
        reply.expect("the stale list").into_inner().products.len(),
        3
    );
    wait_for_mp_calls(&sandbox, 2).await;
}

#[tokio::test]
async fn a_new_replica_serves_a_stale_list_from_redis_at_once_and_refreshes_it() {
    let sandbox = start_sandbox().await;
    let config = gateway()
        .redis_at(SHARED_REDIS, &unique_prefix("stale-l2"))
        .cache_ttl(SHORT_TTL, Duration::from_secs(60))
        .config(&sandbox.base_url());
    let first = TestGateway::start(config.clone()).await;
    list_concurrently(&first, 1).await;
    outlive_the_short_ttl().await;

    sandbox.set_fault(Some(Fault::Delay(Duration::from_secs(10))));
    let second = TestGateway::start(config).await;
    let request = with_timeout(ListProductsRequest::default(), Duration::from_secs(3));
    let reply = second.products().list_products(request).await;
    assert_eq!(
        reply
            .expect("the stale list from Redis")
            .into_inner()
            .products
            .len(),
        3
    );
    wait_for_mp_calls(&sandbox, 2).await;
}

#[tokio::test]
async fn mp_failing_during_a_refresh_keeps_the_last_good_list_served() {
    let sandbox = start_sandbox().await;
    let gateway = warm_gateway(&sandbox, Duration::from_secs(60)).await;
    sandbox.set_fault(Some(Fault::HttpStatus(500)));
    outlive_the_short_ttl().await;

    list_concurrently(&gateway, 20).await;
    let failures = "mp_gateway_product_cache_refresh_failures_total";
    let http = gateway.http_addr;
    eventually(
        Duration::from_secs(10),
        "a refresh failure is counted",
        || async { counter(http, failures, "").await >= 1.0 },
    )
    .await;
    list_concurrently(&gateway, 20).await;

    // MP recovers: a later refresh succeeds, and callers never saw an error.
    sandbox.set_fault(None);
    let calls = sandbox.calls(PRODUCT_LIST);
    eventually(Duration::from_secs(10), "a refresh succeeds", || async {
        list_concurrently(&gateway, 1).await;
        sandbox.calls(PRODUCT_LIST) > calls
            && counter(http, "mp_gateway_product_cache_stale_served_total", "").await >= 1.0
    })
    .await;
}

#[tokio::test]
async fn past_the_stale_limit_a_list_is_not_served() {
    let sandbox = start_sandbox().await;
    let gateway = warm_gateway(&sandbox, Duration::ZERO).await;
    sandbox.set_fault(Some(Fault::HttpStatus(500)));
    outlive_the_short_ttl().await;
    let status = list_once(&gateway).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn bypass_cache_fetches_from_mp_and_refreshes_both_levels() {
    let sandbox = start_sandbox().await;
    let prefix = unique_prefix("bypass");
    let config = gateway()
        .redis_at(SHARED_REDIS, &prefix)
        .config(&sandbox.base_url());
    let gateway = TestGateway::start(config.clone()).await;
    list_concurrently(&gateway, 5).await;
    let before = stored(SHARED_REDIS, &prefix).await.unwrap().fetched_at();
    assert_eq!(sandbox.calls(PRODUCT_LIST), 1);

    let asked = SystemTime::now();
    bypass(&gateway).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 2);
    let after = stored(SHARED_REDIS, &prefix).await.unwrap().fetched_at();
    assert!(after > before && after >= asked - Duration::from_millis(1));

    // L1 holds the new list too: plain calls and another replica need no MP call.
    list_concurrently(&gateway, 5).await;
    let other = TestGateway::start(config).await;
    list_concurrently(&other, 5).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 2);
}

#[tokio::test]
async fn redis_unreachable_at_start_does_not_stop_the_gateway() {
    let sandbox = start_sandbox().await;
    let gateway = gateway()
        .redis_at(
            &unreachable_redis_url().await,
            &unique_prefix("unreachable"),
        )
        .start_on(&sandbox)
        .await;
    list_concurrently(&gateway, 50).await;
    list_concurrently(&gateway, 50).await;
    assert_eq!(
        sandbox.calls(PRODUCT_LIST),
        1,
        "served from memory after one fetch"
    );
    assert!(counter(gateway.http_addr, "mp_gateway_redis_errors_total", "").await >= 1.0);
    assert!(counter(gateway.http_addr, "mp_gateway_redis_outages_total", "").await >= 1.0);
}

#[tokio::test]
async fn redis_killed_mid_run_then_restarted_is_used_again_without_a_restart() {
    let mut redis = OwnRedis::start().await;
    let sandbox = start_sandbox().await;
    let prefix = unique_prefix("killed");
    let config = gateway()
        .redis_at(&redis.url(), &prefix)
        .config(&sandbox.base_url());
    let gateway = TestGateway::start(config.clone()).await;
    list_concurrently(&gateway, 20).await;
    assert!(stored(&redis.url(), &prefix).await.is_some());

    redis.kill().await;
    list_concurrently(&gateway, 20).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 1, "answered from memory");
    // A replica that starts now has nothing in memory: MP answers it.
    let cold = TestGateway::start(config.clone()).await;
    list_concurrently(&cold, 20).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 2);
    bypass(&gateway).await;

    // Redis comes back empty; the running gateway shares through it again.
    redis.restart().await;
    let url = redis.url();
    eventually(
        Duration::from_secs(15),
        "the gateway stores lists in the restarted Redis",
        || async {
            bypass(&gateway).await;
            stored(&url, &prefix).await.is_some()
        },
    )
    .await;
    let calls = sandbox.calls(PRODUCT_LIST);
    let fresh = TestGateway::start(config).await;
    list_concurrently(&fresh, 20).await;
    assert_eq!(
        sandbox.calls(PRODUCT_LIST),
        calls,
        "the new replica read Redis"
    );
}

#[tokio::test]
async fn a_hung_redis_is_waited_for_briefly_then_skipped() {
    let redis = OwnRedis::start().await;
    let sandbox = start_sandbox().await;
    let config = gateway()
        .redis_at(&redis.url(), &unique_prefix("hung"))
        .config(&sandbox.base_url());
    let warm = TestGateway::start(config.clone()).await;
    list_concurrently(&warm, 5).await;

    redis.freeze();
    // A cold replica cannot read Redis: after the short Redis timeout it asks MP.
    let cold = TestGateway::start(config).await;
    for _ in 0..3 {
        let request = with_timeout(ListProductsRequest::default(), Duration::from_secs(3));
        let reply = cold.products().list_products(request).await;
        assert_eq!(
            reply
                .expect("answered despite Redis")
                .into_inner()
                .products
                .len(),
            3
        );
    }
    list_concurrently(&warm, 5).await;
    assert_eq!(sandbox.calls(PRODUCT_LIST), 2);
    redis.thaw();
}

#[tokio::test]
async fn metrics_count_hits_misses_and_mp_fetches() {
    let sandbox = start_sandbox().await;
    let config = gateway()
        .redis_at(SHARED_REDIS, &unique_prefix("metrics"))
        .config(&sandbox.base_url());
    let first = TestGateway::start(config.clone()).await;
    let second = TestGateway::start(config).await;
    let http = first.http_addr;
    let hits = "mp_gateway_product_cache_hits_total";
    let misses = "mp_gateway_product_cache_misses_total";
    let fetches = "mp_gateway_mp_fetches_total";
    let (l1_hits, l1_misses) = (
        counter(http, hits, r#"level="l1""#).await,
        counter(http, misses, r#"level="l1""#).await,
    );
    let (l2_hits, l2_misses) = (
        counter(http, hits, r#"level="l2""#).await,
        counter(http, misses, r#"level="l2""#).await,
    );
    let mp_fetches = counter(http, fetches, "").await;

    list_concurrently(&first, 1).await; // L1 miss, L2 miss, one MP fetch
    list_concurrently(&first, 3).await; // L1 hits
    list_concurrently(&second, 1).await; // L1 miss, L2 hit

    // The recorder is per process: both gateways report on each /metrics.
    assert!(counter(http, hits, r#"level="l1""#).await >= l1_hits + 3.0);
    assert!(counter(http, misses, r#"level="l1""#).await >= l1_misses + 2.0);
    assert!(counter(http, hits, r#"level="l2""#).await >= l2_hits + 1.0);
    assert!(counter(http, misses, r#"level="l2""#).await >= l2_misses + 1.0);
    assert!(counter(http, fetches, "").await >= mp_fetches + 1.0);
    assert_eq!(sandbox.calls(PRODUCT_LIST), 1);
}
