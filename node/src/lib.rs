//! Tally ledger node: the ledger state machine's storage, Raft replication and the
//! gRPC services. See ARCHITECTURE.md for the map.
pub mod clock;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod grpc;
/// The pure state machine, a crate of its own; re-exported so `tally_node::ledger` paths stay.
pub use tally_ledger as ledger;
pub mod limits;
pub mod metrics;
pub mod raft;
pub mod storage;
#[cfg(feature = "server")]
pub mod telemetry;
