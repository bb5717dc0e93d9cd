//! Reconciling one day reads that day's index and objects, and the objects its lines name;
//! never more as other days accumulate.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::Days;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::super::index::{day_objects, indexed};
use super::*;
use crate::edges::store::{RecordReads, StoreError, Txn, Versioned};

/// Records in memory, counting every read call and every record a read returns.
#[derive(Default)]
struct CountingStore {
    records: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    calls: AtomicU64,
    returned: AtomicU64,
}

impl CountingStore {
    /// Applies the puts of `txn`, as a commit would.
    fn commit(&self, txn: Txn) {
        let mut records = self.records.lock().unwrap();
        for (namespace, key, value) in txn.puts() {
            records.insert((namespace.to_string(), key), value.to_vec());
        }
    }

    /// Creates an object the way the flows do: its record and its index entry in one Txn.
    fn create<T: Serialize>(&self, kind: IndexKind, id: &str, created_at: i64, value: &T) {
        let txn = Txn::new().put(kind.namespace(), id, value);
        self.commit(indexed(txn, kind, id, created_at));
    }

    fn reads(&self) -> (u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.returned.load(Ordering::Relaxed),
        )
    }

    fn decode<T: DeserializeOwned>(value: &[u8]) -> Versioned<T> {
        Versioned {
            value: serde_json::from_slice(value).unwrap(),
            version: 1,
            timestamp: 1,
        }
    }
}

impl RecordReads for CountingStore {
    async fn get<T: DeserializeOwned + Send>(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let records = self.records.lock().unwrap();
        let found = records.get(&(namespace.to_string(), key.to_string()));
        self.returned
            .fetch_add(u64::from(found.is_some()), Ordering::Relaxed);
        Ok(found.map(|v| Self::decode(v)))
    }

    async fn scan<T: DeserializeOwned + Send>(
        &self,
        namespace: &str,
        prefix: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Versioned<T>)>, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let records = self.records.lock().unwrap();
        let page: Vec<(String, Versioned<T>)> = records
            .iter()
            .filter(|((n, k), _)| {
                n == namespace && k.starts_with(prefix) && k.as_str() > start_after
            })
            .take(limit as usize)
            .map(|((_, k), v)| (k.clone(), Self::decode(v)))
            .collect();
        self.returned
            .fetch_add(page.len() as u64, Ordering::Relaxed);
        Ok(page)
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
    assert_eq!(few.reads(), many.reads());

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
    let (calls, returned) = many.reads();
    assert_eq!(calls, 2 + day_objects + 2);
    assert_eq!(returned, day_objects + day_objects + 1);
}
