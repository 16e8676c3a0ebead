//! `product-cache`: ListProducts with a warm cache, against the ceiling of
//! any tonic service on this machine — a minimal tonic server that returns
//! the same pre-built response. Both are processes of their own, measured in
//! the same run, in alternating rounds, with the same clients.

use std::net::SocketAddr;
use std::time::Duration;

use mp_gateway::proto::product_service_client::ProductServiceClient;
use mp_gateway::proto::product_service_server::{ProductService, ProductServiceServer};
use mp_gateway::proto::{
    GetProductRequest, GetProductResponse, ListProductsRequest, ListProductsResponse,
};
use prost::Message;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

use crate::cpu::ProcessCpu;
use crate::gateway;
use crate::load::{self, Stats};
use crate::process;
use crate::report::{Section, Table, median, micros};
use crate::{BenchError, Options};

/// Every call sends one, so both servers answer with the same bytes.
const REQUEST_ID: &str = "mp-bench-0001";
/// Unmeasured time at the start of each round.
const WARMUP: Duration = Duration::from_millis(100);
/// The name of this scenario's ceiling for `serve-ceiling`.
pub const CEILING: &str = "product-cache";
/// Clients share this many HTTP/2 connections (like a few client processes).
const MAX_CONNECTIONS: usize = 4;

pub async fn run(options: &Options) -> Result<Section, BenchError> {
    let gateway = process::Server::gateway(&["--sandbox"], &[]).await?;
    let prebuilt = warm(gateway.addr).await?;
    let ceiling = process::Server::ceiling(CEILING, &prebuilt.encode_to_vec()).await?;
    let mut table = Table::new(&[
        "in flight",
        "gateway req/s",
        "gateway p50",
        "gateway p99",
        "gateway CPU/call",
        "ceiling req/s",
        "ceiling p50",
        "ceiling p99",
        "ceiling CPU/call",
        "ratio req/s",
        "client CPU/call (gateway; ceiling)",
    ]);
    let rounds = options.rounds.max(1);
    let round = options.measured() / rounds;
    for &clients in &options.clients {
        let clients = clients.max(1);
        let to_gateway = connect(gateway.addr, clients).await?;
        let to_ceiling = connect(ceiling.addr, clients).await?;
        let (mut ours, mut bare) = (Stats::default(), Stats::default());
        let (mut gateway_cpu, mut ceiling_cpu) = (gateway.cpu(), ceiling.cpu());
        let (mut client_g, mut client_c) = (ProcessCpu::this_process(), ProcessCpu::this_process());
        let mut paired = Vec::new();
        for _ in 0..rounds {
            let a = ProcessCpu::round(
                &mut [&mut gateway_cpu, &mut client_g],
                measure(&to_gateway, clients, round),
            )
            .await?;
            let b = ProcessCpu::round(
                &mut [&mut ceiling_cpu, &mut client_c],
                measure(&to_ceiling, clients, round),
            )
            .await?;
            paired.push(a.requests_per_sec() / b.requests_per_sec());
            ours.merge(a);
            bare.merge(b);
        }
        let ratio = median(&mut paired);
        eprintln!(
            "  {clients:>3} in flight: gateway {:.0} req/s {gateway_cpu} CPU/call, \
             ceiling {:.0} req/s {ceiling_cpu} CPU/call, ratio {ratio:.2}",
            ours.requests_per_sec(),
            bare.requests_per_sec()
        );
        table.row(vec![
            clients.to_string(),
            format!("{:.0}", ours.requests_per_sec()),
            micros(ours.quantile(0.50)),
            micros(ours.quantile(0.99)),
            gateway_cpu.to_string(),
            format!("{:.0}", bare.requests_per_sec()),
            micros(bare.quantile(0.50)),
            micros(bare.quantile(0.99)),
            ceiling_cpu.to_string(),
            format!("{ratio:.2}"),
            format!("{client_g}; {client_c}"),
        ]);
    }
    gateway.stop().await;
    ceiling.stop().await;
    Ok(Section {
        title: "product-cache: ListProducts with a warm cache".into(),
        notes: format!(
            "Three processes: the release `mp-gateway --sandbox` with its default configuration \
             (JSON logs at its default level to /dev/null, in-process cache, no Redis), its cache \
             warmed by one call; the ceiling, `mp-bench serve-ceiling {CEILING}`, a bare tonic \
             server returning the same ListProductsResponse; and the load generator, mp-bench \
             itself, with {client_threads} tokio worker thread(s) (`--client-threads`). Each server \
             has one tokio worker thread (TOKIO_WORKER_THREADS=1). Each row: {rounds} alternating \
             rounds per server of {:.1} s measured after {:.1} s warm-up; \"in flight\" closed-loop \
             clients (one call each) over at most {MAX_CONNECTIONS} HTTP/2 connections. req/s and \
             latencies are over all rounds; ratio is the median over rounds of gateway req/s / \
             ceiling req/s in back-to-back rounds. CPU/call is the server process's utime + stime \
             (/proc/PID/stat, read before and after every round, in 10 ms ticks: Linux USER_HZ = \
             100) over the calls completed in those rounds, warm-up included; the client column \
             is the same for the mp-bench process. On a machine with few cores the three processes \
             compete for them, so req/s may be bounded by the client; CPU/call is the figure that \
             does not depend on that.",
            round.as_secs_f64(),
            WARMUP.as_secs_f64(),
            client_threads = options.client_threads,
        ),
        table,
    })
}

async fn measure(
    channels: &[ProductServiceClient<Channel>],
    clients: usize,
    time: Duration,
) -> Result<Stats, BenchError> {
    let channels = channels.to_vec();
    let stats = load::drive(clients, WARMUP, time, move |i| {
        let mut client = channels[i % channels.len()].clone();
        async move {
            client
                .list_products(ListProductsRequest {
                    request_id: REQUEST_ID.into(),
                    ..Default::default()
                })
                .await
                .map(|_| ())
        }
    })
    .await?;
    Ok(stats)
}

async fn connect(
    addr: SocketAddr,
    clients: usize,
) -> Result<Vec<ProductServiceClient<Channel>>, BenchError> {
    let mut channels = Vec::new();
    for _ in 0..clients.min(MAX_CONNECTIONS) {
        channels.push(ProductServiceClient::new(gateway::connect(addr).await?));
    }
    Ok(channels)
}

/// What the warm gateway answers, for the ceiling to return.
async fn warm(addr: SocketAddr) -> Result<ListProductsResponse, BenchError> {
    let mut client = connect(addr, 1).await?.remove(0);
    Ok(client
        .list_products(ListProductsRequest {
            request_id: REQUEST_ID.into(),
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// The ceiling: tonic with nothing behind it.
struct Prebuilt(ListProductsResponse);

#[tonic::async_trait]
impl ProductService for Prebuilt {
    async fn list_products(
        &self,
        _request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        Ok(Response::new(self.0.clone()))
    }

    async fn get_product(
        &self,
        _request: Request<GetProductRequest>,
    ) -> Result<Response<GetProductResponse>, Status> {
        Err(Status::unimplemented("the ceiling server only lists"))
    }
}

/// `mp-bench serve-ceiling product-cache`: reads an encoded
/// ListProductsResponse from stdin, then serves it to every ListProducts on
/// `addr` until killed.
pub async fn serve_ceiling(addr: SocketAddr) -> Result<(), BenchError> {
    let mut encoded = Vec::new();
    tokio::io::stdin()
        .read_to_end(&mut encoded)
        .await
        .map_err(BenchError::start)?;
    let response = ListProductsResponse::decode(encoded.as_slice()).map_err(BenchError::start)?;
    let listener = TcpListener::bind(addr).await.map_err(BenchError::start)?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(ProductServiceServer::new(Prebuilt(response)))
        .serve_with_incoming(incoming)
        .await
        .map_err(BenchError::start)
}
