//! The gRPC services: one file per service, plus the error mapping.

mod alarm_service;
mod alarm_stream;
pub(crate) mod auth;
mod consume_stream;
mod in_flight;
pub mod observe;
mod order_service;
mod product_service;
mod requests;
pub(crate) mod status;
mod subscription_requests;
mod traffic_service;

use std::time::Duration;

pub use alarm_service::AlarmApi;
pub use in_flight::InFlight;
pub use order_service::OrderApi;
pub use product_service::ProductApi;
pub use traffic_service::TrafficApi;

use crate::domain::{FieldViolation, RequestId};
use crate::error::GatewayError;
use requests::{Identified, RawRequestId};

/// Whether `path` is a health or reflection method: infrastructure that probes
/// and tools (grpcurl asks reflection before every call) reach without a token,
/// and whose calls are logged at DEBUG.
pub(crate) fn is_infrastructure(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
    ];
    PREFIXES.iter().any(|prefix| path.starts_with(prefix))
}

/// The time the caller allows, from its `grpc-timeout` header (gRPC over HTTP/2
/// spec: at most 8 digits and a unit). A value outside the spec is ignored, as
/// tonic's own timer ignores it.
pub fn caller_deadline<T>(request: &tonic::Request<T>) -> Option<Duration> {
    const MAX_DIGITS: usize = 8;
    let raw = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    if digits.len() > MAX_DIGITS {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.saturating_mul(3600)),
        "M" => Duration::from_secs(value.saturating_mul(60)),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// The request as domain values ([`requests`]). Its request id goes on the
/// call's span and log line, also when another field is wrong.
pub(crate) fn parse<'a, R, Q>(raw: &'a R) -> Result<Q, GatewayError>
where
    R: RawRequestId,
    Q: TryFrom<&'a R, Error = Vec<FieldViolation>> + Identified,
{
    match Q::try_from(raw) {
        Ok(checked) => {
            observe::record_request_id(checked.request_id());
            Ok(checked)
        }
        Err(violations) => {
            if let Ok(id) = RequestId::parse_or_generate(raw.raw_request_id()) {
                observe::record_request_id(&id);
            }
            Err(GatewayError::InvalidArgument(violations))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_timeout(value: &str) -> tonic::Request<()> {
        let mut request = tonic::Request::new(());
        request
            .metadata_mut()
            .insert("grpc-timeout", value.parse().unwrap());
        request
    }

    #[test]
    fn grpc_timeout_units_are_understood() {
        assert_eq!(
            caller_deadline(&with_timeout("250m")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            caller_deadline(&with_timeout("2S")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            caller_deadline(&with_timeout("1H")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(caller_deadline(&with_timeout("5x")), None);
        assert_eq!(
            caller_deadline(&with_timeout("99999999H")),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(caller_deadline(&with_timeout("100000000S")), None);
        assert_eq!(caller_deadline(&tonic::Request::new(())), None);
    }
}
