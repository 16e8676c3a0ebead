//! No double orders: CreateOrder and TopUpOrder run once per request_id,
//! within one gateway and across gateways sharing Redis.

use std::collections::HashSet;
use std::time::Duration;

use mp_gateway::config::RedisConfig;
use mp_gateway::proto::get_order_by_request_id_response::Outcome as Stored;
use mp_gateway::proto::{CreateOrderRequest, GetOrderByRequestIdRequest, TopUpOrderRequest};
use mp_gateway::sandbox::Fault;
use tonic::Code;

use crate::support::{
    MpDouble, OwnRedis, Reply, TestGateway, closed_port, error_reason, eventually, gateway,
    metrics_page, redis_config, redis_connection, redis_get, shared_redis, start_sandbox,
    unique_prefix, unreachable_redis_url, violated_fields, with_timeout,
};

fn order(request_id: &str, product_id: u64) -> CreateOrderRequest {
    CreateOrderRequest {
        request_id: request_id.into(),
        product_id,
        ..Default::default()
    }
}

#[tokio::test]
async fn fifty_concurrent_orders_with_one_request_id_over_two_gateways_order_once() {
    fifty_orders_with_one_request_id_order_once(shared_redis()).await;
}

/// 50 CreateOrders with one request id over two gateways on `redis`: one MP call.
pub(crate) async fn fifty_orders_with_one_request_id_order_once(redis: RedisConfig) {
    let sandbox = start_sandbox().await;
    let first = gateway()
        .redis(Some(redis.clone()))
        .start_on(&sandbox)
        .await;
    let second = gateway().redis(Some(redis)).start_on(&sandbox).await;
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let mut client = if i % 2 == 0 {
                first.orders()
            } else {
                second.orders()
            };
            tokio::spawn(async move { client.create_order(order("shop-order-1", 6)).await })
        })
        .collect();
    let mut order_codes = HashSet::new();
    for call in calls {
        let reply = call
            .await
            .unwrap()
            .expect("every duplicate gets the first result")
            .into_inner();
        order_codes.insert((reply.order_code, reply.iccid, reply.activation_code));
    }
    assert_eq!(
        order_codes.len(),
        1,
        "one order everywhere: {order_codes:?}"
    );
    assert_eq!(sandbox.calls("v2/activationCode"), 1, "MP was asked once");
}

#[tokio::test]
async fn a_retry_with_the_same_id_returns_the_first_result_without_calling_mp() {
    let (gateway, sandbox) = gateway().start().await;
    let mut client = gateway.orders();
    let first = client
        .create_order(order("retry-1", 6))
        .await
        .unwrap()
        .into_inner();
    let mut with_png = order("retry-1", 6);
    with_png.include_qr_png = true;
    let again = client.create_order(with_png).await.unwrap().into_inner();
    assert_eq!(again.order_code, first.order_code);
    assert_eq!(again.activation_code, first.activation_code);
    assert!(
        !again.qr_png.is_empty(),
        "the PNG is made from the stored code"
    );
    assert_eq!(sandbox.calls("v2/activationCode"), 1);
}

#[tokio::test]
async fn the_same_id_with_another_product_is_rejected() {
    let (gateway, sandbox) = gateway().redis(Some(shared_redis())).start().await;
    let mut client = gateway.orders();
    client.create_order(order("reused-1", 6)).await.unwrap();
    let status = client.create_order(order("reused-1", 5)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["request_id"]);
    assert_eq!(sandbox.calls("v2/activationCode"), 1);
}

#[tokio::test]
async fn after_an_mp_timeout_a_retry_is_told_the_outcome_is_unknown_and_mp_is_called_once() {
    let (gateway, sandbox) = gateway()
        .mp_timeout(Duration::from_millis(300))
        .redis(Some(shared_redis()))
        .start()
        .await;
    let mut client = gateway.orders();
    sandbox.set_fault(Some(Fault::Delay(Duration::from_secs(2))));
    let first = client.create_order(order("slow-1", 6)).await.unwrap_err();
    assert_eq!(first.code(), Code::Aborted);
    assert_eq!(error_reason(&first).as_deref(), Some("OUTCOME_UNKNOWN"));
    sandbox.set_fault(None);
    let retry = client.create_order(order("slow-1", 6)).await.unwrap_err();
    assert_eq!(retry.code(), Code::Aborted);
    assert_eq!(error_reason(&retry).as_deref(), Some("OUTCOME_UNKNOWN"));
    assert_eq!(sandbox.calls("v2/activationCode"), 1);
}

#[tokio::test]
async fn after_mp_refused_an_order_the_same_id_may_try_again() {
    let (gateway, sandbox) = gateway().start().await;
    let mut client = gateway.orders();
    sandbox.set_fault(Some(Fault::BusinessError {
        code: 500,
        msg: "No ICCID found".into(),
    }));
    let refused = client
        .create_order(order("refused-1", 6))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    sandbox.set_fault(None);
    client
        .create_order(order("refused-1", 6))
        .await
        .expect("MP surely did nothing the first time");
    assert_eq!(sandbox.calls("v2/activationCode"), 2);
}

#[tokio::test]
async fn a_top_up_retried_with_its_request_id_tops_up_once() {
    let (gateway, sandbox) = gateway().redis(Some(shared_redis())).start().await;
    let mut client = gateway.orders();
    let code = client
        .create_order(order("", 6))
        .await
        .unwrap()
        .into_inner()
        .order_code;
    let top_up = || TopUpOrderRequest {
        request_id: "top-up-1".into(),
        order_code: code.clone(),
    };
    let first = client.top_up_order(top_up()).await.unwrap().into_inner();
    let again = client.top_up_order(top_up()).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(sandbox.calls("v2/topUp"), 1);
}

#[tokio::test]
async fn without_a_request_id_every_call_is_a_new_order() {
    let (gateway, _sandbox) = gateway().start().await;
    let mut client = gateway.orders();
    let a = client
        .create_order(order("", 6))
        .await
        .unwrap()
        .into_inner();
    let b = client
        .create_order(order("", 6))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(a.order_code, b.order_code);
    assert_ne!(a.request_id, b.request_id);
}

#[tokio::test]
async fn with_redis_unreachable_orders_are_refused_rather_than_risked() {
    let redis = redis_config(&unreachable_redis_url().await, "unreachable");
    let (gateway, sandbox) = gateway().redis(Some(redis)).start().await;
    let status = gateway
        .orders()
        .create_order(order("no-redis-1", 6))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("IDEMPOTENCY_STORE_UNAVAILABLE")
    );
    assert_eq!(sandbox.calls("v2/activationCode"), 0);
}

/// A caller that gives up while MP is still working does not cut the order
/// short: the gateway finishes the MP call and records its outcome, so the
/// caller's retry gets the order instead of OUTCOME_UNKNOWN.
#[tokio::test]
async fn a_caller_that_gives_up_mid_order_gets_the_order_when_it_retries() {
    let (gateway, sandbox) = gateway().redis(Some(shared_redis())).start().await;
    sandbox.set_fault(Some(Fault::Delay(Duration::from_millis(600))));
    let mut client = gateway.orders();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        client.create_order(order("gave-up", 6)),
    )
    .await;
    assert!(abandoned.is_err(), "the caller gave up: {abandoned:?}");
    sandbox.set_fault(None);

    let retried = client
        .create_order(order("gave-up", 6))
        .await
        .expect("the retry gets the order the first call made")
        .into_inner();
    let again = client
        .create_order(order("gave-up", 6))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.order_code, again.order_code);
    assert!(!retried.order_code.is_empty());
    assert_eq!(sandbox.calls("v2/activationCode"), 1);
}

/// The request id an OUTCOME_UNKNOWN status names, after checking it is one.
fn unknown_outcome_request_id(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "OUTCOME_UNKNOWN", "{status:?}");
    info.metadata["request_id"].clone()
}

/// Orders and top-ups that may have reached MP, with and without a caller's id.
async fn assert_order_calls_are_outcome_unknown(mp: &MpDouble) {
    let gateway = gateway().start_against(&mp.base_url()).await;
    let mut client = gateway.orders();
    let status = client.create_order(order("maybe-1", 6)).await.unwrap_err();
    assert_eq!(unknown_outcome_request_id(&status), "maybe-1");
    let retry = client.create_order(order("maybe-1", 6)).await.unwrap_err();
    assert_eq!(unknown_outcome_request_id(&retry), "maybe-1");
    assert_eq!(mp.calls(), 1, "the retry did not order again");

    let status = client.create_order(order("", 6)).await.unwrap_err();
    let generated = unknown_outcome_request_id(&status);
    assert!(!generated.is_empty(), "the generated id is named");

    let top_up = TopUpOrderRequest {
        order_code: "ORDER_1".into(),
        request_id: "maybe-2".into(),
    };
    let status = client.top_up_order(top_up).await.unwrap_err();
    assert_eq!(unknown_outcome_request_id(&status), "maybe-2");
}

#[tokio::test]
async fn an_order_whose_connection_dropped_after_sending_is_outcome_unknown_not_unavailable() {
    assert_order_calls_are_outcome_unknown(&MpDouble::start(Reply::Drop).await).await;
}

#[tokio::test]
async fn an_order_answered_http_502_is_outcome_unknown_not_unavailable() {
    let bad_gateway = Reply::Status(502, "text/plain", "Bad Gateway".into());
    assert_order_calls_are_outcome_unknown(&MpDouble::start(bad_gateway).await).await;
}

#[tokio::test]
async fn an_order_mp_surely_never_saw_is_unavailable() {
    let gateway = gateway()
        .start_against(&format!("http://{}", closed_port().await))
        .await;
    let status = gateway
        .orders()
        .create_order(order("refused-1", 6))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("UPSTREAM_UNAVAILABLE")
    );
}

/// Without AOF or RDB a Redis restart forgets every request id, and a retry
/// orders again: the gateway says so at start (WARN) and in a gauge.
#[tokio::test]
async fn a_redis_without_persistence_is_reported_and_one_with_it_is_not() {
    let gauge_is = |gateway: &TestGateway, value: &'static str| {
        let http = gateway.http_addr;
        async move {
            metrics_page(http)
                .await
                .lines()
                .any(|line| line == format!("mp_gateway_redis_persistence {value}"))
        }
    };
    let forgetful = OwnRedis::start().await;
    let (without, _sandbox) = gateway()
        .redis_at(&forgetful.url(), &unique_prefix("no-persistence"))
        .start()
        .await;
    eventually(Duration::from_secs(10), "the gauge says 0", || {
        gauge_is(&without, "0")
    })
    .await;

    let keeping = OwnRedis::start().await;
    let mut conn = redis_connection(&keeping.url()).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        // An RDB rule that cannot fire within the test (an hour), so no file is written.
        .arg("save")
        .arg("3600 1")
        .query_async(&mut conn)
        .await
        .expect("CONFIG SET");
    let (with, _sandbox) = gateway()
        .redis_at(&keeping.url(), &unique_prefix("rdb"))
        .start()
        .await;
    eventually(Duration::from_secs(10), "the gauge says 1", || {
        gauge_is(&with, "1")
    })
    .await;
}

fn lookup(request_id: &str) -> GetOrderByRequestIdRequest {
    GetOrderByRequestIdRequest {
        request_id: request_id.into(),
    }
}

/// Both idempotency stores: in process, and the shared Redis.
fn both_stores() -> [Option<RedisConfig>; 2] {
    [None, Some(shared_redis())]
}

#[tokio::test]
async fn an_order_is_found_by_its_request_id_without_calling_mp_again() {
    for redis in both_stores() {
        let with_redis = redis.is_some();
        let (gateway, sandbox) = gateway().redis(redis).start().await;
        let mut client = gateway.orders();
        let mut request = order("look-me-up-1", 6);
        request.include_qr_png = true;
        let created = client.create_order(request).await.unwrap().into_inner();
        let found = client
            .get_order_by_request_id(lookup("look-me-up-1"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.request_id, "look-me-up-1");
        let expected = mp_gateway::proto::CreateOrderResponse {
            qr_png: Vec::new(),
            ..created
        };
        assert!(
            !expected.smdp_address.is_empty(),
            "the LPA parts are filled"
        );
        assert_eq!(
            found.outcome,
            Some(Stored::CreateOrder(expected)),
            "redis: {with_redis}"
        );
        assert_eq!(sandbox.calls("v2/activationCode"), 1);
    }
}

#[tokio::test]
async fn a_top_up_is_found_by_its_request_id_without_calling_mp_again() {
    for redis in both_stores() {
        let (gateway, sandbox) = gateway().redis(redis).start().await;
        let mut client = gateway.orders();
        let code = client
            .create_order(order("", 6))
            .await
            .unwrap()
            .into_inner()
            .order_code;
        let top_up = TopUpOrderRequest {
            request_id: "top-up-look-up-1".into(),
            order_code: code,
        };
        let topped_up = client.top_up_order(top_up).await.unwrap().into_inner();
        let found = client
            .get_order_by_request_id(lookup("top-up-look-up-1"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.outcome, Some(Stored::TopUpOrder(topped_up)));
        assert_eq!(found.request_id, "top-up-look-up-1");
        assert_eq!(sandbox.calls("v2/topUp"), 1);
    }
}

#[tokio::test]
async fn a_request_id_never_seen_is_not_found_with_error_info() {
    use tonic_types::StatusExt;
    for redis in both_stores() {
        let (gateway, _sandbox) = gateway().redis(redis).start().await;
        let status = gateway
            .orders()
            .get_order_by_request_id(lookup("never-sent-1"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "REQUEST_ID_NOT_FOUND");
        assert_eq!(info.domain, "mp-gateway");
        assert_eq!(info.metadata["request_id"], "never-sent-1");
    }
}

#[tokio::test]
async fn looking_up_an_empty_request_id_is_invalid_rather_than_generated() {
    let (gateway, _sandbox) = gateway().start().await;
    let status = gateway
        .orders()
        .get_order_by_request_id(lookup(""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["request_id"]);
}

#[tokio::test]
async fn an_order_whose_outcome_is_unknown_is_looked_up_as_outcome_unknown() {
    let mp = MpDouble::start(Reply::Drop).await;
    for redis in both_stores() {
        let gateway = gateway().redis(redis).start_against(&mp.base_url()).await;
        let mut client = gateway.orders();
        client
            .create_order(order("maybe-lost-1", 6))
            .await
            .unwrap_err();
        let status = client
            .get_order_by_request_id(lookup("maybe-lost-1"))
            .await
            .unwrap_err();
        assert_eq!(unknown_outcome_request_id(&status), "maybe-lost-1");
    }
}

#[tokio::test]
async fn an_order_still_running_is_looked_up_as_in_progress_with_retry_info() {
    use tonic_types::StatusExt;
    let (gateway, sandbox) = gateway().redis(Some(shared_redis())).start().await;
    sandbox.set_fault(Some(Fault::Delay(Duration::from_millis(1500))));
    let mut orders = gateway.orders();
    let running = tokio::spawn(async move { orders.create_order(order("running-1", 6)).await });
    let client = gateway.orders();
    eventually(Duration::from_secs(1), "the order is claimed", || {
        let mut client = client.clone();
        async move {
            client
                .get_order_by_request_id(lookup("running-1"))
                .await
                .is_err_and(|status| status.code() != Code::NotFound)
        }
    })
    .await;
    let status = client
        .clone()
        .get_order_by_request_id(lookup("running-1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("REQUEST_IN_PROGRESS")
    );
    assert!(status.get_details_retry_info().is_some());
    sandbox.set_fault(None);
    running.await.unwrap().expect("the order goes through");
}

/// What a double that creates order ORDER_1 answers.
fn order_1() -> serde_json::Value {
    serde_json::json!({
        "iccid": "8943108169999589689",
        "qrCode": "LPA:1$smdp.example.com$MATCHING-1",
        "orderCode": "ORDER_1",
    })
}

fn is_in_progress_with_retry_info(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    status.code() == Code::Aborted
        && error_reason(status).as_deref() == Some("REQUEST_IN_PROGRESS")
        && status.get_details_retry_info().is_some()
}

/// The caller's deadline does not cut the MP call short (which would lose an
/// order MP made): the caller is answered in time, the call runs on within
/// MP_TIMEOUT_MS, and its outcome is there for the retry.
#[tokio::test]
async fn an_order_outlives_its_callers_deadline_and_the_retry_gets_it() {
    let mp = MpDouble::slowly_created(Duration::from_secs(2), order_1()).await;
    let gateway = gateway()
        .redis(Some(shared_redis()))
        .start_against(&mp.base_url())
        .await;
    let mut client = gateway.orders();
    let started = std::time::Instant::now();
    let status = client
        .create_order(with_timeout(
            order("deadline-1", 6),
            Duration::from_millis(500),
        ))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the caller fails fast"
    );
    // Answered just before the deadline, so the caller knows to retry.
    assert!(is_in_progress_with_retry_info(&status), "{status:?}");

    let running = client
        .create_order(with_timeout(order("deadline-1", 6), Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(is_in_progress_with_retry_info(&running), "{running:?}");

    tokio::time::sleep_until((started + Duration::from_millis(2500)).into()).await;
    let retried = client
        .create_order(order("deadline-1", 6))
        .await
        .expect("the retry gets the order the first call made")
        .into_inner();
    assert_eq!(retried.order_code, "ORDER_1");
    assert_eq!(mp.calls(), 1);
}

/// A `SET NX` claim queued in a frozen Redis lands after the gateway told the
/// caller "not sent to MP": it is a short lease nobody renews, so it lapses
/// and the retry orders (instead of OUTCOME_UNKNOWN for the records' TTL).
#[tokio::test]
async fn a_claim_that_lands_after_a_redis_stall_lapses_and_the_retry_orders() {
    let redis = OwnRedis::start().await;
    let prefix = unique_prefix("stall");
    let mp = MpDouble::created(order_1()).await;
    let gateway = gateway()
        .redis_at(&redis.url(), &prefix)
        .mp_timeout(Duration::from_secs(1))
        .start_against(&mp.base_url())
        .await;
    let mut client = gateway.orders();
    // The gateway's connection to Redis is up before it stalls.
    let unseen = client
        .get_order_by_request_id(lookup("stalled-1"))
        .await
        .unwrap_err();
    assert_eq!(unseen.code(), Code::NotFound);

    redis.freeze();
    let status = client
        .create_order(order("stalled-1", 6))
        .await
        .unwrap_err();
    redis.thaw();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("IDEMPOTENCY_STORE_UNAVAILABLE")
    );
    assert_eq!(mp.calls(), 0);
    let key = format!("{prefix}:idempotency:v1:CreateOrder:stalled-1");
    eventually(Duration::from_secs(2), "the queued claim lands", || {
        let (url, key) = (redis.url(), key.clone());
        async move { redis_get(&url, &key).await.is_some() }
    })
    .await;
    let blocked = client
        .create_order(with_timeout(
            order("stalled-1", 6),
            Duration::from_millis(500),
        ))
        .await
        .unwrap_err();
    assert!(is_in_progress_with_retry_info(&blocked), "{blocked:?}");

    // The lease is MP_TIMEOUT_MS + 2 s.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let created = client
        .create_order(order("stalled-1", 6))
        .await
        .expect("the id is not blocked by the claim that landed late")
        .into_inner();
    assert_eq!(created.order_code, "ORDER_1");
    assert_eq!(mp.calls(), 1);
}

/// MP made the order but Redis was gone when its record was written: the
/// gateway keeps trying, and once Redis is back the retry gets the order
/// without a second MP call.
#[tokio::test]
async fn an_order_whose_record_could_not_be_stored_is_stored_when_redis_is_back() {
    let mut redis = OwnRedis::start().await;
    let mp = MpDouble::slowly_created(Duration::from_secs(1), order_1()).await;
    let gateway = gateway()
        .redis_at(&redis.url(), &unique_prefix("record-later"))
        .start_against(&mp.base_url())
        .await;
    let mut client = gateway.orders();
    let first = tokio::spawn({
        let mut client = client.clone();
        async move { client.create_order(order("record-later-1", 6)).await }
    });
    eventually(Duration::from_secs(5), "MP received the order", || async {
        mp.calls() == 1
    })
    .await;
    redis.kill().await;
    let first = first
        .await
        .unwrap()
        .expect("the caller gets the order MP made");
    assert_eq!(first.into_inner().order_code, "ORDER_1");

    redis.restart().await;
    eventually(
        Duration::from_secs(10),
        "the order's record is stored",
        || {
            let mut client = client.clone();
            async move {
                client
                    .get_order_by_request_id(lookup("record-later-1"))
                    .await
                    .is_ok()
            }
        },
    )
    .await;
    let retried = client
        .create_order(order("record-later-1", 6))
        .await
        .expect("the retry gets the stored order")
        .into_inner();
    assert_eq!(retried.order_code, "ORDER_1");
    assert_eq!(mp.calls(), 1);
}
