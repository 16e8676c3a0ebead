//! How MP's failures reach callers: every one a clear status, none a crash.

use std::time::Duration;

use mp_gateway::config::Upstream;
use mp_gateway::proto::{
    CreateOrderRequest, GetOrderStatusRequest, ListProductsRequest, TopUpOrderRequest,
};
use mp_gateway::sandbox::Fault;
use secrecy::SecretString;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{
    MpDouble, Reply, closed_port, error_reason, gateway, gateway_with_sandbox, with_timeout,
};

fn list() -> ListProductsRequest {
    ListProductsRequest::default()
}

#[tokio::test]
async fn mp_answering_http_500_is_unavailable_with_retry_info_and_the_gateway_keeps_serving() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let mut client = gateway.products();
    sandbox.set_fault(Some(Fault::HttpStatus(500)));
    let status = client.list_products(list()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.get_details_retry_info().is_some());
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("UPSTREAM_HTTP_ERROR")
    );

    sandbox.set_fault(None);
    assert_eq!(
        client
            .list_products(list())
            .await
            .unwrap()
            .into_inner()
            .products
            .len(),
        3
    );
}

#[tokio::test]
async fn mp_answering_a_non_json_body_is_unavailable() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    sandbox.set_fault(Some(Fault::NotJson));
    let status = gateway.products().list_products(list()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("UPSTREAM_BAD_RESPONSE")
    );
}

#[tokio::test]
async fn mp_not_listening_is_unavailable_and_the_gateway_keeps_serving() {
    let gateway = gateway()
        .start_against(&format!("http://{}", closed_port().await))
        .await;
    let mut client = gateway.products();
    for _ in 0..3 {
        let status = client.list_products(list()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.get_details_retry_info().is_some());
    }
    // The gateway itself still answers: validation needs no MP.
    let status = client
        .list_products(ListProductsRequest {
            request_id: "x".repeat(600),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn mp_slower_than_the_callers_deadline_is_deadline_exceeded() {
    // Neither MP_TIMEOUT nor MP's delay may end the call before the caller's deadline.
    let (gateway, sandbox) = gateway().mp_timeout(Duration::from_secs(30)).start().await;
    sandbox.set_fault(Some(Fault::Delay(Duration::from_secs(10))));
    let request = with_timeout(
        GetOrderStatusRequest {
            order_code: "ORDER_1".into(),
            ..Default::default()
        },
        Duration::from_millis(1000),
    );
    let started = std::time::Instant::now();
    let status = gateway
        .orders()
        .get_order_status(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the caller's deadline bounded the MP call"
    );
}

#[tokio::test]
async fn mp_slower_than_mp_timeout_is_deadline_exceeded_with_a_reason() {
    let (gateway, sandbox) = gateway()
        .mp_timeout(Duration::from_millis(200))
        .start()
        .await;
    sandbox.set_fault(Some(Fault::Delay(Duration::from_secs(2))));
    let status = gateway.products().list_products(list()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(error_reason(&status).as_deref(), Some("UPSTREAM_TIMEOUT"));
}

#[tokio::test]
async fn a_wrong_secret_key_is_internal_upstream_auth_failed() {
    let (gateway, sandbox) = gateway()
        .with(|config| {
            if let Upstream::Mp { secret_key, .. } = &mut config.upstream {
                *secret_key = SecretString::from("not-the-secret");
            }
        })
        .start()
        .await;
    let status = gateway.products().list_products(list()).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("UPSTREAM_AUTH_FAILED")
    );
    assert_eq!(
        sandbox.calls("v2/productList"),
        0,
        "the sandbox refused it before the handler"
    );
}

#[tokio::test]
async fn an_mp_business_error_keeps_mps_code_and_message() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    sandbox.set_fault(Some(Fault::BusinessError {
        code: 5001,
        msg: "Order does not exist".into(),
    }));
    let status = gateway
        .orders()
        .top_up_order(TopUpOrderRequest {
            order_code: "ORDER_1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("Order does not exist"));
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.metadata["upstream_code"], "5001");
    assert_eq!(info.domain, "mp.linksfield.net");
}

fn create() -> CreateOrderRequest {
    CreateOrderRequest {
        request_id: "order-1".into(),
        product_id: 6,
        ..Default::default()
    }
}

#[tokio::test]
async fn an_mp_refusal_with_empty_data_keeps_mps_code_and_message_and_is_definite() {
    for data in [r#""""#, "{}", "[]"] {
        let body = format!(r#"{{"code":5002,"msg":"Product is off the shelf","data":{data}}}"#);
        let mp = MpDouble::start(Reply::Json(body)).await;
        let gateway = gateway().start_against(&mp.base_url()).await;
        let status = gateway.orders().create_order(create()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "data {data}: {status:?}"
        );
        assert!(
            status.message().contains("Product is off the shelf"),
            "{data}"
        );
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "UPSTREAM_REJECTED", "{data}");
        assert_eq!(info.metadata["upstream_code"], "5002", "{data}");
        assert_eq!(info.metadata["upstream_msg"], "Product is off the shelf");
    }
}

#[tokio::test]
async fn an_http_4xx_keeps_mps_message_from_an_envelope_or_plain_text() {
    let cases = [
        (
            "application/json",
            r#"{"code":400,"msg":"productId must not be null","data":null}"#,
            Some("400"),
            "productId must not be null",
        ),
        (
            "text/plain",
            "  IP 10.0.0.7 is not whitelisted\n",
            None,
            "IP 10.0.0.7 is not whitelisted",
        ),
    ];
    for (content_type, body, upstream_code, msg) in cases {
        let mp = MpDouble::start(Reply::Status(403, content_type, body.into())).await;
        let gateway = gateway().start_against(&mp.base_url()).await;
        let status = gateway.orders().create_order(create()).await.unwrap_err();
        assert!(status.message().contains(msg), "{status:?}");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "UPSTREAM_HTTP_ERROR");
        assert_eq!(info.metadata["http_status"], "403");
        assert_eq!(info.metadata["upstream_msg"], msg);
        assert_eq!(
            info.metadata.get("upstream_code").map(String::as_str),
            upstream_code
        );
    }
}
