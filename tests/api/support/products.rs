//! Products as the gateway lists them.

use mp_gateway::proto::product_service_client::ProductServiceClient;
use mp_gateway::proto::{GetProductRequest, ListProductsRequest, Product};
use tonic::transport::Channel;

/// The products ListProducts answers `request` with; panics on an error.
pub async fn list_products(
    client: &mut ProductServiceClient<Channel>,
    request: ListProductsRequest,
) -> Vec<Product> {
    client
        .list_products(request)
        .await
        .expect("ListProducts answers")
        .into_inner()
        .products
}

/// The ids of the products ListProducts answers `request` with, in its order.
pub async fn listed_ids(
    client: &mut ProductServiceClient<Channel>,
    request: ListProductsRequest,
) -> Vec<u64> {
    let products = list_products(client, request).await;
    products.iter().map(|p| p.product_id).collect()
}

/// GetProduct of `product_id`: the product, or the status it was refused with.
pub async fn get_product(
    client: &mut ProductServiceClient<Channel>,
    product_id: u64,
) -> Result<Product, tonic::Status> {
    let reply = client
        .get_product(GetProductRequest {
            product_id,
            ..Default::default()
        })
        .await?;
    Ok(reply
        .into_inner()
        .product
        .expect("an answer carries a product"))
}
