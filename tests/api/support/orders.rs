//! Orders made through the gateway, for tests that need one to exist.

use mp_gateway::proto::order_service_client::OrderServiceClient;
use mp_gateway::proto::{CreateOrderRequest, CreateOrderResponse};
use tonic::transport::Channel;

use super::TestGateway;

/// Creates an order of `product_id`, activated or not; panics if it fails.
pub async fn order(
    client: &mut OrderServiceClient<Channel>,
    product_id: u64,
    activate: bool,
) -> CreateOrderResponse {
    create(
        client,
        CreateOrderRequest {
            product_id,
            activate: Some(activate),
            ..Default::default()
        },
    )
    .await
}

/// The code of a new, activated (in use) order of product 6.
pub async fn active_order(gateway: &TestGateway) -> String {
    order(&mut gateway.orders(), 6, true).await.order_code
}

/// The code of a new order of product 6, left to MP's default activation.
pub async fn new_order(gateway: &TestGateway) -> String {
    let request = CreateOrderRequest {
        product_id: 6,
        ..Default::default()
    };
    create(&mut gateway.orders(), request).await.order_code
}

async fn create(
    client: &mut OrderServiceClient<Channel>,
    request: CreateOrderRequest,
) -> CreateOrderResponse {
    client
        .create_order(request)
        .await
        .expect("order is created")
        .into_inner()
}
