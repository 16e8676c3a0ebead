//! mp-gateway: LinksField's MP wholesale REST API as a typed gRPC service.

pub mod proto {
    //! Code generated from `proto/linksfield/mp/v1`.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("linksfield.mp.v1");

    /// The encoded descriptor set of our protos, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mp_v1_descriptor");
}

pub mod alarms;
pub mod api;
pub mod app;
pub mod cache;
pub mod config;
pub mod domain;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod idempotency;
pub mod listeners;
mod millis;
pub mod mp;
pub mod redis;
pub mod sandbox;
pub mod telemetry;
pub mod tls;
pub mod trace_context;
