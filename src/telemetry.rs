//! Logging: JSON lines by default, `RUST_LOG` filters (default `info`).
//! Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, `tracing` spans are
//! made into OpenTelemetry spans and exported over OTLP/gRPC; W3C trace
//! context reaches MP either way (`crate::trace_context`).
//! Metrics: the `metrics` facade, rendered as Prometheus text on `/metrics`.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tonic::transport::ClientTlsConfig;
use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};
use url::Url;

use crate::config::LogFormat;

/// Latency buckets (seconds) of every `*_duration_seconds` histogram: from
/// a cache hit (sub-millisecond) to an MP call near `MP_TIMEOUT_MS`.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How long shutdown waits for the last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracer provider of the installed subscriber, flushed by [`shutdown`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The log writer's thread; [`shutdown`] drops it, which writes what is buffered.
static LOG_WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Installs the global subscriber: log lines filtered by `RUST_LOG` and,
/// when `otlp_endpoint` is set, OpenTelemetry spans (the gateway's own, at
/// INFO and above, whatever `RUST_LOG` says) exported there. A second call
/// (tests) is a no-op.
///
/// Must run inside the Tokio runtime: the exporter's batches are sent from a task.
pub fn init(format: LogFormat, otlp_endpoint: Option<&Url>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Lines are written by a thread of their own, so a slow stdout never
    // stalls a call; when its buffer is full, writers wait (no line is lost).
    let (stdout, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stdout());
    let logs = match format {
        // The enclosing spans (root first) carry the call's fields, e.g. request_id.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(stdout)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(stdout)
            .pretty()
            .with_filter(filter)
            .boxed(),
    };
    // Without a collector no OpenTelemetry span is built: trace context
    // still reaches MP (crate::trace_context), at the cost of two headers.
    let exporting = otlp_endpoint.map(tracer_provider);
    let spans = exporting.as_ref().and_then(|(provider, error)| {
        error.is_none().then(|| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("mp-gateway"))
                .with_filter(Targets::new().with_target("mp_gateway", Level::INFO))
        })
    });
    let exported = spans.is_some();
    if tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_err()
    {
        return;
    }
    if exported {
        crate::trace_context::set_exported();
    }
    let export_error = exporting.and_then(|(provider, error)| {
        let _ = PROVIDER.set(provider);
        error
    });
    *LOG_WRITER.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
    match (otlp_endpoint, export_error) {
        (_, Some(error)) => {
            tracing::warn!(%error, "cannot export traces to OTEL_EXPORTER_OTLP_ENDPOINT; traces are not exported")
        }
        (Some(endpoint), None) => tracing::info!(%endpoint, "exporting traces over OTLP/gRPC"),
        (None, None) => {}
    }
}

/// A provider that samples like its parent (every root span otherwise) and
/// sends batches to `endpoint` from a Tokio task; with the reason when the
/// exporter cannot be built.
fn tracer_provider(endpoint: &Url) -> (SdkTracerProvider, Option<String>) {
    let builder = SdkTracerProvider::builder().with_resource(resource());
    crate::tls::install_crypto_provider();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.as_str().trim_end_matches('/'));
    if endpoint.scheme() == "https" {
        // tonic's default TLS config trusts no root at all.
        exporter = exporter.with_tls_config(ClientTlsConfig::new().with_native_roots());
    }
    let exporter = exporter.build();
    match exporter {
        Ok(exporter) => {
            // The async-runtime processor: tonic needs the Tokio reactor, which
            // the SDK's default processor (its own thread) does not have.
            let batches =
                BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
            (builder.with_span_processor(batches).build(), None)
        }
        Err(error) => (builder.build(), Some(error.to_string())),
    }
}

/// `service.name` is `mp-gateway` unless `OTEL_SERVICE_NAME` (or
/// `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder().with_service_name("mp-gateway").build()
    }
}

/// Sends the spans still buffered to the collector (bounded by [`FLUSH_TIMEOUT`]),
/// then writes the last log lines.
pub async fn shutdown() {
    flush_spans().await;
    drop(
        LOG_WRITER
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
    );
}

async fn flush_spans() {
    let Some(provider) = PROVIDER.get().cloned() else {
        return;
    };
    // Blocks until the export task answers, so not on a runtime thread.
    let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
    match tokio::time::timeout(FLUSH_TIMEOUT, flushed).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::warn!(%error, "cannot flush the last spans"),
        Ok(Err(error)) => tracing::warn!(%error, "the span flush panicked"),
        Err(_) => tracing::warn!("flushing the last spans took too long; some are lost"),
    }
}

/// Installs the process's metrics recorder on first use (later calls, e.g.
/// several gateways in one test process, share it) and returns its renderer.
/// Each feature describes its own metrics (`app` asks them to).
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".to_owned()),
                    DURATION_BUCKETS,
                )
                .expect("the duration bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// Counts events and lets one line speak for them per interval, so a
/// client repeating a mistake cannot flood the log.
#[derive(Debug)]
pub struct OncePerInterval {
    every: Duration,
    unsaid: std::sync::atomic::AtomicU64,
    last: Mutex<Option<std::time::Instant>>,
}

impl OncePerInterval {
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            unsaid: std::sync::atomic::AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// Counts one event; `Some(n)` when a line is due, `n` being the events
    /// since the last line (this one included).
    pub fn tick(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        self.unsaid.fetch_add(1, Ordering::Relaxed);
        let now = std::time::Instant::now();
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| now.duration_since(at) < self.every) {
                return None;
            }
            *last = Some(now);
        }
        Some(self.unsaid.swap(0, Ordering::Relaxed))
    }

    pub fn every(&self) -> Duration {
        self.every
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn http_and_https_collectors_get_an_exporter() {
        for endpoint in [
            "http://otel-collector:4317",
            "https://otel.example.com:4317",
        ] {
            let url = Url::parse(endpoint).unwrap();
            let (provider, error) = tracer_provider(&url);
            assert_eq!(error, None, "{endpoint}");
            // Dropping shuts the exporter down, which waits for its task.
            tokio::task::spawn_blocking(move || drop(provider))
                .await
                .unwrap();
        }
    }

    #[test]
    fn one_line_speaks_for_the_events_of_an_interval() {
        let limit = OncePerInterval::new(Duration::from_secs(3600));
        assert_eq!(limit.tick(), Some(1), "the first event is said at once");
        assert_eq!(limit.tick(), None);
        assert_eq!(limit.tick(), None);
        let now = OncePerInterval::new(Duration::ZERO);
        assert_eq!(now.tick(), Some(1));
        assert_eq!(now.tick(), Some(1));
    }
}
