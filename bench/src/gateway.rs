//! The gateway in this process and tonic channels to it, shared by the scenarios.

use std::future::Future;
use std::net::SocketAddr;

use mp_gateway::app::Application;
use mp_gateway::config::{Config, Settings};
use tonic::transport::Channel;

use crate::BenchError;

/// Where an in-process gateway listens.
pub struct Listening {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

/// Builds the gateway from `settings` like the binary does (so new settings get
/// their defaults here too) on loopback ports, and serves until `stop` resolves.
/// No logging is set up: nothing is printed.
pub async fn start(
    settings: Settings,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<Listening, BenchError> {
    let settings = Settings {
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        ..settings
    };
    let config = Config::from_settings(&settings).map_err(BenchError::start)?;
    let app = Application::build(config)
        .await
        .map_err(BenchError::start)?;
    let listening = Listening {
        grpc: app.grpc_addr(),
        http: app.http_addr(),
    };
    tokio::spawn(app.run_until_stopped(stop));
    Ok(listening)
}

/// A connected plaintext HTTP/2 channel, Nagle off as a load client wants.
pub async fn connect(addr: SocketAddr) -> Result<Channel, BenchError> {
    Channel::from_shared(format!("http://{addr}"))
        .map_err(BenchError::start)?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| BenchError::Start(format!("cannot connect to {addr}: {e}")))
}
