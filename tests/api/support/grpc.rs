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
