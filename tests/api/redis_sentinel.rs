//! Redis Sentinel: the gateway finds the primary through the sentinels and
//! follows a failover without a restart. With `REDIS_MIN_REPLICAS_ACK=1` a
//! callback answered 200 survives the primary's death (kill -9), is relayed
//! exactly once, and a request id still orders once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mp_gateway::config::{RedisConfig, ReplicaAck};
use mp_gateway::proto::{CreateOrderRequest, SubscribeAlarmsRequest, SubscribeAlarmsResponse};
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout};
use tonic::{Code, Streaming};

use crate::support::{
    DOWN_AFTER, SHARED_REDIS, SentinelTopology, TestGateway, callback_body, counter, gateway,
    http_client, post_callback, start_sandbox, unique_prefix,
};

const CALLBACKS: usize = 2_000;
/// Callbacks in flight at once, as MP's retrying senders would have them.
const SENDERS: usize = 16;

async fn subscribe(gateway: &TestGateway) -> Streaming<SubscribeAlarmsResponse> {
    gateway
        .alarms()
        .subscribe_alarms(SubscribeAlarmsRequest::default())
        .await
        .expect("subscription starts")
        .into_inner()
}

/// Reads `stream` into request id -> times seen, until it ends.
async fn collect(
    mut stream: Streaming<SubscribeAlarmsResponse>,
    seen: Arc<Mutex<HashMap<String, usize>>>,
) {
    while let Ok(Some(message)) = stream.message().await {
        if let Some(alarm) = message.alarm {
            *seen.lock().await.entry(alarm.request_id).or_default() += 1;
        }
    }
}

/// Posts callback `index` until it is answered 200, like MP retries a non-200.
/// Returns whether the first attempt failed.
async fn deliver(client: &reqwest::Client, gateways: &[TestGateway], index: usize) -> bool {
    let body = callback_body(&format!("ORDER_{index}"), "84%", &format!("burst-{index}"));
    let mut failed = false;
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        // Alternate gateways, as a load balancer would.
        let gateway = &gateways[(index + usize::from(failed)) % gateways.len()];
        match post_callback(client, gateway, "", &body).await {
            200 => return failed,
            503 => failed = true,
            other => panic!("callback {index} answered {other}"),
        }
        assert!(Instant::now() < give_up, "callback {index} never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_killed_mid_burst_loses_no_acknowledged_callback_and_orders_once() {
    let mut redis = SentinelTopology::start(2).await;
    let sandbox = start_sandbox().await;
    let prefix = unique_prefix("sentinel");
    let gateways = Arc::new([
        gateway()
            .redis(Some(redis.config(&prefix, 1)))
            .start_on(&sandbox)
            .await,
        gateway()
            .redis(Some(redis.config(&prefix, 1)))
            .start_on(&sandbox)
            .await,
    ]);
    let seen: [Arc<Mutex<HashMap<String, usize>>>; 2] = Default::default();
    let mut readers = Vec::new();
    for (gateway, seen) in gateways.iter().zip(&seen) {
        let stream = subscribe(gateway).await;
        readers.push(tokio::spawn(collect(stream, seen.clone())));
    }

    // The burst: SENDERS tasks take callbacks in order; the primary dies a
    // quarter of the way through.
    let next = Arc::new(AtomicUsize::new(0));
    let client = http_client();
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (next, gateways, client) = (next.clone(), gateways.clone(), client.clone());
            tokio::spawn(async move {
                let mut refused_first = 0;
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= CALLBACKS {
                        return refused_first;
                    }
                    refused_first += usize::from(deliver(&client, &gateways[..], index).await);
                }
            })
        })
        .collect();
    while next.load(Ordering::SeqCst) < CALLBACKS / 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let old_primary = redis.kill_primary().await;
    let killed_at = Instant::now();

    // Meanwhile a shop retries one order through the failover, 50 times at once.
    let orders: Vec<_> = (0..50)
        .map(|i| {
            let mut client = gateways[i % 2].orders();
            tokio::spawn(async move {
                let request = CreateOrderRequest {
                    request_id: "order-across-failover".into(),
                    product_id: 6,
                    ..Default::default()
                };
                let give_up = Instant::now() + Duration::from_secs(60);
                loop {
                    match client.create_order(request.clone()).await {
                        Ok(reply) => return reply.into_inner().order_code,
                        Err(status)
                            if matches!(status.code(), Code::Unavailable | Code::Aborted)
                                && Instant::now() < give_up =>
                        {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(status) => panic!("CreateOrder failed for good: {status:?}"),
                    }
                }
            })
        })
        .collect();

    redis
        .failed_over_from(old_primary, Duration::from_secs(30))
        .await;
    let failed_over_at = Instant::now();
    // Accepted again: a fresh callback is answered 200 within 5 s of the promotion.
    let probe = callback_body("ORDER_PROBE", "84%", "probe-after-failover");
    let accepted_again = loop {
        if post_callback(&client, &gateways[0], "", &probe).await == 200 {
            break Instant::now();
        }
        assert!(
            failed_over_at.elapsed() < Duration::from_secs(5),
            "callbacks are not accepted again within 5 s of the promotion"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let mut refused_first = 0;
    for sender in senders {
        refused_first += sender.await.expect("sender finished");
    }
    let mut order_codes = HashSet::new();
    for order in orders {
        order_codes.insert(order.await.expect("order task finished"));
    }

    // Every callback answered 200 reaches every subscriber exactly once.
    for (gateway, seen) in seen.iter().enumerate() {
        let all_there = timeout(Duration::from_secs(20), async {
            loop {
                if (0..CALLBACKS).all(|i| {
                    seen.try_lock()
                        .is_ok_and(|s| s.contains_key(&format!("burst-{i}")))
                }) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let seen = seen.lock().await;
        let missing: Vec<_> = (0..CALLBACKS)
            .filter(|i| !seen.contains_key(&format!("burst-{i}")))
            .take(10)
            .collect();
        assert!(
            all_there.is_ok(),
            "gateway {gateway}'s subscriber misses accepted callbacks, e.g. {missing:?}"
        );
        let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(10).collect();
        assert!(
            repeated.is_empty(),
            "gateway {gateway} relayed twice: {repeated:?}"
        );
    }
    for reader in readers {
        reader.abort();
    }

    assert_eq!(
        order_codes.len(),
        1,
        "one order everywhere: {order_codes:?}"
    );
    assert_eq!(sandbox.calls("v2/activationCode"), 1, "MP was asked once");
    assert!(
        refused_first > 0,
        "the kill refused some callbacks (otherwise the test proved nothing)"
    );
    eprintln!(
        "failover: promoted {:?} after the kill (down-after {DOWN_AFTER:?}), callbacks accepted again {:?} after the promotion; {refused_first} callbacks were refused first and retried",
        failed_over_at - killed_at,
        accepted_again - failed_over_at
    );
}

fn acknowledged_by(replicas: usize) -> Option<ReplicaAck> {
    Some(ReplicaAck {
        replicas,
        timeout: Duration::from_millis(200),
    })
}

/// The shared test Redis has no replicas: a write that must reach one
/// never counts as stored.
#[tokio::test]
async fn a_callback_too_few_replicas_acknowledged_is_answered_503_and_counted() {
    let mut redis = RedisConfig::url(SHARED_REDIS, &unique_prefix("unacknowledged"));
    redis.replica_ack = acknowledged_by(1);
    let (gateway, _sandbox) = gateway().redis(Some(redis)).start().await;
    let before = counter(
        gateway.http_addr,
        "mp_gateway_redis_replica_ack_timeouts_total",
        "write=\"alarm\"",
    )
    .await;
    let body = callback_body("ORDER_1", "84%", "unacknowledged-1");
    assert_eq!(
        post_callback(&http_client(), &gateway, "", &body).await,
        503
    );
    let after = counter(
        gateway.http_addr,
        "mp_gateway_redis_replica_ack_timeouts_total",
        "write=\"alarm\"",
    )
    .await;
    assert!(after >= before + 1.0, "counted: {before} -> {after}");
}

#[tokio::test]
async fn an_order_whose_claim_too_few_replicas_acknowledged_is_not_sent_to_mp() {
    let sandbox = start_sandbox().await;
    let mut redis = RedisConfig::url(SHARED_REDIS, &unique_prefix("unacknowledged-claim"));
    redis.replica_ack = acknowledged_by(1);
    let gateway = gateway().redis(Some(redis)).start_on(&sandbox).await;
    let request = CreateOrderRequest {
        request_id: "claim-not-acknowledged".into(),
        product_id: 6,
        ..Default::default()
    };
    for _ in 0..2 {
        let refused = gateway
            .orders()
            .create_order(request.clone())
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    }
    assert_eq!(sandbox.calls("v2/activationCode"), 0, "MP was never asked");
}
