//! The Slipway protocol: the `slipway.v1` gRPC contract compiled from `proto/`.
//!
//! Message types, service clients and servers are generated at build time (no
//! `protoc` needed). `tonic` and `prost` are re-exported so that users compile
//! against the same versions.
#![forbid(unsafe_code)]

pub use prost;
pub use prost_types;
pub use tonic;

/// `slipway.v1`: deployments, workloads, logs and events.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("slipway.v1");

    /// The encoded `FileDescriptorSet` of every `slipway.v1` file, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("slipway_descriptor");
}

mod names;
