//! The product catalogue the ProductService answers from.

use std::sync::Arc;

use crate::error::GatewayError;
use crate::mp::{Call, MpClient};
use crate::proto::Product;

/// Where product lists come from.
#[derive(Debug, Clone)]
pub struct ProductCatalogue {
    mp: MpClient,
}

impl ProductCatalogue {
    pub fn new(mp: MpClient) -> Self {
        Self { mp }
    }

    /// The reseller's products.
    pub async fn products(
        &self,
        call: Call<'_>,
        _bypass_cache: bool,
    ) -> Result<Arc<[Product]>, GatewayError> {
        Ok(self.mp.product_list(call).await?.into())
    }
}
