//! Every gateway error becomes a gRPC status here, with `google.rpc` details.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::alarms::{BusError, SubscriptionEnd};
use crate::error::GatewayError;
use crate::idempotency::{IdempotencyError, RunError};
use crate::mp::{MpError, UpstreamLimit};

/// The `ErrorInfo.domain` of every upstream error.
pub const MP_DOMAIN: &str = "mp.linksfield.net";
/// The `ErrorInfo.domain` of errors the gateway itself raises.
pub const GATEWAY_DOMAIN: &str = "mp-gateway";
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Self {
        let message = error.to_string();
        match error {
            GatewayError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            GatewayError::NotFound(_) => Status::not_found(message),
            GatewayError::Internal(_) => Status::internal(message),
            GatewayError::Mp(mp) => upstream_status(mp, message),
            GatewayError::Idempotency(error) => idempotency_status(&error, message),
            GatewayError::AlarmLog(BusError::OutOfRange(after)) => {
                let metadata = HashMap::from([("resume_after".to_owned(), after.to_string())]);
                let details = ErrorDetails::with_error_info(
                    "RESUME_POINT_NOT_RETAINED",
                    GATEWAY_DOMAIN,
                    metadata,
                );
                Status::with_error_details(Code::OutOfRange, message, details)
            }
            GatewayError::AlarmLog(BusError::Unavailable(_)) => {
                let mut details = ErrorDetails::with_error_info(
                    "ALARM_LOG_UNAVAILABLE",
                    GATEWAY_DOMAIN,
                    HashMap::new(),
                );
                details.set_retry_info(Some(RETRY_AFTER));
                Status::with_error_details(Code::Unavailable, message, details)
            }
        }
    }
}

impl From<MpError> for Status {
    fn from(error: MpError) -> Self {
        GatewayError::from(error).into()
    }
}

impl From<RunError> for Status {
    fn from(error: RunError) -> Self {
        GatewayError::from(error).into()
    }
}

impl From<BusError> for Status {
    fn from(error: BusError) -> Self {
        GatewayError::from(error).into()
    }
}

/// How an alarm stream ends: with a status the subscriber can act on.
impl From<SubscriptionEnd> for Status {
    fn from(end: SubscriptionEnd) -> Self {
        match end {
            SubscriptionEnd::Lagged { last } => {
                let last = last.map(|id| id.to_string()).unwrap_or_default();
                let details = ErrorDetails::with_error_info(
                    "SUBSCRIBER_TOO_SLOW",
                    GATEWAY_DOMAIN,
                    HashMap::from([("last_alarm_id".to_owned(), last.clone())]),
                );
                Status::with_error_details(
                    Code::ResourceExhausted,
                    format!(
                        "this subscriber fell behind the relay's buffer; subscribe again with resume_after set to the last alarm id you received ({last:?} was the last sent)"
                    ),
                    details,
                )
            }
            SubscriptionEnd::Closed => Status::unavailable(
                "the gateway is shutting down; subscribe again (another replica) with resume_after set to the last alarm id you received",
            ),
        }
    }
}

fn upstream_status(error: MpError, message: String) -> Status {
    let info = |reason: &str, metadata: HashMap<String, String>| {
        ErrorDetails::with_error_info(reason, MP_DOMAIN, metadata)
    };
    let retryable = |reason: &str, metadata| {
        let mut details = info(reason, metadata);
        details.set_retry_info(Some(RETRY_AFTER));
        details
    };
    let (code, details) = match &error {
        MpError::NullData(_) => (Code::NotFound, info("UPSTREAM_NOT_FOUND", HashMap::new())),
        MpError::Business { code, msg } => {
            let (status_code, reason) = classify_business_error(msg);
            let metadata = HashMap::from([
                ("upstream_code".to_owned(), code.to_string()),
                ("upstream_msg".to_owned(), msg.clone()),
            ]);
            (status_code, info(reason, metadata))
        }
        MpError::NotSent(_) | MpError::Unreachable(_) => (
            Code::Unavailable,
            retryable("UPSTREAM_UNAVAILABLE", HashMap::new()),
        ),
        MpError::HttpStatus {
            status: http,
            upstream_code,
            msg,
        } => {
            let mut metadata = HashMap::from([("http_status".to_owned(), http.to_string())]);
            if let Some(code) = upstream_code {
                metadata.insert("upstream_code".to_owned(), code.to_string());
            }
            if let Some(msg) = msg {
                metadata.insert("upstream_msg".to_owned(), msg.clone());
            }
            if *http >= 500 || *http == 429 {
                (
                    Code::Unavailable,
                    retryable("UPSTREAM_HTTP_ERROR", metadata),
                )
            } else {
                // Any other 4xx means we sent something MP's gateway does not accept: our bug.
                (Code::Internal, info("UPSTREAM_HTTP_ERROR", metadata))
            }
        }
        MpError::Malformed(_) => (
            Code::Unavailable,
            info("UPSTREAM_BAD_RESPONSE", HashMap::new()),
        ),
        MpError::Timeout(_) => (
            Code::DeadlineExceeded,
            info("UPSTREAM_TIMEOUT", HashMap::new()),
        ),
        MpError::Overloaded { limit, retry_after } => {
            // The gateway's own limit, so its own domain: MP never saw the call.
            let reason = match limit {
                UpstreamLimit::Concurrency => "UPSTREAM_CONCURRENCY_LIMIT",
                UpstreamLimit::Rate => "UPSTREAM_RATE_LIMIT",
            };
            let mut details = ErrorDetails::with_error_info(reason, GATEWAY_DOMAIN, HashMap::new());
            details.set_retry_info(Some(*retry_after));
            (Code::ResourceExhausted, details)
        }
        MpError::AuthFailed => {
            tracing::error!(
                "MP rejected the gateway's request signature: check MP_ACCESS_KEY and MP_SECRET_KEY"
            );
            (Code::Internal, info("UPSTREAM_AUTH_FAILED", HashMap::new()))
        }
    };
    Status::with_error_details(code, message, details)
}

fn idempotency_status(error: &IdempotencyError, message: String) -> Status {
    let info = |reason: &str| ErrorDetails::with_error_info(reason, GATEWAY_DOMAIN, HashMap::new());
    let (code, details) = match error {
        IdempotencyError::Conflict(_) => {
            let mut details = ErrorDetails::new();
            details
                .add_bad_request_violation("request_id", "was already used with other parameters");
            (Code::InvalidArgument, details)
        }
        IdempotencyError::InProgress(_) => {
            let mut details = info("REQUEST_IN_PROGRESS");
            details.set_retry_info(Some(RETRY_AFTER));
            (Code::Aborted, details)
        }
        IdempotencyError::OutcomeUnknown(request_id) => {
            let metadata = HashMap::from([("request_id".to_owned(), request_id.clone())]);
            let details =
                ErrorDetails::with_error_info("OUTCOME_UNKNOWN", GATEWAY_DOMAIN, metadata);
            (Code::Aborted, details)
        }
        IdempotencyError::NotFound(request_id) => {
            let metadata = HashMap::from([("request_id".to_owned(), request_id.clone())]);
            let details =
                ErrorDetails::with_error_info("REQUEST_ID_NOT_FOUND", GATEWAY_DOMAIN, metadata);
            (Code::NotFound, details)
        }
        IdempotencyError::Store(_) => {
            let mut details = info("IDEMPOTENCY_STORE_UNAVAILABLE");
            details.set_retry_info(Some(RETRY_AFTER));
            (Code::Unavailable, details)
        }
    };
    Status::with_error_details(code, message, details)
}

/// MP reports business errors only as text; these are the ones its document names.
fn classify_business_error(msg: &str) -> (Code, &'static str) {
    let msg = msg.to_ascii_lowercase();
    let has = |needle: &str| msg.contains(needle);
    if has("finished") {
        (Code::FailedPrecondition, "ORDER_FINISHED")
    } else if has("no iccid found") {
        // MP's "friendly prompt" for an order quantity the product does not offer, or no stock.
        (Code::FailedPrecondition, "NO_ICCID_AVAILABLE")
    } else if has("not exist") || has("not found") {
        (Code::NotFound, "UPSTREAM_NOT_FOUND")
    } else if has("already") {
        (Code::AlreadyExists, "UPSTREAM_ALREADY_EXISTS")
    } else if has("invalid") || has("required") || has("param") {
        (Code::InvalidArgument, "UPSTREAM_INVALID_ARGUMENT")
    } else {
        (Code::FailedPrecondition, "UPSTREAM_REJECTED")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_orders_are_a_failed_precondition_with_error_info() {
        let status = Status::from(GatewayError::Mp(MpError::Business {
            code: 500,
            msg: "Finished orders cannot be topped up".into(),
        }));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(
            status
                .message()
                .contains("Finished orders cannot be topped up")
        );
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "ORDER_FINISHED");
        assert_eq!(info.domain, MP_DOMAIN);
        assert_eq!(info.metadata["upstream_code"], "500");
    }

    #[test]
    fn an_unreachable_mp_is_unavailable_with_retry_info() {
        let status = Status::from(GatewayError::Mp(MpError::Unreachable("refused".into())));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.get_details_retry_info().is_some());
    }

    #[test]
    fn a_call_over_an_upstream_limit_is_resource_exhausted_with_retry_info() {
        for (limit, reason) in [
            (UpstreamLimit::Concurrency, "UPSTREAM_CONCURRENCY_LIMIT"),
            (UpstreamLimit::Rate, "UPSTREAM_RATE_LIMIT"),
        ] {
            let status = Status::from(GatewayError::Mp(MpError::Overloaded {
                limit,
                retry_after: Duration::from_millis(300),
            }));
            assert_eq!(status.code(), Code::ResourceExhausted);
            let info = status.get_details_error_info().unwrap();
            assert_eq!(info.reason, reason);
            assert_eq!(info.domain, GATEWAY_DOMAIN);
            let retry = status.get_details_retry_info().unwrap();
            assert_eq!(retry.retry_delay, Some(Duration::from_millis(300)));
        }
    }

    #[test]
    fn bad_input_lists_every_field_violation() {
        use crate::domain::FieldViolation;
        let status = Status::from(GatewayError::InvalidArgument(vec![
            FieldViolation::new("iccid", "is bad"),
            FieldViolation::new("price", "is bad"),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<_> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["iccid", "price"]);
    }
}
