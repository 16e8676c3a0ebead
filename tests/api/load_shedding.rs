//! Protecting the gateway: a client connection with more calls in flight
//! than `GRPC_CONCURRENCY_LIMIT_PER_CONNECTION` has the excess shed at once
//! (RESOURCE_EXHAUSTED), while other connections are served.

use std::time::Duration;

use mp_gateway::proto::GetOrderStatusRequest;
use mp_gateway::proto::order_service_client::OrderServiceClient;
use mp_gateway::sandbox::Fault;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::gateway;

fn status_of_order_1() -> GetOrderStatusRequest {
    GetOrderStatusRequest {
        order_code: "ORDER_1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn calls_beyond_the_per_connection_limit_are_shed_and_other_connections_are_still_served() {
    let (gateway, sandbox) = gateway()
        .with(|config| config.grpc_concurrency_limit_per_connection = 2)
        .start()
        .await;
    // Long enough that every busy call arrives while the first two are still at MP.
    sandbox.set_fault(Some(Fault::Delay(Duration::from_secs(2))));

    let busy = (0..10).map(|_| {
        let mut client = gateway.orders();
        async move { client.get_order_status(status_of_order_1()).await }
    });
    let other = async {
        // Let the busy connection fill up first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let channel = Channel::from_shared(format!("http://{}", gateway.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        OrderServiceClient::new(channel)
            .get_order_status(status_of_order_1())
            .await
    };
    let (busy, other) = tokio::join!(futures::future::join_all(busy), other);

    // ORDER_1 is unknown to the sandbox: an answered call is NOT_FOUND.
    assert_eq!(other.unwrap_err().code(), Code::NotFound);
    let answered = busy
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::NotFound))
        .count();
    let shed = busy
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::ResourceExhausted))
        .count();
    assert_eq!(answered + shed, 10, "{busy:?}");
    assert!((1..=2).contains(&answered), "{busy:?}");
    assert!(
        sandbox.max_in_flight() <= 3,
        "2 from the busy connection, 1 from the other"
    );
    assert_eq!(sandbox.calls("queryOrderStatus") as usize, answered + 1);
}

/// The server's first HTTP/2 SETTINGS frame names a stream limit, so a client
/// queues its streams instead of the server paying for an unbounded number.
#[tokio::test]
async fn the_grpc_listener_advertises_max_concurrent_streams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SETTINGS: u8 = 0x4;
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    let (gateway, _sandbox) = gateway().start().await;
    let mut conn = tokio::net::TcpStream::connect(gateway.grpc_addr)
        .await
        .expect("connects");
    // The client preface and an empty SETTINGS frame.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
    conn.write_all(&hello).await.expect("preface sent");

    let mut header = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut header))
        .await
        .expect("the server answers in time")
        .expect("a frame header");
    assert_eq!(header[3], SETTINGS, "the server's first frame is SETTINGS");
    let length =
        usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0u8; length];
    conn.read_exact(&mut payload)
        .await
        .expect("the SETTINGS payload");
    let advertised = payload.chunks_exact(6).find_map(|setting| {
        (u16::from_be_bytes([setting[0], setting[1]]) == MAX_CONCURRENT_STREAMS)
            .then(|| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]))
    });
    assert_eq!(
        advertised,
        Some(mp_gateway::app::MAX_STREAMS_PER_CONNECTION)
    );
}
