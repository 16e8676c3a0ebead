//! The gateway under test: started in process on port 0 (gRPC and HTTP),
//! against a sandbox MP on a real socket, through one builder.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::FixedOffset;
use mp_gateway::alarms::BusConfig;
use mp_gateway::app::{Application, StartError};
use mp_gateway::config::{Config, LogFormat, ProductCacheConfig, RedisConfig, Upstream};
use mp_gateway::listeners::ListenerLimits;
use mp_gateway::mp::MpLimits;
use mp_gateway::proto::alarm_service_client::AlarmServiceClient;
use mp_gateway::proto::order_service_client::OrderServiceClient;
use mp_gateway::proto::product_service_client::ProductServiceClient;
use mp_gateway::proto::traffic_service_client::TrafficServiceClient;
use mp_gateway::sandbox::{Sandbox, SandboxConfig};
use secrecy::SecretString;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::redis::redis_config;

pub const ACCESS_KEY: &str = "SG00000010";
pub const SECRET_KEY: &str = "test-secret-key";

/// An MP simulator on a loopback port, with the test keys.
pub async fn start_sandbox() -> Sandbox {
    start_sandbox_with_traffic(10.0).await
}

/// [`start_sandbox`] whose orders in use consume `mb_per_sec`.
pub async fn start_sandbox_with_traffic(mb_per_sec: f64) -> Sandbox {
    Sandbox::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SandboxConfig {
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SecretString::from(SECRET_KEY),
            traffic_mb_per_sec: mb_per_sec,
        },
    )
    .await
    .expect("sandbox starts on an ephemeral port")
}

/// A configuration for a gateway on ephemeral ports whose MP is `base_url`.
pub fn config_for(base_url: &str) -> Config {
    Config {
        upstream: Upstream::Mp {
            base_url: base_url.parse().expect("test base URL"),
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SecretString::from(SECRET_KEY),
        },
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        callback_token: None,
        public_callback_url: None,
        mp_timeout: Duration::from_secs(5),
        mp_limits: MpLimits::default(),
        mp_time_zone: FixedOffset::east_opt(8 * 3600).expect("valid offset"),
        grpc_concurrency_limit_per_connection: 256,
        shutdown_grace: Duration::from_secs(2),
        log_format: LogFormat::Pretty,
        otlp_endpoint: None,
        redis: None,
        alarm_bus: BusConfig {
            retention: 10_000,
            dedup_window: Duration::from_secs(600),
            subscriber_buffer: 1024,
            max_delivery_attempts: 10,
        },
        idempotency_ttl: Duration::from_secs(3600),
        grpc_auth_tokens: Vec::new(),
        grpc_auth_off: false,
        metrics_addr: None,
        access_log: true,
        listener_limits: ListenerLimits {
            http_max_connections: 64,
            http_header_read_timeout: Duration::from_secs(10),
            grpc_preface_timeout: Duration::from_secs(10),
        },
        grpc_tls: None,
        product_cache: ProductCacheConfig::default(),
    }
}

/// A sandbox and a gateway with the defaults of [`config_for`] in front of it.
pub async fn gateway_with_sandbox() -> (TestGateway, Sandbox) {
    gateway().start().await
}

/// A gateway to start, with the defaults of [`config_for`] unless told otherwise.
pub fn gateway() -> GatewayBuilder {
    GatewayBuilder {
        changes: Vec::new(),
    }
}

type Change = Box<dyn FnOnce(&mut Config)>;

/// The options a test gives its gateway; see [`gateway`].
#[must_use]
pub struct GatewayBuilder {
    changes: Vec<Change>,
}

impl GatewayBuilder {
    /// Any change to the configuration the named options do not cover.
    pub fn with(mut self, change: impl FnOnce(&mut Config) + 'static) -> Self {
        self.changes.push(Box::new(change));
        self
    }

    /// Uses `redis` (or no Redis) for the cache, idempotency and alarms.
    pub fn redis(self, redis: Option<RedisConfig>) -> Self {
        self.with(move |config| config.redis = redis)
    }

    /// Redis at `url` under `prefix`; lists left in a shared Redis expire
    /// soon after the test.
    pub fn redis_at(self, url: &str, prefix: &str) -> Self {
        let redis = redis_config(url, prefix);
        self.with(move |config| {
            config.redis = Some(redis);
            config.product_cache.max_stale = Duration::from_secs(60);
        })
    }

    /// How long a product list is fresh, and how long past that it may be served.
    pub fn cache_ttl(self, ttl: Duration, max_stale: Duration) -> Self {
        self.with(move |config| {
            config.product_cache.ttl = ttl;
            config.product_cache.max_stale = max_stale;
        })
    }

    pub fn mp_timeout(self, timeout: Duration) -> Self {
        self.with(move |config| config.mp_timeout = timeout)
    }

    pub fn mp_limits(self, limits: MpLimits) -> Self {
        self.with(move |config| config.mp_limits = limits)
    }

    pub fn grpc_auth_tokens(self, tokens: &[&str]) -> Self {
        let tokens: Vec<SecretString> = tokens.iter().map(|t| SecretString::from(*t)).collect();
        self.with(move |config| config.grpc_auth_tokens = tokens)
    }

    pub fn callback_token(self, token: &str) -> Self {
        let token = SecretString::from(token);
        self.with(move |config| config.callback_token = Some(token))
    }

    /// The configuration for a gateway whose MP is at `base_url`, for tests
    /// that start several replicas alike.
    pub fn config(self, base_url: &str) -> Config {
        let mut config = config_for(base_url);
        for change in self.changes {
            change(&mut config);
        }
        config
    }

    /// Starts a sandbox and the gateway in front of it.
    pub async fn start(self) -> (TestGateway, Sandbox) {
        let sandbox = start_sandbox().await;
        (self.start_on(&sandbox).await, sandbox)
    }

    /// Starts the gateway in front of `sandbox`.
    pub async fn start_on(self, sandbox: &Sandbox) -> TestGateway {
        self.start_against(&sandbox.base_url()).await
    }

    /// Starts the gateway whose MP is at `base_url` (which may not answer).
    pub async fn start_against(self, base_url: &str) -> TestGateway {
        TestGateway::start(self.config(base_url)).await
    }
}

/// A running gateway and clients for it.
pub struct TestGateway {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Set when the config moves /metrics to its own address.
    pub metrics_addr: Option<SocketAddr>,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), StartError>>>,
}

impl TestGateway {
    pub async fn start(config: Config) -> Self {
        let app = Application::build(config).await.expect("gateway builds");
        let grpc_addr = app.grpc_addr();
        let http_addr = app.http_addr();
        let metrics_addr = app.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        // Lazy: a TLS gateway would refuse this plaintext channel's handshake.
        let channel = Channel::from_shared(format!("http://{grpc_addr}"))
            .expect("valid URI")
            .connect_lazy();
        Self {
            grpc_addr,
            http_addr,
            metrics_addr,
            channel,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn products(&self) -> ProductServiceClient<Channel> {
        ProductServiceClient::new(self.channel.clone())
    }

    pub fn orders(&self) -> OrderServiceClient<Channel> {
        OrderServiceClient::new(self.channel.clone())
    }

    pub fn traffic(&self) -> TrafficServiceClient<Channel> {
        TrafficServiceClient::new(self.channel.clone())
    }

    pub fn alarms(&self) -> AlarmServiceClient<Channel> {
        AlarmServiceClient::new(self.channel.clone())
    }

    /// Triggers the shutdown (like SIGTERM) and waits for the drain to finish.
    pub async fn stop(mut self) -> Result<(), StartError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("gateway task does not panic"),
            None => Ok(()),
        }
    }

    /// Triggers the shutdown without waiting.
    pub fn begin_stop(&mut self) -> JoinHandle<Result<(), StartError>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("gateway is running")
    }
}
