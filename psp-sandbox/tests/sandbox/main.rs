//! The sandbox PSP on its own, over real HTTP on loopback, as any client of a PSP sees it: each
//! test starts its own sandbox on an ephemeral port (in process, or the `psp-sandbox` binary
//! when it restarts it). tally-pay's connector against the sandbox is tested in
//! `payments/tests/sandbox.rs`; nothing here may use tally-pay (`independence`).

mod api;
mod harness;
mod independence;
