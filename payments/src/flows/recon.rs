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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tally_client::{v1, Balances};
use utoipa::ToSchema;

use super::reports::{csv_finish, csv_row, csv_writer, is_posted};
use super::{describe_commit, failure, now_ms, Pay};
use crate::domain::chart::{self, code};
use crate::domain::ids;
use crate::domain::model::{
    ns, ChargeKind, ChargeStatus, Order, Payout, PayoutStatus, Refund, RefundStatus,
};
use crate::domain::money::Currency;
use crate::edges::psp::{SettlementKind, SettlementLine, SettlementStatus};
use crate::edges::store::{Commit, Txn, Versioned};
use crate::error::PayError;
use crate::flows::audit;

/// Lines of one settlement report (kept in memory while it is reconciled).
pub const RECON_LINES_MAX: usize = 1_000_000;

/// Conditions plus record operations of one `Txn` (the node's `TXN_OPERATIONS_MAX`).
const TXN_OPERATIONS_MAX: usize = 1024;

/// Items written per `Txn`: each takes at most four operations (item and review entry, each
/// with its condition).
const ITEMS_PER_TXN_MAX: usize = 200;
const _: () = assert!(ITEMS_PER_TXN_MAX * 4 <= TXN_OPERATIONS_MAX);

/// Account ids per lookup (the node's `EVENTS_PER_REQUEST_MAX`).
const LOOKUP_IDS_MAX: usize = 8192;

/// Reads of a ledger check repeated when payments moved money in the middle of one.
const LEDGER_READ_ATTEMPTS_MAX: u32 = 5;

/// Wallets whose movements are summed at once.
const WALLET_CHECKS_CONCURRENCY_MAX: usize = 16;

/// Wallet mismatches listed in a report (all are counted).
const WALLET_MISMATCHES_LISTED_MAX: usize = 100;

/// Unix milliseconds per day (`created_at` is Unix milliseconds).
const MILLIS_PER_DAY: i64 = 86_400_000;

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

fn kind_name(kind: SettlementKind) -> &'static str {
    match kind {
        SettlementKind::Charge => "charge",
        SettlementKind::Refund => "refund",
        SettlementKind::Payout => "payout",
    }
}

impl From<&SettlementLine> for PspLine {
    fn from(line: &SettlementLine) -> PspLine {
        PspLine {
            date: line.date.to_string(),
            kind: kind_name(line.kind).to_string(),
            psp_id: line.psp_id.clone(),
            reference: line.reference.clone(),
            amount: line.amount,
            currency: line.currency.clone(),
            fee: line.fee,
            status: line.status.to_string(),
        }
    }
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
    fn same_findings(&self, other: &ReconSummary) -> bool {
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

// ---- classification (pure) ----

/// Tally's status of an object, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Charge(ChargeStatus),
    Refund(RefundStatus),
    Payout(PayoutStatus),
}

/// A Tally object as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TallyObject {
    view: TallyView,
    state: State,
}

fn status_name<T: Serialize>(status: T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl TallyObject {
    fn of_order(order: &Order) -> TallyObject {
        let object = match order.kind {
            ChargeKind::Order => "order",
            ChargeKind::Deposit => "deposit",
        };
        TallyObject {
            view: TallyView {
                object: object.into(),
                id: order.id.clone(),
                status: status_name(order.status),
                amount: order.amount,
                currency: order.currency.clone(),
                psp_fee: order.psp_fee,
                psp_id: order.psp_id.clone(),
                created_at: order.created_at,
            },
            state: State::Charge(order.status),
        }
    }

    fn of_refund(refund: &Refund) -> TallyObject {
        TallyObject {
            view: TallyView {
                object: "refund".into(),
                id: refund.id.clone(),
                status: status_name(refund.status),
                amount: refund.amount,
                currency: refund.currency.clone(),
                psp_fee: 0,
                psp_id: refund.psp_id.clone(),
                created_at: refund.created_at,
            },
            state: State::Refund(refund.status),
        }
    }

    fn of_payout(payout: &Payout) -> TallyObject {
        TallyObject {
            view: TallyView {
                object: "payout".into(),
                id: payout.id.clone(),
                status: status_name(payout.status),
                amount: payout.amount,
                currency: payout.currency.clone(),
                psp_fee: 0,
                psp_id: payout.psp_id.clone(),
                created_at: payout.created_at,
            },
            state: State::Payout(payout.status),
        }
    }

    /// Whether the PSP's report of the object's day must list it: the PSP has definitely
    /// done it (or, for a payout in transit, accepted it).
    fn must_be_reported(&self) -> bool {
        matches!(
            self.state,
            State::Charge(ChargeStatus::Succeeded)
                | State::Refund(RefundStatus::Succeeded)
                | State::Payout(PayoutStatus::Paid | PayoutStatus::InTransit)
        )
    }

    fn kind(&self) -> &'static str {
        match self.state {
            State::Charge(_) => "charge",
            State::Refund(_) => "refund",
            State::Payout(_) => "payout",
        }
    }
}

/// A settle step that is safe to take on the PSP's word.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    OrderSucceeded { psp_id: String, fee: u64 },
    OrderFailed,
    RefundSucceeded { psp_id: String },
    PayoutPaid { psp_id: String },
    PayoutFailed,
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::OrderSucceeded { .. } => "settle_order_succeeded",
            Action::OrderFailed => "settle_order_failed",
            Action::RefundSucceeded { .. } => "settle_refund_succeeded",
            Action::PayoutPaid { .. } => "settle_payout_paid",
            Action::PayoutFailed => "settle_payout_failed",
        }
    }

    /// Tally's status once the step is taken.
    fn settled_status(&self) -> &'static str {
        match self {
            Action::OrderSucceeded { .. } | Action::RefundSucceeded { .. } => "succeeded",
            Action::OrderFailed | Action::PayoutFailed => "failed",
            Action::PayoutPaid { .. } => "paid",
        }
    }
}

/// How the two statuses compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Both sides settled the same way.
    Same,
    /// Both sides still have it in flight.
    InFlight,
    /// The PSP has a definite answer for something Tally still has in flight.
    Safe(Action),
    Differs,
}

fn verdict(line: &SettlementLine, state: State) -> Verdict {
    use ChargeStatus as C;
    use PayoutStatus as P;
    use RefundStatus as R;
    use SettlementStatus as S;
    let psp_id = line.psp_id.clone();
    let known = !psp_id.is_empty();
    match (&line.status, state) {
        (S::Succeeded, State::Charge(C::Succeeded))
        | (S::Failed, State::Charge(C::Failed))
        | (S::Succeeded, State::Refund(R::Succeeded))
        | (S::Failed, State::Refund(R::Failed))
        | (S::Paid, State::Payout(P::Paid))
        | (S::Failed, State::Payout(P::Failed)) => Verdict::Same,
        (S::Authorized, State::Charge(C::Processing | C::DeadLetter))
        | (S::Pending, State::Refund(R::Pending))
        | (S::Pending, State::Payout(P::Pending | P::InTransit)) => Verdict::InFlight,
        (S::Succeeded, State::Charge(C::Processing | C::DeadLetter)) if known => {
            Verdict::Safe(Action::OrderSucceeded {
                psp_id,
                fee: line.fee,
            })
        }
        (S::Failed, State::Charge(C::Processing)) => Verdict::Safe(Action::OrderFailed),
        (S::Succeeded, State::Refund(R::Pending)) if known => {
            Verdict::Safe(Action::RefundSucceeded { psp_id })
        }
        (S::Paid, State::Payout(P::Pending | P::InTransit)) if known => {
            Verdict::Safe(Action::PayoutPaid { psp_id })
        }
        (S::Failed, State::Payout(P::Pending | P::InTransit)) => {
            Verdict::Safe(Action::PayoutFailed)
        }
        _ => Verdict::Differs,
    }
}

/// What reconciliation found about one line or object, before anything is done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    class: ReconClass,
    action: Option<Action>,
    in_flight: bool,
    detail: String,
}

impl Finding {
    fn new(class: ReconClass, detail: String) -> Finding {
        Finding {
            class,
            action: None,
            in_flight: false,
            detail,
        }
    }
}

/// `12.50 USD` (minor units when the currency is unknown).
fn money(amount: u64, currency: &str) -> String {
    match Currency::by_code(currency) {
        Some(c) => format!("{} {currency}", c.format(amount)),
        None => format!("{amount} (minor units) {currency}"),
    }
}

/// Classifies a report line against Tally's object of the same reference (if any). Amount and
/// currency are compared first, then the status, then the fee.
fn classify(line: &SettlementLine, tally: Option<&TallyObject>) -> Finding {
    let kind = kind_name(line.kind);
    let Some(tally) = tally else {
        return Finding::new(
            ReconClass::MissingInTally,
            format!(
                "the PSP reports a {kind} {} of {} ({}) that Tally has no record of",
                line.reference,
                money(line.amount, &line.currency),
                line.status
            ),
        );
    };
    let view = &tally.view;
    if line.amount != view.amount || line.currency != view.currency {
        return Finding::new(
            ReconClass::AmountMismatch,
            format!(
                "the PSP reports {}, Tally has {}",
                money(line.amount, &line.currency),
                money(view.amount, &view.currency)
            ),
        );
    }
    let statuses = format!("the PSP says {}, Tally has {}", line.status, view.status);
    match verdict(line, tally.state) {
        Verdict::Differs => Finding::new(ReconClass::StatusMismatch, statuses),
        Verdict::Safe(action) => Finding {
            action: Some(action),
            ..Finding::new(ReconClass::StatusMismatch, statuses)
        },
        Verdict::InFlight => Finding {
            in_flight: true,
            ..Finding::new(ReconClass::Matched, format!("{statuses}: in flight"))
        },
        Verdict::Same if line.fee != view.psp_fee => Finding::new(
            ReconClass::FeeMismatch,
            format!(
                "the PSP's fee is {}, Tally recorded {}",
                money(line.fee, &line.currency),
                money(view.psp_fee, &view.currency)
            ),
        ),
        Verdict::Same => Finding::new(ReconClass::Matched, statuses),
    }
}

/// A line that repeats a reference an earlier line of the same report already named.
fn duplicate(line: &SettlementLine) -> Finding {
    Finding::new(
        ReconClass::MissingInTally,
        format!(
            "the PSP lists {} more than once; Tally has one object for it (possible double {})",
            line.reference,
            kind_name(line.kind)
        ),
    )
}

fn missing_at_psp(day: NaiveDate, tally: &TallyObject) -> Finding {
    let view = &tally.view;
    Finding::new(
        ReconClass::MissingAtPsp,
        format!(
            "Tally has {} {} {} of {}, but the PSP's report of {day} has no line for it",
            view.object,
            view.id,
            view.status,
            money(view.amount, &view.currency)
        ),
    )
}

/// Every payment object, by id.
#[derive(Debug, Clone, Default)]
struct Objects {
    orders: BTreeMap<String, Order>,
    refunds: BTreeMap<String, Refund>,
    payouts: BTreeMap<String, Payout>,
}

impl Objects {
    fn find(&self, kind: SettlementKind, reference: &str) -> Option<TallyObject> {
        match kind {
            SettlementKind::Charge => self.orders.get(reference).map(TallyObject::of_order),
            SettlementKind::Refund => self.refunds.get(reference).map(TallyObject::of_refund),
            SettlementKind::Payout => self.payouts.get(reference).map(TallyObject::of_payout),
        }
    }

    /// Objects created on `day` (UTC).
    fn created_on(&self, day: NaiveDate) -> Vec<TallyObject> {
        let start = day
            .and_hms_opt(0, 0, 0)
            .map_or(i64::MAX, |t| t.and_utc().timestamp_millis());
        let on_day = |created_at: i64| created_at >= start && created_at - start < MILLIS_PER_DAY;
        let orders = self.orders.values().filter(|o| on_day(o.created_at));
        let refunds = self.refunds.values().filter(|r| on_day(r.created_at));
        let payouts = self.payouts.values().filter(|p| on_day(p.created_at));
        orders
            .map(TallyObject::of_order)
            .chain(refunds.map(TallyObject::of_refund))
            .chain(payouts.map(TallyObject::of_payout))
            .collect()
    }

    /// The PSP clearing account's expected posted debit balance and pending debits in
    /// `currency`.
    fn clearing_expected(&self, currency: &str) -> (i128, u128) {
        let mut balance = 0i128;
        let mut pending = 0u128;
        for order in self.orders.values().filter(|o| o.currency == currency) {
            match order.status {
                ChargeStatus::Succeeded => balance += i128::from(order.amount),
                ChargeStatus::Processing | ChargeStatus::DeadLetter => {
                    pending += u128::from(order.amount)
                }
                ChargeStatus::Failed => {}
            }
        }
        for refund in self.refunds.values().filter(|r| r.currency == currency) {
            if refund.status == RefundStatus::Succeeded {
                balance -= i128::from(refund.amount);
            }
        }
        for payout in self.payouts.values().filter(|p| p.currency == currency) {
            if payout.status == PayoutStatus::Paid {
                balance -= i128::from(payout.amount);
            }
        }
        (balance, pending)
    }
}

/// A line or object to record, with its key and what was found.
#[derive(Debug, Clone)]
struct Candidate {
    key: String,
    reference: String,
    kind: &'static str,
    line: Option<SettlementLine>,
    tally: Option<TallyObject>,
    finding: Finding,
}

/// `base`, or `base#2`, `base#3`, ... : the first key not used yet.
fn unique_key(used: &mut BTreeSet<String>, base: String) -> String {
    let mut key = base.clone();
    let mut n = 1u32;
    while used.contains(&key) {
        n += 1;
        key = format!("{base}#{n}");
    }
    used.insert(key.clone());
    key
}

/// Every line of the report and every object of the day the report should have listed.
fn candidates(day: NaiveDate, lines: &[SettlementLine], objects: &Objects) -> Vec<Candidate> {
    let mut used = BTreeSet::new();
    let mut named = BTreeSet::new();
    let mut all = Vec::with_capacity(lines.len());
    for line in lines {
        let tally = objects.find(line.kind, &line.reference);
        let finding = if named.insert(line.reference.clone()) {
            classify(line, tally.as_ref())
        } else {
            duplicate(line)
        };
        all.push(Candidate {
            key: unique_key(&mut used, format!("{day}/{}", line.reference)),
            reference: line.reference.clone(),
            kind: kind_name(line.kind),
            line: Some(line.clone()),
            tally,
            finding,
        });
    }
    for tally in objects.created_on(day) {
        if !tally.must_be_reported() || named.contains(&tally.view.id) {
            continue;
        }
        all.push(Candidate {
            key: unique_key(&mut used, format!("{day}/{}", tally.view.id)),
            reference: tally.view.id.clone(),
            kind: tally.kind(),
            line: None,
            finding: missing_at_psp(day, &tally),
            tally: Some(tally),
        });
    }
    all
}

/// Whether a stored item must be looked at again: only matches of objects in flight, when
/// the new finding says something else.
fn revisit(stored: &ReconItem, finding: &Finding) -> bool {
    stored.in_flight && !(finding.class == ReconClass::Matched && finding.in_flight)
}

// ---- the run ----

/// An item to write: `version` 0 for a new one, else the stored version it replaces.
struct ItemWrite {
    item: ReconItem,
    version: u64,
}

impl Pay {
    /// Reconciles the PSP's settlement report of `day` (UTC) and checks the ledger.
    pub async fn reconcile(self: &Arc<Self>, day: NaiveDate) -> Result<ReconReport, PayError> {
        let date = day.to_string();
        let run_at = now_ms();
        let lines = self.psp.settlement(day).await.map_err(|e| {
            PayError::PspUnavailable(format!("the settlement report of {date}: {e}"))
        })?;
        if lines.len() > RECON_LINES_MAX {
            return Err(PayError::unprocessable(
                "report_too_large",
                format!(
                    "the settlement report of {date} has {} lines, more than the {RECON_LINES_MAX} \
                     one run reconciles",
                    lines.len()
                ),
            ));
        }
        let stored = self.stored_items(&date).await?;
        let objects = self.objects().await?;
        let mut pending = Vec::new();
        let mut recorded = Vec::new();
        let mut new_items = 0;
        for candidate in candidates(day, &lines, &objects) {
            let version = match stored.get(&candidate.key) {
                None => 0,
                Some(stored) if revisit(&stored.value, &candidate.finding) => stored.version,
                Some(_) => continue,
            };
            let settles = candidate.finding.action.is_some();
            let write = ItemWrite {
                item: self.resolve(&date, candidate, run_at).await?,
                version,
            };
            if settles {
                // Recorded at once: should the run stop early, a later run would find the
                // object settled and could no longer tell that reconciliation settled it.
                let (items, count) = self.write_items(vec![write]).await?;
                recorded.extend(items);
                new_items += count;
            } else {
                pending.push(write);
            }
        }
        let (items, count) = self.write_items(pending).await?;
        recorded.extend(items);
        new_items += count;
        let mut items: BTreeMap<String, ReconItem> = stored
            .into_iter()
            .map(|(key, item)| (key, item.value))
            .collect();
        for item in recorded {
            items.insert(item.key.clone(), item);
        }
        let items: Vec<ReconItem> = items.into_values().collect();
        let ledger = self.check_ledger().await?;
        let summary = ReconSummary::of(&items, new_items, ledger);
        self.store_run(&date, run_at, &summary).await?;
        metrics_of(self, &summary);
        Ok(ReconReport {
            date,
            run_at,
            summary,
            items,
        })
    }

    /// The stored reconciliation of a day.
    pub async fn reconciliation(&self, day: NaiveDate) -> Result<ReconReport, PayError> {
        let date = day.to_string();
        let run = self
            .load::<ReconRun>(ns::RECON_RUN, &date, "reconciliation of")
            .await?
            .value;
        let items = self
            .stored_items(&date)
            .await?
            .into_values()
            .map(|item| item.value)
            .collect();
        Ok(ReconReport {
            date,
            run_at: run.run_at,
            summary: run.summary,
            items,
        })
    }

    /// The review queue: every finding a person must look at (of one day, if given).
    pub async fn reviews(&self, day: Option<NaiveDate>) -> Result<Vec<ReconItem>, PayError> {
        let prefix = day.map_or_else(String::new, |d| format!("{d}/"));
        Ok(self
            .store
            .scan_all::<ReconItem>(ns::REVIEW, &prefix)
            .await?
            .into_iter()
            .map(|(_, v)| v.value)
            .collect())
    }

    async fn stored_items(
        &self,
        date: &str,
    ) -> Result<BTreeMap<String, Versioned<ReconItem>>, PayError> {
        Ok(self
            .store
            .scan_all::<ReconItem>(ns::RECON_ITEM, &format!("{date}/"))
            .await?
            .into_iter()
            .collect())
    }

    /// Every order, deposit, refund and payout.
    async fn objects(&self) -> Result<Objects, PayError> {
        fn values<T>(all: Vec<(String, Versioned<T>)>) -> BTreeMap<String, T> {
            all.into_iter().map(|(k, v)| (k, v.value)).collect()
        }
        Ok(Objects {
            orders: values(self.store.scan_all::<Order>(ns::ORDER, "").await?),
            refunds: values(self.store.scan_all::<Refund>(ns::REFUND, "").await?),
            payouts: values(self.store.scan_all::<Payout>(ns::PAYOUT, "").await?),
        })
    }

    /// Takes the safe settle step of a finding, if it has one, and makes the item.
    async fn resolve(
        &self,
        date: &str,
        candidate: Candidate,
        found_at: i64,
    ) -> Result<ReconItem, PayError> {
        let Candidate {
            key,
            reference,
            kind,
            line,
            tally,
            finding,
        } = candidate;
        let mut item = ReconItem {
            key,
            date: date.to_string(),
            reference,
            kind: kind.to_string(),
            class: finding.class,
            resolution: if finding.class == ReconClass::Matched {
                Resolution::None
            } else {
                Resolution::Review
            },
            action: None,
            status_after: None,
            in_flight: finding.in_flight,
            detail: finding.detail,
            psp: line.as_ref().map(PspLine::from),
            tally: tally.map(|t| t.view),
            found_at,
        };
        let Some(action) = finding.action else {
            return Ok(item);
        };
        let status = self.settle(date, &item.reference, &action).await?;
        item.action = Some(action.name().to_string());
        if status == action.settled_status() {
            item.resolution = Resolution::Resolved;
            item.detail = format!("{}: settled {status}", item.detail);
        } else {
            item.detail = format!(
                "{}: not settled, Tally had meanwhile settled it {status}",
                item.detail
            );
        }
        item.status_after = Some(status);
        Ok(item)
    }

    /// Takes a settle step; returns Tally's status after it.
    async fn settle(&self, date: &str, id: &str, action: &Action) -> Result<String, PayError> {
        let reported_failed = || {
            failure(
                "psp_reported_failed",
                format!("the PSP's settlement report of {date} lists it as failed"),
            )
        };
        Ok(match action {
            Action::OrderSucceeded { psp_id, fee } => status_name(
                self.settle_order(id, Ok((psp_id.clone(), *fee)))
                    .await?
                    .status,
            ),
            Action::OrderFailed => {
                status_name(self.settle_order(id, Err(reported_failed())).await?.status)
            }
            Action::RefundSucceeded { psp_id } => {
                status_name(self.settle_refund(id, Ok(psp_id.clone())).await?.status)
            }
            Action::PayoutPaid { psp_id } => {
                status_name(self.settle_payout(id, Ok(psp_id.clone())).await?.status)
            }
            Action::PayoutFailed => {
                status_name(self.settle_payout(id, Err(reported_failed())).await?.status)
            }
        })
    }

    /// Writes items (and their review entries) in batches, each only if still absent (or at
    /// the version it replaces). Returns the items as stored and how many this run wrote.
    async fn write_items(&self, writes: Vec<ItemWrite>) -> Result<(Vec<ReconItem>, u64), PayError> {
        let mut stored = Vec::with_capacity(writes.len());
        let mut written = 0u64;
        for chunk in writes.chunks(ITEMS_PER_TXN_MAX) {
            let txn = chunk.iter().fold(Txn::new(), item_ops);
            match self.store.commit(txn).await? {
                Commit::Committed => {
                    written += chunk.len() as u64;
                    stored.extend(chunk.iter().map(|w| w.item.clone()));
                    continue;
                }
                // Another run got to some of them first: one at a time.
                Commit::ConditionFailed { .. } => {}
                other => return Err(write_failed(&other)),
            }
            for write in chunk {
                match self.store.commit(item_ops(Txn::new(), write)).await? {
                    Commit::Committed => {
                        written += 1;
                        stored.push(write.item.clone());
                    }
                    Commit::ConditionFailed { .. } => {
                        let theirs = self
                            .load::<ReconItem>(ns::RECON_ITEM, &write.item.key, "recon item")
                            .await?;
                        stored.push(theirs.value);
                    }
                    other => return Err(write_failed(&other)),
                }
            }
        }
        Ok((stored, written))
    }

    /// Stores the day's summary unless the stored one already says the same.
    async fn store_run(
        &self,
        date: &str,
        run_at: i64,
        summary: &ReconSummary,
    ) -> Result<(), PayError> {
        let stored = self.store.get::<ReconRun>(ns::RECON_RUN, date).await?;
        if let Some(stored) = &stored {
            if stored.value.summary.same_findings(summary) {
                return Ok(());
            }
        }
        let run = ReconRun {
            date: date.to_string(),
            run_at,
            summary: summary.clone(),
        };
        let txn = audit::stamp(Txn::new(), "reconciliation.run", date)
            .expect(ns::RECON_RUN, date, stored.map_or(0, |s| s.version))
            .put(ns::RECON_RUN, date, &run);
        match self.store.commit(txn).await? {
            // A concurrent run stored its own summary of the same report.
            Commit::Committed | Commit::ConditionFailed { .. } => Ok(()),
            other => Err(write_failed(&other)),
        }
    }
}

fn item_ops(txn: Txn, write: &ItemWrite) -> Txn {
    let key = &write.item.key;
    let txn = txn
        .expect(ns::RECON_ITEM, key, write.version)
        .put(ns::RECON_ITEM, key, &write.item);
    if write.item.resolution == Resolution::Review {
        txn.expect(ns::REVIEW, key, 0)
            .put(ns::REVIEW, key, &write.item)
    } else {
        txn
    }
}

fn write_failed(commit: &Commit) -> PayError {
    PayError::Internal(format!(
        "recording reconciliation items: {}",
        describe_commit(commit)
    ))
}

fn metrics_of(pay: &Pay, summary: &ReconSummary) {
    if summary.new_items > 0 {
        pay.metrics.inc("tally_pay_recon_runs_with_new_items_total");
    }
    if !summary.ledger_ok {
        pay.metrics
            .inc("tally_pay_recon_ledger_check_failures_total");
    }
}

// ---- ledger checks ----

impl Pay {
    /// Conservation, wallet movements and the PSP clearing account, per enabled currency.
    async fn check_ledger(&self) -> Result<Vec<CurrencyChecks>, PayError> {
        let owners = self.wallet_owners().await?;
        let (objects, clearing, stable) = self.objects_with_clearing().await?;
        let mut checks = Vec::with_capacity(self.currencies.len());
        for (currency, clearing) in self.currencies.iter().zip(clearing) {
            let wallets: Vec<u128> = owners
                .iter()
                .map(|(wallet_code, owner)| chart::account_id(*wallet_code, *currency, *owner))
                .collect();
            let conservation = self.check_conservation(*currency, &wallets).await?;
            let wallets = self.check_wallets(&wallets).await?;
            let (expected_balance, expected_debits_pending) =
                objects.clearing_expected(currency.code);
            let balance = i128::try_from(clearing.debits_posted).unwrap_or(i128::MAX)
                - i128::try_from(clearing.credits_posted).unwrap_or(i128::MAX);
            let psp_clearing = ClearingCheck {
                passed: stable
                    && balance == expected_balance
                    && clearing.debits_pending == expected_debits_pending,
                stable,
                balance,
                expected_balance,
                debits_pending: clearing.debits_pending,
                expected_debits_pending,
            };
            checks.push(CurrencyChecks {
                currency: currency.code.to_string(),
                passed: conservation.passed && wallets.passed && psp_clearing.passed,
                conservation,
                wallets,
                psp_clearing,
            });
        }
        Ok(checks)
    }

    /// Wallet code and owner number of every seller and customer.
    async fn wallet_owners(&self) -> Result<Vec<(u16, u64)>, PayError> {
        let mut owners = Vec::new();
        for (namespace, prefix, wallet_code) in [
            (ns::SELLER, ids::SELLER, code::SELLER_WALLET),
            (ns::CUSTOMER, ids::CUSTOMER, code::CUSTOMER_WALLET),
        ] {
            for (key, _) in self
                .store
                .scan_all::<serde::de::IgnoredAny>(namespace, "")
                .await?
            {
                let owner = ids::number(prefix, &key).ok_or_else(|| {
                    PayError::Internal(format!("{namespace} has a record with the key {key:?}"))
                })?;
                owners.push((wallet_code, owner));
            }
        }
        Ok(owners)
    }

    /// The records and the clearing accounts' balances (per enabled currency) as of one moment:
    /// read between two looks at the clearing accounts' latest transfer, repeated until no
    /// transfer touched them in between. Every status change the expected figures depend on
    /// posts to the clearing account in the same `Txn`. The flag says whether that succeeded.
    async fn objects_with_clearing(&self) -> Result<(Objects, Vec<Balances>, bool), PayError> {
        let ids: Vec<u128> = self
            .currencies
            .iter()
            .map(|c| chart::system_account(code::PSP_CLEARING, *c))
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = self.latest_transfers(&ids).await?;
            let accounts = self.store.client().lookup_accounts(&ids).await?;
            let objects = self.objects().await?;
            let after = self.latest_transfers(&ids).await?;
            let balances = ids
                .iter()
                .map(|id| {
                    accounts
                        .iter()
                        .find(|a| tally_proto::u128_of(a.id) == *id)
                        .map(Balances::of_account)
                        .unwrap_or_default()
                })
                .collect();
            let stable = before == after;
            if stable || attempt >= LEDGER_READ_ATTEMPTS_MAX {
                return Ok((objects, balances, stable));
            }
        }
    }

    /// The timestamp of each account's latest transfer (0: none).
    async fn latest_transfers(&self, ids: &[u128]) -> Result<Vec<u64>, PayError> {
        let mut latest = Vec::with_capacity(ids.len());
        for id in ids {
            let page = self
                .store
                .client()
                .account_transfers(v1::AccountFilter {
                    account_id: Some((*id).into()),
                    timestamp_min: 0,
                    timestamp_max: 0,
                    limit: 1,
                    reversed: true,
                    stale_ok: false,
                })
                .await?;
            latest.push(page.first().map_or(0, |t| t.timestamp));
        }
        Ok(latest)
    }

    /// Debits equal credits, posted and pending, over the system accounts of `currency` and
    /// `wallets`. The accounts are read in pages, so a mismatch is read again a few times before
    /// it counts (a transfer may have landed between two pages).
    async fn check_conservation(
        &self,
        currency: Currency,
        wallets: &[u128],
    ) -> Result<ConservationCheck, PayError> {
        let ids: Vec<u128> = chart::SYSTEM_CODES
            .iter()
            .map(|c| chart::system_account(*c, currency))
            .chain(wallets.iter().copied())
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut sum = Balances::default();
            let mut accounts = 0u64;
            for chunk in ids.chunks(LOOKUP_IDS_MAX) {
                for account in self.store.client().lookup_accounts(chunk).await? {
                    let b = Balances::of_account(&account);
                    accounts += 1;
                    sum.debits_posted = sum.debits_posted.saturating_add(b.debits_posted);
                    sum.credits_posted = sum.credits_posted.saturating_add(b.credits_posted);
                    sum.debits_pending = sum.debits_pending.saturating_add(b.debits_pending);
                    sum.credits_pending = sum.credits_pending.saturating_add(b.credits_pending);
                }
            }
            let passed = sum.debits_posted == sum.credits_posted
                && sum.debits_pending == sum.credits_pending;
            if passed || attempt >= LEDGER_READ_ATTEMPTS_MAX {
                return Ok(ConservationCheck {
                    passed,
                    accounts,
                    debits_posted: sum.debits_posted,
                    credits_posted: sum.credits_posted,
                    debits_pending: sum.debits_pending,
                    credits_pending: sum.credits_pending,
                });
            }
        }
    }

    /// Every wallet's posted balance against the sum of its posted movements.
    async fn check_wallets(&self, wallets: &[u128]) -> Result<WalletCheck, PayError> {
        let results: Vec<Option<(u64, Option<WalletMismatch>)>> =
            futures::stream::iter(wallets.iter().copied())
                .map(|id| self.check_wallet(id))
                .buffer_unordered(WALLET_CHECKS_CONCURRENCY_MAX)
                .try_collect()
                .await?;
        let mut check = WalletCheck {
            passed: true,
            wallets: 0,
            transfers: 0,
            mismatched: 0,
            mismatches: Vec::new(),
        };
        for (transfers, mismatch) in results.into_iter().flatten() {
            check.wallets += 1;
            check.transfers += transfers;
            if let Some(mismatch) = mismatch {
                check.passed = false;
                check.mismatched += 1;
                if check.mismatches.len() < WALLET_MISMATCHES_LISTED_MAX {
                    check.mismatches.push(mismatch);
                }
            }
        }
        check
            .mismatches
            .sort_by(|a, b| a.account_id.cmp(&b.account_id));
        Ok(check)
    }

    /// One wallet, at its latest balance history point `T`: its posted balances against the
    /// sum of its posted transfers up to `T`. Every transfer of the wallet with a timestamp up
    /// to `T` committed no later than that point, so the two agree however payments flow.
    /// `None` for a wallet without history (never used, or not opened in this currency).
    async fn check_wallet(
        &self,
        account_id: u128,
    ) -> Result<Option<(u64, Option<WalletMismatch>)>, PayError> {
        let (balance, at) = self.balance_at(account_id, u64::MAX).await?;
        if at == 0 {
            return Ok(None);
        }
        let mut credits = 0u128;
        let mut debits = 0u128;
        let transfers = self
            .visit_transfers(account_id, (0, at), |t| {
                if !is_posted(t.flags) {
                    return;
                }
                let amount = tally_proto::u128_of(t.amount);
                if tally_proto::u128_of(t.credit_account_id) == account_id {
                    credits = credits.saturating_add(amount);
                } else {
                    debits = debits.saturating_add(amount);
                }
            })
            .await?;
        let matches = credits == balance.credits_posted && debits == balance.debits_posted;
        let mismatch = (!matches).then(|| WalletMismatch {
            account: super::reports::account_name(account_id),
            account_id: format!("{account_id:032x}"),
            at,
            credits_posted: balance.credits_posted,
            debits_posted: balance.debits_posted,
            movement_credits: credits,
            movement_debits: debits,
        });
        Ok(Some((transfers, mismatch)))
    }
}

// ---- rendering ----

impl ReconReport {
    /// One CSV row per item, with a header; amounts in minor units.
    pub fn to_csv(&self) -> Result<String, PayError> {
        let mut writer = csv_writer();
        csv_row(
            &mut writer,
            &[
                "date",
                "reference",
                "kind",
                "class",
                "resolution",
                "action",
                "psp_id",
                "psp_status",
                "psp_amount",
                "psp_fee",
                "currency",
                "tally_object",
                "tally_status",
                "tally_amount",
                "tally_psp_fee",
                "status_after",
                "detail",
            ],
        )?;
        for item in &self.items {
            let psp = item.psp.as_ref();
            let tally = item.tally.as_ref();
            let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
            let currency = psp
                .map(|l| l.currency.as_str())
                .or(tally.map(|t| t.currency.as_str()))
                .unwrap_or("");
            csv_row(
                &mut writer,
                &[
                    &item.date,
                    &item.reference,
                    &item.kind,
                    item.class.name(),
                    item.resolution.name(),
                    item.action.as_deref().unwrap_or(""),
                    psp.map_or("", |l| l.psp_id.as_str()),
                    psp.map_or("", |l| l.status.as_str()),
                    &number(psp.map(|l| l.amount)),
                    &number(psp.map(|l| l.fee)),
                    currency,
                    tally.map_or("", |t| t.object.as_str()),
                    tally.map_or("", |t| t.status.as_str()),
                    &number(tally.map(|t| t.amount)),
                    &number(tally.map(|t| t.psp_fee)),
                    item.status_after.as_deref().unwrap_or(""),
                    &item.detail,
                ],
            )?;
        }
        csv_finish(writer)
    }

    /// A readable summary: counts per class, the ledger checks, then every item that is not a
    /// plain match.
    pub fn render_text(&self) -> String {
        let s = &self.summary;
        let mut out = format!("Reconciliation of {}\n\n", self.date);
        let mut rows = vec![vec!["PSP lines".to_string(), s.lines.to_string()]];
        for class in ReconClass::ALL {
            rows.push(vec![class.name().to_string(), s.count(class).to_string()]);
        }
        rows.push(vec!["resolved".into(), s.resolved.to_string()]);
        rows.push(vec!["queued for review".into(), s.queued.to_string()]);
        rows.push(vec!["new items".into(), s.new_items.to_string()]);
        out.push_str(&table(&[], &rows));
        out.push_str("\nLedger checks\n");
        let rows: Vec<Vec<String>> = s.ledger.iter().flat_map(ledger_rows).collect();
        out.push_str(&table(&["currency", "check", "result", "figures"], &rows));
        let notable: Vec<Vec<String>> = self
            .items
            .iter()
            .filter(|i| i.class != ReconClass::Matched)
            .map(|i| {
                vec![
                    i.reference.clone(),
                    i.kind.clone(),
                    i.class.name().to_string(),
                    i.resolution.name().to_string(),
                    i.detail.clone(),
                ]
            })
            .collect();
        if !notable.is_empty() {
            out.push_str("\nFindings\n");
            out.push_str(&table(
                &["reference", "kind", "class", "resolution", "detail"],
                &notable,
            ));
        }
        out.push_str(if s.ok {
            "\nOK: everything matched or was resolved, and the ledger checks passed.\n"
        } else {
            "\nATTENTION: findings are queued for review or a ledger check failed.\n"
        });
        out
    }
}

/// The rows of one currency's ledger checks, amounts as decimals of the currency.
fn ledger_rows(c: &CurrencyChecks) -> Vec<Vec<String>> {
    let amount = |minor: i128| match Currency::by_code(&c.currency) {
        Some(currency) => super::reports::format_signed(currency, minor),
        None => minor.to_string(),
    };
    let unsigned = |minor: u128| amount(i128::try_from(minor).unwrap_or(i128::MAX));
    let verdict = |passed: bool| if passed { "pass" } else { "FAIL" }.to_string();
    let (k, w, p) = (&c.conservation, &c.wallets, &c.psp_clearing);
    let conservation = format!(
        "{} accounts; posted debits {} credits {}; pending debits {} credits {}",
        k.accounts,
        unsigned(k.debits_posted),
        unsigned(k.credits_posted),
        unsigned(k.debits_pending),
        unsigned(k.credits_pending)
    );
    let wallets = format!(
        "{} wallets, {} transfers, {} mismatched",
        w.wallets, w.transfers, w.mismatched
    );
    let clearing = format!(
        "balance {} (expected {}); pending {} (expected {}){}",
        amount(p.balance),
        amount(p.expected_balance),
        unsigned(p.debits_pending),
        unsigned(p.expected_debits_pending),
        if p.stable {
            ""
        } else {
            "; payments kept settling"
        }
    );
    [
        ("conservation", k.passed, conservation),
        ("wallet movements", w.passed, wallets),
        ("psp clearing", p.passed, clearing),
    ]
    .into_iter()
    .map(|(check, passed, figures)| {
        vec![
            c.currency.clone(),
            check.to_string(),
            verdict(passed),
            figures,
        ]
    })
    .collect()
}

/// Left-aligned columns separated by two spaces; `header` may be empty.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    let mut widths = vec![0usize; columns];
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in rows.iter().chain(std::iter::once(&header)) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header)
        .filter(|h| !h.is_empty())
        .chain(rows)
    {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 7).unwrap()
    }

    fn created() -> i64 {
        day()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn line(
        kind: SettlementKind,
        reference: &str,
        amount: u64,
        fee: u64,
        status: &str,
    ) -> SettlementLine {
        SettlementLine {
            date: day(),
            kind,
            psp_id: format!("x_{reference}"),
            reference: reference.into(),
            amount,
            currency: "USD".into(),
            fee,
            status: status.into(),
        }
    }

    fn order(id: &str, amount: u64, psp_fee: u64, status: ChargeStatus) -> Order {
        Order {
            id: id.into(),
            kind: ChargeKind::Order,
            payment_id: None,
            seller_id: Some("sel_00000000000000ff".into()),
            customer_id: "cus_00000000000000ff".into(),
            card_id: "card_00000000000000ff".into(),
            amount,
            currency: "USD".into(),
            fee: 10,
            psp_fee,
            status,
            failure: None,
            psp_id: None,
            refunded: 0,
            refund_pending: 0,
            fee_refunded: 0,
            fee_refund_pending: 0,
            attempts: 0,
            next_attempt_at: 0,
            created_at: created(),
            updated_at: created(),
        }
    }

    fn refund(id: &str, amount: u64, status: RefundStatus) -> Refund {
        Refund {
            id: id.into(),
            order_id: "ord_1".into(),
            seller_id: "sel_00000000000000ff".into(),
            amount,
            currency: "USD".into(),
            fee_returned: 0,
            reason: None,
            status,
            failure: None,
            psp_id: None,
            attempts: 0,
            next_attempt_at: 0,
            created_at: created(),
            updated_at: created(),
        }
    }

    fn payout(id: &str, amount: u64, status: PayoutStatus) -> Payout {
        Payout {
            id: id.into(),
            seller_id: "sel_00000000000000ff".into(),
            bank_account_id: "ba_00000000000000ff".into(),
            amount,
            currency: "USD".into(),
            trigger: crate::domain::model::PayoutTrigger::OnDemand,
            status,
            failure: None,
            psp_id: None,
            attempts: 0,
            next_attempt_at: 0,
            created_at: created(),
            updated_at: created(),
        }
    }

    fn objects() -> Objects {
        let mut o = Objects::default();
        for order in [
            order("ord_ok", 1000, 59, ChargeStatus::Succeeded),
            order("ord_amount", 1000, 59, ChargeStatus::Succeeded),
            order("ord_fee", 1000, 59, ChargeStatus::Succeeded),
            order("ord_lost", 2000, 0, ChargeStatus::Processing),
            order("ord_declined", 500, 0, ChargeStatus::Processing),
            order("ord_voided", 700, 0, ChargeStatus::Failed),
            order("ord_dropped", 900, 56, ChargeStatus::Succeeded),
        ] {
            o.orders.insert(order.id.clone(), order);
        }
        for refund in [
            refund("re_ok", 300, RefundStatus::Succeeded),
            refund("re_pending", 200, RefundStatus::Pending),
        ] {
            o.refunds.insert(refund.id.clone(), refund);
        }
        for payout in [
            payout("po_transit", 400, PayoutStatus::InTransit),
            payout("po_paid", 100, PayoutStatus::Paid),
        ] {
            o.payouts.insert(payout.id.clone(), payout);
        }
        o
    }

    fn report() -> Vec<SettlementLine> {
        use SettlementKind::*;
        vec![
            line(Charge, "ord_ok", 1000, 59, "succeeded"),
            line(Charge, "ord_amount", 999, 59, "succeeded"),
            line(Charge, "ord_fee", 1000, 1, "succeeded"),
            line(Charge, "ord_lost", 2000, 88, "succeeded"),
            line(Charge, "ord_declined", 500, 0, "failed"),
            line(Charge, "ord_voided", 700, 50, "succeeded"),
            line(Charge, "ord_ghost", 10, 0, "succeeded"),
            line(Refund, "re_ok", 300, 0, "succeeded"),
            line(Refund, "re_pending", 200, 0, "succeeded"),
            line(Payout, "po_transit", 400, 0, "pending"),
            line(Payout, "po_paid", 100, 0, "paid"),
            line(Charge, "ord_ok", 1000, 59, "succeeded"),
        ]
    }

    fn classes() -> Vec<(String, ReconClass, Option<&'static str>, bool)> {
        candidates(day(), &report(), &objects())
            .into_iter()
            .map(|c| {
                (
                    c.key,
                    c.finding.class,
                    c.finding.action.as_ref().map(Action::name),
                    c.finding.in_flight,
                )
            })
            .collect()
    }

    #[test]
    fn every_line_and_unreported_object_is_classified() {
        use ReconClass::*;
        let k = |r: &str| format!("2025-03-07/{r}");
        assert_eq!(
            classes(),
            vec![
                (k("ord_ok"), Matched, None, false),
                (k("ord_amount"), AmountMismatch, None, false),
                (k("ord_fee"), FeeMismatch, None, false),
                (
                    k("ord_lost"),
                    StatusMismatch,
                    Some("settle_order_succeeded"),
                    false
                ),
                (
                    k("ord_declined"),
                    StatusMismatch,
                    Some("settle_order_failed"),
                    false
                ),
                (k("ord_voided"), StatusMismatch, None, false),
                (k("ord_ghost"), MissingInTally, None, false),
                (k("re_ok"), Matched, None, false),
                (
                    k("re_pending"),
                    StatusMismatch,
                    Some("settle_refund_succeeded"),
                    false
                ),
                (k("po_transit"), Matched, None, true),
                (k("po_paid"), Matched, None, false),
                (k("ord_ok#2"), MissingInTally, None, false),
                (k("ord_dropped"), MissingAtPsp, None, false),
            ]
        );
    }

    #[test]
    fn safe_settlements_carry_the_psp_answer() {
        let objects = objects();
        let lost = objects.find(SettlementKind::Charge, "ord_lost");
        let finding = classify(&report()[3], lost.as_ref());
        assert_eq!(
            finding.action,
            Some(Action::OrderSucceeded {
                psp_id: "x_ord_lost".into(),
                fee: 88
            })
        );
        // Without the PSP's id nothing is settled on its word.
        let mut anonymous = report()[3].clone();
        anonymous.psp_id.clear();
        assert_eq!(classify(&anonymous, lost.as_ref()).action, None);
        // A dead-lettered order is settled on success, but not on failure.
        let dead = TallyObject::of_order(&order("ord_x", 500, 0, ChargeStatus::DeadLetter));
        let failed = line(SettlementKind::Charge, "ord_x", 500, 0, "failed");
        assert_eq!(verdict(&failed, dead.state), Verdict::Differs);
        // A payout the PSP reports paid or failed is settled from pending or in transit.
        for status in [PayoutStatus::Pending, PayoutStatus::InTransit] {
            let p = TallyObject::of_payout(&payout("po_x", 400, status));
            let paid = line(SettlementKind::Payout, "po_x", 400, 0, "paid");
            let failed = line(SettlementKind::Payout, "po_x", 400, 0, "failed");
            assert!(matches!(
                verdict(&paid, p.state),
                Verdict::Safe(Action::PayoutPaid { .. })
            ));
            assert_eq!(
                verdict(&failed, p.state),
                Verdict::Safe(Action::PayoutFailed)
            );
        }
    }

    #[test]
    fn only_in_flight_matches_are_revisited() {
        let item = |in_flight| ReconItem {
            key: "k".into(),
            date: "2025-03-07".into(),
            reference: "po_x".into(),
            kind: "payout".into(),
            class: ReconClass::Matched,
            resolution: Resolution::None,
            action: None,
            status_after: None,
            in_flight,
            detail: String::new(),
            psp: None,
            tally: None,
            found_at: 0,
        };
        let still = Finding {
            in_flight: true,
            ..Finding::new(ReconClass::Matched, String::new())
        };
        let settled = Finding::new(ReconClass::StatusMismatch, String::new());
        assert!(!revisit(&item(false), &settled));
        assert!(!revisit(&item(true), &still));
        assert!(revisit(&item(true), &settled));
    }

    #[test]
    fn clearing_expectation_follows_the_records() {
        let (balance, pending) = objects().clearing_expected("USD");
        // Succeeded charges 1000 * 3 + 900, minus the succeeded refund 300 and paid payout 100.
        assert_eq!(balance, 3900 - 300 - 100);
        assert_eq!(pending, 2000 + 500);
        assert_eq!(objects().clearing_expected("EUR"), (0, 0));
    }

    fn sample_report() -> ReconReport {
        let lines = report();
        let objects = objects();
        let items: Vec<ReconItem> = candidates(day(), &lines, &objects)
            .into_iter()
            .map(|c| ReconItem {
                key: c.key,
                date: "2025-03-07".into(),
                reference: c.reference,
                kind: c.kind.into(),
                class: c.finding.class,
                resolution: if c.finding.class == ReconClass::Matched {
                    Resolution::None
                } else {
                    Resolution::Review
                },
                action: None,
                status_after: None,
                in_flight: c.finding.in_flight,
                detail: c.finding.detail,
                psp: c.line.as_ref().map(PspLine::from),
                tally: c.tally.map(|t| t.view),
                found_at: 0,
            })
            .collect();
        ReconReport {
            date: "2025-03-07".into(),
            run_at: 0,
            summary: ReconSummary::of(&items, 13, Vec::new()),
            items,
        }
    }

    #[test]
    fn summary_counts_classes_and_resolutions() {
        let s = sample_report().summary;
        assert_eq!(s.lines, 12);
        assert_eq!(s.matched, 4);
        assert_eq!(s.missing_in_tally, 2);
        assert_eq!(s.missing_at_psp, 1);
        assert_eq!(
            (s.amount_mismatch, s.status_mismatch, s.fee_mismatch),
            (1, 4, 1)
        );
        assert_eq!(s.queued, 9);
        assert!(!s.ok);
        let again = ReconSummary {
            new_items: 0,
            ..s.clone()
        };
        assert!(s.same_findings(&again));
    }

    #[test]
    fn ledger_figures_are_shown_as_decimals() {
        let checks = CurrencyChecks {
            currency: "USD".into(),
            passed: false,
            conservation: ConservationCheck {
                passed: true,
                accounts: 7,
                debits_posted: 42_912,
                credits_posted: 42_912,
                debits_pending: 0,
                credits_pending: 0,
            },
            wallets: WalletCheck {
                passed: true,
                wallets: 2,
                transfers: 9,
                mismatched: 0,
                mismatches: Vec::new(),
            },
            psp_clearing: ClearingCheck {
                passed: false,
                stable: true,
                balance: -150,
                expected_balance: 2_700,
                debits_pending: 0,
                expected_debits_pending: 0,
            },
        };
        let rows = ledger_rows(&checks);
        assert_eq!(
            rows[0][3],
            "7 accounts; posted debits 429.12 credits 429.12; pending debits 0.00 credits 0.00"
        );
        assert_eq!(rows[2][2], "FAIL");
        assert_eq!(
            rows[2][3],
            "balance -1.50 (expected 27.00); pending 0.00 (expected 0.00)"
        );
        let text = table(&["a", "b"], &[vec!["x".into(), "long cell".into()]]);
        assert_eq!(text, "  a  b\n  x  long cell\n");
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_item() {
        let csv = sample_report().to_csv().unwrap();
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows.len(), 14);
        assert!(rows[0].starts_with("date,reference,kind,class,resolution,action,psp_id"));
        assert!(
            rows[2].starts_with(
                "2025-03-07,ord_amount,charge,amount_mismatch,review,,x_ord_amount,succeeded,999,59,\
                 USD,order,succeeded,1000,59,,"
            ),
            "{}",
            rows[2]
        );
        assert!(rows[13].contains(",missing_at_psp,review,,,,,,USD,order,succeeded,900,56,,"));
        let text = sample_report().render_text();
        assert!(text.contains("amount_mismatch    1"), "{text}");
        assert!(text.contains("ATTENTION"));
    }
}
