//! `footprint`: the real binary, as a platform team runs it: time from start
//! to SERVING, memory when idle, memory per idle alarm subscriber.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mp_gateway::proto::SubscribeAlarmsRequest;
use mp_gateway::proto::alarm_service_client::AlarmServiceClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::gateway;
use crate::report::{Section, Table};
use crate::{BenchError, Options};

const STARTS: usize = 7;
const SUBSCRIBERS: usize = 1000;
const SUBSCRIBER_CONNECTIONS: usize = 10;
/// Time for allocations to settle before memory is read.
const SETTLE: Duration = Duration::from_secs(1);

pub async fn run(_options: &Options) -> Result<Section, BenchError> {
    let binary = release_binary()?;
    let mut start_times = Vec::new();
    for _ in 0..STARTS {
        let mut gateway = Gateway::spawn(&binary)?;
        start_times.push(gateway.wait_serving().await?);
        gateway.stop();
    }
    start_times.sort();
    let median_start = start_times[start_times.len() / 2];
    let slowest_start = start_times[start_times.len() - 1];

    let mut gateway = Gateway::spawn(&binary)?;
    gateway.wait_serving().await?;
    tokio::time::sleep(SETTLE).await;
    let idle_kib = gateway.rss_kib()?;
    let streams = gateway.subscribe(SUBSCRIBERS).await?;
    tokio::time::sleep(SETTLE).await;
    let with_subscribers_kib = gateway.rss_kib()?;
    drop(streams);
    gateway.stop();
    let per_subscriber =
        (with_subscribers_kib.saturating_sub(idle_kib)) as f64 / SUBSCRIBERS as f64;

    let mut table = Table::new(&["measure", "measured", "goal", "met"]);
    let met = |ok: bool| if ok { "yes" } else { "no" }.to_owned();
    table.row(vec![
        format!("start to SERVING (median of {STARTS}; slowest)"),
        format!(
            "{} ms; {} ms",
            median_start.as_millis(),
            slowest_start.as_millis()
        ),
        "≤ 50 ms".into(),
        met(median_start <= Duration::from_millis(50)),
    ]);
    table.row(vec![
        "idle RSS".into(),
        format!("{:.1} MiB", idle_kib as f64 / 1024.0),
        "≤ 15 MiB".into(),
        met(idle_kib <= 15 * 1024),
    ]);
    table.row(vec![
        format!("memory per idle alarm subscriber ({SUBSCRIBERS} open)"),
        format!("{per_subscriber:.1} KiB"),
        "≤ 8 KiB".into(),
        met(per_subscriber <= 8.0),
    ]);
    Ok(Section {
        title: "footprint: start-up time and memory of the real binary".into(),
        notes: format!(
            "`target/release/mp-gateway --sandbox` (built by the benchmark if needed) as a child \
             process at its default configuration, with one tokio worker thread as in the other \
             scenarios. Start to SERVING: from spawn to the first \
             `grpc.health.v1.Health/Check` answering SERVING, polled every millisecond. RSS is \
             VmRSS from /proc after {} s idle, then again with {SUBSCRIBERS} SubscribeAlarms \
             streams open over {SUBSCRIBER_CONNECTIONS} HTTP/2 connections; the difference over \
             {SUBSCRIBERS} is the cost of one idle subscriber (in-process alarm bus).",
            SETTLE.as_secs()
        ),
        table,
    })
}

/// `target/release/mp-gateway`, next to this benchmark, built first if needed.
fn release_binary() -> Result<PathBuf, BenchError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "mp-gateway"])
        .status()
        .map_err(BenchError::start)?;
    if !built.success() {
        return Err(BenchError::Start(
            "cargo build --release --bin mp-gateway failed".into(),
        ));
    }
    let dir = std::env::current_exe()
        .map_err(BenchError::start)?
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| BenchError::Start("mp-bench has no directory".into()))?;
    Ok(dir.join("mp-gateway"))
}

fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(BenchError::start)?;
    Ok(listener.local_addr().map_err(BenchError::start)?.port())
}

struct Gateway {
    child: Child,
    grpc_port: u16,
    started: Instant,
}

impl Gateway {
    fn spawn(binary: &PathBuf) -> Result<Self, BenchError> {
        let (grpc_port, http_port) = (free_port()?, free_port()?);
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("--sandbox")
            .env("GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("TOKIO_WORKER_THREADS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(BenchError::start)?;
        Ok(Self {
            child,
            grpc_port,
            started,
        })
    }

    fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.grpc_port))
    }

    /// Time from spawn until the health service says SERVING.
    async fn wait_serving(&mut self) -> Result<Duration, BenchError> {
        let give_up = self.started + Duration::from_secs(10);
        loop {
            if let Ok(channel) = gateway::connect(self.grpc_addr()).await {
                let serving = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving);
                if serving {
                    return Ok(self.started.elapsed());
                }
            }
            if Instant::now() > give_up {
                return Err(BenchError::Start(
                    "the gateway did not serve within 10 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn rss_kib(&self) -> Result<u64, BenchError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(BenchError::start)?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| BenchError::Start("no VmRSS in /proc status".into()))
    }

    /// Opens `count` alarm streams; returns them so they stay open.
    async fn subscribe(
        &self,
        count: usize,
    ) -> Result<Vec<tonic::Streaming<mp_gateway::proto::SubscribeAlarmsResponse>>, BenchError> {
        let mut clients = Vec::new();
        for _ in 0..SUBSCRIBER_CONNECTIONS {
            clients.push(AlarmServiceClient::new(
                gateway::connect(self.grpc_addr()).await?,
            ));
        }
        let mut streams = Vec::with_capacity(count);
        for i in 0..count {
            let mut client = clients[i % clients.len()].clone();
            let stream = client
                .subscribe_alarms(SubscribeAlarmsRequest::default())
                .await?
                .into_inner();
            streams.push(stream);
        }
        Ok(streams)
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
