//! Values that can only hold what MP and our callers may rely on.
//! Each type parses its raw input once; a bad value is a [`FieldViolation`].

mod activation_code;
mod callback_url;
mod iccid;
mod order_code;
mod price;
mod request_id;

pub use activation_code::{ActivationCode, qr_png};
pub use callback_url::CallbackUrl;
pub use iccid::{Iccid, luhn_check_digit};
pub use order_code::OrderCode;
pub use price::Price;
pub use request_id::RequestId;

/// One bad field of a request, reported to the caller as a `BadRequest` violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The proto field name, e.g. `iccid`.
    /// Owned only when it names a list element, e.g. `ack_ids[2]`.
    pub field: std::borrow::Cow<'static, str>,
    /// What is wrong, in words the caller can act on.
    pub description: String,
}

impl FieldViolation {
    pub fn new(
        field: impl Into<std::borrow::Cow<'static, str>>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}
