//! Starts the real gateway on ephemeral ports against a real upstream socket.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use chrono::FixedOffset;
use mp_gateway::alarms::BusConfig;
use mp_gateway::app::Application;
use mp_gateway::config::{Config, LogFormat, ProductCacheConfig, RedisConfig, Upstream};
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

pub const ACCESS_KEY: &str = "SG00000010";
pub const SECRET_KEY: &str = "test-secret-key";

/// An MP simulator on a loopback port, with the test keys.
pub async fn start_sandbox() -> Sandbox {
    Sandbox::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SandboxConfig {
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SecretString::from(SECRET_KEY),
            traffic_mb_per_sec: 10.0,
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
        },
        idempotency_ttl: Duration::from_secs(3600),
        grpc_auth_tokens: Vec::new(),
        grpc_tls: None,
        product_cache: ProductCacheConfig::default(),
    }
}

/// The shared Redis on 127.0.0.1:6379, under a key prefix no other test uses.
pub fn shared_redis() -> RedisConfig {
    RedisConfig {
        url: SecretString::from("redis://127.0.0.1:6379"),
        key_prefix: format!("mpgw-test-{}", uuid::Uuid::new_v4()),
    }
}

/// A running gateway and clients for it.
pub struct TestGateway {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), mp_gateway::app::StartError>>>,
}

impl TestGateway {
    pub async fn start(config: Config) -> Self {
        let app = Application::build(config).await.expect("gateway builds");
        let grpc_addr = app.grpc_addr();
        let http_addr = app.http_addr();
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
    pub async fn stop(mut self) -> Result<(), mp_gateway::app::StartError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("gateway task does not panic"),
            None => Ok(()),
        }
    }

    /// Triggers the shutdown without waiting.
    pub fn begin_stop(&mut self) -> JoinHandle<Result<(), mp_gateway::app::StartError>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("gateway is running")
    }
}

/// A sandbox and a gateway in front of it.
pub async fn gateway_with_sandbox() -> (TestGateway, Sandbox) {
    let sandbox = start_sandbox().await;
    let gateway = TestGateway::start(config_for(&sandbox.base_url())).await;
    (gateway, sandbox)
}

/// A loopback port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// The field names of a status's `BadRequest` details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|br| br.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo.reason` of a status, if it has one.
pub fn error_reason(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|info| info.reason)
}

/// The machine's shared Redis (scripts/start-redis). Tests that use it each
/// take a key prefix of their own ([`unique_prefix`]) and never stop it.
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// A Redis key prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    format!("mp-gateway-test:{test}:{}", uuid::Uuid::new_v4())
}

/// `config_for(base_url)` with Redis at `redis_url` under `prefix`.
pub fn config_with_redis(base_url: &str, redis_url: &str, prefix: &str) -> Config {
    let mut config = config_for(base_url);
    config.redis = Some(RedisConfig {
        url: SecretString::from(redis_url),
        key_prefix: prefix.to_owned(),
    });
    // Leftovers in the shared Redis expire soon after the test.
    config.product_cache.max_stale = Duration::from_secs(60);
    config
}

/// Polls `condition` every 20 ms until it holds; panics after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `redis-server` of the test's own, on a free loopback port, keeping
/// nothing on disk, for tests that stop Redis. Killed when dropped.
pub struct OwnRedis {
    port: u16,
    server: Option<tokio::process::Child>,
}

impl OwnRedis {
    pub async fn start() -> Self {
        let port = closed_port().await.port();
        let mut redis = Self { port, server: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, empty) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        let server = tokio::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is on PATH (scripts/install-dev-tools installs it)");
        self.server = Some(server);
        let url = self.url();
        eventually(Duration::from_secs(10), "redis-server answers PING", || {
            let url = url.clone();
            async move { ping(&url).await }
        })
        .await;
    }

    /// Freezes it (SIGSTOP): connections stay open but nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .server
            .as_ref()
            .and_then(|server| server.id())
            .expect("redis-server is running");
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill().await.expect("kill redis-server");
        }
    }
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok()
}

/// A connection to the test Redis at `url`.
pub async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("test Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("test Redis answers")
}

/// The raw value stored under `key`, if any.
pub async fn redis_get(url: &str, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut redis_connection(url).await)
        .await
        .expect("GET works")
}

/// An alarm callback body as MP sends it (MP document section 4.5.2).
pub fn callback_body(order: &str, rate: &str, request_id: &str) -> serde_json::Value {
    serde_json::json!({
        "eid": "89049032000001000000128255728753",
        "packageCode": "LP14230831004073",
        "orderCode": order,
        "packageUsedRate": rate,
        "requestId": request_id,
    })
}

/// The length (`XLEN`) of the stream under `key`; 0 if there is none.
pub async fn redis_xlen(url: &str, key: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(key)
        .query_async(&mut redis_connection(url).await)
        .await
        .expect("XLEN works")
}

/// A loopback port that was free a moment ago, for a child process to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls the gateway `child`'s `/readyz` on `http_addr` until it answers 200;
/// panics after `limit`, or at once if the child exits.
pub async fn wait_until_ready(
    child: &mut std::process::Child,
    http_addr: SocketAddr,
    limit: Duration,
) {
    mp_gateway::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client");
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(exit) = child.try_wait().expect("wait works") {
            panic!("the gateway exited ({exit}) before it was ready");
        }
        let status = http
            .get(format!("http://{http_addr}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM to `child` and waits for it to exit; after `limit` it is
/// killed and the test fails. Returns how it exited.
pub async fn sigterm_and_wait(
    mut child: std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {}", child.id());
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(exit) = child.try_wait().expect("wait works") {
            return exit;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("did not exit within {limit:?} after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of a counter (summed over label sets matching `labels`) on `/metrics`.
pub async fn counter(http_addr: SocketAddr, name: &str, labels: &str) -> f64 {
    let text = reqwest::get(format!("http://{http_addr}/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics has a body");
    text.lines()
        .filter(|line| {
            let series = line.split_whitespace().next().unwrap_or("");
            series == name || (series.starts_with(&format!("{name}{{")) && series.contains(labels))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The sum of the samples of `name` on `/metrics` whose labels include every
/// one of `labels` (each written as on the page, e.g. `code="OK"`).
pub async fn metric(http_addr: SocketAddr, name: &str, labels: &[&str]) -> f64 {
    let text = metrics_page(http_addr).await;
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, series_labels) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|label| series_labels.contains(label)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// The text `/metrics` serves.
pub async fn metrics_page(http_addr: SocketAddr) -> String {
    mp_gateway::tls::install_crypto_provider();
    reqwest::get(format!("http://{http_addr}/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics has a body")
}
