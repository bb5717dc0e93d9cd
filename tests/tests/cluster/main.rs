//! Integration tests: real `tally-node` processes on loopback (in network namespaces for the
//! partition test), driven through `tally-client` and `tallyctl`. One binary with a module per
//! concern.

mod backup;
mod bad_input;
mod bench;
mod coalesce;
mod config;
mod corruption;
mod deploy;
mod disk;
mod expiry;
mod failover;
mod harness;
mod membership;
mod metrics;
mod netns;
mod operations;
mod partition;
mod security;
mod snapshot;
mod verify;
