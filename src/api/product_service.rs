use tonic::{Request, Response, Status};

use super::requests::{Identified, ProductListQuery, ProductQuery};
use super::{caller_deadline, parse};
use crate::cache::ProductCatalogue;
use crate::error::GatewayError;
use crate::mp::Call;
use crate::proto::product_service_server::ProductService;
use crate::proto::{
    GetProductRequest, GetProductResponse, ListProductsRequest, ListProductsResponse,
};

/// `linksfield.mp.v1.ProductService`.
#[derive(Debug, Clone)]
pub struct ProductApi {
    catalogue: ProductCatalogue,
}

impl ProductApi {
    pub fn new(catalogue: ProductCatalogue) -> Self {
        Self { catalogue }
    }
}

#[tonic::async_trait]
impl ProductService for ProductApi {
    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        let deadline = caller_deadline(&request);
        let ProductListQuery { request_id } = parse(request.get_ref())?;
        let req = request.into_inner();
        let call = Call {
            request_id: &request_id,
            deadline,
        };
        let products = self.catalogue.products(call, req.bypass_cache).await?;
        let products = products
            .iter()
            .filter(|p| req.cover_country.is_empty() || p.cover_country == req.cover_country)
            .filter(|p| req.goods_id.is_none_or(|id| p.goods_id == Some(id)))
            .cloned()
            .collect();
        Ok(Response::new(ListProductsResponse {
            products,
            request_id: request_id.to_string(),
        }))
    }

    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<GetProductResponse>, Status> {
        let deadline = caller_deadline(&request);
        let query: ProductQuery = parse(request.get_ref())?;
        let product_id = query.product_id;
        let products = self.catalogue.products(query.call(deadline), false).await?;
        let product = products
            .iter()
            .find(|p| p.product_id == product_id)
            .cloned()
            .ok_or(GatewayError::ProductNotFound(product_id))?;
        Ok(Response::new(GetProductResponse {
            product: Some(product),
            request_id: query.request_id.to_string(),
        }))
    }
}
