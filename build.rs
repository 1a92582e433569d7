//! Compiles `proto/slipway/v1/*.proto` with `protox` (pure Rust, no `protoc` needed)
//! and generates the prost messages and tonic clients and servers from them.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/slipway/v1/common.proto",
    "proto/slipway/v1/deployment.proto",
    "proto/slipway/v1/node.proto",
    "proto/slipway/v1/workload.proto",
    "proto/slipway/v1/access.proto",
    "proto/slipway/v1/fleet.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let file_descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("slipway_descriptor.bin"),
        file_descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(file_descriptors)?;
    Ok(())
}
