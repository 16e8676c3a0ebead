//! What the sandbox remembers about the requests it receives, so tests can
//! ask how often (and with which requestId) the gateway called MP.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::state::Shared;
use super::{ENDPOINTS, PATH_PREFIX, wire};
use crate::mp::signing::parse_query;

/// Bodies larger than this are refused: MP's bodies are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// The requestId the caller sent, echoed in the envelope. Set on every
/// request that passed auth.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestId(pub Option<String>);

/// Middleware, outermost: counts every request, even ones auth rejects,
/// and how many are being served at once.
pub(crate) async fn count_request(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    shared.stats.count_request();
    let _in_flight = shared.stats.enter();
    next.run(request).await
}

/// Middleware, after auth: counts the call per endpoint and notes its
/// requestId (query for GET, JSON body for POST). The body is buffered and
/// handed on unchanged.
pub(crate) async fn record_call(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return wire::bad_request(None, "Request body is too large".to_owned());
    };
    let request_id = body_request_id(&bytes).or_else(|| query_request_id(parts.uri.query()));
    if let Some(endpoint) = endpoint_of(parts.uri.path()) {
        shared
            .stats
            .record_call(endpoint, request_id.clone(), &parts.headers);
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(RequestId(request_id));
    next.run(request).await
}

/// The endpoint name (`"v2/topUp"`) of one of MP's paths.
fn endpoint_of(path: &str) -> Option<&'static str> {
    let name = path.strip_prefix(PATH_PREFIX)?;
    ENDPOINTS.iter().copied().find(|endpoint| *endpoint == name)
}

fn query_request_id(query: Option<&str>) -> Option<String> {
    parse_query(query?)
        .into_iter()
        .find_map(|(key, value)| (key == "requestId").then_some(value))
}

/// A JSON body's `requestId`; a number is taken as its text. Unreadable
/// bodies have none (the handler rejects them).
fn body_request_id(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    match json.get("requestId")? {
        serde_json::Value::String(id) => Some(id.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_come_from_the_body_or_the_query() {
        assert_eq!(
            body_request_id(br#"{"requestId":"r-1"}"#),
            Some("r-1".into())
        );
        assert_eq!(body_request_id(br#"{"requestId":7}"#), Some("7".into()));
        assert_eq!(body_request_id(b"not json"), None);
        assert_eq!(
            query_request_id(Some("orderCode=X&requestId=a%20b")),
            Some("a b".into())
        );
        assert_eq!(query_request_id(None), None);
    }

    #[test]
    fn only_mp_paths_are_endpoints() {
        assert_eq!(endpoint_of("/mp-api/api/esim/v2/topUp"), Some("v2/topUp"));
        assert_eq!(endpoint_of("/mp-api/api/esim/v2/nothing"), None);
        assert_eq!(endpoint_of("/v2/topUp"), None);
    }
}
