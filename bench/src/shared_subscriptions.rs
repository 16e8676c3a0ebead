//! `shared-subscriptions`: ConsumeAlarms (a Redis consumer group) as users
//! run it: the release gateway as its own process with Redis, the load
//! generator here. Acked alarms/s for 1 and 10 consumers draining a backlog,
//! and alarm-to-consumer latency at a paced rate against SubscribeAlarms on
//! the same gateway at the same rate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mp_gateway::proto::ConsumeAlarmsRequest;
use mp_gateway::proto::alarm_service_client::AlarmServiceClient;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::alarm_load::{self, Clock, Fanout, Tally};
use crate::alarm_relay::{delete_keys, redis_for_run};
use crate::process::Server;
use crate::report::{Section, Table};
use crate::{BenchError, Options, gateway};

/// Alarms waiting before the consumers start.
const BACKLOG: u64 = 20_000;
const CONSUMER_COUNTS: [usize; 2] = [1, 10];
/// Paced rate of the latency rows.
const PACED_RATE: u32 = 250;

pub async fn run(options: &Options) -> Result<Section, BenchError> {
    let (_, conn, prefix) = redis_for_run(options, "shared-subscriptions").await?;
    let result = measure(options, &prefix).await;
    delete_keys(conn, &prefix).await;
    result
}

async fn measure(options: &Options, prefix: &str) -> Result<Section, BenchError> {
    let gateway = Server::gateway(
        &["--sandbox"],
        &[
            ("REDIS_URL", options.redis_url.as_str()),
            ("REDIS_KEY_PREFIX", prefix),
        ],
    )
    .await?;
    let http = alarm_load::http_client()?;
    let url = alarm_load::callback_url(http_addr(&gateway)?);
    let clock = Clock::start();

    let mut table = Table::new(&["measure", "ConsumeAlarms", "SubscribeAlarms"]);
    for consumers in CONSUMER_COUNTS {
        let subscription = format!("drain-{consumers}");
        // Created by a consumer that leaves at once: the backlog then waits.
        drop(Consumers::open(gateway.addr, &subscription, 1, clock, false).await?);
        let posted = post_backlog(&http, &url, clock).await?;
        let started = Instant::now();
        let fleet = Consumers::open(gateway.addr, &subscription, consumers, clock, true).await?;
        let acked = fleet.wait_acked(posted, Duration::from_secs(60)).await;
        let took = started.elapsed();
        println!(
            "  {consumers} consumer(s): {acked} of {posted} acked in {took:.2?} ({:.0}/s)",
            acked as f64 / took.as_secs_f64()
        );
        table.row(vec![
            format!("acked alarms/s, {consumers} consumer(s) draining {BACKLOG}"),
            format!(
                "{:.0} ({acked} of {posted})",
                acked as f64 / took.as_secs_f64()
            ),
            "–".into(),
        ]);
    }

    let measured = options.measured().max(Duration::from_secs(4));
    let consumers = Consumers::open(gateway.addr, "paced", 1, clock, true).await?;
    let subscribers = alarm_load::subscribe([gateway.addr, gateway.addr], 1, clock, false).await?;
    let sent = alarm_load::open_loop(
        &http,
        &[url.clone(), url],
        Fanout::Alternate,
        PACED_RATE,
        Duration::from_millis(500),
        measured,
        clock,
    )
    .await;
    let expected = sent.measured;
    let waited = [&consumers.tally, &subscribers.tally];
    for tally in waited {
        alarm_load::wait_for(
            tally,
            |t| t.measured.load(Ordering::Relaxed),
            expected,
            Duration::from_secs(10),
        )
        .await;
    }
    let quantile = |tally: &Tally, q| {
        tally.latency.quantile(q).map_or_else(
            || "–".into(),
            |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
        )
    };
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        table.row(vec![
            format!("alarm to consumer {name} at {PACED_RATE} callbacks/s"),
            quantile(&consumers.tally, q),
            quantile(&subscribers.tally, q),
        ]);
    }
    table.row(vec![
        format!(
            "measured alarms received (of {expected} sent, {} refused)",
            sent.failed
        ),
        consumers.tally.measured.load(Ordering::Relaxed).to_string(),
        subscribers
            .tally
            .measured
            .load(Ordering::Relaxed)
            .to_string(),
    ]);
    drop(consumers);
    drop(subscribers);
    gateway.stop().await;
    Ok(Section {
        title: "shared-subscriptions: ConsumeAlarms throughput and latency (Redis)".into(),
        notes: format!(
            "The release `mp-gateway --sandbox` with REDIS_URL (a fresh key prefix, deleted \
             afterwards) as its own process at its default configuration, one tokio worker \
             thread; the load generator is mp-bench. Throughput: a subscription is created, \
             {BACKLOG} callbacks are posted (16 senders), then 1 or 10 consumers on one HTTP/2 \
             connection each (default max_outstanding 100) ack every alarm as it arrives; \
             acked/s is the acks they sent over the time from their start to the last one. \
             Latency: one ConsumeAlarms consumer (acking each alarm) and one SubscribeAlarms \
             subscriber on the same gateway while callbacks arrive at {PACED_RATE}/s for \
             {:.1} s after 0.5 s warm-up; from just before the POST to receipt.",
            measured.as_secs_f64()
        ),
        table,
    })
}

fn http_addr(gateway: &Server) -> Result<SocketAddr, BenchError> {
    gateway
        .http
        .ok_or_else(|| BenchError::Start("the gateway has no HTTP address".into()))
}

/// Posts [`BACKLOG`] callbacks, 16 at a time; returns how many were accepted.
async fn post_backlog(http: &reqwest::Client, url: &str, clock: Clock) -> Result<u64, BenchError> {
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let mut senders = JoinSet::new();
    for _ in 0..16 {
        let (http, url, next, accepted) =
            (http.clone(), url.to_owned(), next.clone(), accepted.clone());
        senders.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < BACKLOG {
                if alarm_load::post_unmeasured(&http, &url, clock).await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let accepted = accepted.load(Ordering::Relaxed);
    if accepted == 0 {
        return Err(BenchError::Start("no callback was accepted".into()));
    }
    Ok(accepted)
}

/// ConsumeAlarms streams of one subscription, each in its own task.
struct Consumers {
    tally: Arc<Tally>,
    acked: Arc<AtomicU64>,
    tasks: JoinSet<()>,
}

impl Consumers {
    /// Opens `count` streams (each on its own connection), waiting until
    /// each has its first answer headers; `ack` acks every alarm received.
    async fn open(
        addr: SocketAddr,
        subscription: &str,
        count: usize,
        clock: Clock,
        ack: bool,
    ) -> Result<Self, BenchError> {
        let tally = Arc::new(Tally::default());
        let acked = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..count {
            let mut client = AlarmServiceClient::new(gateway::connect(addr).await?);
            let (send, requests) = mpsc::unbounded_channel();
            let first = ConsumeAlarmsRequest {
                subscription: subscription.to_owned(),
                ..Default::default()
            };
            send.send(first)
                .map_err(|_| BenchError::Start("request channel closed".into()))?;
            let requests = futures::stream::unfold(requests, |mut requests| async move {
                requests.recv().await.map(|request| (request, requests))
            });
            let mut stream = client.consume_alarms(requests).await?.into_inner();
            let (tally, acked) = (tally.clone(), acked.clone());
            tasks.spawn(async move {
                while let Ok(Some(delivery)) = stream.message().await {
                    let Some(alarm) = delivery.alarm else {
                        continue;
                    };
                    tally.receive(clock, &alarm.request_id);
                    if ack {
                        let acked_now = ConsumeAlarmsRequest {
                            ack_ids: vec![alarm.id],
                            ..Default::default()
                        };
                        if send.send(acked_now).is_err() {
                            break;
                        }
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        Ok(Self {
            tally,
            acked,
            tasks,
        })
    }

    /// Waits until `expected` alarms were acked or `limit` passed; how many were.
    async fn wait_acked(&self, expected: u64, limit: Duration) -> u64 {
        let give_up = Instant::now() + limit;
        while self.acked.load(Ordering::Relaxed) < expected && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.acked.load(Ordering::Relaxed)
    }
}

impl Drop for Consumers {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}
