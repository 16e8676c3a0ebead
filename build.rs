//! Generates the gRPC code from `proto/` with a pure-Rust protobuf compiler,
//! so building needs no system `protoc`.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTO_FILES: &[&str] = &[
    "linksfield/mp/v1/product_service.proto",
    "linksfield/mp/v1/order_service.proto",
    "linksfield/mp/v1/traffic_service.proto",
    "linksfield/mp/v1/alarm_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTO_FILES, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Served by gRPC reflection, so grpcurl needs no proto files.
    fs::write(
        out_dir.join("mp_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
