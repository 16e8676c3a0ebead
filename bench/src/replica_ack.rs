//! `replica-ack`: what `REDIS_MIN_REPLICAS_ACK=1` costs the alarm relay.
//! A Redis primary and one replica (redis-server processes of their own on
//! loopback), the release gateway as its own process with the setting at 0
//! and at 1 (in turn), the load generator here.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::alarm_load::{self, Clock, Fanout, Tally};
use crate::process::Server;
use crate::report::{Section, Table};
use crate::{BenchError, Options};

const SENDERS: usize = 48;
const PACED_RATE: u32 = 250;

/// A `redis-server` on loopback, killed when dropped (with its child).
struct RedisProcess {
    _child: Child,
    port: u16,
}

impl RedisProcess {
    async fn start(replica_of: Option<u16>) -> Result<Self, BenchError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(BenchError::start)?
            .port();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true);
        if let Some(primary) = replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = command
            .spawn()
            .map_err(|e| BenchError::Start(format!("redis-server: {e}")))?;
        let redis = Self {
            _child: child,
            port,
        };
        redis.wait_ready(replica_of.is_some()).await?;
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Until it answers PING (a replica: until its link to the primary is up).
    async fn wait_ready(&self, replica: bool) -> Result<(), BenchError> {
        let client = redis::Client::open(self.url()).map_err(BenchError::start)?;
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let info: redis::RedisResult<String> = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut conn)
                    .await;
                if let Ok(info) = info
                    && (!replica || info.contains("master_link_status:up"))
                {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(BenchError::Start(format!(
            "redis-server on {} did not get ready",
            self.port
        )))
    }
}

struct Measured {
    accepted_per_sec: f64,
    refused: u64,
    p50: Option<Duration>,
    p99: Option<Duration>,
    received: u64,
    sent: u64,
}

pub async fn run(options: &Options) -> Result<Section, BenchError> {
    let primary = RedisProcess::start(None).await?;
    let replica = RedisProcess::start(Some(primary.port)).await?;
    let mut table = Table::new(&[
        "REDIS_MIN_REPLICAS_ACK",
        "callbacks/s accepted (48 senders)",
        "not 200",
        "alarm to subscriber p50 at 250/s",
        "p99",
        "received / sent",
    ]);
    for min_replicas in ["0", "1"] {
        let measured = measure(options, &primary.url(), min_replicas).await?;
        println!(
            "  REDIS_MIN_REPLICAS_ACK={min_replicas}: {:.0} callbacks/s, p99 {:?}",
            measured.accepted_per_sec, measured.p99
        );
        let ms = |d: Option<Duration>| {
            d.map_or_else(
                || "–".into(),
                |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
            )
        };
        table.row(vec![
            min_replicas.into(),
            format!("{:.0}", measured.accepted_per_sec),
            measured.refused.to_string(),
            ms(measured.p50),
            ms(measured.p99),
            format!("{} / {}", measured.received, measured.sent),
        ]);
    }
    drop(replica);
    drop(primary);
    Ok(Section {
        title: "replica-ack: the alarm relay with REDIS_MIN_REPLICAS_ACK=1 against 0".into(),
        notes: format!(
            "A Redis primary and one replica (`redis-server`, no persistence) on loopback; the \
             release `mp-gateway --sandbox` with REDIS_URL at the primary as its own process at \
             its default configuration (one tokio worker thread), started once per setting. \
             Throughput: {SENDERS} closed-loop HTTP/1.1 senders for {:.1} s after 0.5 s warm-up. \
             Latency: one SubscribeAlarms subscriber while callbacks arrive at {PACED_RATE}/s; \
             from just before the POST to receipt (with the setting at 1 the callback's 200 \
             also waits for the replica, which the subscriber's receipt does not).",
            options.measured().as_secs_f64()
        ),
        table,
    })
}

async fn measure(
    options: &Options,
    redis_url: &str,
    min_replicas: &str,
) -> Result<Measured, BenchError> {
    let prefix = format!("mp-bench:{}", uuid::Uuid::new_v4().simple());
    let gateway = Server::gateway(
        &["--sandbox"],
        &[
            ("REDIS_URL", redis_url),
            ("REDIS_KEY_PREFIX", prefix.as_str()),
            ("REDIS_MIN_REPLICAS_ACK", min_replicas),
        ],
    )
    .await?;
    let http_addr: SocketAddr = gateway
        .http
        .ok_or_else(|| BenchError::Start("the gateway has no HTTP address".into()))?;
    let http = alarm_load::http_client()?;
    let url = alarm_load::callback_url(http_addr);
    let clock = Clock::start();
    let accepted = alarm_load::closed_loop(
        &http,
        &url,
        SENDERS,
        Duration::from_millis(500),
        options.measured(),
        clock,
    )
    .await;
    let subscriber = alarm_load::subscribe([gateway.addr, gateway.addr], 1, clock, false).await?;
    let sent = alarm_load::open_loop(
        &http,
        &[url.clone(), url],
        Fanout::Alternate,
        PACED_RATE,
        Duration::from_millis(500),
        options.measured(),
        clock,
    )
    .await;
    let tally: &Tally = &subscriber.tally;
    alarm_load::wait_for(
        tally,
        |t| t.measured.load(Ordering::Relaxed),
        sent.measured,
        Duration::from_secs(10),
    )
    .await;
    let measured = Measured {
        accepted_per_sec: accepted.per_sec(),
        refused: accepted.failed + sent.failed,
        p50: tally.latency.quantile(0.5),
        p99: tally.latency.quantile(0.99),
        received: tally.measured.load(Ordering::Relaxed),
        sent: sent.measured,
    };
    drop(subscriber);
    gateway.stop().await;
    Ok(measured)
}
