//! The day's settlement lines: every charge (but canceled authorizations), refund, payout and
//! dispute created that UTC day, as the PSP reports them, with the adjustments applied.

use chrono::DateTime;

use super::Model;
use crate::settlement;
use crate::wire::{
    Charge, ChargeStatus, Dispute, Payout, PayoutStatus, Refund, RefundStatus, SettlementKind,
    SettlementLine,
};

impl Model {
    /// Every charge, refund and payout created on `day` (UTC), then the adjustments.
    pub fn settlement(&self, day: chrono::NaiveDate) -> Vec<SettlementLine> {
        let on_day = |created: i64| {
            DateTime::from_timestamp(created, 0).map(|time| time.date_naive()) == Some(day)
        };
        let charges = self.charges.items.iter().map(|record| &record.charge);
        // A canceled authorization moved no money, nor did a charge still waiting for its
        // 3-D Secure challenge: neither is on any report.
        let charges = charges
            .filter(|charge| on_day(charge.created))
            .filter(|charge| {
                !matches!(
                    charge.status,
                    ChargeStatus::Canceled | ChargeStatus::RequiresAction { .. }
                )
            })
            .map(|charge| charge_line(charge, day));
        let refunds = self.refunds.items.iter();
        let refunds = refunds
            .filter(|refund| on_day(refund.created))
            .map(|refund| refund_line(refund, day));
        let payouts = self.payouts.items.iter().map(|record| &record.payout);
        let payouts = payouts
            .filter(|payout| on_day(payout.created))
            .map(|payout| payout_line(payout, day));
        let disputes = self.disputes.items.iter().map(|record| &record.dispute);
        let disputes = disputes
            .filter(|dispute| on_day(dispute.created))
            .map(|dispute| dispute_line(dispute, day));
        let lines = charges
            .chain(refunds)
            .chain(payouts)
            .chain(disputes)
            .collect();
        settlement::adjust(lines, &self.adjustments, day)
    }
}

fn charge_line(charge: &Charge, date: chrono::NaiveDate) -> SettlementLine {
    let status = match charge.status {
        ChargeStatus::Authorized => "authorized",
        ChargeStatus::Succeeded => "succeeded",
        ChargeStatus::Failed { .. } => "failed",
        ChargeStatus::Canceled => "canceled",
        ChargeStatus::RequiresAction { .. } => "requires_action",
    };
    SettlementLine {
        date,
        kind: SettlementKind::Charge,
        psp_id: charge.psp_id.clone(),
        reference: charge.reference.clone(),
        amount: charge.amount,
        currency: charge.currency.clone(),
        fee: charge.fee,
        status: status.to_owned(),
    }
}

/// The PSP keeps no fee on a refund (and does not return the charge's).
fn refund_line(refund: &Refund, date: chrono::NaiveDate) -> SettlementLine {
    let status = match refund.status {
        RefundStatus::Pending => "pending",
        RefundStatus::Succeeded => "succeeded",
        RefundStatus::Failed { .. } => "failed",
    };
    SettlementLine {
        date,
        kind: SettlementKind::Refund,
        psp_id: refund.psp_id.clone(),
        reference: refund.reference.clone(),
        amount: refund.amount,
        currency: refund.currency.clone(),
        fee: 0,
        status: status.to_owned(),
    }
}

/// Payouts are free.
fn payout_line(payout: &Payout, date: chrono::NaiveDate) -> SettlementLine {
    let status = match payout.status {
        PayoutStatus::Pending => "pending",
        PayoutStatus::Paid => "paid",
        PayoutStatus::Failed { .. } => "failed",
    };
    SettlementLine {
        date,
        kind: SettlementKind::Payout,
        psp_id: payout.psp_id.clone(),
        reference: payout.reference.clone(),
        amount: payout.amount,
        currency: payout.currency.clone(),
        fee: 0,
        status: status.to_owned(),
    }
}

/// A dispute is reported on the day it opened: the amount and the fee taken then, and its
/// status now (`won`: the amount came back; the fee never does). Its reference is the dispute's
/// own id, as the merchant never named it.
fn dispute_line(dispute: &Dispute, date: chrono::NaiveDate) -> SettlementLine {
    SettlementLine {
        date,
        kind: SettlementKind::Dispute,
        psp_id: dispute.psp_id.clone(),
        reference: dispute.psp_id.clone(),
        amount: dispute.amount,
        currency: dispute.currency.clone(),
        fee: dispute.fee,
        status: dispute.status.word().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{charge_input, model, now, token};

    #[test]
    fn settlement_lists_the_day() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        let declined = self::token(&mut model, "4000000000000002");
        model
            .create_charge(&charge_input("o1", &token, 1000), now())
            .unwrap();
        model
            .create_charge(&charge_input("o2", &declined, 1000), now())
            .unwrap();
        let lines = model.settlement(now().date_naive());
        let summary: Vec<_> = lines
            .iter()
            .map(|l| (l.reference.as_str(), l.status.as_str(), l.fee))
            .collect();
        assert_eq!(summary, [("o1", "succeeded", 59), ("o2", "failed", 0)]);
        assert!(model
            .settlement(now().date_naive().succ_opt().unwrap())
            .is_empty());
    }
}
