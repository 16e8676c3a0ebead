//! W3C trace context: a caller's `traceparent` makes the gateway's spans
//! part of its trace, and MP gets the trace (as `traceparent`) on every call.

use mp_gateway::config::LogFormat;
use mp_gateway::proto::{CreateOrderRequest, GetOrderStatusRequest};

use crate::support::gateway_with_sandbox;

const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// `traceparent` is `version-traceid-parentid-flags`.
fn parts(traceparent: &str) -> Vec<String> {
    traceparent.split('-').map(str::to_owned).collect()
}

async fn order_status_with(traceparent: Option<&str>) -> Option<String> {
    // The subscriber (with its OpenTelemetry layer) is process-wide; later calls are no-ops.
    mp_gateway::telemetry::init(LogFormat::Json, None);
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let mut request = tonic::Request::new(GetOrderStatusRequest {
        order_code: "ORDER_TRACED".into(),
        ..Default::default()
    });
    if let Some(traceparent) = traceparent {
        let value = traceparent.parse().expect("ASCII header");
        request.metadata_mut().insert("traceparent", value);
    }
    // Unknown order: NOT_FOUND, but MP was called.
    let answer = gateway.orders().get_order_status(request).await;
    assert_eq!(
        answer.expect_err("an unknown order").code(),
        tonic::Code::NotFound
    );
    assert_eq!(sandbox.calls("queryOrderStatus"), 1);
    sandbox.last_header("queryOrderStatus", "traceparent")
}

#[tokio::test]
async fn the_callers_trace_id_reaches_mp_in_traceparent() {
    let incoming = format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01");
    let sent = order_status_with(Some(&incoming))
        .await
        .expect("MP gets a traceparent");
    let sent = parts(&sent);
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[1], CALLER_TRACE_ID, "same trace: {sent:?}");
    assert_ne!(
        sent[2], CALLER_SPAN_ID,
        "the gateway's own span is MP's parent"
    );
    assert_eq!(sent[3], "01", "still sampled");
}

#[tokio::test]
async fn a_call_without_trace_context_starts_a_trace_mp_joins() {
    let sent = order_status_with(None)
        .await
        .expect("MP gets a traceparent");
    let sent = parts(&sent);
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[0], "00", "W3C version 00: {sent:?}");
    assert!(is_lower_hex(&sent[1], 32), "a 32-hex trace id: {sent:?}");
    assert_ne!(sent[1], "0".repeat(32), "a real trace id: {sent:?}");
    assert_ne!(sent[1], CALLER_TRACE_ID);
    assert!(is_lower_hex(&sent[2], 16), "a 16-hex span id: {sent:?}");
    assert_ne!(sent[2], "0".repeat(16), "a real span id: {sent:?}");
    // No sampler is configured (src/telemetry.rs): the SDK's default,
    // ParentBased(AlwaysOn), samples a root span.
    assert_eq!(sent[3], "01", "sampled: {sent:?}");
}

/// `len` lowercase hex digits, as W3C trace context requires.
fn is_lower_hex(field: &str, len: usize) -> bool {
    field.len() == len
        && field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[tokio::test]
async fn an_order_made_in_its_own_task_still_joins_the_callers_trace() {
    mp_gateway::telemetry::init(LogFormat::Json, None);
    let (gateway, sandbox) = gateway_with_sandbox().await;
    // With a request id the order runs in a task of its own (it outlives a
    // caller that gives up); the trace must go with it.
    let mut request = tonic::Request::new(CreateOrderRequest {
        product_id: 6,
        request_id: "traced-order-1".into(),
        ..Default::default()
    });
    let incoming = format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01");
    request
        .metadata_mut()
        .insert("traceparent", incoming.parse().expect("ASCII header"));
    gateway
        .orders()
        .create_order(request)
        .await
        .expect("the order is made");
    let sent = sandbox
        .last_header("v2/activationCode", "traceparent")
        .expect("MP gets a traceparent");
    assert_eq!(parts(&sent)[1], CALLER_TRACE_ID, "same trace: {sent}");
}
