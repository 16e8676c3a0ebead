//! The MP upstream: request signing, the HTTP client and MP's JSON shapes,
//! the limits on MP calls and the retries of GETs.

mod admission;
mod client;
pub mod decode;
mod error;
pub(crate) mod metrics;
mod rate_limit;
pub mod retry;
pub mod signing;
pub mod wire;

pub use admission::{MAX_ADMISSION_WAIT, MpLimits};
pub use client::{Call, Endpoint, MpClient, MpClientConfig, NewOrder, SwitchButton};
pub use decode::{CreatedOrder, MpClock, TopUp};
pub use error::{MpError, UpstreamLimit};
