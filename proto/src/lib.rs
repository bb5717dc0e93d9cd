//! Tally's gRPC protocol: the generated tonic/prost types and nothing else.

/// Version 1 of the protocol (`package tally.v1`).
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("tally.v1");
}

pub use v1::U128;

/// The encoded `FileDescriptorSet` of every `.proto` file: lets tests enumerate each service's
/// methods.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tally_descriptor.bin"));

impl From<u128> for U128 {
    fn from(value: u128) -> Self {
        U128 {
            lo: value as u64,
            hi: (value >> 64) as u64,
        }
    }
}

impl From<U128> for u128 {
    fn from(value: U128) -> Self {
        (u128::from(value.hi) << 64) | u128::from(value.lo)
    }
}

/// Reads an optional `U128` field, treating absence as zero.
pub fn u128_of(value: Option<U128>) -> u128 {
    value.map(u128::from).unwrap_or(0)
}
