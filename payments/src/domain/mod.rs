//! The domain: what a payment is, independent of how it is stored, served or sent to a PSP.
//! Identifiers, the stored records and their statuses, money, the chart of accounts, escrow's hold periods, manual capture's authorizations, 3-D Secure's next action, the ledger
//! postings of each transition.
//!
//! Nothing here imports `flows` or `edges` (`tests/layers.rs`).

pub mod action;
pub mod bank;
pub mod billing;
pub mod capture;
pub mod chart;
pub mod conversion;
pub mod disputes;
pub mod escrow;
pub mod events;
pub mod fx;
pub mod ids;
pub mod lists;
pub mod model;
pub mod money;
pub mod postings;
pub mod recon;
