//! Reconciliation with the PSP's daily settlement report, and the ledger's own consistency.
//!
//! Every line of the report is matched against Tally's record of the object it names (charges
//! against orders and deposits, refunds against refunds, payouts against payouts), and every
//! Tally object of the day the PSP should have listed is looked for in the report. Each finding
//! gets a class; the safe ones (the PSP has a definite answer for an object Tally still has in
//! flight) are settled through the ordinary settle functions, the rest go to a review queue with
//! the evidence. The same run checks the ledger: debits equal credits over tally-pay's accounts,
//! every wallet's balance equals the sum of its movements, and the PSP clearing account holds
//! exactly what the records say is in flight.
//!
//! A run is idempotent. Findings are written once (`Txn`s conditioned on absence), settle
//! functions leave settled objects alone, and a second run over the same report finds its items
//! stored, settles nothing and writes nothing. Only findings about objects still in flight on
//! both sides are looked at again, since the PSP's answer for them may have come since. A settled
//! finding is recorded right after its settle step; a run that stops in between leaves the
//! object settled, and the next run records it as matched.

mod audit;
mod index;
mod matching;
mod render;
mod review;
mod run;
#[cfg(test)]
mod tests;

pub use crate::domain::recon::*;
pub(crate) use index::indexed;
pub use index::RECON_INDEX_PAGE_MAX;

/// Lines of one settlement report (kept in memory while it is reconciled).
pub const RECON_LINES_MAX: usize = 1_000_000;

/// Unix milliseconds per day (`created_at` is Unix milliseconds).
const MILLIS_PER_DAY: i64 = 86_400_000;
