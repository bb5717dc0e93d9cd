//! Tally ledger node: the pure ledger state machine, its storage, Raft replication and the
//! gRPC services. See ARCHITECTURE.md for the map.
pub mod clock;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod grpc;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod raft;
pub mod storage;
#[cfg(feature = "server")]
pub mod telemetry;
