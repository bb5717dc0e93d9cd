//! tally-ledger: the pure ledger state machine (accounts, transfers, records, their result codes
//! and `apply`); no IO, clock or rng. The node, the simulator and the client share these types.
//!
//! `LedgerBatch` applies commands over a `LedgerState` view and returns result codes plus the
//! `Mutations` the caller writes atomically. Time enters only through `ApplyContext`, stamped by
//! the Raft leader into the log entry, so every replica computes the same results and state.

mod account;
pub mod apply;
pub mod limits;
pub mod mem;
mod overlay;
pub mod results;
pub mod state;
pub mod totals;
mod transfer;
mod txn;
pub mod types;

#[cfg(feature = "planted-bugs")]
pub use apply::LedgerFaults;
pub use apply::{ApplyContext, LedgerBatch, Mutations};
pub use mem::MemState;
pub use results::{
    CommandResult, CreateAccountResult, CreateTransferResult, TxnOutcome, TxnResult,
};
pub use state::LedgerState;
pub use totals::{ledger_totals, LedgerTotals};
pub use types::{
    Account, AccountFlags, Balance, Command, Condition, PendingStatus, Record, RecordKey, RecordOp,
    Transfer, TransferFlags, Txn, NANOS_PER_SECOND,
};
