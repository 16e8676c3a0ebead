//! A Rust client of mp-gateway using the crate's generated types.
//! Run against a sandbox gateway: `cargo run --example rust_client [http://localhost:50051]`
use std::process::ExitCode;

use mp_gateway::proto::order_service_client::OrderServiceClient;
use mp_gateway::proto::product_service_client::ProductServiceClient;
use mp_gateway::proto::{
    CreateOrderRequest, GetOrderStatusRequest, ListProductsRequest, OrderStatus,
};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            match error.downcast_ref::<tonic::Status>() {
                Some(status) => eprintln!("error: {:?}: {}", status.code(), status.message()),
                None => eprintln!("error: {error}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let target = std::env::args()
        .nth(1)
        .unwrap_or("http://localhost:50051".into());
    let channel = tonic::transport::Channel::from_shared(target)?
        .connect()
        .await?;
    let mut products = ProductServiceClient::new(channel.clone());
    let mut orders = OrderServiceClient::new(channel);

    let listed = products
        .list_products(ListProductsRequest::default())
        .await?
        .into_inner();
    for p in &listed.products {
        println!(
            "product {}: {} {:?}",
            p.product_id, p.product_name, p.order_quantities
        );
    }

    let order = orders
        .create_order(CreateOrderRequest {
            product_id: 5,
            activate: Some(true),
            request_id: format!("rust-example-{}", std::process::id()), // a retry must reuse it
            ..Default::default()
        })
        .await?
        .into_inner();
    println!(
        "order {} activation code {}",
        order.order_code, order.activation_code
    );

    let status = orders
        .get_order_status(GetOrderStatusRequest {
            order_code: order.order_code.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    for package in status.packages {
        let state = OrderStatus::try_from(package.status).unwrap_or(OrderStatus::Unspecified);
        println!("package {} {}", package.package_code, state.as_str_name());
    }
    Ok(())
}
