//! Junction's gRPC API, `junction.v1`, generated from `proto/junction/v1/*.proto`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod v1 {
    tonic::include_proto!("junction.v1");
}

/// The encoded file descriptor set of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/junction_descriptor.bin"));
