//! The start/stop story: read config, init logs, build, serve, drain on SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use mp_gateway::app::{Application, StartError};
use mp_gateway::config::{Cli, Command, Config};
use mp_gateway::sandbox::{Sandbox, SandboxConfig};
use mp_gateway::telemetry;

/// mimalloc: fewer cycles per allocation than the system allocator (glibc's,
/// or musl's in the container image), which every call makes many of.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// sysexits' EX_USAGE: the configuration is wrong.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Sandbox {
            port,
            access_key,
            secret_key,
            traffic_mb_per_sec,
        }) => {
            let config = SandboxConfig {
                access_key,
                secret_key: secret_key.into(),
                traffic_mb_per_sec,
            };
            run_sandbox(port, config).await
        }
        None => run_gateway(&cli).await,
    }
}

async fn run_gateway(cli: &Cli) -> ExitCode {
    let config = match Config::from_settings(&cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mp-gateway: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(config.log_format, config.otlp_endpoint.as_ref());
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(StartError::Config(e)) => {
            eprintln!("mp-gateway: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(grpc = %app.grpc_addr(), http = %app.http_addr(), "listening");
    let stopped = app.run_until_stopped(shutdown_signal()).await;
    telemetry::shutdown().await;
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("stopped with an error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_sandbox(port: u16, config: SandboxConfig) -> ExitCode {
    telemetry::init(mp_gateway::config::LogFormat::Pretty, None);
    let access_key = config.access_key.clone();
    let sandbox = match Sandbox::start(SocketAddr::from(([127, 0, 0, 1], port)), config).await {
        Ok(sandbox) => sandbox,
        Err(e) => {
            tracing::error!("cannot start the sandbox on port {port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(base_url = %sandbox.base_url(), %access_key, "MP sandbox running");
    shutdown_signal().await;
    sandbox.shutdown().await;
    telemetry::shutdown().await;
    ExitCode::SUCCESS
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM ({e}); only Ctrl-C stops the gateway");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
