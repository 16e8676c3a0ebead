//! One record per gRPC call, as a tower layer outside every other (so it sees
//! calls that auth refuses too): a `rpc` span (parented on the caller's W3C
//! trace context), `mp_gateway_grpc_requests_total{method,code}`,
//! `mp_gateway_grpc_request_duration_seconds{method}` and one `rpc finished`
//! log line with method, code, latency and the request id.
//!
//! The final status is in the response headers (a trailers-only error) or in
//! the body's trailers, so the response body is wrapped to read it; a body
//! dropped before its end is a call the client cancelled.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use metrics::{Counter, Histogram, counter, describe_counter, describe_histogram, histogram};
use prost::Message as _;
use tonic::Code;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::in_flight::{InFlight, Open};
use crate::domain::RequestId;
use crate::trace_context::{self, CallTrace};

pub const REQUESTS: &str = "mp_gateway_grpc_requests_total";
pub const DURATION: &str = "mp_gateway_grpc_request_duration_seconds";

/// A unary call at least this long gets a WARN `rpc finished` line even
/// without the access log.
pub const SLOW_CALL: Duration = Duration::from_secs(1);

/// The `method` label of calls to methods the gateway does not serve, so
/// that made-up paths cannot create series without end.
const UNKNOWN_METHOD: &str = "unknown";

/// Registers the descriptions; call once the recorder is installed.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "gRPC calls finished, by method and status code (code=OK|INVALID_ARGUMENT|...)"
    );
    describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "gRPC call latency by method, until the last response byte (a stream: its whole life)"
    );
    describe_counter!(
        super::auth::REFUSED,
        "gRPC calls refused by bearer-token auth (reason=missing_token|invalid_token); logged at WARN at most once per 10 s"
    );
}

tokio::task_local! {
    /// The call being handled, for [`request_id`].
    static CURRENT: Arc<Note>;
}

/// What a handler tells the layer about its call.
#[derive(Debug)]
struct Note {
    span: tracing::Span,
    request_id: Mutex<Option<String>>,
}

/// Records a call's request id on its span and `rpc finished` line.
pub fn record_request_id(id: &RequestId) {
    let _ = CURRENT.try_with(|note| {
        note.span.record("request_id", id.as_str());
        *note
            .request_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(id.as_str().to_owned());
    });
}

/// The methods the server has, by `package.Service/Method`, each with its
/// metric handles (so that labelling a call looks nothing up in the recorder).
#[derive(Debug, Clone)]
pub struct KnownMethods {
    served: Arc<HashMap<Box<str>, Arc<Method>>>,
    /// Calls to a method the gateway does not serve.
    unknown: Arc<Method>,
}

impl KnownMethods {
    /// Every method of every service in these encoded `FileDescriptorSet`s
    /// (an undecodable set adds nothing).
    pub fn from_descriptor_sets(sets: &[&[u8]]) -> Self {
        let mut served = HashMap::new();
        for set in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                continue;
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let service_name = service.name.unwrap_or_default();
                    for method in service.method {
                        let unary = !method.client_streaming() && !method.server_streaming();
                        let method = method.name.unwrap_or_default();
                        let name = if package.is_empty() {
                            format!("{service_name}/{method}")
                        } else {
                            format!("{package}.{service_name}/{method}")
                        };
                        let labelled = Arc::new(Method::new(&name, unary));
                        served.insert(name.into_boxed_str(), labelled);
                    }
                }
            }
        }
        Self {
            served: Arc::new(served),
            unknown: Arc::new(Method::new(UNKNOWN_METHOD, true)),
        }
    }

    /// The method a request path like `/pkg.Service/Method` calls.
    fn method(&self, path: &str) -> &Arc<Method> {
        let name = path.strip_prefix('/').unwrap_or(path);
        self.served.get(name).unwrap_or(&self.unknown)
    }
}

/// A method as calls are labelled with it, and its metric handles, made on
/// first use (by then the recorder is installed).
struct Method {
    name: Arc<str>,
    unary: bool,
    duration: OnceLock<Histogram>,
    /// By status code (tonic's codes are 0..=16).
    requests: [OnceLock<Counter>; 17],
}

impl Method {
    fn new(name: &str, unary: bool) -> Self {
        Self {
            name: Arc::from(name),
            unary,
            duration: OnceLock::new(),
            requests: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn record(&self, code: Code, elapsed: Duration) {
        let code_name = code_name(code);
        if let Some(requests) = self.requests.get(code as usize) {
            requests
                .get_or_init(
                    || counter!(REQUESTS, "method" => self.name.clone(), "code" => code_name),
                )
                .increment(1);
        }
        self.duration
            .get_or_init(|| histogram!(DURATION, "method" => self.name.clone()))
            .record(elapsed.as_secs_f64());
    }
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Method")
            .field("name", &self.name)
            .field("unary", &self.unary)
            .finish_non_exhaustive()
    }
}

/// Observes every call to the services it wraps.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    methods: KnownMethods,
    access_log: bool,
    in_flight: InFlight,
}

impl ObserveLayer {
    /// `access_log`: an INFO `rpc finished` line for every call; without it,
    /// only failed (server-side) and slow unary calls get one, at WARN.
    pub fn new(methods: KnownMethods, access_log: bool) -> Self {
        Self {
            methods,
            access_log,
            in_flight: InFlight::default(),
        }
    }

    /// Counts every call in `in_flight` until its response body is gone.
    pub fn counting(mut self, in_flight: InFlight) -> Self {
        self.in_flight = in_flight;
        self
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            methods: self.methods.clone(),
            access_log: self.access_log,
            in_flight: self.in_flight.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    methods: KnownMethods,
    access_log: bool,
    in_flight: InFlight,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Observe<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<ObservedBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let mut rpc = Rpc::start(&request, &self.methods, self.access_log);
        rpc.open = Some(self.in_flight.call());
        // Exported spans carry the trace themselves.
        let trace =
            (!trace_context::exported()).then(|| CallTrace::from_headers(request.headers()));
        let note = rpc.note.clone();
        let span = rpc.note.span.clone();
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(async move {
            let mut rpc = rpc;
            let response = CURRENT.scope(note, response.instrument(span));
            let response = match trace {
                Some(trace) => trace.scope(response).await,
                None => response.await,
            };
            match response {
                Ok(response) => Ok(rpc.watch(response)),
                Err(error) => {
                    // The server could not answer at all (a transport failure).
                    rpc.finish(Code::Unknown);
                    Err(error)
                }
            }
        })
    }
}

/// One call in flight. Finishes once: with the status the response carries,
/// or as CANCELLED if it is dropped before the status was seen.
struct Rpc {
    method: Arc<Method>,
    /// Health and reflection: never more than DEBUG.
    quiet: bool,
    access_log: bool,
    started: Instant,
    note: Arc<Note>,
    finished: bool,
    /// Counts the call as in flight until the call is dropped.
    open: Option<Open>,
}

impl Rpc {
    fn start<B>(request: &Request<B>, methods: &KnownMethods, access_log: bool) -> Self {
        let path = request.uri().path();
        let method = methods.method(path).clone();
        let span = if trace_context::exported() {
            let span = tracing::info_span!(
                "rpc",
                otel.name = %method.name,
                otel.kind = "server",
                otel.status_code = Empty,
                rpc.system = "grpc",
                method = %method.name,
                request_id = Empty,
                code = Empty,
            );
            // Before the span is entered, or it would start its own trace.
            let _ = span.set_parent(trace_context::remote_context(request.headers()));
            span
        } else {
            // What log lines within the call need, and no more.
            tracing::info_span!("rpc", method = %method.name, request_id = Empty)
        };
        Self {
            quiet: super::is_infrastructure(path),
            access_log,
            method,
            started: Instant::now(),
            note: Arc::new(Note {
                span,
                request_id: Mutex::new(None),
            }),
            finished: false,
            open: None,
        }
    }

    /// Finishes now if the headers carry the status (trailers-only), else
    /// hands the call to the body, which finishes it at the trailers.
    fn watch<B>(mut self, response: Response<B>) -> Response<ObservedBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        let (parts, body) = response.into_parts();
        let body = Body::new(body);
        if let Some(code) = grpc_status(&parts.headers) {
            self.finish(code);
        } else if body.is_end_stream() {
            // Not a gRPC answer: no status will follow.
            self.finish(Code::Unknown);
        }
        Response::from_parts(
            parts,
            ObservedBody {
                inner: body,
                rpc: Some(self),
            },
        )
    }

    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let code_name = code_name(code);
        self.method.record(code, elapsed);

        let span = &self.note.span;
        span.record("code", code_name);
        span.record(
            "otel.status_code",
            if is_server_error(code) { "error" } else { "ok" },
        );
        let request_id = self
            .note
            .request_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let _in_span = span.enter();
        macro_rules! rpc_finished {
            ($level:ident) => {
                tracing::$level!(
                    method = %self.method.name,
                    code = code_name,
                    latency_ms,
                    request_id = request_id.as_deref(),
                    "rpc finished"
                )
            };
        }
        let slow = self.method.unary && elapsed >= SLOW_CALL;
        if self.quiet {
            rpc_finished!(debug);
        } else if is_server_error(code) || slow {
            rpc_finished!(warn);
        } else if self.access_log {
            rpc_finished!(info);
        } else {
            rpc_finished!(debug);
        }
    }
}

impl Drop for Rpc {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// A response body that finishes its call at the trailers (or as CANCELLED
/// when dropped before them). A stream's span is entered while it is
/// polled, so its work is traced under its call.
pub struct ObservedBody {
    inner: Body,
    rpc: Option<Rpc>,
}

impl ObservedBody {
    fn finish(&mut self, code: Code) {
        if let Some(mut rpc) = self.rpc.take() {
            rpc.finish(code);
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = {
            // A unary answer is only encoded here: nothing to trace or log.
            let _in_span = this
                .rpc
                .as_ref()
                .filter(|rpc| !rpc.method.unary)
                .map(|rpc| rpc.note.span.enter());
            Pin::new(&mut this.inner).poll_frame(cx)
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    this.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => this.finish(status.code()),
            // The end without trailers: no status was sent.
            Poll::Ready(None) => this.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The status code's name as the gRPC spec writes it (`INVALID_ARGUMENT`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The codes OpenTelemetry counts as a server span's error.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_get_their_own_label_and_streams_are_known() {
        let methods = KnownMethods::from_descriptor_sets(&[
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ]);
        let label = |path| {
            let method = methods.method(path);
            (method.name.to_string(), method.unary)
        };
        let served = |name: &str, unary| (name.to_owned(), unary);
        assert_eq!(
            label("/linksfield.mp.v1.OrderService/CreateOrder"),
            served("linksfield.mp.v1.OrderService/CreateOrder", true)
        );
        assert_eq!(
            label("/linksfield.mp.v1.AlarmService/SubscribeAlarms"),
            served("linksfield.mp.v1.AlarmService/SubscribeAlarms", false)
        );
        assert_eq!(
            label("/grpc.health.v1.Health/Check"),
            served("grpc.health.v1.Health/Check", true)
        );
        assert_eq!(
            label("/linksfield.mp.v1.OrderService/Nope").0,
            UNKNOWN_METHOD
        );
        assert_eq!(label("/random/path").0, UNKNOWN_METHOD);
    }

    #[test]
    fn status_codes_are_named_as_the_grpc_spec_names_them() {
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::from_bytes(b"16")), "UNAUTHENTICATED");
        assert_eq!(grpc_status(&HeaderMap::new()), None);
    }
}
