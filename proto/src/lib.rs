//! gorp's public gRPC API, generated from `proto/gorp/v1/*.proto` (package `gorp.v1`).
//!
//! Generated code only: servers and clients convert these types at their edge.
#![allow(missing_docs, unreachable_pub, clippy::all)]

/// Package `gorp.v1`: the `Bus` and `Control` services and their messages.
pub mod v1 {
    tonic::include_proto!("gorp.v1");

    /// Encoded `FileDescriptorSet` of every gorp proto, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gorp_descriptor.bin"));
}
