//! Every business error the sandbox answers (HTTP 200, envelope `code` != 200),
//! with the words MP uses where they are known.

/// A request MP understood but refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BusinessError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("Product does not exist")]
    ProductNotFound,
    #[error("goodsId {goods_id} does not match product {product_id}")]
    GoodsMismatch { goods_id: i64, product_id: i64 },
    /// MP's own prompt for an orderQuantity the product does not offer.
    #[error("No ICCID found")]
    QuantityNotOffered,
    #[error("ICCID must be 18 to 22 digits with a valid check digit")]
    InvalidIccid,
    #[error("ICCID is already in use")]
    IccidInUse,
    #[error("price must be a non-negative decimal")]
    InvalidPrice,
    #[error("activateFlag must be yes or no")]
    InvalidActivateFlag,
    #[error("Order does not exist")]
    OrderNotFound,
    #[error("Finished orders cannot be topped up")]
    TopUpFinished,
    #[error("switchButton must be ON, SUSPEND, RESTART or OFF")]
    UnknownSwitch,
    #[error("Order in status {status} cannot be switched {button}")]
    SwitchNotAllowed {
        status: &'static str,
        button: &'static str,
    },
    #[error("resellerCode does not match the access key")]
    ResellerMismatch,
    #[error("httpMethod must be POST")]
    CallbackMethod,
    #[error("httpUrl must be an absolute http or https URL")]
    CallbackUrl,
}

impl BusinessError {
    /// The envelope `code`: MP answers its business errors with 500.
    pub fn code(&self) -> i64 {
        500
    }
}
