//! The gateway as a child process: the real binary, on free ports, stopped
//! with SIGTERM like an orchestrator stops it.

use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

/// A loopback port that was free a moment ago, for a child process to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The gateway binary, with the test's environment.
pub fn gateway_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mp-gateway"))
}

/// The gateway binary in sandbox mode, to serve gRPC on `grpc` and HTTP on `http`.
pub fn sandbox_binary(grpc: u16, http: u16) -> Command {
    let mut command = gateway_binary();
    command
        .arg("--sandbox")
        .env("GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("HTTP_ADDR", format!("127.0.0.1:{http}"));
    command
}

/// The loopback address of `port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends `signal` (as `kill` spells it, e.g. `-TERM`) to process `pid`.
pub fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Polls the gateway `child`'s `/readyz` on `http_addr` until it answers 200;
/// panics after `limit`, or at once if the child exits.
pub async fn wait_until_ready(child: &mut Child, http_addr: SocketAddr, limit: Duration) {
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
pub async fn sigterm_and_wait(mut child: Child, limit: Duration) -> ExitStatus {
    kill("-TERM", child.id());
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
