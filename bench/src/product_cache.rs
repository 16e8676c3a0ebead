//! `product-cache`: ListProducts with a warm cache, against the ceiling of
//! any tonic service on this machine — a minimal tonic server that returns
//! the same pre-built response. Both are measured in the same run, in
//! alternating rounds, with the same clients.

use std::net::SocketAddr;
use std::time::Duration;

use mp_gateway::config::Settings;
use mp_gateway::proto::product_service_client::ProductServiceClient;
use mp_gateway::proto::product_service_server::{ProductService, ProductServiceServer};
use mp_gateway::proto::{
    GetProductRequest, GetProductResponse, ListProductsRequest, ListProductsResponse,
};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

use crate::gateway;
use crate::load::{self, Stats};
use crate::report::{Section, Table, median, micros};
use crate::{BenchError, Options};

/// Every call sends one, so both servers answer with the same bytes.
const REQUEST_ID: &str = "mp-bench-0001";
/// Unmeasured time at the start of each round.
const WARMUP: Duration = Duration::from_millis(100);
/// Clients share this many HTTP/2 connections (like a few client processes).
const MAX_CONNECTIONS: usize = 4;

pub async fn run(options: &Options) -> Result<Section, BenchError> {
    let gateway = start_gateway().await?;
    let ceiling_addr = start_ceiling(gateway.prebuilt.clone()).await?;
    let mut table = Table::new(&[
        "clients",
        "gateway req/s",
        "gateway p50",
        "gateway p99",
        "ceiling req/s",
        "ceiling p50",
        "ceiling p99",
        "ratio",
    ]);
    let rounds = options.rounds.max(1);
    let round = options.measured() / rounds;
    for &clients in &options.clients {
        let clients = clients.max(1);
        let to_gateway = connect(gateway.addr, clients).await?;
        let to_ceiling = connect(ceiling_addr, clients).await?;
        let (mut ours, mut ceiling) = (Stats::default(), Stats::default());
        let mut paired = Vec::new();
        for _ in 0..rounds {
            let a = measure(&to_gateway, clients, round).await?;
            let b = measure(&to_ceiling, clients, round).await?;
            paired.push(a.requests_per_sec() / b.requests_per_sec());
            ours.merge(a);
            ceiling.merge(b);
        }
        let ratio = median(&mut paired);
        eprintln!(
            "  {clients:>3} clients: gateway {:.0} req/s, ceiling {:.0} req/s, ratio {ratio:.2}",
            ours.requests_per_sec(),
            ceiling.requests_per_sec()
        );
        table.row(vec![
            clients.to_string(),
            format!("{:.0}", ours.requests_per_sec()),
            micros(ours.quantile(0.50)),
            micros(ours.quantile(0.99)),
            format!("{:.0}", ceiling.requests_per_sec()),
            micros(ceiling.quantile(0.50)),
            micros(ceiling.quantile(0.99)),
            format!("{ratio:.2}"),
        ]);
    }
    Ok(Section {
        title: "product-cache: ListProducts with a warm cache".into(),
        notes: format!(
            "The gateway runs in sandbox mode (in process, no Redis), its cache warmed by one call; \
             the ceiling is a minimal tonic server returning the same pre-built \
             ListProductsResponse. Each row: {rounds} alternating rounds per server of {:.1} s \
             measured after {:.1} s warm-up; clients are closed loops (one call in flight each) \
             over at most {MAX_CONNECTIONS} HTTP/2 connections. Client and servers share the \
             machine's cores, and others' work on it varies: hence many short alternating rounds. \
             req/s and latencies are over all rounds; ratio is the median over rounds of \
             gateway req/s / ceiling req/s in back-to-back rounds.",
            round.as_secs_f64(),
            WARMUP.as_secs_f64()
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

struct Gateway {
    addr: SocketAddr,
    /// What the warm gateway answers, for the ceiling server to return.
    prebuilt: ListProductsResponse,
}

/// The real gateway (sandbox upstream, in-process cache), started and warmed.
async fn start_gateway() -> Result<Gateway, BenchError> {
    // Built like the binary's, so new settings get their defaults here too.
    let settings = Settings {
        sandbox: true,
        ..Settings::default()
    };
    let addr = gateway::start(settings, std::future::pending()).await?.grpc;
    let mut client = connect(addr, 1).await?.remove(0);
    let prebuilt = client
        .list_products(ListProductsRequest {
            request_id: REQUEST_ID.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(Gateway { addr, prebuilt })
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

async fn start_ceiling(response: ListProductsResponse) -> Result<SocketAddr, BenchError> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(BenchError::start)?;
    let addr = listener.local_addr().map_err(BenchError::start)?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = Server::builder()
        .add_service(ProductServiceServer::new(Prebuilt(response)))
        .serve_with_incoming(incoming);
    tokio::spawn(server);
    Ok(addr)
}
