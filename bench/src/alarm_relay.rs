//! `alarm-relay`: MP's usage-alarm callbacks in, `SubscribeAlarms` streams
//! out, through two gateway replicas sharing Redis — against, in the same
//! run and with the same harness, the ceilings of any such relay here:
//! `redis-benchmark` XADD throughput, a bare relay (a tonic stream fed by a
//! tokio broadcast channel) and the same bare relay made Redis-backed (XADD
//! before the 200, one XREAD reader per replica). See [`crate::bare_relay`].
//!
//! - Throughput: closed-loop HTTP/1.1 senders POST to replica A for a fixed
//!   time; one subscriber (on replica B where the replicas share a log)
//!   counts every alarm, to show that accepted == delivered.
//! - Latency: subscribers half on each replica; an open-loop sender posts
//!   [`RATE`] callbacks/s; each delivery's latency is now − the send instant
//!   carried in the callback's `requestId`. Systems take turns in rounds, all
//!   of a row's subscriptions open, so a load change elsewhere on the
//!   machine hits them alike.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mp_gateway::config::Settings;
use tokio::sync::oneshot;

use crate::alarm_load::{self, Accepted, Clock, Fanout, Fleet, Sent, Tally};
use crate::bare_relay::{self, BareReplica, RedisLog};
use crate::cpu::{CpuMeter, CpuUse};
use crate::gateway;
use crate::report::{Section, Table};
use crate::{BenchError, Options};

/// Callbacks/s of the latency rows (at 1,000 subscribers: 250,000 deliveries/s).
const RATE: u32 = 250;
/// Rounds per latency row; each system sends for `--seconds / ROUNDS` per round.
const ROUNDS: u32 = 4;
/// Measured callbacks per latency row and system, at the least: p99 then rests
/// on 30 or more tail samples even with one subscriber (at 1,000 callbacks a
/// single late scheduling decided it, and the ratio swung 0.85–1.54 run to run).
const MIN_LATENCY_CALLBACKS: u32 = 3000;
/// Unmeasured sending at the start of each round.
const WARMUP: Duration = Duration::from_millis(250);
/// How long the deliveries of a round may trail its last callback.
const DRAIN: Duration = Duration::from_secs(3);
/// Closed-loop senders of the throughput rows.
const SENDERS: usize = 48;
/// How long the throughput rows' subscriber may take to receive everything.
const THROUGHPUT_DRAIN: Duration = Duration::from_secs(15);
/// Goals (from the issue).
const GOAL_CALLBACKS_PER_SEC: f64 = 5000.0;
const GOAL_P99_RATIO: f64 = 1.5;
/// The redis-benchmark run: requests, clients.
const XADD_REQUESTS: u32 = 200_000;
const XADD_CLIENTS: u32 = 50;

pub async fn run(options: &Options) -> Result<Section, BenchError> {
    let (redis, conn, prefix) = redis_for_run(options, "alarm-relay").await?;
    let result = measure(options, &redis, conn.clone(), &prefix).await;
    delete_keys(conn, &prefix).await;
    result
}

/// Redis at `--redis-url`, connected, and a fresh key prefix for one run
/// (delete its keys with [`delete_keys`] at the end).
pub async fn redis_for_run(
    options: &Options,
    scenario: &str,
) -> Result<(redis::Client, redis::aio::MultiplexedConnection, String), BenchError> {
    let redis = redis::Client::open(options.redis_url.as_str())
        .map_err(|e| BenchError::Start(format!("--redis-url: {e}")))?;
    let conn = redis
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| {
            BenchError::Start(format!(
                "Redis at {} ({scenario} needs it): {e}",
                options.redis_url
            ))
        })?;
    let prefix = format!("mp-bench:{}", uuid::Uuid::new_v4().simple());
    Ok((redis, conn, prefix))
}

/// The gateway and the two ceilings, two replicas each.
struct System {
    name: &'static str,
    grpc: [SocketAddr; 2],
    urls: [String; 2],
    fanout: Fanout,
    /// Subscribers resume after their last alarm (only the gateway replays).
    resume: bool,
    /// Dropping them stops the replicas.
    _gateways: Vec<oneshot::Sender<()>>,
    _bare: Vec<BareReplica>,
}

impl System {
    fn new(name: &'static str, http: [SocketAddr; 2], grpc: [SocketAddr; 2]) -> Self {
        Self {
            name,
            grpc,
            urls: http.map(alarm_load::callback_url),
            fanout: Fanout::Alternate,
            resume: false,
            _gateways: Vec::new(),
            _bare: Vec::new(),
        }
    }
}

async fn start_systems(
    options: &Options,
    redis: &redis::Client,
    prefix: &str,
) -> Result<[System; 3], BenchError> {
    let mut stops = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let (stop, http, grpc) = start_gateway(&options.redis_url, prefix).await?;
        stops.push(stop);
        addrs.push((http, grpc));
    }
    let mut gateway = System::new(
        "gateway",
        [addrs[0].0, addrs[1].0],
        [addrs[0].1, addrs[1].1],
    );
    gateway.resume = true;
    gateway._gateways = stops;

    let log = RedisLog {
        client: redis.clone(),
        key: format!("{prefix}:bare-relay"),
    };
    let replicas = [
        bare_relay::start(Some(log.clone())).await?,
        bare_relay::start(Some(log)).await?,
    ];
    let mut redis_bare = System::new(
        "Redis bare relay",
        [replicas[0].http, replicas[1].http],
        [replicas[0].grpc, replicas[1].grpc],
    );
    redis_bare._bare = replicas.into();

    let replicas = [
        bare_relay::start(None).await?,
        bare_relay::start(None).await?,
    ];
    let mut bare = System::new(
        "bare relay",
        [replicas[0].http, replicas[1].http],
        [replicas[0].grpc, replicas[1].grpc],
    );
    // Independent replicas: every callback goes to both, so each subscriber
    // gets every alarm once, as with a shared log.
    bare.fanout = Fanout::Both;
    bare._bare = replicas.into();
    Ok([gateway, redis_bare, bare])
}

/// One gateway replica: sandbox upstream, loopback ports, Redis under `prefix`,
/// otherwise the binary's defaults. No logging is set up (nothing is printed).
async fn start_gateway(
    redis_url: &str,
    prefix: &str,
) -> Result<(oneshot::Sender<()>, SocketAddr, SocketAddr), BenchError> {
    let settings = Settings {
        sandbox: true,
        redis_url: Some(redis_url.to_owned()),
        redis_key_prefix: Some(prefix.to_owned()),
        // Short, so a run killed before its clean-up leaves little for long.
        alarm_dedup_window_secs: Some("120".into()),
        ..Settings::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let listening = gateway::start(settings, async {
        let _ = stopped.await;
    })
    .await?;
    Ok((stop, listening.http, listening.grpc))
}

struct ThroughputRow {
    accepted: Accepted,
    delivered: u64,
    lag_ends: u64,
    drain: Duration,
    cpu: Option<CpuUse>,
}

struct LatencyCell {
    p50: Option<Duration>,
    p99: Option<Duration>,
    expected: u64,
    delivered: u64,
    lag_ends: u64,
    failed_posts: u64,
    longest_drain: Duration,
    /// Deliveries (warm-up's too) per second from each round's first
    /// callback to its last delivery.
    achieved_per_sec: f64,
}

struct LatencyRow {
    subscribers: usize,
    cells: Vec<LatencyCell>,
    cpu: Option<CpuUse>,
}

async fn measure(
    options: &Options,
    redis: &redis::Client,
    conn: redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Result<Section, BenchError> {
    let mut cpu = CpuMeter::start(Some(conn)).await;
    eprintln!("  redis-benchmark XADD ({XADD_REQUESTS} requests, {XADD_CLIENTS} clients)…");
    let xadd = redis_benchmark_xadd(&options.redis_url, &format!("{prefix}:xadd")).await;
    let xadd_cpu = cpu.lap().await;
    match &xadd {
        Ok(rate) => eprintln!("  redis-benchmark XADD: {rate:.0}/s"),
        Err(e) => eprintln!("  redis-benchmark XADD not measured: {e}"),
    }

    let clock = Clock::start();
    let systems = start_systems(options, redis, prefix).await?;
    let http = alarm_load::http_client()?;
    cpu.lap().await;

    let mut throughput = Vec::new();
    for system in &systems {
        let row = measure_throughput(system, &http, clock, options.measured()).await?;
        let row = ThroughputRow {
            cpu: cpu.lap().await,
            ..row
        };
        eprintln!(
            "  throughput, {}: {:.0} callbacks/s accepted; {} accepted, {} delivered, {} non-200",
            system.name,
            row.accepted.per_sec(),
            row.accepted.total,
            row.delivered,
            row.accepted.failed
        );
        throughput.push(row);
    }

    let per_round = options
        .measured()
        .max(Duration::from_secs(u64::from(MIN_LATENCY_CALLBACKS / RATE)))
        / ROUNDS;
    let mut latency = Vec::new();
    for &subscribers in &options.subscribers {
        let subscribers = subscribers.max(1);
        let row = measure_latency(&systems, &http, clock, subscribers, per_round).await?;
        let row = LatencyRow {
            cpu: cpu.lap().await,
            ..row
        };
        let [gw, rb, bare] = &row.cells[..] else {
            unreachable!("three systems")
        };
        eprintln!(
            "  {subscribers:>4} subscribers: p99 gateway {}, Redis bare {}, bare {}; delivered {} / {} / {}",
            ms(gw.p99),
            ms(rb.p99),
            ms(bare.p99),
            percent(gw.delivered, gw.expected),
            percent(rb.delivered, rb.expected),
            percent(bare.delivered, bare.expected),
        );
        latency.push(row);
    }
    drop(systems);
    Ok(section(
        options,
        &xadd,
        xadd_cpu,
        &throughput,
        &latency,
        per_round,
    ))
}

/// Closed-loop senders to replica A; one subscriber (on B, or on A for the
/// bare relay whose replicas share nothing) counts what comes out.
async fn measure_throughput(
    system: &System,
    http: &reqwest::Client,
    clock: Clock,
    measured: Duration,
) -> Result<ThroughputRow, BenchError> {
    let counting_on = match system.fanout {
        Fanout::Alternate => system.grpc[1],
        Fanout::Both => system.grpc[0],
    };
    let fleet = alarm_load::subscribe([counting_on, counting_on], 1, clock, system.resume).await?;
    let accepted =
        alarm_load::closed_loop(http, &system.urls[0], SENDERS, WARMUP, measured, clock).await;
    let drain = alarm_load::wait_for(
        &fleet.tally,
        Tally::delivered,
        accepted.total,
        THROUGHPUT_DRAIN,
    )
    .await;
    // Anything more that was stored but not acknowledged (e.g. a timed-out answer).
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(ThroughputRow {
        accepted,
        delivered: fleet.tally.delivered(),
        lag_ends: fleet.tally.lag_ends.load(Ordering::Relaxed),
        drain,
        cpu: None,
    })
}

async fn measure_latency(
    systems: &[System; 3],
    http: &reqwest::Client,
    clock: Clock,
    subscribers: usize,
    per_round: Duration,
) -> Result<LatencyRow, BenchError> {
    let mut fleets: Vec<Fleet> = Vec::new();
    for system in systems {
        fleets.push(alarm_load::subscribe(system.grpc, subscribers, clock, system.resume).await?);
    }
    let mut sent = [Sent::default(); 3];
    let mut longest_drain = [Duration::ZERO; 3];
    let mut busy = [(0_u64, Duration::ZERO); 3];
    for round in 0..ROUNDS as usize {
        for turn in 0..systems.len() {
            let s = (turn + round) % systems.len();
            let (system, tally) = (&systems[s], &fleets[s].tally);
            let (started, delivered_before) = (Instant::now(), tally.delivered());
            let got = alarm_load::open_loop(
                http,
                &system.urls,
                system.fanout,
                RATE,
                WARMUP,
                per_round,
                clock,
            )
            .await;
            sent[s].measured += got.measured;
            sent[s].failed += got.failed;
            let expected = sent[s].measured * subscribers as u64;
            let drain = alarm_load::wait_for(
                tally,
                |t| t.measured.load(Ordering::Relaxed),
                expected,
                DRAIN,
            )
            .await;
            longest_drain[s] = longest_drain[s].max(drain);
            busy[s].0 += tally.delivered() - delivered_before;
            busy[s].1 += started.elapsed();
        }
    }
    let cells = fleets
        .iter()
        .enumerate()
        .map(|(s, fleet)| LatencyCell {
            p50: fleet.tally.latency.quantile(0.50),
            p99: fleet.tally.latency.quantile(0.99),
            expected: sent[s].measured * fleet.size as u64,
            delivered: fleet.tally.measured.load(Ordering::Relaxed),
            lag_ends: fleet.tally.lag_ends.load(Ordering::Relaxed),
            failed_posts: sent[s].failed,
            longest_drain: longest_drain[s],
            achieved_per_sec: busy[s].0 as f64 / busy[s].1.as_secs_f64().max(1e-9),
        })
        .collect();
    Ok(LatencyRow {
        subscribers,
        cells,
        cpu: None,
    })
}

/// Runs `redis-benchmark` XADD (MAXLEN ~ 100000) against the configured Redis.
async fn redis_benchmark_xadd(redis_url: &str, key: &str) -> Result<f64, String> {
    let url = url::Url::parse(redis_url).map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new("redis-benchmark");
    command
        .args(["-h", url.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &url.port().unwrap_or(6379).to_string()]);
    if let Some(password) = url.password() {
        command.args(["-a", password]);
    }
    let output = command
        .args(["-q", "-n", &XADD_REQUESTS.to_string()])
        .args(["-c", &XADD_CLIENTS.to_string(), "-P", "1"])
        .args(["XADD", key, "MAXLEN", "~", "100000", "*", "f", "v"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_requests_per_sec(&stdout).ok_or_else(|| {
        format!(
            "no rate in redis-benchmark's output: {:?} {:?}",
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// `… XADD k … f v: 15600.62 requests per second, p50=0.391 msec` → 15600.62
/// (the last such line; `-q` output has progress lines before it).
fn parse_requests_per_sec(output: &str) -> Option<f64> {
    let before = &output[..output.rfind(" requests per second")?];
    before.rsplit([' ', '\r', '\n']).next()?.parse().ok()
}

/// Deletes every key of the run (the gateway's stream and dedup keys, the
/// ceilings' streams).
/// Deletes every key under `prefix`, hash-tagged ones (`{prefix:…}…`) too.
pub async fn delete_keys(mut conn: redis::aio::MultiplexedConnection, prefix: &str) {
    let mut deleted = 0;
    for pattern in [format!("{prefix}:*"), format!("{{{prefix}:*")] {
        let mut cursor: u64 = 0;
        loop {
            let page: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(5000)
                .query_async(&mut conn)
                .await;
            let Ok((next, keys)) = page else {
                eprintln!("  (could not delete the run's Redis keys {pattern})");
                return;
            };
            if !keys.is_empty() {
                deleted += keys.len();
                let _: redis::RedisResult<u64> =
                    redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    eprintln!("  deleted the run's {deleted} Redis keys (under {prefix})");
}

fn ms(latency: Option<Duration>) -> String {
    match latency {
        None => "–".into(),
        Some(d) => {
            let ms = d.as_secs_f64() * 1000.0;
            match ms {
                ms if ms < 10.0 => format!("{ms:.2} ms"),
                ms if ms < 100.0 => format!("{ms:.1} ms"),
                ms => format!("{ms:.0} ms"),
            }
        }
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if part == whole {
        "100 %".into()
    } else {
        format!("{p:.1} %")
    }
}

/// 248,312.5 → "248k"; 912.3 → "912".
fn per_sec(rate: f64) -> String {
    if rate >= 10_000.0 {
        format!("{:.0}k", rate / 1000.0)
    } else {
        format!("{rate:.0}")
    }
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> Option<f64> {
    Some(a?.as_secs_f64() / b?.as_secs_f64().max(1e-9))
}

fn cpu_note(cpu: Option<CpuUse>) -> String {
    cpu.map_or_else(|| "CPU use unknown".into(), |c| c.to_string())
}

fn section(
    options: &Options,
    xadd: &Result<f64, String>,
    xadd_cpu: Option<CpuUse>,
    throughput: &[ThroughputRow],
    latency: &[LatencyRow],
    per_round: Duration,
) -> Section {
    let mut table = Table::new(&[
        "subscribers",
        "deliveries/s offered",
        "gateway p50",
        "gateway p99",
        "Redis bare p50",
        "Redis bare p99",
        "bare p50",
        "bare p99",
        "p99 ratio (gateway / Redis bare)",
        "deliveries/s achieved (gateway / Redis bare / bare)",
        "delivered (gateway / Redis bare / bare)",
        "streams ended by lag (gateway / Redis bare / bare)",
    ]);
    let mut ratios_met = true;
    for row in latency {
        let [gw, rb, bare] = &row.cells[..] else {
            unreachable!("three systems")
        };
        let r = ratio(gw.p99, rb.p99);
        ratios_met &= r.is_some_and(|r| r <= GOAL_P99_RATIO);
        table.row(vec![
            row.subscribers.to_string(),
            (u64::from(RATE) * row.subscribers as u64).to_string(),
            ms(gw.p50),
            ms(gw.p99),
            ms(rb.p50),
            ms(rb.p99),
            ms(bare.p50),
            ms(bare.p99),
            r.map_or_else(|| "–".into(), |r| format!("{r:.2}")),
            format!(
                "{} / {} / {}",
                per_sec(gw.achieved_per_sec),
                per_sec(rb.achieved_per_sec),
                per_sec(bare.achieved_per_sec)
            ),
            format!(
                "{} / {} / {}",
                percent(gw.delivered, gw.expected),
                percent(rb.delivered, rb.expected),
                percent(bare.delivered, bare.expected)
            ),
            format!("{} / {} / {}", gw.lag_ends, rb.lag_ends, bare.lag_ends),
        ]);
    }

    let mut accept = Table::new(&[
        "system",
        "callbacks/s accepted (HTTP 200)",
        "accepted",
        "delivered to one subscriber",
        "lost",
        "non-200",
        "streams ended by lag",
    ]);
    let names = [
        "gateway (2 replicas, Redis)",
        "Redis bare relay",
        "bare relay (no Redis)",
    ];
    for (name, row) in names.iter().zip(throughput) {
        accept.row(vec![
            (*name).to_owned(),
            format!("{:.0}", row.accepted.per_sec()),
            row.accepted.total.to_string(),
            row.delivered.to_string(),
            row.accepted.total.saturating_sub(row.delivered).to_string(),
            row.accepted.failed.to_string(),
            row.lag_ends.to_string(),
        ]);
    }
    accept.row(vec![
        "`redis-benchmark` XADD".into(),
        match xadd {
            Ok(rate) => format!("{rate:.0} XADD/s"),
            Err(e) => format!("not measured ({e})"),
        },
        XADD_REQUESTS.to_string(),
        "–".into(),
        "–".into(),
        "–".into(),
        "–".into(),
    ]);

    println!("{accept}");
    let gw = &throughput[0];
    let throughput_met = gw.accepted.per_sec() >= GOAL_CALLBACKS_PER_SEC
        && gw.delivered == gw.accepted.total
        && gw.accepted.failed == 0;
    let met = |yes: bool| if yes { "**met**" } else { "**not met**" };

    let mut notes = String::new();
    let _ = writeln!(
        notes,
        "Latency of a callback to each subscriber: from just before the POST to the \
         subscriber's receipt of the decoded message (one process, one monotonic clock; \
         the send instant rides in the callback's `requestId`). {RATE} callbacks/s open loop \
         (each POST in its own task), to the two replicas in turn; subscribers half on each \
         replica (a single one on the second), over at most 8 HTTP/2 connections per \
         replica. Each row: {ROUNDS} rounds per system, systems taking turns, each round \
         {:.2} s warm-up then {:.2} s measured, then up to {:.0} s for the deliveries to \
         finish; p50/p99 are over every delivery of a measured callback. \"achieved\" is \
         deliveries per second from a round's first callback to its last delivery (below \
         the offered rate when deliveries trail the callbacks: the system or the client \
         could not keep up); \"delivered\" is of measured callbacks × subscribers; a stream ended by lag (more than 1,024 alarms behind: \
         RESOURCE_EXHAUSTED) subscribes again — after its last alarm for the gateway, which \
         replays the gap, from now for the ceilings, which lose it.\n",
        WARMUP.as_secs_f64(),
        per_round.as_secs_f64(),
        DRAIN.as_secs_f64(),
    );
    let _ = writeln!(
        notes,
        "The ceilings (`src/bin/mp-bench/bare_relay.rs`), two replicas each, measured with \
         the same clients: the **bare relay** is an axum `POST /mp/alarm-callback` that \
         parses the JSON into the proto `Alarm` and sends it to a `tokio::sync::broadcast` \
         channel (capacity 1,024), then answers 200, and an `AlarmService` whose \
         `SubscribeAlarms` streams that channel (no Redis, no filters, no dedup, no resume). \
         Its replicas share nothing, so each callback is POSTed to both (each subscriber \
         still gets it once, and each replica fans out every alarm, as the gateway's do). \
         The **Redis bare relay** XADDs the encoded alarm (MAXLEN ~ 100000) before the 200; \
         one reader per replica (own connection, XREAD BLOCK from the last id) feeds the \
         broadcast, so a callback to either replica reaches the subscribers of both — the \
         least any Redis-backed relay does. The gateway adds to it: the dedup key (SET NX \
         and XADD in one Lua script), JSON for the stored alarm, the filter and resume \
         logic per stream, auth/load-shedding layers and metrics.\n"
    );
    let _ = writeln!(
        notes,
        "**Throughput** ({SENDERS} closed-loop HTTP/1.1 keep-alive senders to replica A for \
         {:.1} s after {:.2} s warm-up; callbacks/s counts 200s in the measured window, the \
         other columns the whole run; one subscriber — on replica B, or on A for the bare \
         relay whose replicas share nothing — counts every alarm, given up to {:.0} s after \
         the senders stop):\n\n{accept}",
        options.measured().as_secs_f64(),
        WARMUP.as_secs_f64(),
        THROUGHPUT_DRAIN.as_secs_f64(),
    );
    let _ = writeln!(
        notes,
        "Goals: ≥ {GOAL_CALLBACKS_PER_SEC:.0} callbacks/s accepted with no loss — {} \
         ({:.0}/s, {} accepted, {} delivered, {} non-200); gateway p99 within \
         {GOAL_P99_RATIO}× the Redis bare relay's at each subscriber count — {}.\n",
        met(throughput_met),
        gw.accepted.per_sec(),
        gw.accepted.total,
        gw.delivered,
        gw.accepted.failed,
        met(ratios_met),
    );
    let _ = writeln!(
        notes,
        "Client, servers and Redis share the machine's cores; CPU use (cores, averaged) per phase:\n"
    );
    let _ = writeln!(
        notes,
        "- redis-benchmark (its client counted as this process): {}",
        cpu_note(xadd_cpu)
    );
    for (name, row) in names.iter().zip(throughput) {
        let _ = writeln!(
            notes,
            "- throughput, {name}: {} (drained in {:.2} s)",
            cpu_note(row.cpu),
            row.drain.as_secs_f64()
        );
    }
    for row in latency {
        let drains: Vec<String> = row
            .cells
            .iter()
            .map(|c| format!("{:.2} s", c.longest_drain.as_secs_f64()))
            .collect();
        let failed: u64 = row.cells.iter().map(|c| c.failed_posts).sum();
        let _ = writeln!(
            notes,
            "- latency, {} subscribers: {} (longest drain gateway / Redis bare / bare: {}; non-200: {failed})",
            row.subscribers,
            cpu_note(row.cpu),
            drains.join(" / ")
        );
    }
    let others: Vec<f64> = xadd_cpu
        .iter()
        .chain(throughput.iter().filter_map(|r| r.cpu.as_ref()))
        .chain(latency.iter().filter_map(|r| r.cpu.as_ref()))
        .map(|c| c.others)
        .collect();
    let least = others.iter().copied().fold(f64::INFINITY, f64::min);
    let most = others.iter().copied().fold(0.0_f64, f64::max);
    if !others.is_empty() {
        let _ = writeln!(
            notes,
            "\nOther processes used {least:.2}–{most:.2} cores per phase{}",
            if most > 0.25 {
                ": the machine was busy (others take whatever this run leaves idle), so \
                 absolute numbers are low and noisy; compare within a row."
            } else {
                " (the machine was quiet)."
            }
        );
    }
    Section {
        title: "alarm-relay: MP callbacks to SubscribeAlarms streams across two replicas (Redis)"
            .into(),
        notes,
        table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_quiet_output_is_read() {
        let out = "XADD k MAXLEN ~ 100000 * f v: rps=0.0 (overall: nan) avg_msec=nan\r\
                   XADD k MAXLEN ~ 100000 * f v: 15600.62 requests per second, p50=0.391 msec\n";
        assert_eq!(parse_requests_per_sec(out), Some(15600.62));
        assert_eq!(parse_requests_per_sec("ERR"), None);
    }
}
