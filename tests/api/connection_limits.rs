//! Clients that hold connections without using them: each listener has its
//! own budget and timeouts, so neither port can be starved through the other.

use std::net::SocketAddr;
use std::time::Duration;

use mp_gateway::proto::ListProductsRequest;
use mp_gateway::sandbox::Sandbox;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestGateway, eventually, gateway, http_client};

/// A gateway whose listeners allow `max_http` HTTP connections and wait
/// `timeout` for a request head or a gRPC preface.
async fn gateway_with_limits(max_http: usize, timeout: Duration) -> (TestGateway, Sandbox) {
    gateway()
        .with(move |config| {
            config.listener_limits.http_max_connections = max_http;
            config.listener_limits.http_header_read_timeout = timeout;
            config.listener_limits.grpc_preface_timeout = timeout;
        })
        .start()
        .await
}

/// Whether the server closes `conn` within `within` (EOF or a reset), reading what it sends.
async fn closed_by_server(conn: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    let read_to_end = async {
        loop {
            match conn.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_to_end).await.is_ok()
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connects")
}

#[tokio::test]
async fn http_connections_past_the_limit_are_closed_at_once_and_grpc_is_still_served() {
    let (gateway, _sandbox) = gateway_with_limits(4, Duration::from_secs(30)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(gateway.http_addr).await);
    }
    // The server counts a connection once it has accepted it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = connect(gateway.http_addr).await;
    assert!(
        closed_by_server(&mut fifth, Duration::from_secs(2)).await,
        "the fifth HTTP connection is closed at once"
    );

    let products = gateway
        .products()
        .list_products(ListProductsRequest::default())
        .await
        .expect("gRPC has a budget of its own");
    assert!(!products.into_inner().products.is_empty());

    drop(held);
    let client = http_client();
    let healthz = format!("http://{}/healthz", gateway.http_addr);
    eventually(Duration::from_secs(5), "HTTP serves again", || {
        let (client, healthz) = (client.clone(), healthz.clone());
        async move {
            client
                .get(healthz)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
}

#[tokio::test]
async fn an_http_request_head_left_half_sent_or_never_sent_is_cut_after_the_timeout() {
    let (gateway, _sandbox) = gateway_with_limits(64, Duration::from_millis(500)).await;
    let mut half_sent = connect(gateway.http_addr).await;
    half_sent
        .write_all(b"POST /mp/alarm-callback HTTP/1.1\r\nHost: gw\r\n")
        .await
        .unwrap();
    let mut silent = connect(gateway.http_addr).await;
    assert!(closed_by_server(&mut half_sent, Duration::from_secs(5)).await);
    assert!(closed_by_server(&mut silent, Duration::from_secs(5)).await);

    // A keep-alive connection left idle after a request is cut the same way.
    let mut idle = connect(gateway.http_addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_server(&mut idle, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_grpc_connection_that_never_sends_its_preface_is_closed() {
    let (gateway, _sandbox) = gateway_with_limits(64, Duration::from_millis(500)).await;
    let mut silent = connect(gateway.grpc_addr).await;
    assert!(closed_by_server(&mut silent, Duration::from_secs(5)).await);
    let answered = gateway
        .products()
        .list_products(ListProductsRequest::default())
        .await;
    assert!(
        answered.is_ok(),
        "a client that speaks is served: {answered:?}"
    );
}
