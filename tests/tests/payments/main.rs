//! Integration tests of tally-pay: real `tally-node`, `tally-pay serve` and
//! `tally-pay sandbox-psp` processes on loopback, driven over HTTP.

mod bad_input;
mod bench;
mod billing;
mod capture;
mod checkout;
mod config;
mod disputes;
mod env;
mod escrow;
mod faults;
mod fx;
#[allow(dead_code)]
#[path = "../cluster/harness.rs"]
mod harness;
mod idempotency;
mod lists;
mod merchant_webhooks;
mod operations;
mod recon;
mod reports;
mod security;
mod three_ds;
mod webhooks;
