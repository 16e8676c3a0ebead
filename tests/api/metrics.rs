//! `/metrics` moves as calls are made: gRPC calls by method and code, MP
//! calls by endpoint and outcome, alarms in and out, idempotent replays.
//! Tests share one process-wide recorder, so they compare before and after.

use std::net::SocketAddr;
use std::time::Duration;

use mp_gateway::proto::{
    CreateOrderRequest, GetOrderStatusRequest, GetTrafficRequest, ListProductsRequest,
    SubscribeAlarmsRequest,
};
use mp_gateway::sandbox::Fault;
use serde_json::json;
use tonic::Code;

use crate::support::{
    callback_body, eventually, gateway, gateway_with_sandbox, http_client, metric, metrics_page,
};

const LIST_PRODUCTS: &str = r#"method="linksfield.mp.v1.ProductService/ListProducts""#;
const GET_ORDER_STATUS: &str = r#"method="linksfield.mp.v1.OrderService/GetOrderStatus""#;

/// Reads a set of series at once, so a test can say how each one moved.
struct Snapshot(Vec<f64>);

async fn snapshot(http: SocketAddr, series: &[(&str, &[&str])]) -> Snapshot {
    let mut values = Vec::new();
    for (name, labels) in series {
        values.push(metric(http, name, labels).await);
    }
    Snapshot(values)
}

/// Asserts every series grew by at least one (other tests in this process
/// may add to them too).
async fn assert_each_grew(http: SocketAddr, series: &[(&str, &[&str])], before: &Snapshot) {
    let after = snapshot(http, series).await;
    for ((name, labels), (before, after)) in series.iter().zip(before.0.iter().zip(&after.0)) {
        assert!(
            after >= &(before + 1.0),
            "{name}{labels:?} went from {before} to {after}"
        );
    }
}

#[tokio::test]
async fn grpc_calls_are_counted_by_method_and_code_and_timed() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let series: &[(&str, &[&str])] = &[
        (
            "mp_gateway_grpc_requests_total",
            &[LIST_PRODUCTS, r#"code="OK""#],
        ),
        (
            "mp_gateway_grpc_requests_total",
            &[GET_ORDER_STATUS, r#"code="INVALID_ARGUMENT""#],
        ),
        (
            "mp_gateway_grpc_requests_total",
            &[GET_ORDER_STATUS, r#"code="NOT_FOUND""#],
        ),
        (
            "mp_gateway_grpc_request_duration_seconds_count",
            &[LIST_PRODUCTS],
        ),
        (
            "mp_gateway_grpc_request_duration_seconds_bucket",
            &[LIST_PRODUCTS, r#"le="+Inf""#],
        ),
    ];
    let before = snapshot(gateway.http_addr, series).await;

    gateway
        .products()
        .list_products(ListProductsRequest::default())
        .await
        .expect("ListProducts answers");
    let invalid = gateway
        .orders()
        .get_order_status(GetOrderStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let unknown = gateway
        .orders()
        .get_order_status(GetOrderStatusRequest {
            order_code: "ORDER_NOBODY_KNOWS".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    assert_each_grew(gateway.http_addr, series, &before).await;
}

#[tokio::test]
async fn calls_auth_refuses_are_counted_as_unauthenticated() {
    let (gateway, _sandbox) = gateway()
        .grpc_auth_tokens(&["metrics-test-token"])
        .start()
        .await;
    let series: &[(&str, &[&str])] = &[(
        "mp_gateway_grpc_requests_total",
        &[LIST_PRODUCTS, r#"code="UNAUTHENTICATED""#],
    )];
    let before = snapshot(gateway.http_addr, series).await;

    let refused = gateway
        .products()
        .list_products(ListProductsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    assert_each_grew(gateway.http_addr, series, &before).await;
}

#[tokio::test]
async fn mp_calls_are_counted_by_endpoint_and_outcome_and_timed() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let series: &[(&str, &[&str])] = &[
        (
            "mp_gateway_mp_requests_total",
            &[r#"endpoint="v2/productList""#, r#"outcome="ok""#],
        ),
        (
            "mp_gateway_mp_requests_total",
            &[r#"endpoint="queryOrderStatus""#, r#"outcome="null_data""#],
        ),
        (
            "mp_gateway_mp_requests_total",
            &[r#"endpoint="queryTraffic""#, r#"outcome="business_error""#],
        ),
        (
            "mp_gateway_mp_request_duration_seconds_count",
            &[r#"endpoint="queryTraffic""#],
        ),
    ];
    let before = snapshot(gateway.http_addr, series).await;

    gateway
        .products()
        .list_products(ListProductsRequest {
            bypass_cache: true,
            ..Default::default()
        })
        .await
        .expect("ListProducts answers");
    let unknown = gateway
        .orders()
        .get_order_status(GetOrderStatusRequest {
            order_code: "ORDER_NOBODY_KNOWS".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    sandbox.set_fault_for(
        1,
        Fault::BusinessError {
            code: 500,
            msg: "system busy".into(),
        },
    );
    gateway
        .traffic()
        .get_traffic(GetTrafficRequest {
            order_code: "ORDER_1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();

    assert_each_grew(gateway.http_addr, series, &before).await;
}

#[tokio::test]
async fn alarm_callbacks_deliveries_and_subscribers_are_counted() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let series: &[(&str, &[&str])] = &[
        ("mp_gateway_alarms_received_total", &[]),
        ("mp_gateway_alarms_duplicates_total", &[]),
        (
            "mp_gateway_alarms_rejected_total",
            &[r#"reason="malformed""#],
        ),
        ("mp_gateway_alarms_delivered_total", &[]),
    ];
    let subscribers = || metric(gateway.http_addr, "mp_gateway_alarm_subscribers", &[]);
    let before = snapshot(gateway.http_addr, series).await;
    let subscribers_before = subscribers().await;

    let mut stream = gateway
        .alarms()
        .subscribe_alarms(SubscribeAlarmsRequest::default())
        .await
        .expect("subscription starts")
        .into_inner();
    assert_eq!(subscribers().await, subscribers_before + 1.0);
    let http = reqwest::Client::new();
    let url = format!("http://{}/mp/alarm-callback", gateway.http_addr);
    let body = callback_body(
        &format!("ORDER_METRICS_{}", uuid::Uuid::new_v4().simple()),
        "84%",
        &uuid::Uuid::new_v4().to_string(),
    );
    for (body, status) in [
        (body.clone(), 200),
        (body, 200),
        (json!({"eid": "only"}), 400),
    ] {
        let answer = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{body}");
    }
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the alarm arrives in time")
        .expect("the stream is healthy")
        .expect("the stream is open");

    assert_each_grew(gateway.http_addr, series, &before).await;
    drop(stream);
    eventually(
        Duration::from_secs(5),
        "the subscriber gauge goes down when the stream ends",
        || async { subscribers().await == subscribers_before },
    )
    .await;
}

#[tokio::test]
async fn a_replayed_create_order_is_counted() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let series: &[(&str, &[&str])] = &[(
        "mp_gateway_idempotency_replays_total",
        &[r#"rpc="CreateOrder""#],
    )];
    let before = snapshot(gateway.http_addr, series).await;

    let request = CreateOrderRequest {
        product_id: 5,
        request_id: format!("metrics-replay-{}", uuid::Uuid::new_v4()),
        ..Default::default()
    };
    let first = gateway
        .orders()
        .create_order(request.clone())
        .await
        .unwrap();
    let again = gateway.orders().create_order(request).await.unwrap();
    assert_eq!(first.get_ref().order_code, again.get_ref().order_code);

    assert_each_grew(gateway.http_addr, series, &before).await;
}

#[tokio::test]
async fn a_call_its_client_abandons_is_counted_as_cancelled() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let series: &[(&str, &[&str])] = &[
        (
            "mp_gateway_grpc_requests_total",
            &[GET_ORDER_STATUS, r#"code="CANCELLED""#],
        ),
        (
            "mp_gateway_mp_requests_total",
            &[r#"endpoint="queryOrderStatus""#, r#"outcome="cancelled""#],
        ),
    ];
    let before = snapshot(gateway.http_addr, series).await;
    sandbox.set_fault(Some(Fault::Delay(Duration::from_secs(5))));

    let mut orders = gateway.orders();
    let call = orders.get_order_status(GetOrderStatusRequest {
        order_code: "ORDER_ABANDONED".into(),
        ..Default::default()
    });
    // No grpc-timeout is sent: the client just goes away (RST_STREAM).
    let gave_up = tokio::time::timeout(Duration::from_millis(300), call).await;
    assert!(gave_up.is_err(), "the call was still waiting for MP");

    let grew = || async {
        let now = snapshot(gateway.http_addr, series).await;
        now.0
            .iter()
            .zip(&before.0)
            .all(|(now, then)| *now >= then + 1.0)
    };
    eventually(
        Duration::from_secs(5),
        "the abandoned call and its MP call are counted as cancelled",
        grew,
    )
    .await;
    sandbox.set_fault(None);
}

#[tokio::test]
async fn metrics_addr_moves_metrics_off_the_http_port() {
    let (gateway, _sandbox) = gateway()
        .with(|config| config.metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        .start()
        .await;
    let metrics_addr = gateway.metrics_addr.expect("a metrics listener is bound");
    assert_ne!(metrics_addr, gateway.http_addr);
    let page = metrics_page(metrics_addr).await;
    assert!(page.contains("mp_gateway_"), "{page}");

    let client = http_client();
    let status = |path: &'static str| {
        let (client, http) = (client.clone(), gateway.http_addr);
        async move {
            client
                .get(format!("http://{http}{path}"))
                .send()
                .await
                .expect("the HTTP port answers")
                .status()
        }
    };
    assert_eq!(
        status("/metrics").await,
        404,
        "not on the HTTP port any more"
    );
    assert_eq!(status("/healthz").await, 200, "the probes stay there");
}
