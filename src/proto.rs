//! The generated API types (package `onshi.v1`).
#![allow(clippy::all)]

tonic::include_proto!("onshi.v1");

/// Encoded descriptor set of the API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("onshi_descriptor");
