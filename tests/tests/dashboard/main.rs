//! Browser tests of tally-pay's web dashboard: real `tally-node`, `tally-pay serve` and
//! `tally-pay sandbox-psp` processes on loopback (the payment tests' environment), driven
//! through headless Chromium over WebDriver (`webdriver`), the disputes page with its evidence
//! form among them (`disputes`); and plain HTTP tests of its access rules (`access`). Each
//! browser test saves screenshots under `webdriver::output_dir()`.

mod access;
mod browser;
mod disputes;
#[allow(dead_code)]
#[path = "../payments/env.rs"]
mod env;
#[allow(dead_code)]
#[path = "../cluster/harness.rs"]
mod harness;
mod webdriver;
