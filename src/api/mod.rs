//! The gRPC services: one file per service, plus the error mapping.

mod alarm_service;
mod alarm_stream;
mod order_service;
mod product_service;
pub mod status;
mod traffic_service;

use std::time::Duration;

pub use alarm_service::AlarmApi;
pub use order_service::OrderApi;
pub use product_service::ProductApi;
pub use traffic_service::TrafficApi;

use crate::domain::{FieldViolation, OrderCode, RequestId};
use crate::error::GatewayError;

/// The time the caller allows, from its `grpc-timeout` header (gRPC over HTTP/2 spec).
pub fn caller_deadline<T>(request: &tonic::Request<T>) -> Option<Duration> {
    let raw = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
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

/// The common shape of requests about one order: a request id and an order code.
fn parse_order_ref(
    request_id: &str,
    order_code: &str,
) -> Result<(RequestId, OrderCode), GatewayError> {
    let request_id = RequestId::parse_or_generate(request_id);
    let order_code = OrderCode::parse(order_code);
    let (Ok(request_id), Ok(order_code)) = (&request_id, &order_code) else {
        return Err(GatewayError::invalid([
            request_id.as_ref().err(),
            order_code.as_ref().err(),
        ]));
    };
    Ok((request_id.clone(), order_code.clone()))
}

fn parse_request_id(raw: &str) -> Result<RequestId, GatewayError> {
    RequestId::parse_or_generate(raw).map_err(|v| GatewayError::InvalidArgument(vec![v]))
}

fn required_id(field: &'static str, value: u64) -> Result<u64, FieldViolation> {
    if value == 0 {
        Err(FieldViolation::new(field, "is required"))
    } else {
        Ok(value)
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
        assert_eq!(caller_deadline(&tonic::Request::new(())), None);
    }
}
