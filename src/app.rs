//! `Application::build` wires everything and binds the listeners (so tests
//! can start the real thing on port 0); `run_until_stopped` serves and drains.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity as NoLayer, Stack};
use url::Url;

use crate::alarms::AlarmBus;
use crate::alarms::callback::{self, CallbackState};
use crate::api::auth::BearerAuthLayer;
use crate::api::observe::{KnownMethods, ObserveLayer};
use crate::api::{AlarmApi, InFlight, OrderApi, ProductApi, TrafficApi};
use crate::cache::snapshot::Lifetimes;
use crate::cache::{CatalogueSettings, ProductCatalogue};
use crate::config::{
    Config, ConfigError, SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, TlsFiles, Upstream,
};
use crate::domain::CallbackUrl;
use crate::http::{self, Readiness};
use crate::idempotency::{Idempotency, IdempotencyConfig};
use crate::listeners::{self, ListenerLimits};
use crate::mp::{MpClient, MpClientConfig, MpClock, MpError};
use crate::proto::alarm_service_server::AlarmServiceServer;
use crate::proto::order_service_server::OrderServiceServer;
use crate::proto::product_service_server::ProductServiceServer;
use crate::proto::traffic_service_server::TrafficServiceServer;
use crate::redis::Redis;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::tls::GrpcTls;

/// The gRPC service names health reports on, besides the overall "".
const SERVICE_NAMES: &[&str] = &[
    crate::proto::product_service_server::SERVICE_NAME,
    crate::proto::order_service_server::SERVICE_NAME,
    crate::proto::traffic_service_server::SERVICE_NAME,
    crate::proto::alarm_service_server::SERVICE_NAME,
];

/// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` of the gRPC listener: room for
/// the per-connection call limit plus long-lived alarm streams.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 1024;
/// How long alarm streams that were told to end may take to send their status
/// once they are all that is left of a shutdown; a client that reads gets it
/// well within this, one that stopped reading never does.
const STREAM_STATUS_FLUSH: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({variable}): {source}")]
    Bind {
        variable: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("cannot start the MP sandbox: {0}")]
    Sandbox(io::Error),
    #[error("cannot create the MP client: {0}")]
    MpClient(MpError),
    /// A file a setting names cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("REDIS_URL/REDIS_SENTINELS/REDIS_CLUSTER_NODES: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("GRPC_TLS_CERT/GRPC_TLS_KEY/GRPC_TLS_CLIENT_CA: {0}")]
    Tls(tonic::transport::Error),
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("HTTP server failed: {0}")]
    Http(io::Error),
    #[error("a server task panicked: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A built gateway: listeners bound, ready to serve.
pub struct Application {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    grpc: Router<Stack<BearerAuthLayer, Stack<ObserveLayer, NoLayer>>>,
    http: axum::Router,
    /// Set when `METRICS_ADDR` moves /metrics off the HTTP listener.
    metrics_server: Option<(TcpListener, axum::Router)>,
    health: HealthReporter,
    readiness: Readiness,
    /// Set on shutdown; alarm streams watch it.
    stop: watch::Sender<bool>,
    sandbox: Option<Sandbox>,
    shutdown_grace: Duration,
    listener_limits: ListenerLimits,
    /// Open calls and alarm streams, for the drain.
    in_flight: InFlight,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let grpc_listener = bind("GRPC_ADDR", config.grpc_addr).await?;
        let http_listener = bind("HTTP_ADDR", config.http_addr).await?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(bind("METRICS_ADDR", addr).await?),
            None => None,
        };
        let http_port = http_listener.local_addr().map_err(StartError::Http)?.port();
        // Before any counter is made, so that they all report to it.
        let metrics = crate::telemetry::metrics();
        describe_metrics();
        let (sandbox, mp) = upstream(&config).await?;
        let account = mp.access_key.clone();
        let mp = MpClient::new(mp).map_err(StartError::MpClient)?;
        if config.callback_token.is_none() {
            tracing::warn!(
                "CALLBACK_TOKEN is not set: anyone who can reach /mp/alarm-callback can post alarms"
            );
        }
        let default_callback_url =
            default_callback_url(&config, sandbox.is_some().then_some(http_port));
        let idempotency_config = IdempotencyConfig {
            ttl: config.idempotency_ttl,
            lease: config.mp_timeout + Duration::from_secs(2),
        };
        let redis = config.redis.as_ref().map(Redis::new).transpose()?;
        if let Some(redis) = &redis {
            tokio::spawn(crate::redis::check_persistence(redis.clone()));
        } else {
            tracing::info!(
                "no Redis is set (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES): alarms and idempotency records stay in process (run one replica)"
            );
        }
        let bus = AlarmBus::new(config.alarm_bus.clone(), redis.as_ref());
        let idempotency = Idempotency::new(idempotency_config, redis.as_ref());
        let catalogue = ProductCatalogue::new(
            mp.clone(),
            CatalogueSettings {
                lifetimes: Lifetimes {
                    ttl: config.product_cache.ttl,
                    max_stale: config.product_cache.max_stale,
                },
                mp_timeout: config.mp_timeout,
            },
            redis.as_ref(),
            &account,
        )?;
        let (stop, stopped) = watch::channel(false);
        let readiness = Readiness::default();
        let mut http = http::router(readiness.clone()).merge(callback::router(CallbackState {
            bus: bus.clone(),
            token: config.callback_token.clone().map(Arc::new),
        }));
        let metrics_server = match metrics_listener {
            Some(listener) => Some((listener, http::metrics_router(metrics))),
            None => {
                http = http.merge(http::metrics_router(metrics));
                None
            }
        };

        let (health, health_service) = tonic_health::server::health_reporter();
        for name in SERVICE_NAMES {
            health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // google.rpc error details, so grpcurl can print ErrorInfo and BadRequest.
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        };
        match (config.grpc_auth_tokens.is_empty(), config.grpc_auth_off) {
            (true, true) => {
                tracing::info!("GRPC_AUTH=off: the gRPC API accepts calls without a token")
            }
            (true, false) => tracing::warn!(
                "GRPC_AUTH_TOKENS is not set: the gRPC API accepts calls without a token (GRPC_AUTH=off says that is intended)"
            ),
            (false, _) => {}
        }
        // A client that opens more calls than its connection's limit gets
        // RESOURCE_EXHAUSTED at once (load shedding) instead of a queue.
        let in_flight = InFlight::default();
        let grpc = grpc_server(config.grpc_tls.as_ref())?
            .concurrency_limit_per_connection(config.grpc_concurrency_limit_per_connection)
            .load_shed(true)
            // Advertised, so clients queue streams past it rather than the
            // server paying for them; calls past the concurrency limit are shed first.
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            // Outermost, so calls that auth refuses are counted and logged too.
            .layer(
                ObserveLayer::new(served_methods(), config.access_log).counting(in_flight.clone()),
            )
            .layer(BearerAuthLayer::new(config.grpc_auth_tokens.clone()))
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?)
            .add_service(ProductServiceServer::new(ProductApi::new(
                catalogue.clone(),
            )))
            .add_service(OrderServiceServer::new(OrderApi::new(
                mp.clone(),
                idempotency,
                catalogue,
                config.mp_timeout,
            )))
            .add_service(TrafficServiceServer::new(TrafficApi::new(mp.clone())))
            .add_service(AlarmServiceServer::new(AlarmApi::new(
                mp,
                default_callback_url,
                bus,
                stopped,
                in_flight.clone(),
            )));

        Ok(Self {
            grpc_listener,
            http_listener,
            grpc,
            http,
            metrics_server,
            health,
            readiness,
            stop,
            sandbox,
            shutdown_grace: config.shutdown_grace,
            listener_limits: config.listener_limits,
            in_flight,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where /metrics is served when `METRICS_ADDR` is set (else on [`Self::http_addr`]).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(listener, _)| {
            listener
                .local_addr()
                .expect("a bound listener has an address")
        })
    }

    /// The embedded MP simulator, in sandbox mode.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// Serves until `shutdown` completes, then drains: health turns NOT_SERVING,
    /// listeners stop accepting, and in-flight calls get the grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartError> {
        let stopped = self.stop.subscribe();
        let wait_stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let limits = self.listener_limits;
        let incoming = listeners::grpc_incoming(self.grpc_listener, limits.grpc_preface_timeout);
        let mut grpc = tokio::spawn(
            self.grpc
                .serve_with_incoming_shutdown(incoming, wait_stop(stopped.clone())),
        );
        let mut http = tokio::spawn(listeners::serve_http(
            self.http_listener,
            self.http,
            limits,
            wait_stop(stopped.clone()),
        ));
        // Scrapes are short; at shutdown the server just stops with the rest.
        let metrics = self.metrics_server.map(|(listener, router)| {
            tokio::spawn(listeners::serve_http(
                listener,
                router,
                limits,
                wait_stop(stopped),
            ))
        });
        self.readiness.set(true);
        tracing::info!("mp-gateway is serving");

        tokio::select! {
            () = shutdown => {}
            result = &mut grpc => return result?.map_err(StartError::from),
            result = &mut http => return result?.map_err(StartError::Http),
        }

        tracing::info!(grace = ?self.shutdown_grace, "shutting down");
        self.readiness.set(false);
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        for name in SERVICE_NAMES {
            self.health
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        // Ends open alarm streams at once (clients resume elsewhere) and stops the listeners.
        let _ = self.stop.send(true);
        // Alarm streams whose client stopped reading cannot send their status
        // (HTTP/2 flow control), so their connections never close by themselves:
        // once only ended streams are left, give readers a moment, then cut them.
        let in_flight = self.in_flight.clone();
        let grpc_drained = async {
            tokio::select! {
                result = &mut grpc => Some(result),
                () = in_flight.only_alarm_streams_for(STREAM_STATUS_FLUSH) => None,
            }
        };
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            tokio::join!(grpc_drained, &mut http)
        })
        .await;
        match drained {
            Ok((Some(grpc), http)) => {
                grpc??;
                http?.map_err(StartError::Http)?;
            }
            Ok((None, http)) => {
                tracing::info!("only alarm streams that stopped reading are left; cutting them");
                grpc.abort();
                http?.map_err(StartError::Http)?;
            }
            Err(_) => {
                tracing::warn!("grace period over; cutting the calls still in flight");
                grpc.abort();
                http.abort();
            }
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Each feature's metric descriptions (HELP lines on /metrics).
fn describe_metrics() {
    crate::api::observe::describe();
    crate::mp::metrics::describe();
    crate::cache::metrics::describe();
    crate::alarms::metrics::describe();
    crate::alarms::metrics::shared::describe();
    crate::idempotency::metrics::describe();
    crate::redis::describe();
    listeners::describe();
}

/// Every method the gRPC server has: ours, health and reflection.
fn served_methods() -> KnownMethods {
    KnownMethods::from_descriptor_sets(&[
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ])
}

/// A server builder, serving TLS (and requiring client certificates) when configured.
fn grpc_server(tls: Option<&TlsFiles>) -> Result<Server, StartError> {
    let Some(files) = tls else {
        return Ok(Server::builder());
    };
    let tls = GrpcTls::read(files)?;
    Server::builder()
        .tls_config(tls.server_config())
        .map_err(StartError::Tls)
}

async fn bind(variable: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            variable,
            addr,
            source,
        })
}

/// Starts the simulator when asked to, and says how to reach MP.
async fn upstream(config: &Config) -> Result<(Option<Sandbox>, MpClientConfig), StartError> {
    let clock = MpClock {
        zone: config.mp_time_zone,
    };
    let mp = |base_url: Url, access_key: &str, secret_key: SecretString| MpClientConfig {
        base_url,
        access_key: access_key.to_owned(),
        secret_key,
        timeout: config.mp_timeout,
        clock,
        limits: config.mp_limits,
    };
    match &config.upstream {
        Upstream::Mp {
            base_url,
            access_key,
            secret_key,
        } => Ok((None, mp(base_url.clone(), access_key, secret_key.clone()))),
        Upstream::Sandbox => {
            let sandbox = Sandbox::start(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                SandboxConfig {
                    access_key: SANDBOX_ACCESS_KEY.to_owned(),
                    secret_key: SecretString::from(SANDBOX_SECRET_KEY),
                    // Fast enough that a demo order crosses 53 % within half a minute.
                    traffic_mb_per_sec: 20.0,
                },
            )
            .await
            .map_err(StartError::Sandbox)?;
            let base_url = Url::parse(&sandbox.base_url())
                .map_err(|e| StartError::Sandbox(io::Error::other(e)))?;
            tracing::info!(%base_url, "sandbox: MP simulator running; no MP account is used");
            let config = mp(
                base_url,
                SANDBOX_ACCESS_KEY,
                SecretString::from(SANDBOX_SECRET_KEY),
            );
            Ok((Some(sandbox), config))
        }
    }
}

/// `PUBLIC_CALLBACK_URL` (in sandbox mode, this gateway's own callback
/// endpoint) with `token=CALLBACK_TOKEN` added, so MP presents the token.
fn default_callback_url(config: &Config, sandbox_http_port: Option<u16>) -> Option<CallbackUrl> {
    let mut url = match (&config.public_callback_url, sandbox_http_port) {
        (Some(public), _) => Url::parse(public.as_str()).ok()?,
        (None, Some(port)) => {
            Url::parse(&format!("http://127.0.0.1:{port}{}", callback::PATH)).ok()?
        }
        (None, None) => return None,
    };
    if let Some(token) = &config.callback_token {
        url.query_pairs_mut()
            .append_pair("token", token.expose_secret());
    }
    CallbackUrl::parse(url.as_str()).ok()
}
