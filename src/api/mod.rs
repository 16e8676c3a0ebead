//! The gRPC services: one file per service, plus the error mapping.

mod alarm_service;
mod alarm_stream;
pub mod auth;
pub mod observe;
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
use crate::mp::Call;

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

/// A request about one order: who asks, about which order, how long they wait.
#[derive(Clone)]
pub(crate) struct OrderQuery {
    pub request_id: RequestId,
    pub order_code: OrderCode,
    pub deadline: Option<Duration>,
}

/// The requests that name one order by its code.
pub(crate) trait AboutOneOrder {
    fn request_id(&self) -> &str;
    fn order_code(&self) -> &str;
}

macro_rules! about_one_order {
    ($($request:ty),*) => {$(
        impl AboutOneOrder for $request {
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn order_code(&self) -> &str {
                &self.order_code
            }
        }
    )*};
}

about_one_order!(
    crate::proto::TopUpOrderRequest,
    crate::proto::GetOrderStatusRequest,
    crate::proto::GetTrafficRequest,
    crate::proto::GetDailyTrafficRequest
);

impl OrderQuery {
    pub fn parse<R: AboutOneOrder>(request: &tonic::Request<R>) -> Result<Self, GatewayError> {
        let req = request.get_ref();
        let request_id = observe::request_id(req.request_id());
        let order_code = OrderCode::parse(req.order_code());
        let (Ok(request_id), Ok(order_code)) = (&request_id, &order_code) else {
            return Err(GatewayError::invalid([
                request_id.as_ref().err(),
                order_code.as_ref().err(),
            ]));
        };
        Ok(Self {
            request_id: request_id.clone(),
            order_code: order_code.clone(),
            deadline: caller_deadline(request),
        })
    }

    /// The MP call this query makes.
    pub fn call(&self) -> Call<'_> {
        Call {
            request_id: &self.request_id,
            deadline: self.deadline,
        }
    }
}

fn parse_request_id(raw: &str) -> Result<RequestId, GatewayError> {
    observe::request_id(raw).map_err(|v| GatewayError::InvalidArgument(vec![v]))
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
        assert_eq!(
            caller_deadline(&with_timeout("99999999H")),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(caller_deadline(&with_timeout("100000000S")), None);
        assert_eq!(caller_deadline(&tonic::Request::new(())), None);
    }
}
