//! Matching, pure: each settlement line against Tally's object of the same reference, and
//! Tally's objects of the day against the lines. No IO; the run (`run.rs`) reads and writes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::MILLIS_PER_DAY;
use crate::domain::disputes::{Dispute, DisputeStatus};
use crate::domain::model::{
    ChargeKind, ChargeStatus, Order, Payout, PayoutStatus, Refund, RefundStatus,
};
use crate::domain::money::Currency;
use crate::domain::recon::{PspLine, ReconClass, ReconItem, TallyView};
use crate::edges::psp::{SettlementKind, SettlementLine, SettlementStatus};

pub(super) fn kind_name(kind: SettlementKind) -> &'static str {
    match kind {
        SettlementKind::Charge => "charge",
        SettlementKind::Refund => "refund",
        SettlementKind::Payout => "payout",
        SettlementKind::Dispute => "dispute",
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

/// Tally's status of an object, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Charge(ChargeStatus),
    Refund(RefundStatus),
    Payout(PayoutStatus),
    Dispute(DisputeStatus),
}

/// A Tally object as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TallyObject {
    pub(super) view: TallyView,
    pub(super) state: State,
}

pub(super) fn status_name<T: Serialize>(status: T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl TallyObject {
    pub(super) fn of_order(order: &Order) -> TallyObject {
        let object = match order.kind {
            ChargeKind::Order => "order",
            ChargeKind::Deposit => "deposit",
        };
        TallyObject {
            view: TallyView {
                object: object.into(),
                id: order.id.to_string(),
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

    pub(super) fn of_refund(refund: &Refund) -> TallyObject {
        TallyObject {
            view: TallyView {
                object: "refund".into(),
                id: refund.id.to_string(),
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

    pub(super) fn of_payout(payout: &Payout) -> TallyObject {
        TallyObject {
            view: TallyView {
                object: "payout".into(),
                id: payout.id.to_string(),
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

    /// A dispute: its amount, and the PSP's dispute fee as the fee.
    pub(super) fn of_dispute(dispute: &Dispute) -> TallyObject {
        TallyObject {
            view: TallyView {
                object: "dispute".into(),
                id: dispute.id.to_string(),
                status: status_name(dispute.status),
                amount: dispute.amount,
                currency: dispute.currency.clone(),
                psp_fee: dispute.fee,
                psp_id: Some(dispute.psp_id.clone()),
                created_at: dispute.created_at,
            },
            state: State::Dispute(dispute.status),
        }
    }

    /// Whether the PSP's report of the object's day must list it: the PSP has definitely
    /// done it (or, for a payout in transit, accepted it).
    pub(super) fn must_be_reported(&self) -> bool {
        matches!(
            self.state,
            State::Charge(ChargeStatus::Succeeded)
                | State::Refund(RefundStatus::Succeeded)
                | State::Payout(PayoutStatus::Paid | PayoutStatus::InTransit)
        )
    }

    pub(super) fn kind(&self) -> &'static str {
        match self.state {
            State::Charge(_) => "charge",
            State::Refund(_) => "refund",
            State::Payout(_) => "payout",
            State::Dispute(_) => "dispute",
        }
    }
}

/// A settle step that is safe to take on the PSP's word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    OrderSucceeded { psp_id: String, fee: u64 },
    OrderFailed,
    RefundSucceeded { psp_id: String },
    PayoutPaid { psp_id: String },
    PayoutFailed,
}

impl Action {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Action::OrderSucceeded { .. } => "settle_order_succeeded",
            Action::OrderFailed => "settle_order_failed",
            Action::RefundSucceeded { .. } => "settle_refund_succeeded",
            Action::PayoutPaid { .. } => "settle_payout_paid",
            Action::PayoutFailed => "settle_payout_failed",
        }
    }

    /// Tally's status once the step is taken.
    pub(super) fn settled_status(&self) -> &'static str {
        match self {
            Action::OrderSucceeded { .. } | Action::RefundSucceeded { .. } => "succeeded",
            Action::OrderFailed | Action::PayoutFailed => "failed",
            Action::PayoutPaid { .. } => "paid",
        }
    }
}

/// How the two statuses compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Both sides settled the same way.
    Same,
    /// Both sides still have it in flight.
    InFlight,
    /// The PSP has a definite answer for something Tally still has in flight.
    Safe(Action),
    Differs,
}

pub(super) fn verdict(line: &SettlementLine, state: State) -> Verdict {
    use ChargeStatus as C;
    use DisputeStatus as D;
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
        | (S::Failed, State::Payout(P::Failed))
        | (S::NeedsResponse, State::Dispute(D::NeedsResponse))
        | (S::UnderReview, State::Dispute(D::UnderReview))
        | (S::Won, State::Dispute(D::Won))
        | (S::Lost, State::Dispute(D::Lost)) => Verdict::Same,
        // Closed at the PSP, its webhook on the way.
        (S::Won | S::Lost, State::Dispute(D::NeedsResponse | D::UnderReview)) => {
            Verdict::InFlight
        }
        (
            S::Authorized,
            State::Charge(C::Processing | C::DeadLetter | C::RequiresCapture | C::RequiresAction),
        )
        // Captured at the PSP, not yet in Tally: the capture call or the expiry pass settles it.
        | (S::Succeeded, State::Charge(C::RequiresCapture))
        | (S::Pending, State::Refund(R::Pending))
        | (S::Pending, State::Payout(P::Pending | P::InTransit)) => Verdict::InFlight,
        (S::Succeeded, State::Charge(C::Processing | C::DeadLetter | C::RequiresAction))
            if known =>
        {
            Verdict::Safe(Action::OrderSucceeded {
                psp_id,
                fee: line.fee,
            })
        }
        (S::Failed, State::Charge(C::Processing | C::RequiresAction)) => {
            Verdict::Safe(Action::OrderFailed)
        }
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
pub(super) struct Finding {
    pub(super) class: ReconClass,
    pub(super) action: Option<Action>,
    pub(super) in_flight: bool,
    pub(super) detail: String,
}

impl Finding {
    pub(super) fn new(class: ReconClass, detail: String) -> Finding {
        Finding {
            class,
            action: None,
            in_flight: false,
            detail,
        }
    }
}

/// `12.50 USD` (minor units when the currency is unknown).
pub(super) fn money(amount: u64, currency: &str) -> String {
    match Currency::by_code(currency) {
        Some(c) => format!("{} {currency}", c.format(amount)),
        None => format!("{amount} (minor units) {currency}"),
    }
}

/// Classifies a report line against Tally's object of the same reference (if any). Amount and
/// currency are compared first, then the status, then the fee.
pub(super) fn classify(line: &SettlementLine, tally: Option<&TallyObject>) -> Finding {
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
pub(super) fn duplicate(line: &SettlementLine) -> Finding {
    Finding::new(
        ReconClass::MissingInTally,
        format!(
            "the PSP lists {} more than once; Tally has one object for it (possible double {})",
            line.reference,
            kind_name(line.kind)
        ),
    )
}

pub(super) fn missing_at_psp(day: NaiveDate, tally: &TallyObject) -> Finding {
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
pub(super) struct Objects {
    pub(super) orders: BTreeMap<String, Order>,
    pub(super) refunds: BTreeMap<String, Refund>,
    pub(super) payouts: BTreeMap<String, Payout>,
    /// By the PSP's dispute id (a dispute line's reference).
    pub(super) disputes: BTreeMap<String, Dispute>,
}

impl Objects {
    pub(super) fn find(&self, kind: SettlementKind, reference: &str) -> Option<TallyObject> {
        match kind {
            SettlementKind::Charge => self.orders.get(reference).map(TallyObject::of_order),
            SettlementKind::Refund => self.refunds.get(reference).map(TallyObject::of_refund),
            SettlementKind::Payout => self.payouts.get(reference).map(TallyObject::of_payout),
            SettlementKind::Dispute => self.disputes.get(reference).map(TallyObject::of_dispute),
        }
    }

    /// Objects created on `day` (UTC).
    pub(super) fn created_on(&self, day: NaiveDate) -> Vec<TallyObject> {
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
    pub(super) fn clearing_expected(&self, currency: &str) -> (i128, u128) {
        let mut balance = 0i128;
        let mut pending = 0u128;
        for order in self.orders.values().filter(|o| o.currency == currency) {
            match order.status {
                ChargeStatus::Succeeded => balance += i128::from(order.amount),
                ChargeStatus::Processing
                | ChargeStatus::DeadLetter
                | ChargeStatus::RequiresCapture
                | ChargeStatus::RequiresAction => pending += u128::from(order.amount),
                ChargeStatus::Failed | ChargeStatus::Canceled => {}
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
        // The PSP took every dispute's fee, and a lost dispute's amount.
        for dispute in self.disputes.values().filter(|d| d.currency == currency) {
            balance -= i128::from(dispute.fee);
            if dispute.status == DisputeStatus::Lost {
                balance -= i128::from(dispute.amount);
            }
        }
        (balance, pending)
    }
}

/// A line or object to record, with its key and what was found.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub(super) key: String,
    pub(super) reference: String,
    pub(super) kind: &'static str,
    pub(super) line: Option<SettlementLine>,
    pub(super) tally: Option<TallyObject>,
    pub(super) finding: Finding,
}

/// `base`, or `base#2`, `base#3`, ... : the first key not used yet.
pub(super) fn unique_key(used: &mut BTreeSet<String>, base: String) -> String {
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
pub(super) fn candidates(
    day: NaiveDate,
    lines: &[SettlementLine],
    objects: &Objects,
) -> Vec<Candidate> {
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
pub(super) fn revisit(stored: &ReconItem, finding: &Finding) -> bool {
    stored.in_flight && !(finding.class == ReconClass::Matched && finding.in_flight)
}
