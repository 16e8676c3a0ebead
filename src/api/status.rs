//! Every gateway error becomes a gRPC status here, with `google.rpc` details.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::alarms::shared::SharedError;
use crate::alarms::{BusError, SubscriptionEnd};
use crate::error::GatewayError;
use crate::idempotency::{IdempotencyError, RunError};
use crate::mp::{MpError, UpstreamLimit};

/// The `ErrorInfo.domain` of every upstream error.
pub const MP_DOMAIN: &str = "mp.linksfield.net";
/// The `ErrorInfo.domain` of errors the gateway itself raises.
pub const GATEWAY_DOMAIN: &str = "mp-gateway";
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Every `ErrorInfo.reason` the gateway sends: the value names of
/// `linksfield.mp.v1.ErrorReason` without their `ERROR_REASON_` prefix.
pub mod reason {
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    pub const PRODUCT_NOT_FOUND: &str = "PRODUCT_NOT_FOUND";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const MISSING_TOKEN: &str = "MISSING_TOKEN";
    pub const INVALID_TOKEN: &str = "INVALID_TOKEN";
    pub const RESUME_POINT_NOT_RETAINED: &str = "RESUME_POINT_NOT_RETAINED";
    pub const RESUME_POINT_BEYOND_NEWEST: &str = "RESUME_POINT_BEYOND_NEWEST";
    pub const ALARM_LOG_UNAVAILABLE: &str = "ALARM_LOG_UNAVAILABLE";
    pub const SUBSCRIBER_TOO_SLOW: &str = "SUBSCRIBER_TOO_SLOW";
    pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
    pub const ALARM_BUS_CLOSED: &str = "ALARM_BUS_CLOSED";
    pub const REQUEST_ID_REUSED: &str = "REQUEST_ID_REUSED";
    pub const REQUEST_IN_PROGRESS: &str = "REQUEST_IN_PROGRESS";
    pub const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";
    pub const REQUEST_ID_NOT_FOUND: &str = "REQUEST_ID_NOT_FOUND";
    pub const IDEMPOTENCY_STORE_UNAVAILABLE: &str = "IDEMPOTENCY_STORE_UNAVAILABLE";
    pub const UPSTREAM_NOT_FOUND: &str = "UPSTREAM_NOT_FOUND";
    pub const ORDER_FINISHED: &str = "ORDER_FINISHED";
    pub const NO_ICCID_AVAILABLE: &str = "NO_ICCID_AVAILABLE";
    pub const UPSTREAM_ALREADY_EXISTS: &str = "UPSTREAM_ALREADY_EXISTS";
    pub const UPSTREAM_INVALID_ARGUMENT: &str = "UPSTREAM_INVALID_ARGUMENT";
    pub const UPSTREAM_REJECTED: &str = "UPSTREAM_REJECTED";
    pub const UPSTREAM_UNAVAILABLE: &str = "UPSTREAM_UNAVAILABLE";
    pub const UPSTREAM_HTTP_ERROR: &str = "UPSTREAM_HTTP_ERROR";
    pub const UPSTREAM_BAD_RESPONSE: &str = "UPSTREAM_BAD_RESPONSE";
    pub const UPSTREAM_TIMEOUT: &str = "UPSTREAM_TIMEOUT";
    pub const UPSTREAM_CONCURRENCY_LIMIT: &str = "UPSTREAM_CONCURRENCY_LIMIT";
    pub const UPSTREAM_RATE_LIMIT: &str = "UPSTREAM_RATE_LIMIT";
    pub const UPSTREAM_AUTH_FAILED: &str = "UPSTREAM_AUTH_FAILED";
    pub const UNKNOWN_ACK_ID: &str = "UNKNOWN_ACK_ID";
    pub const SUBSCRIPTION_DELETED: &str = "SUBSCRIPTION_DELETED";
    pub const SUBSCRIPTION_NOT_FOUND: &str = "SUBSCRIPTION_NOT_FOUND";
}

/// `ErrorInfo` in the gateway's own domain.
fn gateway_info(reason: &str, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason, GATEWAY_DOMAIN, metadata)
}

/// `ErrorInfo` in the gateway's domain, with `RetryInfo`: trying again later may work.
fn gateway_retryable(reason: &str, metadata: HashMap<String, String>) -> ErrorDetails {
    let mut details = gateway_info(reason, metadata);
    details.set_retry_info(Some(RETRY_AFTER));
    details
}

/// Why the auth layer refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `authorization: Bearer <token>` header.
    Missing,
    /// A bearer token the gateway does not accept.
    Invalid,
}

/// UNAUTHENTICATED, naming what the caller must send but none of the server's settings.
pub fn unauthenticated(failure: AuthFailure) -> Status {
    let (reason, message) = match failure {
        AuthFailure::Missing => (
            reason::MISSING_TOKEN,
            "missing bearer token: send `authorization: Bearer <token>` with a token this gateway accepts",
        ),
        AuthFailure::Invalid => (
            reason::INVALID_TOKEN,
            "unknown bearer token: send `authorization: Bearer <token>` with a token this gateway accepts",
        ),
    };
    Status::with_error_details(
        Code::Unauthenticated,
        message,
        gateway_info(reason, HashMap::new()),
    )
}

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Self {
        let message = error.to_string();
        match error {
            GatewayError::InvalidArgument(violations) => {
                let mut details = gateway_info(reason::INVALID_REQUEST, HashMap::new());
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            GatewayError::ProductNotFound(product_id) => {
                let metadata = HashMap::from([("product_id".to_owned(), product_id.to_string())]);
                let details = gateway_info(reason::PRODUCT_NOT_FOUND, metadata);
                Status::with_error_details(Code::NotFound, message, details)
            }
            GatewayError::Internal(_) => Status::with_error_details(
                Code::Internal,
                message,
                gateway_info(reason::INTERNAL_ERROR, HashMap::new()),
            ),
            GatewayError::Mp(mp) => upstream_status(mp, message),
            GatewayError::Idempotency(error) => idempotency_status(&error, message),
            GatewayError::AlarmLog(BusError::OutOfRange(after)) => {
                let metadata = HashMap::from([("resume_after".to_owned(), after.to_string())]);
                let details = gateway_info(reason::RESUME_POINT_NOT_RETAINED, metadata);
                Status::with_error_details(Code::OutOfRange, message, details)
            }
            GatewayError::AlarmLog(BusError::BeyondNewest(after)) => {
                let metadata = HashMap::from([("resume_after".to_owned(), after.to_string())]);
                let mut details = gateway_info(reason::RESUME_POINT_BEYOND_NEWEST, metadata);
                details.add_bad_request_violation(
                    "resume_after",
                    "is later than the newest alarm: use the id of an alarm you received",
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            GatewayError::Shared(error) => shared_status(error, message),
            GatewayError::AlarmLog(BusError::Unavailable(_)) => {
                let details = gateway_retryable(reason::ALARM_LOG_UNAVAILABLE, HashMap::new());
                Status::with_error_details(Code::Unavailable, message, details)
            }
        }
    }
}

impl From<SharedError> for Status {
    fn from(error: SharedError) -> Self {
        GatewayError::from(error).into()
    }
}

fn shared_status(error: SharedError, message: String) -> Status {
    let subscription = |name: String| HashMap::from([("subscription".to_owned(), name)]);
    match error {
        SharedError::Deleted(name) => Status::with_error_details(
            Code::NotFound,
            format!("{message}; consuming it again creates it anew, from the newest alarm"),
            gateway_info(reason::SUBSCRIPTION_DELETED, subscription(name)),
        ),
        SharedError::NotFound(name) => Status::with_error_details(
            Code::NotFound,
            message,
            gateway_info(reason::SUBSCRIPTION_NOT_FOUND, subscription(name)),
        ),
        SharedError::UnknownAckIds(ids) => {
            let first = ids.first().map(|(_, id)| id.clone()).unwrap_or_default();
            let mut details = gateway_info(
                reason::UNKNOWN_ACK_ID,
                HashMap::from([("ack_id".to_owned(), first)]),
            );
            for (field, id) in ids {
                details.add_bad_request_violation(
                    field,
                    format!("{id:?} was not delivered on this stream, or was already acked or nacked on it"),
                );
            }
            Status::with_error_details(Code::InvalidArgument, message, details)
        }
        SharedError::Unavailable(_) => Status::with_error_details(
            Code::Unavailable,
            message,
            gateway_retryable(reason::ALARM_LOG_UNAVAILABLE, HashMap::new()),
        ),
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
                let details = gateway_info(
                    reason::SUBSCRIBER_TOO_SLOW,
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
            SubscriptionEnd::ShuttingDown => Status::with_error_details(
                Code::Unavailable,
                "the gateway is shutting down; subscribe again (another replica) with resume_after set to the last alarm id you received",
                gateway_retryable(reason::SHUTTING_DOWN, HashMap::new()),
            ),
            SubscriptionEnd::Closed => Status::with_error_details(
                Code::Unavailable,
                "the alarm bus closed; subscribe again with resume_after set to the last alarm id you received",
                gateway_retryable(reason::ALARM_BUS_CLOSED, HashMap::new()),
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
        MpError::NullData(_) => (
            Code::NotFound,
            info(reason::UPSTREAM_NOT_FOUND, HashMap::new()),
        ),
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
            retryable(reason::UPSTREAM_UNAVAILABLE, HashMap::new()),
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
                    retryable(reason::UPSTREAM_HTTP_ERROR, metadata),
                )
            } else {
                // Any other 4xx means we sent something MP's gateway does not accept: our bug.
                (Code::Internal, info(reason::UPSTREAM_HTTP_ERROR, metadata))
            }
        }
        MpError::Malformed(_) => (
            Code::Unavailable,
            info(reason::UPSTREAM_BAD_RESPONSE, HashMap::new()),
        ),
        MpError::Timeout(_) => (
            Code::DeadlineExceeded,
            info(reason::UPSTREAM_TIMEOUT, HashMap::new()),
        ),
        MpError::Overloaded { limit, retry_after } => {
            // The gateway's own limit, so its own domain: MP never saw the call.
            let reason = match limit {
                UpstreamLimit::Concurrency => reason::UPSTREAM_CONCURRENCY_LIMIT,
                UpstreamLimit::Rate => reason::UPSTREAM_RATE_LIMIT,
            };
            let mut details = ErrorDetails::with_error_info(reason, GATEWAY_DOMAIN, HashMap::new());
            details.set_retry_info(Some(*retry_after));
            (Code::ResourceExhausted, details)
        }
        MpError::AuthFailed => {
            tracing::error!(
                "MP rejected the gateway's request signature: check MP_ACCESS_KEY and MP_SECRET_KEY"
            );
            (
                Code::Internal,
                info(reason::UPSTREAM_AUTH_FAILED, HashMap::new()),
            )
        }
    };
    Status::with_error_details(code, message, details)
}

fn idempotency_status(error: &IdempotencyError, message: String) -> Status {
    let info = |reason: &str| ErrorDetails::with_error_info(reason, GATEWAY_DOMAIN, HashMap::new());
    let (code, details) = match error {
        IdempotencyError::Conflict(_) => {
            let mut details = gateway_info(reason::REQUEST_ID_REUSED, HashMap::new());
            details
                .add_bad_request_violation("request_id", "was already used with other parameters");
            (Code::InvalidArgument, details)
        }
        IdempotencyError::InProgress(_) => {
            let mut details = info(reason::REQUEST_IN_PROGRESS);
            details.set_retry_info(Some(RETRY_AFTER));
            (Code::Aborted, details)
        }
        IdempotencyError::OutcomeUnknown(request_id) => {
            let metadata = HashMap::from([("request_id".to_owned(), request_id.clone())]);
            let details = gateway_info(reason::OUTCOME_UNKNOWN, metadata);
            (Code::Aborted, details)
        }
        IdempotencyError::NotFound(request_id) => {
            let metadata = HashMap::from([("request_id".to_owned(), request_id.clone())]);
            let details = gateway_info(reason::REQUEST_ID_NOT_FOUND, metadata);
            (Code::NotFound, details)
        }
        IdempotencyError::Store(_) => {
            let mut details = info(reason::IDEMPOTENCY_STORE_UNAVAILABLE);
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
        (Code::FailedPrecondition, reason::ORDER_FINISHED)
    } else if has("no iccid found") {
        // MP's "friendly prompt" for an order quantity the product does not offer, or no stock.
        (Code::FailedPrecondition, reason::NO_ICCID_AVAILABLE)
    } else if has("not exist") || has("not found") {
        (Code::NotFound, reason::UPSTREAM_NOT_FOUND)
    } else if has("already") {
        (Code::AlreadyExists, reason::UPSTREAM_ALREADY_EXISTS)
    } else if has("invalid") || has("required") || has("param") {
        (Code::InvalidArgument, reason::UPSTREAM_INVALID_ARGUMENT)
    } else {
        (Code::FailedPrecondition, reason::UPSTREAM_REJECTED)
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
        assert_eq!(info.reason, reason::ORDER_FINISHED);
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
            (
                UpstreamLimit::Concurrency,
                reason::UPSTREAM_CONCURRENCY_LIMIT,
            ),
            (UpstreamLimit::Rate, reason::UPSTREAM_RATE_LIMIT),
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
    fn every_stream_end_carries_a_reason_and_the_unavailable_ones_retry_info() {
        let cases = [
            (
                SubscriptionEnd::Lagged { last: None },
                Code::ResourceExhausted,
                reason::SUBSCRIBER_TOO_SLOW,
                false,
            ),
            (
                SubscriptionEnd::ShuttingDown,
                Code::Unavailable,
                reason::SHUTTING_DOWN,
                true,
            ),
            (
                SubscriptionEnd::Closed,
                Code::Unavailable,
                reason::ALARM_BUS_CLOSED,
                true,
            ),
        ];
        for (end, code, want, retry) in cases {
            let status = Status::from(end);
            assert_eq!(status.code(), code, "{end:?}");
            let info = status.get_details_error_info().unwrap();
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (want, GATEWAY_DOMAIN)
            );
            assert_eq!(status.get_details_retry_info().is_some(), retry, "{end:?}");
        }
    }

    #[test]
    fn refused_tokens_say_why_without_naming_server_settings() {
        for (failure, want) in [
            (AuthFailure::Missing, reason::MISSING_TOKEN),
            (AuthFailure::Invalid, reason::INVALID_TOKEN),
        ] {
            let status = unauthenticated(failure);
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(status.get_details_error_info().unwrap().reason, want);
            assert!(!status.message().contains("GRPC_AUTH_TOKENS"));
        }
    }

    #[test]
    fn gateway_errors_without_upstream_carry_the_gateway_domain() {
        for (error, code, want) in [
            (
                GatewayError::ProductNotFound(7),
                Code::NotFound,
                reason::PRODUCT_NOT_FOUND,
            ),
            (
                GatewayError::Internal("boom".into()),
                Code::Internal,
                reason::INTERNAL_ERROR,
            ),
            (
                GatewayError::InvalidArgument(vec![]),
                Code::InvalidArgument,
                reason::INVALID_REQUEST,
            ),
        ] {
            let status = Status::from(error);
            assert_eq!(status.code(), code);
            let info = status.get_details_error_info().unwrap();
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (want, GATEWAY_DOMAIN)
            );
        }
    }

    /// The reason strings of `mod reason`, read from this file's source, so a
    /// new constant cannot escape the check below.
    fn reasons_in_source() -> Vec<&'static str> {
        let source = include_str!("status.rs");
        let start = source
            .find("pub mod reason {")
            .expect("status.rs has mod reason");
        let end = start + source[start..].find("\n}\n").expect("mod reason ends");
        source[start..end]
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub const "))
            .filter_map(|line| line.split('"').nth(1))
            .collect()
    }

    #[test]
    fn every_reason_is_a_value_of_the_proto_error_reason_enum_and_back() {
        use crate::proto::ErrorReason;
        let reasons = reasons_in_source();
        assert!(reasons.len() > 20, "found {reasons:?}");
        for reason in &reasons {
            assert!(
                ErrorReason::from_str_name(&format!("ERROR_REASON_{reason}")).is_some(),
                "{reason} is not in proto/linksfield/mp/v1/error_reason.proto"
            );
        }
        let values = (1..).map_while(|n| ErrorReason::try_from(n).ok());
        for value in values {
            let name = value.as_str_name().trim_start_matches("ERROR_REASON_");
            assert!(
                reasons.contains(&name),
                "ErrorReason {name} is never sent: add it to api::status::reason or remove it"
            );
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
