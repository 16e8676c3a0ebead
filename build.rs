//! Generates the gRPC code from `proto/` with a pure-Rust protobuf compiler,
//! so building needs no system `protoc`.

use std::{env, fs, path::PathBuf};

use prost::Message;

/// Every `.proto` here is compiled (and so registered for reflection).
const PROTO_DIR: &str = "proto/linksfield/mp/v1";

/// The `.proto` files of `PROTO_DIR`, relative to `proto/`, in name order.
fn proto_files() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(PROTO_DIR)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            let relative = path.strip_prefix("proto")?.to_string_lossy().into_owned();
            files.push(relative);
        }
    }
    files.sort();
    Ok(files)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(proto_files()?, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Served by gRPC reflection, so grpcurl needs no proto files.
    fs::write(
        out_dir.join("mp_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
