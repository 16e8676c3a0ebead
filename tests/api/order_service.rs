//! OrderService: ordering eSIMs, switching and topping up orders, their status.

use mp_gateway::proto::order_service_client::OrderServiceClient;
use mp_gateway::proto::{
    CreateOrderRequest, CreateOrderResponse, GetOrderStatusRequest, OrderStatus, SwitchAction,
    SwitchOrderRequest, TopUpOrderRequest,
};
use mp_gateway::sandbox::Fault;
use tonic::Code;
use tonic::transport::Channel;

use serde_json::json;

use crate::support::{
    MpDouble, Reply, canned_mp, error_reason, gateway, gateway_with_sandbox, metric, order,
    violated_fields,
};

async fn status_of(client: &mut OrderServiceClient<Channel>, order_code: &str) -> OrderStatus {
    let packages = client
        .get_order_status(GetOrderStatusRequest {
            order_code: order_code.into(),
            ..Default::default()
        })
        .await
        .expect("status is known")
        .into_inner()
        .packages;
    packages[0].status()
}

async fn switch(
    client: &mut OrderServiceClient<Channel>,
    order_code: &str,
    action: SwitchAction,
) -> Result<(), tonic::Status> {
    client
        .switch_order(SwitchOrderRequest {
            order_code: order_code.into(),
            action: action as i32,
            ..Default::default()
        })
        .await
        .map(drop)
}

#[tokio::test]
async fn create_order_returns_the_activation_code_its_parts_and_install_links() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let created = order(&mut gateway.orders(), 6, false).await;
    assert!(created.order_code.starts_with("ORDER_"));
    assert!(mp_gateway::domain::Iccid::parse(&created.iccid).is_ok());
    assert_eq!(
        created.activation_code,
        format!("LPA:1${}${}", created.smdp_address, created.matching_id)
    );
    assert!(!created.matching_id.is_empty());
    assert!(
        created.ios_install_url.starts_with(
            "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA%3A1%24"
        )
    );
    assert!(
        created.android_install_url.starts_with(
            "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=LPA%3A1%24"
        )
    );
    assert!(created.qr_png.is_empty(), "no PNG unless asked for");
    assert_eq!(sandbox.calls("v2/activationCode"), 1);
}

#[tokio::test]
async fn create_order_returns_a_qr_png_when_asked() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let created = gateway
        .orders()
        .create_order(CreateOrderRequest {
            product_id: 5,
            include_qr_png: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&created.qr_png[..8], b"\x89PNG\r\n\x1a\n");
}

#[tokio::test]
async fn create_order_onto_a_chosen_iccid_uses_it() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let created = gateway
        .orders()
        .create_order(CreateOrderRequest {
            product_id: 6,
            goods_id: Some(37),
            order_quantity: Some(4),
            iccid: Some("8943108169999589689".into()),
            price: Some("12.50".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.iccid, "8943108169999589689");
}

#[tokio::test]
async fn create_order_rejects_an_iccid_with_a_bad_check_digit_before_calling_mp() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .orders()
        .create_order(CreateOrderRequest {
            product_id: 6,
            iccid: Some("8943108169999589680".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["iccid"]);
    assert!(status.message().contains("Luhn"));
    assert_eq!(sandbox.total_requests(), 0);
}

#[tokio::test]
async fn create_order_rejects_short_iccids_bad_prices_and_a_missing_product_all_at_once() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .orders()
        .create_order(CreateOrderRequest {
            iccid: Some("12345".into()),
            price: Some("-1".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["product_id", "iccid", "price"]);
    assert_eq!(sandbox.total_requests(), 0);
}

/// A price JSON would not take as a number (`007`) is the caller's mistake:
/// refused before MP, and the request id stays free for a corrected retry.
#[tokio::test]
async fn a_price_with_leading_zeros_is_refused_and_the_request_id_stays_usable() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let order = |price: &str| CreateOrderRequest {
        product_id: 6,
        price: Some(price.into()),
        request_id: "price-with-zeros".into(),
        ..Default::default()
    };
    let status = gateway
        .orders()
        .create_order(order("007"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["price"]);
    assert_eq!(sandbox.total_requests(), 0);

    gateway
        .orders()
        .create_order(order("7"))
        .await
        .expect("the corrected order goes through");
    assert_eq!(sandbox.calls("v2/activationCode"), 1);
}

#[tokio::test]
async fn an_order_quantity_the_product_does_not_offer_is_refused_naming_the_offered_ones_before_calling_mp()
 {
    use tonic_types::StatusExt;
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .orders()
        .create_order(CreateOrderRequest {
            request_id: "quantity-5".into(),
            product_id: 6,
            order_quantity: Some(5),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "order_quantity");
    assert!(violations[0].description.contains("3, 4"), "{violations:?}");
    assert_eq!(sandbox.calls("v2/activationCode"), 0);
}

#[tokio::test]
async fn an_order_quantity_the_product_offers_still_orders() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    gateway
        .orders()
        .create_order(CreateOrderRequest {
            product_id: 6,
            order_quantity: Some(3),
            ..Default::default()
        })
        .await
        .expect("3 is one of product 6's order quantities");
    assert_eq!(sandbox.calls("v2/activationCode"), 1);
}

#[tokio::test]
async fn an_order_quantity_of_a_product_outside_the_catalogue_is_left_to_mp() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .orders()
        .create_order(CreateOrderRequest {
            product_id: 999,
            order_quantity: Some(5),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ne!(violated_fields(&status), ["order_quantity"], "{status:?}");
    assert_eq!(sandbox.calls("v2/activationCode"), 1, "MP was asked");
}

#[tokio::test]
async fn without_a_product_catalogue_the_order_quantity_is_left_to_mp() {
    // The product list answers 404: no catalogue to check against.
    let created = json!({"code": 200, "msg": "Success", "requestId": null, "data": {
        "iccid": "8943108169999589689",
        "qrCode": "LPA:1$smdp.example$MATCH",
        "orderCode": "ORDER_1",
    }});
    let mp = MpDouble::start(Reply::ByPath(vec![("/activationCode", created)])).await;
    let gateway = gateway().start_against(&mp.base_url()).await;
    let order = gateway
        .orders()
        .create_order(CreateOrderRequest {
            product_id: 6,
            order_quantity: Some(5),
            ..Default::default()
        })
        .await
        .expect("the order is not failed for want of a catalogue")
        .into_inner();
    assert_eq!(order.order_code, "ORDER_1");
}

#[tokio::test]
async fn mps_no_iccid_found_is_a_failed_precondition() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    sandbox.set_fault(Some(Fault::BusinessError {
        code: 500,
        msg: "No ICCID found".into(),
    }));
    let status = gateway
        .orders()
        .create_order(CreateOrderRequest {
            product_id: 6,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&status).as_deref(), Some("NO_ICCID_AVAILABLE"));
    assert!(status.message().contains("No ICCID found"));
}

#[tokio::test]
async fn switching_moves_an_order_through_its_states() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let mut client = gateway.orders();
    let code = order(&mut client, 6, false).await.order_code;
    assert_eq!(status_of(&mut client, &code).await, OrderStatus::NotEnabled);
    switch(&mut client, &code, SwitchAction::On).await.unwrap();
    assert_eq!(status_of(&mut client, &code).await, OrderStatus::InUse);
    switch(&mut client, &code, SwitchAction::Suspend)
        .await
        .unwrap();
    assert_eq!(status_of(&mut client, &code).await, OrderStatus::Suspended);
    switch(&mut client, &code, SwitchAction::Restart)
        .await
        .unwrap();
    assert_eq!(status_of(&mut client, &code).await, OrderStatus::InUse);
    switch(&mut client, &code, SwitchAction::Off).await.unwrap();
    assert_eq!(status_of(&mut client, &code).await, OrderStatus::Finished);
}

#[tokio::test]
async fn an_active_order_reports_its_start_and_end_times() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let mut client = gateway.orders();
    let code = order(&mut client, 6, true).await.order_code;
    let package = client
        .get_order_status(GetOrderStatusRequest {
            order_code: code,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .packages
        .remove(0);
    let start = package.actual_start_time.expect("started").seconds;
    let end = package.planned_end_time.expect("has an end").seconds;
    let now = chrono::Utc::now().timestamp();
    assert!((now - start).abs() < 60, "start {start} is about now {now}");
    assert!(end > start);
    assert!(!package.package_code.is_empty());
}

#[tokio::test]
async fn switch_order_requires_an_action_and_an_order_code() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .orders()
        .switch_order(SwitchOrderRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["order_code", "action"]);
    assert_eq!(sandbox.total_requests(), 0);
}

#[tokio::test]
async fn get_order_status_of_an_unknown_order_is_not_found() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .orders()
        .get_order_status(GetOrderStatusRequest {
            order_code: "ORDER_0000000000000000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(error_reason(&status).as_deref(), Some("UPSTREAM_NOT_FOUND"));
    assert_eq!(
        status.message(),
        "MP has no record of order ORDER_0000000000000000000"
    );
}

#[tokio::test]
async fn top_up_adds_the_ordered_periods_again() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let mut client = gateway.orders();
    let created = client
        .create_order(CreateOrderRequest {
            product_id: 6,
            order_quantity: Some(4),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let top_up = client
        .top_up_order(TopUpOrderRequest {
            order_code: created.order_code.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(top_up.order_code, created.order_code);
    assert_eq!(top_up.renew_period, Some(4));
}

#[tokio::test]
async fn top_up_of_a_finished_order_is_a_failed_precondition_with_mps_words() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let mut client = gateway.orders();
    let code = order(&mut client, 6, true).await.order_code;
    switch(&mut client, &code, SwitchAction::Off).await.unwrap();
    let status = client
        .top_up_order(TopUpOrderRequest {
            order_code: code,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("Finished orders cannot be topped up"),
        "{}",
        status.message()
    );
    use tonic_types::StatusExt;
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "ORDER_FINISHED");
    assert_eq!(info.domain, "mp.linksfield.net");
    assert!(info.metadata.contains_key("upstream_code"));
    assert_eq!(
        info.metadata["upstream_msg"],
        "Finished orders cannot be topped up"
    );
}

#[tokio::test]
async fn top_up_without_an_order_code_is_invalid() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .orders()
        .top_up_order(TopUpOrderRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["order_code"]);
    assert_eq!(sandbox.total_requests(), 0);
}

/// A `grpc-timeout` the gRPC spec does not allow (over 8 digits) is ignored,
/// as tonic's own timer ignores it: the call is answered, not crashed.
#[tokio::test]
async fn an_out_of_spec_grpc_timeout_is_ignored_and_the_call_answered() {
    use prost::Message;

    let (gateway, sandbox) = gateway_with_sandbox().await;
    let message = GetOrderStatusRequest {
        order_code: "ORDER_0000000000000000000".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    mp_gateway::tls::install_crypto_provider();
    let response = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .post(format!(
            "http://{}/linksfield.mp.v1.OrderService/GetOrderStatus",
            gateway.grpc_addr
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "9223372036854775807S")
        .body(frame)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("grpc-status").map(|v| v.as_bytes()),
        Some(b"5".as_slice()),
        "NOT_FOUND from MP's null data: {:?}",
        response.headers()
    );
    assert_eq!(sandbox.calls("queryOrderStatus"), 1);
}

#[tokio::test]
async fn a_status_mp_does_not_document_is_unspecified_with_the_raw_value_not_an_error() {
    let mp = canned_mp(vec![(
        "/queryOrderStatus",
        json!({"code": 200, "msg": "Success", "requestId": null, "data": [{
            "eid": "89491202308310000235", "packageCode": "LP14230831004073",
            "status": "4", "actualStartTime": "07/03/2025 17:11", "plannedEndTime": null
        }]}),
    )])
    .await;
    let gateway = gateway().start_against(&mp).await;
    let package = gateway
        .orders()
        .get_order_status(GetOrderStatusRequest {
            order_code: "ORDER_1".into(),
            ..Default::default()
        })
        .await
        .expect("an unknown status does not fail the call")
        .into_inner()
        .packages
        .remove(0);
    assert_eq!(package.status(), OrderStatus::Unspecified);
    assert_eq!(package.status_raw, "4");
    assert_eq!(package.actual_start_time, None);
    assert_eq!(package.actual_start_time_raw, "07/03/2025 17:11");
    assert_eq!(package.package_code, "LP14230831004073");
    let counted = |field: &'static str| {
        let addr = gateway.http_addr;
        async move {
            let label = format!("field=\"{field}\"");
            metric(addr, "mp_gateway_mp_unexpected_values_total", &[&label]).await
        }
    };
    assert_eq!(counted("status").await, 1.0);
    assert_eq!(counted("actualStartTime").await, 1.0);
}

/// A double that created order ORDER_1 on ICCID …689 with this `qrCode`.
async fn mp_creating_with_qr_code(qr_code: serde_json::Value) -> MpDouble {
    MpDouble::created(serde_json::json!({
        "iccid": "8943108169999589689",
        "qrCode": qr_code,
        "orderCode": "ORDER_1",
    }))
    .await
}

/// CreateOrder (with a QR PNG) through a gateway in front of `mp`, then its
/// retry with the same request id; panics if either fails.
async fn create_twice(mp: &MpDouble, request_id: &str) -> Vec<CreateOrderResponse> {
    let gateway = gateway().start_against(&mp.base_url()).await;
    let request = CreateOrderRequest {
        request_id: request_id.into(),
        product_id: 6,
        include_qr_png: true,
        ..Default::default()
    };
    let mut answers = Vec::new();
    for attempt in ["first", "retry"] {
        let created = gateway
            .orders()
            .create_order(request.clone())
            .await
            .unwrap_or_else(|s| panic!("{attempt}: {s:?}"));
        answers.push(created.into_inner());
    }
    answers
}

#[tokio::test]
async fn an_order_mp_created_with_a_non_lpa_qr_code_is_returned_and_replayed_not_lost() {
    let mp = mp_creating_with_qr_code("SOMETHING-ELSE".into()).await;
    for (attempt, created) in ["first", "retry"]
        .iter()
        .zip(create_twice(&mp, "odd-qr-1").await)
    {
        assert_eq!(created.order_code, "ORDER_1", "{attempt}");
        assert_eq!(created.iccid, "8943108169999589689", "{attempt}");
        assert_eq!(created.activation_code, "SOMETHING-ELSE", "{attempt}");
        assert_eq!(
            (
                created.smdp_address.as_str(),
                created.matching_id.as_str(),
                created.ios_install_url.as_str(),
                created.android_install_url.as_str()
            ),
            ("", "", "", ""),
            "{attempt}: no LPA parts of a non-LPA code"
        );
        assert_eq!(&created.qr_png[..8], b"\x89PNG\r\n\x1a\n", "{attempt}");
    }
    assert_eq!(mp.calls(), 1, "the retry replayed the stored order");
}

#[tokio::test]
async fn an_order_mp_created_without_a_qr_code_is_returned_not_lost() {
    for qr_code in [serde_json::Value::Null, "".into()] {
        let mp = mp_creating_with_qr_code(qr_code.clone()).await;
        for created in create_twice(&mp, "no-qr-1").await {
            assert_eq!(created.order_code, "ORDER_1", "{qr_code}");
            assert_eq!(created.iccid, "8943108169999589689");
            assert_eq!(created.activation_code, "");
            assert_eq!(created.smdp_address, "");
            assert!(created.qr_png.is_empty(), "no PNG of nothing");
        }
        assert_eq!(
            mp.calls(),
            1,
            "{qr_code}: the retry replayed the stored order"
        );
    }
}
