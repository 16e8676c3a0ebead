//! TrafficService: how much data an order used, in all and day by day.

use std::time::Duration;

use mp_gateway::proto::{
    CreateOrderRequest, GetDailyTrafficRequest, GetTrafficRequest, PackageTraffic,
    TopUpOrderRequest,
};
use tonic::Code;

use serde_json::json;

use crate::support::{
    TestGateway, active_order, canned_mp, error_reason, gateway, gateway_with_sandbox,
    violated_fields,
};

/// The first package GetTraffic reports for `order_code`; panics if the call fails.
async fn first_package(gateway: &TestGateway, order_code: &str) -> PackageTraffic {
    gateway
        .traffic()
        .get_traffic(GetTrafficRequest {
            order_code: order_code.into(),
            ..Default::default()
        })
        .await
        .expect("GetTraffic answers")
        .into_inner()
        .packages
        .remove(0)
}

#[tokio::test]
async fn traffic_of_an_order_in_use_grows_over_time() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let code = active_order(&gateway).await;
    let first = first_package(&gateway, &code).await;
    assert!(first.total_mb.expect("the sandbox reports the volume") > 0.0);
    assert!(first.cycle.expect("the sandbox reports the cycles") >= 1);
    assert!(first.actual_start_time.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = first_package(&gateway, &code).await;
    assert!(
        later.used_mb > first.used_mb,
        "{:?} then {:?}",
        first.used_mb,
        later.used_mb
    );
    assert!(later.used_mb <= later.total_mb);
}

#[tokio::test]
async fn daily_traffic_lists_todays_usage() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let code = active_order(&gateway).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let daily = gateway
        .traffic()
        .get_daily_traffic(GetDailyTrafficRequest {
            order_code: code,
            request_id: "daily-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(daily.request_id, "daily-1");
    assert!(!daily.package_code.is_empty());
    assert!(daily.actual_start_time.is_some());
    let day = daily.days.last().expect("at least one day");
    assert!(chrono::NaiveDate::parse_from_str(&day.date, "%Y-%m-%d").is_ok());
    assert!(
        daily
            .days
            .iter()
            .map(|d| d.used_bytes.expect("the sandbox reports bytes"))
            .sum::<u64>()
            > 0
    );
}

#[tokio::test]
async fn traffic_of_an_unknown_order_is_not_found() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let mut client = gateway.traffic();
    let status = client
        .get_traffic(GetTrafficRequest {
            order_code: "ORDER_404".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .get_daily_traffic(GetDailyTrafficRequest {
            order_code: "ORDER_404".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(error_reason(&status).as_deref(), Some("UPSTREAM_NOT_FOUND"));
}

#[tokio::test]
async fn traffic_queries_need_a_well_formed_order_code() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .traffic()
        .get_traffic(GetTrafficRequest {
            order_code: "ORDER_1&orderCode=ORDER_2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["order_code"]);
    assert_eq!(sandbox.total_requests(), 0);
}

#[tokio::test]
async fn traffic_mp_reports_as_null_is_absent_not_zero() {
    // MP's documented queryTraffic example: no volumes, and here no cycle.
    let mp = canned_mp(vec![(
        "/queryTraffic",
        json!({"code": 200, "msg": "Success", "requestId": null, "data": [{
            "eid": null, "packageCode": "LP14230831004073",
            "packageFlow": null, "packageUsedFlow": null,
            "actualStartTime": null, "plannedEndTime": null, "cycle": null
        }]}),
    )])
    .await;
    let gateway = gateway().start_against(&mp).await;
    let package = first_package(&gateway, "ORDER_1").await;
    assert_eq!(package.package_code, "LP14230831004073");
    assert_eq!(package.total_mb, None);
    assert_eq!(package.used_mb, None);
    assert_eq!(package.cycle, None);
}

#[tokio::test]
async fn cycle_counts_the_periods_ordered_plus_those_topped_up() {
    // What PackageTraffic.cycle's comment promises, as the sandbox plays MP.
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let mut orders = gateway.orders();
    let code = orders
        .create_order(CreateOrderRequest {
            product_id: 6,
            order_quantity: Some(3),
            activate: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .order_code;
    let ordered = first_package(&gateway, &code).await;
    assert_eq!(ordered.cycle, Some(3));
    // Product 6 is 1024 MB a cycle; MB as MP reports them.
    assert_eq!(ordered.total_mb, Some(3072.0));
    orders
        .top_up_order(TopUpOrderRequest {
            order_code: code.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let topped_up = first_package(&gateway, &code).await;
    assert_eq!(topped_up.cycle, Some(6));
    assert_eq!(topped_up.total_mb, Some(6144.0));
}
