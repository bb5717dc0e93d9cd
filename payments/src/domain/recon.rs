//! Reconciliation's records: what a run found about each line or object of a day (`ReconItem`,
//! `pay.recon_item`), the day's summary with the ledger checks (`ReconRun`, `pay.recon_run`) and
//! the report served for a day. The matching and the run are in `flows::recon`.

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::model::ns;

/// The kinds of object the day index (`ns::RECON_INDEX`) lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IndexKind {
    /// A payment order or a deposit (both `ns::ORDER`).
    Order,
    Refund,
    Payout,
}

impl IndexKind {
    pub const ALL: [IndexKind; 3] = [IndexKind::Order, IndexKind::Refund, IndexKind::Payout];

    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Order => "order",
            IndexKind::Refund => "refund",
            IndexKind::Payout => "payout",
        }
    }

    pub fn by_name(name: &str) -> Option<IndexKind> {
        IndexKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The namespace that holds objects of this kind.
    pub fn namespace(self) -> &'static str {
        match self {
            IndexKind::Order => ns::ORDER,
            IndexKind::Refund => ns::REFUND,
            IndexKind::Payout => ns::PAYOUT,
        }
    }
}

/// The UTC day of a Unix-milliseconds time: the day reconciliation looks for an object in the
/// PSP's report (`created_at`'s day).
pub fn day_of_ms(ms: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(ms).map(|t| t.date_naive())
}

/// The day index key of an object created at `created_at` (Unix ms): `<YYYY-MM-DD>/<kind>/<id>`.
/// A time outside chrono's range (never a real `created_at`) files under `invalid/`.
pub fn index_key(created_at: i64, kind: IndexKind, id: &str) -> String {
    let day = day_of_ms(created_at).map_or_else(|| "invalid".to_string(), |d| d.to_string());
    format!("{day}/{}/{id}", kind.name())
}

/// The kind and id named by an index key.
pub fn parse_index_key(key: &str) -> Option<(IndexKind, &str)> {
    let mut parts = key.splitn(3, '/');
    let _day = parts.next()?;
    let kind = IndexKind::by_name(parts.next()?)?;
    Some((kind, parts.next()?))
}

/// What a finding is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReconClass {
    Matched,
    /// The PSP reports something Tally has no record of (or lists one object twice).
    MissingInTally,
    /// Tally has an object the PSP should have listed that day, and it did not.
    MissingAtPsp,
    /// Amount or currency differ.
    AmountMismatch,
    StatusMismatch,
    /// The PSP's fee differs from the one Tally recorded (refunds and payouts have none).
    FeeMismatch,
}

impl ReconClass {
    pub const ALL: [ReconClass; 6] = [
        ReconClass::Matched,
        ReconClass::MissingInTally,
        ReconClass::MissingAtPsp,
        ReconClass::AmountMismatch,
        ReconClass::StatusMismatch,
        ReconClass::FeeMismatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReconClass::Matched => "matched",
            ReconClass::MissingInTally => "missing_in_tally",
            ReconClass::MissingAtPsp => "missing_at_psp",
            ReconClass::AmountMismatch => "amount_mismatch",
            ReconClass::StatusMismatch => "status_mismatch",
            ReconClass::FeeMismatch => "fee_mismatch",
        }
    }
}

/// What became of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Nothing to do: it matched.
    None,
    /// Settled automatically with the PSP's answer.
    Resolved,
    /// In the review queue for a person.
    Review,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::None => "none",
            Resolution::Resolved => "resolved",
            Resolution::Review => "review",
        }
    }
}

/// A settlement report line, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PspLine {
    pub date: String,
    /// `charge`, `refund` or `payout`.
    pub kind: String,
    pub psp_id: String,
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    pub fee: u64,
    pub status: String,
}
/// Tally's view of an object when it was reconciled, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TallyView {
    /// `order`, `deposit`, `refund` or `payout`.
    pub object: String,
    pub id: String,
    pub status: String,
    pub amount: u64,
    pub currency: String,
    /// The PSP fee Tally recorded (charges; 0 for refunds and payouts).
    pub psp_fee: u64,
    pub psp_id: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One reconciled line or object of a day: the durable record of what was found and done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconItem {
    /// `<day>/<reference>` (a suffix `#n` tells apart lines that repeat a reference).
    pub key: String,
    pub date: String,
    pub reference: String,
    /// `charge`, `refund` or `payout`.
    pub kind: String,
    pub class: ReconClass,
    pub resolution: Resolution,
    /// The settle step taken (`settle_order_succeeded`, `settle_order_failed`,
    /// `settle_refund_succeeded`, `settle_payout_paid`, `settle_payout_failed`).
    pub action: Option<String>,
    /// Tally's status after the settle step.
    pub status_after: Option<String>,
    /// Matched while both sides still have it in flight; looked at again by later runs.
    pub in_flight: bool,
    pub detail: String,
    pub psp: Option<PspLine>,
    pub tally: Option<TallyView>,
    /// Unix milliseconds of the run that found it.
    pub found_at: i64,
}

/// Debits equal credits over every account of tally-pay in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConservationCheck {
    pub passed: bool,
    /// System accounts and wallets found.
    pub accounts: u64,
    pub debits_posted: u128,
    pub credits_posted: u128,
    pub debits_pending: u128,
    pub credits_pending: u128,
}

/// A wallet whose balance is not the sum of its movements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletMismatch {
    /// The owner's id.
    pub account: String,
    pub account_id: String,
    /// Cluster timestamp both figures are taken at.
    pub at: u64,
    pub credits_posted: u128,
    pub debits_posted: u128,
    pub movement_credits: u128,
    pub movement_debits: u128,
}

/// Every wallet's posted balance equals the sum of its posted movements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletCheck {
    pub passed: bool,
    /// Wallets with any history.
    pub wallets: u64,
    /// Transfers read.
    pub transfers: u64,
    pub mismatched: u64,
    /// The first mismatches.
    pub mismatches: Vec<WalletMismatch>,
}

/// The PSP clearing account nets to what the records say is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClearingCheck {
    pub passed: bool,
    /// False when payments kept settling while it was read (then it does not pass).
    pub stable: bool,
    /// Posted debits minus posted credits.
    pub balance: i128,
    /// Succeeded orders and deposits minus succeeded refunds minus paid payouts.
    pub expected_balance: i128,
    pub debits_pending: u128,
    /// Orders and deposits still processing (or dead-lettered: their holds stay).
    pub expected_debits_pending: u128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrencyChecks {
    pub currency: String,
    pub passed: bool,
    pub conservation: ConservationCheck,
    pub wallets: WalletCheck,
    pub psp_clearing: ClearingCheck,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconSummary {
    /// Lines of the PSP's report.
    pub lines: u64,
    pub matched: u64,
    pub missing_in_tally: u64,
    pub missing_at_psp: u64,
    pub amount_mismatch: u64,
    pub status_mismatch: u64,
    pub fee_mismatch: u64,
    /// Findings settled automatically.
    pub resolved: u64,
    /// Findings in the review queue.
    pub queued: u64,
    /// Items this run recorded (0 when the same report was ingested before).
    pub new_items: u64,
    pub ledger_ok: bool,
    pub ledger: Vec<CurrencyChecks>,
    /// Everything matched or was resolved, and every ledger check passed.
    pub ok: bool,
}

impl ReconSummary {
    pub fn of(items: &[ReconItem], new_items: u64, ledger: Vec<CurrencyChecks>) -> ReconSummary {
        let count = |f: &dyn Fn(&ReconItem) -> bool| items.iter().filter(|i| f(i)).count() as u64;
        let class = |c: ReconClass| count(&|i| i.class == c);
        let queued = count(&|i| i.resolution == Resolution::Review);
        let ledger_ok = ledger.iter().all(|c| c.passed);
        ReconSummary {
            lines: count(&|i| i.psp.is_some()),
            matched: class(ReconClass::Matched),
            missing_in_tally: class(ReconClass::MissingInTally),
            missing_at_psp: class(ReconClass::MissingAtPsp),
            amount_mismatch: class(ReconClass::AmountMismatch),
            status_mismatch: class(ReconClass::StatusMismatch),
            fee_mismatch: class(ReconClass::FeeMismatch),
            resolved: count(&|i| i.resolution == Resolution::Resolved),
            queued,
            new_items,
            ledger_ok,
            ledger,
            ok: queued == 0 && ledger_ok,
        }
    }

    pub fn count(&self, class: ReconClass) -> u64 {
        match class {
            ReconClass::Matched => self.matched,
            ReconClass::MissingInTally => self.missing_in_tally,
            ReconClass::MissingAtPsp => self.missing_at_psp,
            ReconClass::AmountMismatch => self.amount_mismatch,
            ReconClass::StatusMismatch => self.status_mismatch,
            ReconClass::FeeMismatch => self.fee_mismatch,
        }
    }

    /// Same findings and figures, whatever this run itself wrote.
    pub fn same_findings(&self, other: &ReconSummary) -> bool {
        ReconSummary {
            new_items: 0,
            ..self.clone()
        } == ReconSummary {
            new_items: 0,
            ..other.clone()
        }
    }
}

/// The stored summary of a day (`pay.recon_run`), rewritten only when a run finds something
/// different.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconRun {
    pub date: String,
    /// Unix milliseconds of the run that wrote it.
    pub run_at: i64,
    pub summary: ReconSummary,
}

/// A day's reconciliation: the summary and every item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconReport {
    pub date: String,
    /// Unix milliseconds of the run that produced it.
    pub run_at: i64,
    pub summary: ReconSummary,
    pub items: Vec<ReconItem>,
}
