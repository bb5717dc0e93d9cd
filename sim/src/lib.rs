//! `tally-sim`: the deterministic simulator. N replicas run the node's real Raft glue, log store
//! and ledger state machine over a simulated disk ([`storage`]), network ([`network`]) and clock,
//! in one thread, with every random choice drawn from one seed; a nemesis injects faults, clients
//! send the real command mix, and the [`checker`] judges the history against a reference model.

#[cfg(not(any(tokio_unstable, doc)))]
compile_error!(
    "tally-sim needs `--cfg tokio_unstable` to seed tokio's scheduler (Builder::rng_seed). \
     It is set in .cargo/config.toml; a RUSTFLAGS environment variable replaces that list, so \
     add `--cfg tokio_unstable` to it or unset it."
);

pub mod checker;
pub mod compare;
pub mod config;
pub mod durability;
pub mod nemesis;
pub mod network;
pub mod reference;
pub mod rng;
pub mod run;
pub mod storage;
pub mod trace;
pub mod workload;
pub mod world;

pub use config::Plant;
pub use run::{run_seed, run_seed_sized, run_seed_with, Outcome};

use std::future::Future;

/// Seed of the deterministic-rng scope every simulator task starts in (openraft's own tasks
/// derive theirs from the scope they were spawned in).
const TASK_SCOPE_SEED: u64 = 0x7a11_5eed;

/// Starts a simulator task: on the current (single-threaded) runtime, inside a deterministic-rng
/// scope so that anything it calls in openraft draws seeded randomness.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(tally_node::raft::Runtime::scope(TASK_SCOPE_SEED, future))
}
