//! The MP upstream: request signing, the HTTP client and MP's JSON shapes.

mod client;
pub mod decode;
mod error;
pub mod signing;
pub mod wire;

pub use client::{Call, Endpoint, MpClient, MpClientConfig, NewOrder, SwitchButton};
pub use decode::{CreatedOrder, MpClock, TopUp};
pub use error::MpError;
