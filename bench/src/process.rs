//! Servers under test as processes of their own, as users run them: the
//! release `mp-gateway` (and its `sandbox` subcommand as MP), and the
//! ceilings, served by this binary's hidden `serve-ceiling` subcommand.
//! Each runs one tokio worker thread, so its CPU time per call is its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::BenchError;
use crate::cpu::ProcessCpu;
use crate::gateway;

/// How long a server may take to start.
const START_WITHIN: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(15);

/// A running server process; killed if dropped without [`Server::stop`].
pub struct Server {
    name: &'static str,
    child: Child,
    pid: u32,
    pub addr: SocketAddr,
    /// The gateway's HTTP listener (callbacks, health, metrics).
    pub http: Option<SocketAddr>,
}

/// `target/release/mp-gateway`: next to this executable.
fn gateway_binary() -> Result<PathBuf, BenchError> {
    let binary = std::env::current_exe()
        .map_err(BenchError::start)?
        .with_file_name("mp-gateway");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(BenchError::Start(format!(
            "no gateway binary at {}; build it first: cargo build --release -p mp-gateway",
            binary.display()
        )))
    }
}

/// A loopback address nobody listens on right now.
fn free_addr() -> Result<SocketAddr, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(BenchError::start)?;
    listener.local_addr().map_err(BenchError::start)
}

/// A command with none of this process's environment (so a REDIS_URL or
/// RUST_LOG of the shell does not change what is measured) and one worker.
fn command(program: PathBuf) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("TOKIO_WORKER_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

impl Server {
    /// The release gateway with its default configuration plus `args` and
    /// `env`, on free loopback ports; ready once grpc.health.v1 says SERVING.
    pub async fn gateway(args: &[&str], env: &[(&str, &str)]) -> Result<Self, BenchError> {
        let (grpc, http) = (free_addr()?, free_addr()?);
        let mut command = command(gateway_binary()?);
        command
            .args(args)
            .env("GRPC_ADDR", grpc.to_string())
            .env("HTTP_ADDR", http.to_string())
            .envs(env.iter().copied());
        let mut server = Self::spawn("gateway", command, grpc)?;
        server.http = Some(http);
        server.wait_serving().await?;
        Ok(server)
    }

    /// `mp-gateway sandbox`, the MP simulator, as the upstream; its HTTP
    /// port is `addr`. Ready once it accepts.
    pub async fn sandbox(access_key: &str, secret_key: &str) -> Result<Self, BenchError> {
        let addr = free_addr()?;
        let mut command = command(gateway_binary()?);
        command
            .arg("sandbox")
            .args(["--port", &addr.port().to_string()])
            .args(["--access-key", access_key, "--secret-key", secret_key]);
        let mut server = Self::spawn("MP sandbox", command, addr)?;
        server.wait_accepting().await?;
        Ok(server)
    }

    /// `mp-bench serve-ceiling <ceiling> --grpc ADDR`, given `input` on its
    /// stdin; ready once it accepts.
    pub async fn ceiling(ceiling: &str, input: &[u8]) -> Result<Self, BenchError> {
        let grpc = free_addr()?;
        let mut command = command(std::env::current_exe().map_err(BenchError::start)?);
        command
            .args(["serve-ceiling", ceiling, "--grpc", &grpc.to_string()])
            .stdin(Stdio::piped());
        let mut server = Self::spawn("ceiling", command, grpc)?;
        let mut stdin = server.child.stdin.take().expect("stdin was piped above");
        stdin.write_all(input).await.map_err(BenchError::start)?;
        drop(stdin);
        server.wait_accepting().await?;
        Ok(server)
    }

    fn spawn(
        name: &'static str,
        mut command: Command,
        addr: SocketAddr,
    ) -> Result<Self, BenchError> {
        let child = command
            .spawn()
            .map_err(|e| BenchError::Start(format!("cannot start the {name}: {e}")))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Start(format!("the {name} exited at once")))?;
        Ok(Self {
            name,
            child,
            pid,
            addr,
            http: None,
        })
    }

    /// A meter of this server's CPU time.
    pub fn cpu(&self) -> ProcessCpu {
        ProcessCpu::of(self.pid)
    }

    async fn wait_serving(&mut self) -> Result<(), BenchError> {
        let give_up = Instant::now() + START_WITHIN;
        loop {
            self.still_running()?;
            if let Ok(channel) = gateway::connect(self.addr).await {
                let serving = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving);
                if serving {
                    return Ok(());
                }
            }
            self.give_up_after(give_up)?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_accepting(&mut self) -> Result<(), BenchError> {
        let give_up = Instant::now() + START_WITHIN;
        loop {
            self.still_running()?;
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            self.give_up_after(give_up)?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn still_running(&mut self) -> Result<(), BenchError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(BenchError::Start(format!(
                "the {} exited at start ({status})",
                self.name
            ))),
            Err(e) => Err(BenchError::start(e)),
        }
    }

    fn give_up_after(&self, deadline: Instant) -> Result<(), BenchError> {
        if Instant::now() > deadline {
            return Err(BenchError::Start(format!(
                "the {} did not get ready within {} s",
                self.name,
                START_WITHIN.as_secs()
            )));
        }
        Ok(())
    }

    /// SIGTERM (through kill(1): this crate has no libc), then waits for the
    /// exit; killed if it takes longer than [`STOP_WITHIN`].
    pub async fn stop(mut self) {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .is_ok_and(|s| s.success());
        if !signalled
            || tokio::time::timeout(STOP_WITHIN, self.child.wait())
                .await
                .is_err()
        {
            eprintln!("  (the {} did not stop on SIGTERM; killed)", self.name);
            let _ = self.child.kill().await;
        }
    }
}
