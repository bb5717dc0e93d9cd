use std::collections::BTreeMap;

use super::*;
use crate::domain::model::{Payout, PayoutTrigger};
use crate::edges::memory_store::{MemoryRecords, ReadCounts};

type Memory = MemoryRecords;

impl MemoryRecords {
    fn payout(&self, number: u64, seller: u64, created_at: i64, status: PayoutStatus) -> String {
        let id = PayoutId::from_number(number);
        let seller_id = SellerId::from_number(seller);
        let payout = Payout {
            id: id.clone(),
            seller_id: seller_id.clone(),
            bank_account_id: crate::domain::ids::BankAccountId::from_number(1),
            amount: 100,
            currency: "USD".into(),
            trigger: PayoutTrigger::OnDemand,
            status,
            failure: None,
            psp_id: None,
            attempts: 0,
            next_attempt_at: 0,
            created_at,
            updated_at: created_at,
        };
        let entry = parties(Some(&seller_id), None);
        let txn = Txn::new().put(ns::PAYOUT, &id, &payout);
        self.commit(listed(txn, ListKind::Payout, &id, created_at, &entry));
        id.to_string()
    }
}

fn run<T: Listed, R: RecordReads + Sync>(
    records: &R,
    query: &ListQuery<T::Status>,
) -> Result<Page<T>, PayError> {
    futures::executor::block_on(list::<T, R>(records, query))
}

fn ids(page: &Page<Payout>) -> Vec<String> {
    page.data.iter().map(|p| p.id.to_string()).collect()
}

/// Payouts 1..=n, payout k created at 1000 + k / 2 (pairs share a millisecond).
fn payouts(n: u64) -> (Memory, Vec<String>) {
    let memory = Memory::default();
    let mut made: Vec<(i64, String)> = (1..=n)
        .map(|k| {
            let created_at = 1000 + i64::try_from(k / 2).unwrap();
            let id = memory.payout(k, 1 + k % 2, created_at, PayoutStatus::Pending);
            (created_at, id)
        })
        .collect();
    // Newest first; within a millisecond, by id.
    made.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    (memory, made.into_iter().map(|(_, id)| id).collect())
}

#[test]
fn pages_of_two_see_every_object_once_newest_first() {
    let (memory, expected) = payouts(7);
    let mut query = ListQuery::new(2);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = run::<Payout, _>(&memory, &query).unwrap();
        pages += 1;
        assert!(page.data.len() <= 2);
        seen.extend(ids(&page));
        if !page.has_more {
            assert_eq!(page.next_starting_after, None);
            break;
        }
        assert_eq!(page.next_starting_after, seen.last().cloned());
        query.starting_after = page.next_starting_after;
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 4);
}

#[test]
fn a_full_page_reads_its_objects_and_one_more() {
    let (memory, _) = payouts(20);
    memory.take_counts();
    let page = run::<Payout, _>(&memory, &ListQuery::new(3)).unwrap();
    assert_eq!(page.data.len(), 3);
    assert!(page.has_more);
    let counts = memory.take_counts();
    assert_eq!((counts.gets, counts.scanned), (4, 4));
}

#[test]
fn the_last_page_says_there_is_no_more() {
    let (memory, expected) = payouts(3);
    let page = run::<Payout, _>(&memory, &ListQuery::new(3)).unwrap();
    assert_eq!(ids(&page), expected);
    assert!(!page.has_more);
    assert_eq!(page.next_starting_after, None);
}

#[test]
fn created_bounds_are_inclusive() {
    let (memory, _) = payouts(9);
    // Created at 1000 (k=1), 1001 (2, 3), 1002 (4, 5), 1003 (6, 7), 1004 (8, 9).
    let mut query = ListQuery::new(10);
    query.created_gte = Some(1001);
    query.created_lte = Some(1002);
    let page = run::<Payout, _>(&memory, &query).unwrap();
    let created: Vec<i64> = page.data.iter().map(|p| p.created_at).collect();
    assert_eq!(created, [1002, 1002, 1001, 1001]);
    assert!(!page.has_more);
    query.created_lte = Some(-1);
    assert!(run::<Payout, _>(&memory, &query).unwrap().data.is_empty());
}

#[test]
fn the_seller_filter_reads_only_the_objects_it_returns() {
    let (memory, expected) = payouts(40);
    memory.take_counts();
    let mut query = ListQuery::new(2);
    query.seller = Some(SellerId::from_number(2));
    let page = run::<Payout, _>(&memory, &query).unwrap();
    assert!(page.data.iter().all(|p| p.seller_id.number() == 2));
    let wanted: Vec<String> = expected
        .iter()
        .filter(|id| id.parse::<PayoutId>().unwrap().number() % 2 == 1)
        .take(2)
        .cloned()
        .collect();
    assert_eq!(ids(&page), wanted);
    assert!(page.has_more);
    let gets = memory.take_counts().gets;
    assert_eq!(
        gets, 3,
        "the two returned and the one that shows there are more"
    );
}

#[test]
fn a_rare_status_ends_a_page_at_the_bound_with_a_cursor_to_go_on() {
    let memory = Memory::default();
    let total = u64::from(LIST_EXAMINED_MAX) + 50;
    // The oldest payout is the only paid one.
    let paid = memory.payout(1, 1, 1, PayoutStatus::Paid);
    for k in 2..=total {
        memory.payout(k, 1, i64::try_from(k).unwrap(), PayoutStatus::Pending);
    }
    memory.take_counts();
    let mut query = ListQuery::new(5);
    query.status = Some(PayoutStatus::Paid);
    let first = run::<Payout, _>(&memory, &query).unwrap();
    assert!(first.data.is_empty());
    assert!(first.has_more);
    let ReadCounts { gets, scanned, .. } = memory.take_counts();
    assert_eq!(scanned, u64::from(LIST_EXAMINED_MAX));
    assert_eq!(gets, u64::from(LIST_EXAMINED_MAX));
    // The cursor is the last payout examined: the 500th newest.
    let last_examined = PayoutId::from_number(total - u64::from(LIST_EXAMINED_MAX) + 1);
    assert_eq!(first.next_starting_after, Some(last_examined.to_string()));
    query.starting_after = first.next_starting_after;
    let second = run::<Payout, _>(&memory, &query).unwrap();
    assert_eq!(ids(&second), [paid]);
    assert!(!second.has_more);
}

#[test]
fn the_backfill_files_earlier_objects_with_their_parties() {
    use serde_json::json;
    let memory = Memory::default();
    let put = |namespace: &str, id: &str, value: serde_json::Value| {
        memory.commit(Txn::new().put(namespace, id, &value));
    };
    let customer = CustomerId::from_number(7);
    let seller = SellerId::from_number(8);
    let order = OrderId::from_number(1).to_string();
    let refund = RefundId::from_number(3).to_string();
    let subscription = SubscriptionId::from_number(4).to_string();
    let invoice = InvoiceId::from_number(5).to_string();
    let order_record =
        json!({"created_at": 10, "kind": "order", "seller_id": seller, "customer_id": customer});
    put(ns::ORDER, &order, order_record);
    let deposit = json!({"created_at": 11, "kind": "deposit", "customer_id": customer});
    put(ns::ORDER, "dep_0000000000000002", deposit);
    let refund_record = json!({"created_at": 12, "seller_id": seller, "order_id": order});
    put(ns::REFUND, &refund, refund_record);
    let subscription_record = json!({"created_at": 13, "customer_id": customer});
    put(ns::SUBSCRIPTION, &subscription, subscription_record);
    let invoice_record =
        json!({"created_at": 14, "kind": "period", "subscription_id": subscription});
    put(ns::INVOICE, &invoice, invoice_record);
    put(
        ns::SELLER,
        &seller,
        json!({"created_at": 15, "name": "Sol"}),
    );

    let mut filed = BTreeMap::new();
    for kind in ListKind::ALL {
        let mut after = String::new();
        let mut page = || futures::executor::block_on(backfill_page(&memory, kind, &mut after));
        while let Some(entries) = page().unwrap() {
            filed.extend(entries);
        }
    }
    let both = parties(Some(&seller), Some(&customer));
    let only_customer = parties(None, Some(&customer));
    let expected = BTreeMap::from([
        (list_key(ListKind::PaymentOrder, 10, &order), both.clone()),
        (list_key(ListKind::Refund, 12, &refund), both),
        (
            list_key(ListKind::Subscription, 13, &subscription),
            only_customer.clone(),
        ),
        (list_key(ListKind::Invoice, 14, &invoice), only_customer),
        (
            list_key(ListKind::Seller, 15, &seller),
            ListEntry::default(),
        ),
    ]);
    assert_eq!(filed, expected);
}

#[test]
fn a_cursor_must_name_an_object_of_the_list() {
    let (memory, _) = payouts(3);
    let mut query = ListQuery::new(2);
    query.starting_after = Some("po_nothex".into());
    let error = run::<Payout, _>(&memory, &query).unwrap_err();
    assert_eq!(error.body().error.code, "invalid_id");
    assert_eq!(error.param(), Some("starting_after"));
    query.starting_after = Some(PayoutId::from_number(99).to_string());
    let error = run::<Payout, _>(&memory, &query).unwrap_err();
    assert_eq!(error.body().error.code, "invalid_cursor");
    assert_eq!(error.param(), Some("starting_after"));
    query.starting_after = Some(SellerId::from_number(1).to_string());
    let error = run::<Payout, _>(&memory, &query).unwrap_err();
    assert_eq!(error.body().error.code, "invalid_id");
}
