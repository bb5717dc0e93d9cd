//! tally-pay: the payment service, a stateless client of the Tally ledger cluster.
//!
//! Every payment object lives in the cluster as a record, and every status change commits
//! together with its postings in one `Txn` (see `service`). The PSP is reached through the
//! `psp::Connector` trait; `sandbox` is the built-in sandbox PSP.

pub mod config;
pub mod crypto;
pub mod domain;
pub mod edges;
pub mod error;
pub mod flows;
pub mod metrics;
pub mod sandbox;
pub mod tls_listener;
