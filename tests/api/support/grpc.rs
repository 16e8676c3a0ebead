//! Around gRPC calls: bearer tokens on requests, and the details of statuses.

use tonic_types::StatusExt;

/// `message` as a request carrying `authorization: Bearer <token>`, if a token is given.
pub fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("ASCII header");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The field names of a status's `BadRequest` details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|br| br.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo.reason` of a status, if it has one.
pub fn error_reason(status: &tonic::Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

/// `message` as a request whose caller gives up after `timeout` (`grpc-timeout`).
pub fn with_timeout<T>(message: T, timeout: std::time::Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// A SubscribeAlarms stream over a connection with a 64 KiB receive window (as
/// many clients have): left unread, HTTP/2 flow control soon stops the server
/// from sending anything more on it, trailers included.
pub async fn subscriber_that_never_reads(
    grpc_addr: std::net::SocketAddr,
) -> tonic::Streaming<mp_gateway::proto::SubscribeAlarmsResponse> {
    let small_window = tonic::transport::Channel::from_shared(format!("http://{grpc_addr}"))
        .expect("valid URI")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .expect("connects");
    mp_gateway::proto::alarm_service_client::AlarmServiceClient::new(small_window)
        .subscribe_alarms(mp_gateway::proto::SubscribeAlarmsRequest::default())
        .await
        .expect("subscription starts")
        .into_inner()
}

/// An alarm callback body padded so that a few hundred alarms fill a 64 KiB window.
pub fn padded_callback_body(i: usize) -> serde_json::Value {
    super::callback_body("ORDER_1", "53%", &format!("{i}-{}", "x".repeat(120)))
}

/// The gateway's shared subscriptions, as ListSubscriptions reports them.
pub async fn list_subscriptions(
    gateway: &super::TestGateway,
) -> Vec<mp_gateway::proto::SharedSubscription> {
    gateway
        .alarms()
        .list_subscriptions(mp_gateway::proto::ListSubscriptionsRequest::default())
        .await
        .expect("ListSubscriptions answers")
        .into_inner()
        .subscriptions
}
