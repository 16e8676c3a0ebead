//! ProductService: MP's catalogue, filtered, with parsed quantities.

use serde_json::json;

use crate::support::{
    canned_mp, error_reason, gateway, gateway_with_sandbox, get_product, list_products, listed_ids,
    metric, violated_fields,
};
use mp_gateway::proto::{GetProductRequest, ListProductsRequest};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn list_products_returns_the_mp_catalogue_with_parsed_quantities() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let products = list_products(&mut gateway.products(), ListProductsRequest::default()).await;
    let ids: Vec<u64> = products.iter().map(|p| p.product_id).collect();
    assert_eq!(ids, [5, 6, 8]);
    let six = &products[1];
    assert_eq!(six.goods_id, Some(37));
    assert_eq!(six.product_name, "1GB/7days");
    assert_eq!(six.order_quantities, [3, 4]);
    assert_eq!(six.cover_country, "460");
    assert_eq!(six.cover_country_name, "China");
    assert_eq!(six.sim_group_code, "SIMGROUP1706570409388478464");
}

#[tokio::test]
async fn list_products_filters_by_goods_id_and_cover_country() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let mut client = gateway.products();
    let by_goods = ListProductsRequest {
        goods_id: Some(35),
        ..Default::default()
    };
    assert_eq!(listed_ids(&mut client, by_goods).await, [5, 8]);
    let elsewhere = ListProductsRequest {
        cover_country: "999".into(),
        ..Default::default()
    };
    assert!(list_products(&mut client, elsewhere).await.is_empty());
}

#[tokio::test]
async fn the_request_id_is_forwarded_to_mp_and_generated_when_empty() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let mut client = gateway.products();
    let reply = client
        .list_products(ListProductsRequest {
            request_id: "trace-me-42".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.request_id, "trace-me-42");
    assert_eq!(
        sandbox.last_request_id("v2/productList").as_deref(),
        Some("trace-me-42")
    );

    // The list is cached now; bypass_cache makes the gateway call MP again.
    let reply = client
        .list_products(ListProductsRequest {
            bypass_cache: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.request_id.len(), 36, "a UUID is generated");
    assert_eq!(
        sandbox.last_request_id("v2/productList"),
        Some(reply.request_id)
    );
}

#[tokio::test]
async fn a_request_id_over_500_bytes_is_rejected_before_mp_is_called() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .products()
        .list_products(ListProductsRequest {
            request_id: "r".repeat(501),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["request_id"]);
    assert_eq!(sandbox.total_requests(), 0);
}

#[tokio::test]
async fn get_product_returns_the_product_with_that_id() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let product = get_product(&mut gateway.products(), 8).await.unwrap();
    assert_eq!(product.product_name, "testtest");
    assert_eq!(product.order_quantities, [2]);
}

#[tokio::test]
async fn get_product_of_an_unknown_id_is_not_found_with_reason_product_not_found() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let status = get_product(&mut gateway.products(), 999).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("999"));
    assert_eq!(error_reason(&status).as_deref(), Some("PRODUCT_NOT_FOUND"));
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.domain, "mp-gateway");
    assert_eq!(info.metadata["product_id"], "999");
}

#[tokio::test]
async fn get_product_without_an_id_is_invalid_and_mp_is_not_called() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .products()
        .get_product(GetProductRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["product_id"]);
    assert_eq!(sandbox.total_requests(), 0);
}

#[tokio::test]
async fn one_malformed_product_row_is_skipped_and_the_other_rows_are_listed() {
    let mp = canned_mp(vec![(
        "/productList",
        json!({"code": 200, "msg": "Success", "requestId": null, "data": [
            {"goodsId": 37, "productId": 6, "orderQuantity": "3,4", "productName": "1GB/7days"},
            {"goodsId": 37, "productId": "six", "orderQuantity": "1"},
            {"goodsId": null, "productId": 7, "orderQuantity": "1"}
        ]}),
    )])
    .await;
    let gateway = gateway().start_against(&mp).await;
    let products = list_products(&mut gateway.products(), ListProductsRequest::default()).await;
    let ids: Vec<(u64, Option<u64>)> = products
        .iter()
        .map(|p| (p.product_id, p.goods_id))
        .collect();
    assert_eq!(ids, vec![(6, Some(37)), (7, None)]);
    let skipped = metric(
        gateway.http_addr,
        "mp_gateway_mp_unexpected_values_total",
        &["field=\"productList\""],
    )
    .await;
    assert_eq!(skipped, 1.0);
}
