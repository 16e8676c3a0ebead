//! Bearer-token authentication for the gRPC API, as a tower layer in front of
//! every service. Health and reflection stay open so probes and grpcurl work.
//!
//! Refusals are counted (`mp_gateway_grpc_auth_refused_total{reason}`) and said
//! at WARN at most once per [`WARN_EVERY`], with how many there were: a client
//! with a wrong token retrying in a loop must not flood the log.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{Either, Ready, ready};
use http::{Request, Response};
use metrics::counter;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use super::status::{AuthFailure, unauthenticated};
use crate::telemetry::OncePerInterval;

pub const REFUSED: &str = "mp_gateway_grpc_auth_refused_total";
/// At most one WARN line about refused calls per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Accepts `authorization: Bearer <token>` for any of `tokens`; with no tokens, everything.
#[derive(Clone, Default)]
pub struct BearerAuthLayer {
    tokens: Arc<[SecretString]>,
    refusals: Arc<Refusals>,
}

impl BearerAuthLayer {
    pub fn new(tokens: Vec<SecretString>) -> Self {
        Self {
            tokens: tokens.into(),
            refusals: Arc::default(),
        }
    }
}

/// Refused calls, said in at most one WARN line per [`WARN_EVERY`].
struct Refusals(OncePerInterval);

impl Default for Refusals {
    fn default() -> Self {
        Self(OncePerInterval::new(WARN_EVERY))
    }
}

impl Refusals {
    fn record(&self, failure: AuthFailure) {
        let reason = match failure {
            AuthFailure::Missing => "missing_token",
            AuthFailure::Invalid => "invalid_token",
        };
        counter!(REFUSED, "reason" => reason).increment(1);
        if let Some(refused) = self.0.tick() {
            tracing::warn!(
                refused,
                every_secs = WARN_EVERY.as_secs(),
                "gRPC calls refused for a missing or unknown bearer token since the last such line (at most one line per interval; see {REFUSED})"
            );
        }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            tokens: self.tokens.clone(),
            refusals: self.refusals.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BearerAuth<S> {
    inner: S,
    tokens: Arc<[SecretString]>,
    refusals: Arc<Refusals>,
}

impl<S> BearerAuth<S> {
    fn check<B>(&self, request: &Request<B>) -> Result<(), AuthFailure> {
        if self.tokens.is_empty() || super::is_infrastructure(request.uri().path()) {
            return Ok(());
        }
        let Some(header) = request.headers().get(http::header::AUTHORIZATION) else {
            return Err(AuthFailure::Missing);
        };
        let presented = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compare with every token, without stopping early, so timing tells nothing.
        let known = self.tokens.iter().fold(false, |found, token| {
            found | bool::from(presented.as_bytes().ct_eq(token.expose_secret().as_bytes()))
        });
        if known {
            Ok(())
        } else {
            Err(AuthFailure::Invalid)
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.check(&request) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(failure) => {
                self.refusals.record(failure);
                Either::Right(ready(Ok(unauthenticated(failure).into_http())))
            }
        }
    }
}
