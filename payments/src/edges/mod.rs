//! The edges: where the payment service meets the outside world. The HTTP API (`api`, with API
//! keys in `auth` and the Idempotency-Key protocol in `idempotency`), the web dashboard
//! (`dashboard`), the PSP connectors (`psp`) and the record store over the ledger cluster
//! (`store`).
//!
//! Flows use `psp` and `store`; nothing of `api` or `dashboard` is imported by a flow
//! (`tests/layers.rs`).

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod idempotency;
#[cfg(test)]
pub(crate) mod memory_store;
pub mod psp;
pub mod store;
