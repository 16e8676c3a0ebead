//! `POST /mp/alarm-callback`: where MP reports usage alarms. MP gets its
//! envelope with code 200 only once the alarm is in the bus.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::callback_body::parse_callback;
use super::{AlarmBus, Published, metrics};
use crate::telemetry::OncePerInterval;

pub const PATH: &str = "/mp/alarm-callback";
/// MP's bodies are a few hundred bytes; anything near this is not MP.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the callback endpoint needs.
#[derive(Clone)]
pub struct CallbackState {
    pub bus: AlarmBus,
    /// When set, `?token=` must match it.
    pub token: Option<Arc<SecretString>>,
}

pub fn router(state: CallbackState) -> axum::Router {
    axum::Router::new()
        .route(PATH, post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// MP's envelope, so MP's client reads our answer as it reads its own.
fn envelope(status: StatusCode, msg: &str, request_id: Option<&str>) -> Response {
    let code = status.as_u16();
    (
        status,
        Json(json!({"code": code, "msg": msg, "data": null, "requestId": request_id})),
    )
        .into_response()
}

fn token_matches(expected: &SecretString, query: Option<&str>) -> bool {
    let presented = query
        .into_iter()
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    bool::from(
        presented
            .as_bytes()
            .ct_eq(expected.expose_secret().as_bytes()),
    )
}

async fn receive(
    State(state): State<CallbackState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(expected) = &state.token
        && !token_matches(expected, query.as_deref())
    {
        static REFUSED: OncePerInterval = OncePerInterval::new(Duration::from_secs(10));
        if let Some(refused) = REFUSED.tick() {
            tracing::warn!(
                refused,
                "alarm callbacks refused for a missing or wrong token since the last such line (at most one line per 10 s; see mp_gateway_alarms_rejected_total)"
            );
        }
        metrics::rejected("unauthorized");
        return envelope(StatusCode::UNAUTHORIZED, "missing or wrong token", None);
    }
    let report = match parse_callback(&body, crate::millis::now()) {
        Ok(report) => report,
        Err(error) => {
            static MALFORMED: OncePerInterval = OncePerInterval::new(Duration::from_secs(10));
            if let Some(refused) = MALFORMED.tick() {
                tracing::warn!(%error, refused, "alarm callbacks refused as malformed since the last such line (at most one line per 10 s; this one's reason given)");
            }
            metrics::rejected("malformed");
            return envelope(StatusCode::BAD_REQUEST, &error.to_string(), None);
        }
    };
    let request_id = report.request_id.clone();
    match state.bus.publish(report).await {
        Ok(Published::New(id)) => {
            // Per callback: DEBUG (the counters say how many; RUST_LOG can ask).
            tracing::debug!(alarm_id = %id, "alarm accepted");
            metrics::received();
            envelope(StatusCode::OK, "Success", request_id.as_deref())
        }
        Ok(Published::Duplicate) => {
            metrics::duplicate();
            tracing::debug!(
                request_id = request_id.as_deref(),
                "repeated alarm callback acknowledged, not relayed again"
            );
            envelope(StatusCode::OK, "Success", request_id.as_deref())
        }
        Err(error) => {
            // MP must not take this as delivered; a non-200 makes it retry (if it does).
            tracing::error!(%error, "alarm callback could not be stored");
            metrics::rejected("unavailable");
            envelope(
                StatusCode::SERVICE_UNAVAILABLE,
                "alarm could not be stored; retry",
                request_id.as_deref(),
            )
        }
    }
}
