//! Injected faults: MP misbehaving on a real socket, for testing how the
//! gateway copes. A fault applies to every request after auth until cleared,
//! or to the next few only.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::recording::RequestId;
use super::state::{Shared, lock, next_fault};
use super::{Fault, wire};

/// Middleware, innermost: answers with the current fault instead of the
/// handler (or, for a delay, before it).
pub(crate) async fn inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let fault = next_fault(&mut lock(&shared.fault));
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_default()
        .0;
    match fault {
        None => next.run(request).await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::HttpStatus(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = format!("sandbox fault: HTTP {}", status.as_u16());
            (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
        }
        Some(Fault::NotJson) => wire::html(StatusCode::OK, "<html>oops</html>"),
        Some(Fault::BusinessError { code, msg }) => wire::business(request_id, code, msg),
    }
}
