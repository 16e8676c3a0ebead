//! Starts the real gateway on ephemeral ports against a real upstream socket.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use chrono::FixedOffset;
use mp_gateway::alarms::BusConfig;
use mp_gateway::app::Application;
use mp_gateway::config::{Config, LogFormat, RedisConfig, Upstream};
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
        redis: None,
        alarm_bus: BusConfig {
            retention: 10_000,
            dedup_window: Duration::from_secs(600),
            subscriber_buffer: 1024,
        },
        idempotency_ttl: Duration::from_secs(3600),
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
        let channel = Channel::from_shared(format!("http://{grpc_addr}"))
            .expect("valid URI")
            .connect()
            .await
            .expect("gateway accepts connections");
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
