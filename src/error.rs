//! The one error type of the gateway's request path. It becomes a gRPC
//! status in exactly one place: `api::status`.

use crate::alarms::BusError;
use crate::alarms::shared::SharedError;
use crate::domain::FieldViolation;
use crate::idempotency::{IdempotencyError, RunError};
use crate::mp::MpError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request is wrong; MP was not called.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The product the caller named is not in MP's catalogue.
    #[error("product {0} is not in the catalogue")]
    ProductNotFound(u64),
    /// MP failed or refused.
    #[error(transparent)]
    Mp(#[from] MpError),
    /// The alarm log refused or failed.
    #[error(transparent)]
    AlarmLog(#[from] BusError),
    /// A shared subscription (ConsumeAlarms) refused or failed.
    #[error(transparent)]
    Shared(#[from] SharedError),
    /// The request id rules of CreateOrder/TopUpOrder refused the call.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The gateway itself failed (a bug or a broken dependency).
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// Collects the violations among several field checks.
    pub fn invalid<'a>(checks: impl IntoIterator<Item = Option<&'a FieldViolation>>) -> Self {
        Self::InvalidArgument(checks.into_iter().flatten().cloned().collect())
    }
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{} {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<RunError> for GatewayError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::Idempotency(e) => Self::Idempotency(e),
            RunError::Mp(e) => Self::Mp(e),
        }
    }
}
