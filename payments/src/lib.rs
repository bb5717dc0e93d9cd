//! tally-pay: the payment service, a stateless client of the Tally ledger cluster.
//!
//! Every payment object lives in the cluster as a record, and every status change commits
//! together with its postings in one `Txn` (see `flows`). The PSP is reached through the
//! `psp::Connector` trait; the sandbox PSP is a crate of its own (`tally-psp-sandbox`).

pub mod config;
pub mod crypto;
pub mod domain;
pub mod edges;
pub mod error;
pub mod flows;
pub mod metrics;
