//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the real binary sends its spans
//! to that OTLP/gRPC collector, in the caller's trace, and flushes the last
//! ones when it stops.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mp_gateway::proto::GetOrderStatusRequest;
use mp_gateway::proto::order_service_client::OrderServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};

use crate::support::{free_port, loopback, sandbox_binary, sigterm_and_wait, wait_until_ready};

const CALLER_TRACE_ID: &str = "5bf92f3577b34da6a3ce929d0e0e4736";

/// A collector that keeps every export it receives.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn start_collector() -> (SocketAddr, Collector) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (addr, collector)
}

fn start_gateway(grpc: u16, http: u16, collector: SocketAddr) -> Child {
    sandbox_binary(grpc, http)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        // No periodic export (default every 5 s) within the test: only the
        // shutdown flush can deliver the spans.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("REDIS_URL")
        .env_remove("GRPC_AUTH_TOKENS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_in_the_callers_trace_by_shutdown() {
    let (collector_addr, collector) = start_collector().await;
    let (grpc, http) = (free_port(), free_port());
    let mut child = start_gateway(grpc, http, collector_addr);
    wait_until_ready(&mut child, loopback(http), Duration::from_secs(20)).await;
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(GetOrderStatusRequest {
        order_code: "ORDER_EXPORTED".into(),
        request_id: "otlp-export-test".into(),
    });
    let traceparent = format!("00-{CALLER_TRACE_ID}-00f067aa0ba902b7-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    let answer = OrderServiceClient::new(channel)
        .get_order_status(request)
        .await;
    // The sandbox does not know the order: MP was called and answered.
    assert_eq!(
        answer.expect_err("an unknown order").code(),
        tonic::Code::NotFound
    );
    // Long before the batch delay (10 min): only the shutdown flush can deliver them.
    assert!(
        collector.0.lock().unwrap().is_empty(),
        "nothing exported before the shutdown"
    );
    let exit = sigterm_and_wait(child, Duration::from_secs(15)).await;
    assert!(exit.success(), "exit status {exit}");

    let exports = collector.0.lock().unwrap().clone();
    let resource_spans: Vec<_> = exports.iter().flat_map(|e| &e.resource_spans).collect();
    let service_names: Vec<String> = resource_spans
        .iter()
        .filter_map(|rs| rs.resource.as_ref())
        .flat_map(|r| &r.attributes)
        .filter(|kv| kv.key == "service.name")
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert!(
        service_names.iter().all(|name| name == "mp-gateway") && !service_names.is_empty(),
        "{service_names:?}"
    );
    let spans: Vec<_> = resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    let in_trace = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name && hex(&s.trace_id) == CALLER_TRACE_ID)
            .copied()
    };
    let rpc = in_trace("linksfield.mp.v1.OrderService/GetOrderStatus")
        .unwrap_or_else(|| panic!("no rpc span in the caller's trace: {spans:#?}"));
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    assert_eq!(hex(&rpc.parent_span_id), "00f067aa0ba902b7");
    let mp_call = in_trace("MP queryOrderStatus").expect("an MP call span");
    assert_eq!(mp_call.parent_span_id, rpc.span_id);
    let attempt = in_trace("mp attempt").expect("an MP attempt span");
    assert_eq!(attempt.parent_span_id, mp_call.span_id);
    assert_eq!(attempt.kind, SpanKind::Client as i32);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
