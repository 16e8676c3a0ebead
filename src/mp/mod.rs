//! The MP upstream: request signing, the HTTP client and MP's JSON shapes.

pub mod signing;
