//! Matching, the clearing expectation, the summary and the rendering, on records made up in
//! memory.

use chrono::NaiveDate;

use super::matching::*;
use super::render::{ledger_rows, table};
use crate::domain::model::{
    ChargeKind, ChargeStatus, Order, Payout, PayoutStatus, Refund, RefundStatus,
};
use crate::domain::recon::*;
use crate::edges::psp::{SettlementKind, SettlementLine};

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
    let mut order = Order::opened(
        id.into(),
        ChargeKind::Order,
        "cus_00000000000000ff".parse().unwrap(),
        "card_00000000000000ff".parse().unwrap(),
        amount,
        "USD",
        0,
        created(),
    );
    order.seller_id = Some("sel_00000000000000ff".parse().unwrap());
    (order.fee, order.psp_fee, order.status) = (10, psp_fee, status);
    order
}

fn refund(id: &str, amount: u64, status: RefundStatus) -> Refund {
    Refund {
        id: id.into(),
        order_id: "ord_0000000000000001".into(),
        seller_id: "sel_00000000000000ff".into(),
        amount,
        currency: "USD".into(),
        fee_returned: 0,
        from_pending: false,
        converted: None,
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
        o.orders.insert(order.id.to_string(), order);
    }
    for refund in [
        refund("re_ok", 300, RefundStatus::Succeeded),
        refund("re_pending", 200, RefundStatus::Pending),
    ] {
        o.refunds.insert(refund.id.to_string(), refund);
    }
    for payout in [
        payout("po_transit", 400, PayoutStatus::InTransit),
        payout("po_paid", 100, PayoutStatus::Paid),
    ] {
        o.payouts.insert(payout.id.to_string(), payout);
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

/// An authorization waiting for its capture is in flight whatever the PSP's line says (the
/// capture call or the expiry pass settles it); a canceled one is not expected on a report.
#[test]
fn authorizations_are_in_flight_and_canceled_ones_not_expected() {
    let authorized = TallyObject::of_order(&order("ord_a", 500, 0, ChargeStatus::RequiresCapture));
    for status in ["authorized", "succeeded"] {
        let reported = line(SettlementKind::Charge, "ord_a", 500, 0, status);
        assert_eq!(
            verdict(&reported, authorized.state),
            Verdict::InFlight,
            "{status}"
        );
    }
    assert!(!authorized.must_be_reported());
    let canceled = TallyObject::of_order(&order("ord_c", 500, 0, ChargeStatus::Canceled));
    assert!(!canceled.must_be_reported());
    let captured = TallyObject::of_order(&order("ord_p", 700, 48, ChargeStatus::Succeeded));
    let partial = line(SettlementKind::Charge, "ord_p", 700, 48, "succeeded");
    assert_eq!(verdict(&partial, captured.state), Verdict::Same);
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

mod day_index;
