//! The products the sandbox sells: exactly the three of mp-api-v2.md section
//! 4.6, plus the volume and period MP does not publish but the simulation needs.

use super::errors::BusinessError;

/// One MP product (a "specification" of some goods).
#[derive(Debug)]
pub(crate) struct Product {
    pub goods_id: i64,
    pub goods_name: &'static str,
    pub product_id: i64,
    /// The cycle counts that may be ordered; the first is the smallest.
    pub quantities: &'static [u32],
    pub product_name: &'static str,
    pub sim_group_code: &'static str,
    pub sim_group_name: &'static str,
    pub cover_country: &'static str,
    pub cover_country_name: &'static str,
    /// Data per cycle, in MB.
    pub volume_mb: f64,
    /// Days per cycle.
    pub period_days: u32,
}

/// The catalogue, in the order MP's example lists it.
pub(crate) const PRODUCTS: &[Product] = &[
    Product {
        goods_id: 35,
        goods_name: "Test countryCoverage",
        product_id: 5,
        quantities: &[1],
        product_name: "Test QR product",
        sim_group_code: "SIMGROUP1705126754702139392",
        sim_group_name: "test qr 2",
        cover_country: "460",
        cover_country_name: "China",
        volume_mb: 1024.0,
        period_days: 30,
    },
    Product {
        goods_id: 37,
        goods_name: "CHINA_Test",
        product_id: 6,
        quantities: &[3, 4],
        product_name: "1GB/7days",
        sim_group_code: "SIMGROUP1706570409388478464",
        sim_group_name: "eSIMGO test group 0926",
        cover_country: "460",
        cover_country_name: "China",
        volume_mb: 1024.0,
        period_days: 7,
    },
    Product {
        goods_id: 35,
        goods_name: "TEST countryCoverage",
        product_id: 8,
        quantities: &[2],
        product_name: "testtest",
        sim_group_code: "SIMGROUP1705126754702139392",
        sim_group_name: "test qr 2",
        cover_country: "460",
        cover_country_name: "China",
        volume_mb: 1024.0,
        period_days: 30,
    },
];

impl Product {
    /// MP's `orderQuantity`: the allowed cycle counts joined by commas.
    pub fn order_quantity(&self) -> String {
        self.quantities
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn smallest_quantity(&self) -> u32 {
        self.quantities.iter().copied().min().unwrap_or(1)
    }
}

/// Picks the product and cycle count an activationCode request asks for,
/// with MP's rules: the product must exist, `goodsId` (if sent) must be its
/// goods, and `orderQuantity` (if sent) one it offers, else the smallest.
pub(crate) fn resolve(
    product_id: i64,
    goods_id: Option<i64>,
    quantity: Option<i64>,
) -> Result<(&'static Product, u32), BusinessError> {
    let product = PRODUCTS
        .iter()
        .find(|p| p.product_id == product_id)
        .ok_or(BusinessError::ProductNotFound)?;
    if let Some(goods_id) = goods_id
        && goods_id != product.goods_id
    {
        return Err(BusinessError::GoodsMismatch {
            goods_id,
            product_id,
        });
    }
    let quantity = match quantity {
        None => product.smallest_quantity(),
        // MP answers an unoffered cycle count with this odd prompt.
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| product.quantities.contains(n))
            .ok_or(BusinessError::QuantityNotOffered)?,
    };
    Ok((product, quantity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_listed_as_mp_spells_them() {
        let listed: Vec<String> = PRODUCTS.iter().map(Product::order_quantity).collect();
        assert_eq!(listed, ["1", "3,4", "2"]);
    }

    #[test]
    fn the_smallest_quantity_is_the_default() {
        let (product, quantity) = resolve(6, None, None).unwrap();
        assert_eq!((product.product_id, quantity), (6, 3));
    }

    #[test]
    fn an_unoffered_quantity_finds_no_iccid() {
        assert_eq!(
            resolve(6, Some(37), Some(5)).unwrap_err(),
            BusinessError::QuantityNotOffered
        );
    }

    #[test]
    fn goods_must_match_the_product() {
        assert!(matches!(
            resolve(6, Some(35), None),
            Err(BusinessError::GoodsMismatch { .. })
        ));
        assert_eq!(
            resolve(99, None, None).unwrap_err(),
            BusinessError::ProductNotFound
        );
    }
}
