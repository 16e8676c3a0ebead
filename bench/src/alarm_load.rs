//! The alarm-relay harness: MP-shaped callbacks in over HTTP/1.1, tonic
//! `SubscribeAlarms` streams out, the same for the gateway and its ceilings.
//!
//! Each callback's `requestId` carries its send instant (nanoseconds since
//! the run's [`Clock`] started) and whether it is measured; a subscriber
//! that receives it records now − sent. All of it runs in this process, so
//! both instants come from the same monotonic clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mp_gateway::proto::SubscribeAlarmsRequest;
use mp_gateway::proto::alarm_service_client::AlarmServiceClient;
use reqwest::header::CONTENT_TYPE;
use tokio::task::{JoinHandle, JoinSet};
use tonic::Code;
use tonic::transport::Channel;

use crate::BenchError;
use crate::gateway;
use crate::histogram::Histogram;

/// The run's time origin.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    fn nanos(self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A callback body like MP's (mp-api-v2.md 4.5.2), its `requestId` unique.
fn callback_body(clock: Clock, seq: u64, measured: bool) -> String {
    format!(
        r#"{{"eid":"89049032000001000000128255728753","packageCode":"LP14230831004073","orderCode":"ORDER_1726522312360550400","packageUsedRate":"84%","requestId":"bench-{seq}-{sent}-{measured}"}}"#,
        sent = clock.nanos(),
        measured = u8::from(measured),
    )
}

/// `(sent nanos, measured)` from a `requestId` made by [`callback_body`].
fn parse_request_id(request_id: &str) -> Option<(u64, bool)> {
    let mut parts = request_id.rsplitn(3, '-');
    let measured = parts.next()? == "1";
    let sent = parts.next()?.parse().ok()?;
    Some((sent, measured))
}

/// An HTTP/1.1 client with keep-alive, as MP's would be.
pub fn http_client() -> Result<reqwest::Client, BenchError> {
    mp_gateway::tls::install_crypto_provider();
    reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| BenchError::Start(format!("HTTP client: {e}")))
}

/// POSTs one callback; true if answered 200.
async fn post(http: &reqwest::Client, url: &str, body: String) -> bool {
    let sent = http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let ok = response.status() == reqwest::StatusCode::OK;
            // Read to the end, so the connection is kept for the next one.
            ok && response.bytes().await.is_ok()
        }
        Err(_) => false,
    }
}

/// POSTs one unmeasured callback (unique); true if answered 200.
pub async fn post_unmeasured(http: &reqwest::Client, url: &str, clock: Clock) -> bool {
    static SEQ: AtomicU64 = AtomicU64::new(u64::MAX / 2);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    post(http, url, callback_body(clock, seq, false)).await
}

pub fn callback_url(http: SocketAddr) -> String {
    format!("http://{http}{}", mp_gateway::alarms::callback::PATH)
}

/// What a group of subscribers received.
#[derive(Default)]
pub struct Tally {
    /// now − sent of measured alarms.
    pub latency: Histogram,
    pub measured: AtomicU64,
    pub unmeasured: AtomicU64,
    /// Streams ended with RESOURCE_EXHAUSTED (fell behind the buffer), then subscribed again.
    pub lag_ends: AtomicU64,
    /// Streams that failed otherwise, then subscribed again.
    pub errors: AtomicU64,
    ready: AtomicUsize,
}

impl Tally {
    pub fn delivered(&self) -> u64 {
        self.measured.load(Ordering::Relaxed) + self.unmeasured.load(Ordering::Relaxed)
    }

    pub fn receive(&self, clock: Clock, request_id: &str) {
        let now = clock.nanos();
        match parse_request_id(request_id) {
            Some((sent, true)) => {
                self.latency
                    .record(Duration::from_nanos(now.saturating_sub(sent)));
                self.measured.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.unmeasured.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Subscribers of one system, half on each replica, each stream in its own task.
pub struct Fleet {
    pub tally: Arc<Tally>,
    pub size: usize,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Subscribers share this many HTTP/2 connections per replica.
const CONNECTIONS_PER_REPLICA: usize = 8;

/// Opens `size` subscriptions, alternating between the replicas (a single
/// one goes to the second replica), and waits until all are open. With
/// `resume`, a stream that ends is resumed after the last alarm received
/// (the gateway replays the gap); otherwise it subscribes again from now.
pub async fn subscribe(
    replicas: [SocketAddr; 2],
    size: usize,
    clock: Clock,
    resume: bool,
) -> Result<Fleet, BenchError> {
    let mut connections: [Vec<AlarmServiceClient<Channel>>; 2] = [Vec::new(), Vec::new()];
    for (replica, addr) in replicas.iter().enumerate() {
        let on_replica = if size == 1 {
            replica
        } else {
            size / 2 + (size % 2) * (1 - replica)
        };
        for _ in 0..on_replica.min(CONNECTIONS_PER_REPLICA) {
            connections[replica].push(AlarmServiceClient::new(gateway::connect(*addr).await?));
        }
    }
    let tally = Arc::new(Tally::default());
    let tasks = (0..size)
        .map(|i| {
            let replica = if size == 1 { 1 } else { i % 2 };
            let on = &connections[replica];
            let client = on[(i / 2) % on.len()].clone();
            tokio::spawn(subscriber(client, tally.clone(), clock, resume))
        })
        .collect();
    let fleet = Fleet { tally, size, tasks };
    let give_up = Instant::now() + Duration::from_secs(30);
    while fleet.tally.ready.load(Ordering::Relaxed) < size {
        if Instant::now() > give_up {
            return Err(BenchError::Start(format!(
                "only {} of {size} subscriptions opened in 30 s",
                fleet.tally.ready.load(Ordering::Relaxed)
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(fleet)
}

async fn subscriber(
    mut client: AlarmServiceClient<Channel>,
    tally: Arc<Tally>,
    clock: Clock,
    resume: bool,
) {
    let mut last_id = String::new();
    let mut opened = false;
    loop {
        let request = SubscribeAlarmsRequest {
            resume_after: if resume {
                last_id.clone()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let mut stream = match client.subscribe_alarms(request).await {
            Ok(response) => response.into_inner(),
            Err(_) => {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !opened {
            opened = true;
            tally.ready.fetch_add(1, Ordering::Relaxed);
        }
        loop {
            match stream.message().await {
                Ok(Some(response)) => {
                    if let Some(alarm) = response.alarm {
                        tally.receive(clock, &alarm.request_id);
                        last_id = alarm.id;
                    }
                }
                Err(status) if status.code() == Code::ResourceExhausted => {
                    tally.lag_ends.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(None) | Err(_) => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

/// Where an open-loop sender posts each callback.
#[derive(Clone, Copy)]
pub enum Fanout {
    /// To the replicas in turn (they share a log).
    Alternate,
    /// To both (independent replicas; each subscriber still gets it once).
    Both,
}

/// What an open-loop run sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    /// Measured callbacks (each counted once, however many replicas got it).
    pub measured: u64,
    /// POSTs not answered 200.
    pub failed: u64,
}

/// Sends `rate` callbacks/s whatever the answers take (each POST in its own
/// task), for `warmup` unmeasured then `measured`; waits for the answers.
pub async fn open_loop(
    http: &reqwest::Client,
    urls: &[String; 2],
    fanout: Fanout,
    rate: u32,
    warmup: Duration,
    measured: Duration,
    clock: Clock,
) -> Sent {
    let failed = Arc::new(AtomicU64::new(0));
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let (measure_from, stop_at) = (start + warmup, start + warmup + measured);
    let mut posts = JoinSet::new();
    let mut sent = Sent::default();
    let mut seq: u64 = 0;
    loop {
        let tick = ticks.tick().await;
        if tick.into_std() >= stop_at {
            break;
        }
        let in_window = tick.into_std() >= measure_from;
        sent.measured += u64::from(in_window);
        seq += 1;
        let body = callback_body(clock, seq, in_window);
        let targets: &[String] = match fanout {
            Fanout::Alternate => std::slice::from_ref(&urls[(seq % 2) as usize]),
            Fanout::Both => urls,
        };
        for url in targets {
            let (http, url, body, failed) =
                (http.clone(), url.clone(), body.clone(), failed.clone());
            posts.spawn(async move {
                if !post(&http, &url, body).await {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Reap finished answers as we go so the set stays small.
        while posts.try_join_next().is_some() {}
    }
    while posts.join_next().await.is_some() {}
    sent.failed = failed.load(Ordering::Relaxed);
    sent
}

/// What closed-loop senders got through.
#[derive(Debug, Default, Clone, Copy)]
pub struct Accepted {
    /// Answered 200 within the measured window.
    pub in_window: u64,
    /// Answered 200 at any time (warm-up included).
    pub total: u64,
    pub failed: u64,
    pub window: Duration,
}

impl Accepted {
    pub fn per_sec(&self) -> f64 {
        self.in_window as f64 / self.window.as_secs_f64().max(f64::EPSILON)
    }
}

/// `senders` loops each POSTing a callback to `url`, waiting for the answer,
/// posting the next: for `warmup`, then `measured` (counted).
pub async fn closed_loop(
    http: &reqwest::Client,
    url: &str,
    senders: usize,
    warmup: Duration,
    measured: Duration,
    clock: Clock,
) -> Accepted {
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let (measure_from, stop_at) = (start + warmup, start + warmup + measured);
    let workers: Vec<_> = (0..senders)
        .map(|_| {
            let (http, url, seq) = (http.clone(), url.to_owned(), seq.clone());
            tokio::spawn(async move {
                let mut got = Accepted::default();
                while Instant::now() < stop_at {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    if post(&http, &url, callback_body(clock, n, false)).await {
                        got.total += 1;
                        let now = Instant::now();
                        got.in_window += u64::from(now >= measure_from && now < stop_at);
                    } else {
                        got.failed += 1;
                    }
                }
                got
            })
        })
        .collect();
    let mut all = Accepted {
        window: measured,
        ..Accepted::default()
    };
    for worker in workers {
        if let Ok(got) = worker.await {
            all.in_window += got.in_window;
            all.total += got.total;
            all.failed += got.failed;
        }
    }
    all
}

/// Waits until `tally` has at least `expected` of what `count` reads, or
/// `limit` passes; returns how long it waited.
pub async fn wait_for(
    tally: &Tally,
    count: impl Fn(&Tally) -> u64,
    expected: u64,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    while count(tally) < expected && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_carries_its_send_time() {
        let clock = Clock::start();
        let body: serde_json::Value = serde_json::from_str(&callback_body(clock, 7, true)).unwrap();
        let (sent, measured) = parse_request_id(body["requestId"].as_str().unwrap()).unwrap();
        assert!(measured);
        assert!(sent <= clock.nanos());
        assert_eq!(parse_request_id("bench-8-123-0"), Some((123, false)));
        assert_eq!(parse_request_id("r1"), None);
    }
}
