//! `passthrough`: what the gateway adds to an MP call. GetOrderStatus through
//! the gateway against the same signed REST call made straight to the
//! sandbox (MP's stand-in, a process of its own), in alternating rounds of
//! the same run.

use std::time::Duration;

use mp_gateway::mp::signing::{self, SigningInput};
use mp_gateway::proto::order_service_client::OrderServiceClient;
use mp_gateway::proto::{CreateOrderRequest, GetOrderStatusRequest};
use reqwest::header::{HeaderMap, HeaderValue};
use tonic::transport::Channel;

use crate::cpu::ProcessCpu;
use crate::gateway;
use crate::load::{self, Stats};
use crate::process;
use crate::report::{Section, Table, micros};
use crate::{BenchError, Options};

const ACCESS_KEY: &str = "BENCH0001";
const SECRET_KEY: &str = "bench-secret";
const REQUEST_ID: &str = "mp-bench-passthrough";
const WARMUP: Duration = Duration::from_millis(100);
const CLIENTS: &[usize] = &[1, 32];
const MAX_CONNECTIONS: usize = 4;

pub async fn run(options: &Options) -> Result<Section, BenchError> {
    mp_gateway::tls::install_crypto_provider();
    let sandbox = process::Server::sandbox(ACCESS_KEY, SECRET_KEY).await?;
    let mp_base_url = format!("http://{}", sandbox.addr);
    let gateway = process::Server::gateway(
        &[],
        &[
            ("MP_BASE_URL", mp_base_url.as_str()),
            ("MP_ACCESS_KEY", ACCESS_KEY),
            ("MP_SECRET_KEY", SECRET_KEY),
        ],
    )
    .await?;
    let channel = gateway::connect(gateway.addr).await?;
    let order_code = OrderServiceClient::new(channel.clone())
        .create_order(CreateOrderRequest {
            product_id: 6,
            activate: Some(true),
            ..Default::default()
        })
        .await?
        .into_inner()
        .order_code;
    let direct = DirectCall::new(&mp_base_url, &order_code)?;

    let mut table = Table::new(&[
        "in flight",
        "gateway p50",
        "gateway p99",
        "direct REST p50",
        "direct REST p99",
        "overhead p50",
        "overhead p99",
        "gateway CPU/call",
        "direct reqwest CPU/call",
        "MP sandbox CPU/call (via gateway; direct)",
    ]);
    let rounds = options.rounds.max(1);
    let round = options.measured() / rounds;
    for &clients in CLIENTS {
        let channels: Vec<_> = (0..clients.min(MAX_CONNECTIONS))
            .map(|_| OrderServiceClient::new(channel.clone()))
            .collect();
        let (mut through, mut straight) = (Stats::default(), Stats::default());
        let mut gateway_cpu = gateway.cpu();
        let (mut mp_via, mut mp_direct) = (sandbox.cpu(), sandbox.cpu());
        let mut reqwest_cpu = ProcessCpu::this_process();
        for _ in 0..rounds {
            through.merge(
                ProcessCpu::round(
                    &mut [&mut gateway_cpu, &mut mp_via],
                    via_gateway(&channels, &order_code, clients, round),
                )
                .await?,
            );
            straight.merge(
                ProcessCpu::round(
                    &mut [&mut reqwest_cpu, &mut mp_direct],
                    direct.measure(clients, round),
                )
                .await?,
            );
        }
        let (g50, g99) = (through.quantile(0.50), through.quantile(0.99));
        let (d50, d99) = (straight.quantile(0.50), straight.quantile(0.99));
        eprintln!(
            "  {clients:>2} in flight: gateway p50 {g50:?} {gateway_cpu} CPU/call, \
             direct p50 {d50:?} {reqwest_cpu} CPU/call"
        );
        table.row(vec![
            clients.to_string(),
            micros(g50),
            micros(g99),
            micros(d50),
            micros(d99),
            signed_micros(g50, d50),
            signed_micros(g99, d99),
            gateway_cpu.to_string(),
            reqwest_cpu.to_string(),
            format!("{mp_via}; {mp_direct}"),
        ]);
    }
    drop(channel);
    gateway.stop().await;
    sandbox.stop().await;
    Ok(Section {
        title: "passthrough: what the gateway adds to an MP call".into(),
        notes: format!(
            "GetOrderStatus of one active order through the gateway (gRPC, validation, signing, \
             the MP client, decoding, proto) against the identical signed `GET queryOrderStatus` \
             made directly with reqwest; {rounds} alternating rounds of {:.1} s per row. \
             Overhead = gateway − direct at the same quantile. Goal: overhead ≤ 0.2 ms at p50. \
             Three processes: the release `mp-gateway` with its default configuration plus \
             MP_BASE_URL/MP_ACCESS_KEY/MP_SECRET_KEY (JSON logs at its default level to \
             /dev/null), MP played by `mp-gateway sandbox` (its own process), both with one tokio \
             worker thread; the load generator (mp-bench, {client_threads} worker thread(s), \
             `--client-threads`) makes the direct calls too. CPU/call: utime + stime of the \
             process (/proc/PID/stat before and after every round, 10 ms ticks: Linux USER_HZ = \
             100) over the calls completed, warm-up included. \"direct reqwest CPU/call\" is \
             mp-bench's own CPU in the direct rounds: the cost of making the MP call itself, \
             which the gateway pays too. No bare ceiling server is measured for this scenario.",
            round.as_secs_f64(),
            client_threads = options.client_threads,
        ),
        table,
    })
}

fn signed_micros(a: Duration, b: Duration) -> String {
    let delta = a.as_micros() as i128 - b.as_micros() as i128;
    format!("{delta} µs")
}

async fn via_gateway(
    channels: &[OrderServiceClient<Channel>],
    order_code: &str,
    clients: usize,
    time: Duration,
) -> Result<Stats, BenchError> {
    let channels = channels.to_vec();
    let order_code = order_code.to_owned();
    Ok(load::drive(clients, WARMUP, time, move |i| {
        let mut client = channels[i % channels.len()].clone();
        let request = GetOrderStatusRequest {
            request_id: REQUEST_ID.into(),
            order_code: order_code.clone(),
        };
        async move { client.get_order_status(request).await.map(drop) }
    })
    .await?)
}

/// The MP call the gateway makes, made directly: signed once (the signature
/// has no time in it), then repeated.
#[derive(Clone)]
struct DirectCall {
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
}

impl DirectCall {
    fn new(base_url: &str, order_code: &str) -> Result<Self, BenchError> {
        let path = "/mp-api/api/esim/queryOrderStatus";
        let query =
            signing::canonical_query([("orderCode", order_code), ("requestId", REQUEST_ID)]);
        let signature = SigningInput {
            method: "GET",
            path,
            canonical_query: &query,
            access_key: ACCESS_KEY,
            date: None,
            signed_headers: signing::MP_SIGNED_HEADER_VALUES,
        }
        .signature(SECRET_KEY.as_bytes());
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("X-HMAC-ACCESS-KEY", ACCESS_KEY),
            ("X-HMAC-ALGORITHM", signing::ALGORITHM),
            ("X-HMAC-SIGNED-HEADERS", signing::SIGNED_HEADERS),
            ("X-HMAC-SIGNATURE", signature.as_str()),
            ("Accept-Language", signing::ACCEPT_LANGUAGE),
            ("Content-Type", signing::CONTENT_TYPE),
        ] {
            headers.insert(
                name,
                HeaderValue::from_str(value).map_err(BenchError::start)?,
            );
        }
        Ok(Self {
            http: reqwest::Client::builder()
                .build()
                .map_err(BenchError::start)?,
            url: format!("{base_url}{path}?{query}"),
            headers,
        })
    }

    async fn measure(&self, clients: usize, time: Duration) -> Result<Stats, BenchError> {
        let this = self.clone();
        Ok(load::drive(clients, WARMUP, time, move |_| {
            let this = this.clone();
            async move {
                let response = this
                    .http
                    .get(&this.url)
                    .headers(this.headers.clone())
                    .send()
                    .await
                    .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                if body.starts_with(b"{\"code\":200") {
                    Ok(())
                } else {
                    Err(tonic::Status::internal(format!(
                        "sandbox answered {body:?}"
                    )))
                }
            }
        })
        .await?)
    }
}
