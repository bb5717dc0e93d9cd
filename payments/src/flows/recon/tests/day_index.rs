//! Reconciling one day reads that day's index and objects, and the objects its lines name;
//! never more as other days accumulate.

use chrono::Days;
use serde::Serialize;

use super::super::index::{day_objects, indexed};
use super::*;
use crate::edges::memory_store::MemoryRecords;
use crate::edges::store::Txn;

type CountingStore = MemoryRecords;

impl MemoryRecords {
    /// Creates an object the way the flows do: its record and its index entry in one Txn.
    fn create<T: Serialize>(&self, kind: IndexKind, id: &str, created_at: i64, value: &T) {
        let txn = Txn::new().put(kind.namespace(), id, value);
        self.commit(indexed(txn, kind, id, created_at));
    }
}

const PER_KIND_PER_DAY: u64 = 4;

fn noon(day: NaiveDate) -> i64 {
    day.and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

/// `days` days of orders, refunds and payouts from `day()` on.
fn store_of(days: u64) -> CountingStore {
    let store = CountingStore::default();
    for d in 0..days {
        let on = day().checked_add_days(Days::new(d)).unwrap();
        // Ids number the day from 1: an id's number is never 0 (`ord_0000000000000000`
        // would not read back).
        let n = d + 1;
        for i in 0..PER_KIND_PER_DAY {
            let at = noon(on) + i64::try_from(i).unwrap();
            let mut o = order(
                &format!("ord_{n:08x}{i:08x}"),
                1000,
                30,
                ChargeStatus::Succeeded,
            );
            o.created_at = at;
            store.create(IndexKind::Order, &o.id, at, &o);
            let mut r = refund(&format!("re_{n:08x}{i:08x}"), 300, RefundStatus::Succeeded);
            r.created_at = at;
            store.create(IndexKind::Refund, &r.id, at, &r);
            let mut p = payout(&format!("po_{n:08x}{i:08x}"), 100, PayoutStatus::Paid);
            p.created_at = at;
            store.create(IndexKind::Payout, &p.id, at, &p);
        }
    }
    store
}

/// Reconciles the fourth day, whose report also settles a charge of the second day.
async fn reconcile_fourth_day(store: &CountingStore) -> Objects {
    let target = day().checked_add_days(Days::new(3)).unwrap();
    let lines = vec![
        line(
            SettlementKind::Charge,
            "ord_0000000400000000",
            1000,
            30,
            "succeeded",
        ),
        line(
            SettlementKind::Charge,
            "ord_0000000200000002",
            1000,
            30,
            "succeeded",
        ),
        line(SettlementKind::Refund, "re_unknown", 5, 0, "succeeded"),
    ];
    day_objects(store, target, &lines).await.unwrap()
}

#[tokio::test]
async fn reads_do_not_grow_with_the_days_stored() {
    let few = store_of(5);
    let many = store_of(90);
    let objects = reconcile_fourth_day(&few).await;
    assert_eq!(reconcile_fourth_day(&many).await.orders, objects.orders);
    assert_eq!(few.counts(), many.counts());

    // The day's own objects, found by the index.
    let target = day().checked_add_days(Days::new(3)).unwrap();
    let on_day = objects.created_on(target);
    assert_eq!(on_day.len() as u64, 3 * PER_KIND_PER_DAY);
    // The earlier day's charge a line settles, found by its id; the unknown refund stays
    // unknown.
    assert!(objects.orders.contains_key("ord_0000000200000002"));
    assert!(!objects.refunds.contains_key("re_unknown"));
    assert_eq!(
        objects.orders.len() + objects.refunds.len() + objects.payouts.len(),
        on_day.len() + 1
    );

    // Index entries of the day (one page and the empty page that ends the scan), one get
    // per object wanted: the day's, the earlier charge, the unknown refund.
    let day_objects = 3 * PER_KIND_PER_DAY;
    let counts = many.counts();
    let (calls, returned) = (counts.calls(), counts.returned());
    assert_eq!(calls, 2 + day_objects + 2);
    assert_eq!(returned, day_objects + day_objects + 1);
}
