//! W3C trace context on the calls the gateway makes to MP: MP's side of a
//! call joins the caller's trace (or one the gateway starts) in `traceparent`.
//!
//! With traces exported (`OTEL_EXPORTER_OTLP_ENDPOINT`), the context is the
//! current OpenTelemetry span's. Without, no OpenTelemetry span is built at
//! all: each gRPC call keeps the caller's `traceparent`/`tracestate` as it
//! came ([`CallTrace`]), a trace id is made only if MP is called and the
//! caller sent none, and each MP request gets a span id of its own.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Set once the OpenTelemetry layer is installed with an exporter.
static EXPORTED: AtomicBool = AtomicBool::new(false);

/// Spans go to an OTLP collector from now on: take trace context from them.
pub(crate) fn set_exported() {
    EXPORTED.store(true, Ordering::Relaxed);
}

/// True when spans are exported (and so carry the trace context).
pub fn exported() -> bool {
    EXPORTED.load(Ordering::Relaxed)
}

tokio::task_local! {
    /// The gRPC call being handled, when spans do not carry its trace.
    static CALL: Arc<CallTrace>;
}

/// One gRPC call's trace, as the caller sent it.
#[derive(Debug)]
pub struct CallTrace {
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
    /// The trace MP's requests join, worked out on the first of them.
    trace: OnceLock<(TraceId, TraceFlags, TraceState)>,
}

impl CallTrace {
    /// Keeps the caller's trace headers (parsed only if MP is called).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            traceparent: headers.get(TRACEPARENT).cloned(),
            tracestate: headers.get(TRACESTATE).cloned(),
            trace: OnceLock::new(),
        }
    }

    /// Runs `call` as this call's work: MP requests it makes carry the trace.
    pub fn scope<F: Future>(self, call: F) -> impl Future<Output = F::Output> {
        CALL.scope(Arc::new(self), call)
    }

    /// The caller's trace, or a new sampled one when it sent none (or a malformed one).
    fn trace(&self) -> &(TraceId, TraceFlags, TraceState) {
        self.trace.get_or_init(|| {
            let remote = TraceContextPropagator::new().extract(&Incoming(self));
            let parent = remote.span().span_context().clone();
            if parent.is_valid() {
                (
                    parent.trace_id(),
                    parent.trace_flags(),
                    parent.trace_state().clone(),
                )
            } else {
                (
                    RandomIdGenerator::default().new_trace_id(),
                    TraceFlags::SAMPLED,
                    TraceState::default(),
                )
            }
        })
    }

    fn context_for_request(&self) -> Context {
        let (trace_id, flags, state) = self.trace().clone();
        let span_id = RandomIdGenerator::default().new_span_id();
        Context::new()
            .with_remote_span_context(SpanContext::new(trace_id, span_id, flags, true, state))
    }
}

struct Incoming<'a>(&'a CallTrace);

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = match key {
            TRACEPARENT => self.0.traceparent.as_ref(),
            TRACESTATE => self.0.tracestate.as_ref(),
            _ => None,
        };
        value.and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

/// `work`, to be spawned as part of the current call: it keeps the call's
/// trace and span (so its MP requests and log lines belong to the call).
pub fn carried<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let trace = CALL.try_with(Arc::clone).ok();
    async move {
        match trace {
            Some(trace) => CALL.scope(trace, work).await,
            None => work.await,
        }
    }
    .instrument(tracing::Span::current())
}

/// The trace context a caller sent (W3C `traceparent`/`tracestate`), if any.
pub fn remote_context(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Adds the current call's trace context (W3C `traceparent`/`tracestate`)
/// to `headers` of a request to MP; adds nothing outside a call.
pub fn inject(headers: &mut HeaderMap) {
    let context = if exported() {
        tracing::Span::current().context()
    } else {
        match CALL.try_with(|call| call.context_for_request()) {
            Ok(context) => context,
            Err(_) => return,
        }
    };
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    async fn sent_within(trace: CallTrace, requests: usize) -> Vec<HeaderMap> {
        trace
            .scope(async move {
                (0..requests)
                    .map(|_| {
                        let mut sent = HeaderMap::new();
                        inject(&mut sent);
                        sent
                    })
                    .collect()
            })
            .await
    }

    fn parts(headers: &HeaderMap) -> Vec<String> {
        headers[TRACEPARENT]
            .to_str()
            .unwrap()
            .split('-')
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn the_callers_trace_goes_on_with_a_new_span_per_request() {
        let incoming = headers(&[(TRACEPARENT, CALLER), (TRACESTATE, "vendor=x")]);
        let sent = sent_within(CallTrace::from_headers(&incoming), 2).await;
        let (first, second) = (parts(&sent[0]), parts(&sent[1]));
        assert_eq!(first[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(first[3], "01");
        assert_ne!(
            first[2], "00f067aa0ba902b7",
            "the gateway's span is MP's parent"
        );
        assert_ne!(first[2], second[2], "each request its own span id");
        assert_eq!(sent[0][TRACESTATE], "vendor=x");
    }

    #[tokio::test]
    async fn without_a_usable_caller_trace_one_trace_is_started_for_the_call() {
        for incoming in [headers(&[]), headers(&[(TRACEPARENT, "00-garbage-01")])] {
            let sent = sent_within(CallTrace::from_headers(&incoming), 2).await;
            let (first, second) = (parts(&sent[0]), parts(&sent[1]));
            assert_eq!(first[1].len(), 32);
            assert_ne!(first[1], "0".repeat(32));
            assert_eq!(first[1], second[1], "one trace per call");
            assert_eq!(first[3], "01", "sampled");
        }
    }

    #[tokio::test]
    async fn spawned_work_keeps_the_calls_trace_and_nothing_is_sent_outside_a_call() {
        let incoming = headers(&[(TRACEPARENT, CALLER)]);
        let sent = CallTrace::from_headers(&incoming)
            .scope(async {
                tokio::spawn(carried(async {
                    let mut sent = HeaderMap::new();
                    inject(&mut sent);
                    sent
                }))
                .await
                .unwrap()
            })
            .await;
        assert_eq!(parts(&sent)[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        let mut outside = HeaderMap::new();
        inject(&mut outside);
        assert!(outside.is_empty());
    }

    #[test]
    fn trace_context_goes_out_as_it_came_in() {
        let incoming = headers(&[(TRACEPARENT, CALLER)]);
        let context = remote_context(&incoming);
        let mut outgoing = HeaderMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(&mut outgoing));
        assert_eq!(outgoing.get(TRACEPARENT), incoming.get(TRACEPARENT));
        assert!(!remote_context(&HeaderMap::new()).has_active_span());
    }
}
