//! tally-pay: the payment service, a stateless client of the Tally ledger cluster.
//!
//! Every payment object lives in the cluster as a record, and every status change commits
//! together with its postings in one `Txn` (see `service`). The PSP is reached through the
//! `psp::Connector` trait; the sandbox PSP is a crate of its own (`tally-psp-sandbox`).

pub mod api;
pub mod audit;
pub mod auth;
pub mod bank;
pub mod chart;
pub mod config;
pub mod crypto;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod money;
pub mod psp;
pub mod rekey;
pub mod risk;
pub mod service;
pub mod store;
pub mod worker;
