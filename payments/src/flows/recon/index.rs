//! The day index: which objects reconciling a day must read.
//!
//! Reconciliation of day `D` needs two sets of objects: those the report's lines name (found by
//! id, whatever day they were created), and those created on `D` (UTC), which the report must
//! list (`Objects::created_on`: a succeeded charge or refund, a paid or in-transit payout the
//! report lacks is `missing_at_psp`). The first set is read by id, one `get` per line. The
//! second is read from `pay.recon_index`: every order, deposit, refund and payout is filed
//! under `<YYYY-MM-DD>/<kind>/<id>` of its `created_at` in the same `Txn` that creates it, so
//! the day's objects are one prefix scan away. The index uses the creation day because that is
//! the day recon holds an object to; a line settling on `D` an object created earlier is found
//! through its reference, so no window of earlier days is read.
//!
//! The reads therefore grow with the day's lines and objects, never with the number of days
//! stored. (The ledger audit of the same run, `audit.rs`, still reads every object: the PSP
//! clearing account's expected balance is a sum over all of them.)
//!
//! Objects created before the index existed are indexed once, by the first run that finds no
//! `pay.recon_index_backfill` marker (`Pay::ensure_recon_index`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::matching::Objects;
use crate::domain::disputes::Dispute;
use crate::domain::ids::{DisputeId, Id};
use crate::domain::model::{ns, Order, Payout, Refund};
use crate::domain::recon::{index_key, parse_index_key, IndexKind};
use crate::edges::psp::{SettlementKind, SettlementLine};
use crate::edges::store::{Commit, RecordReads, Txn, RECORD_SCAN_PAGE_MAX};
use crate::error::PayError;
use crate::flows::{describe_commit, Pay};

/// Index entries (or objects, when backfilling) read per scan page.
pub const RECON_INDEX_PAGE_MAX: u32 = 500;
const _: () = assert!(RECON_INDEX_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);

/// Objects read at once.
const OBJECT_READS_CONCURRENCY_MAX: usize = 16;

/// Index entries written per backfill `Txn` (one operation each; the node allows 1024).
const BACKFILL_PUTS_PER_TXN_MAX: usize = 500;
const _: () = assert!(BACKFILL_PUTS_PER_TXN_MAX as u32 <= RECON_INDEX_PAGE_MAX);

/// The key of the backfill marker.
const BACKFILL_KEY: &str = "done";

/// Adds the index entry of an object to the `Txn` that creates it.
pub(crate) fn indexed(txn: Txn, kind: IndexKind, id: &str, created_at: i64) -> Txn {
    txn.put(ns::RECON_INDEX, &index_key(created_at, kind, id), &id)
}

fn kind_of(kind: SettlementKind) -> Option<IndexKind> {
    match kind {
        SettlementKind::Charge => Some(IndexKind::Order),
        SettlementKind::Refund => Some(IndexKind::Refund),
        SettlementKind::Payout => Some(IndexKind::Payout),
        // Not in the day index: found by the id the line names (`disputes`).
        SettlementKind::Dispute => None,
    }
}

/// One object read back (an order, the largest record, boxed).
enum Loaded {
    Order(Box<Order>),
    Refund(Refund),
    Payout(Payout),
}

/// The objects reconciling `day` against `lines` needs: every object the lines name, and every
/// object the index files under `day`.
pub(super) async fn day_objects<R: RecordReads + Sync>(
    records: &R,
    day: NaiveDate,
    lines: &[SettlementLine],
) -> Result<Objects, PayError> {
    let mut wanted = indexed_on(records, day).await?;
    for line in lines.iter().filter(|l| !l.reference.is_empty()) {
        if let Some(kind) = kind_of(line.kind) {
            wanted.insert((kind, line.reference.clone()));
        }
    }
    let loaded: Vec<Option<(String, Loaded)>> = futures::stream::iter(wanted)
        .map(|(kind, id)| load_object(records, kind, id))
        .buffer_unordered(OBJECT_READS_CONCURRENCY_MAX)
        .try_collect()
        .await?;
    let mut objects = Objects {
        orders: BTreeMap::new(),
        refunds: BTreeMap::new(),
        payouts: BTreeMap::new(),
        disputes: disputes(records, lines).await?,
    };
    for (id, object) in loaded.into_iter().flatten() {
        match object {
            Loaded::Order(o) => objects.orders.insert(id, *o).map(drop),
            Loaded::Refund(r) => objects.refunds.insert(id, r).map(drop),
            Loaded::Payout(p) => objects.payouts.insert(id, p).map(drop),
        };
    }
    Ok(objects)
}

/// The objects the index lists under `day`, by kind and id.
/// The disputes the dispute lines name, by the PSP's dispute id (their record's id derives
/// from it).
async fn disputes<R: RecordReads + Sync>(
    records: &R,
    lines: &[SettlementLine],
) -> Result<BTreeMap<String, Dispute>, PayError> {
    let mut found = BTreeMap::new();
    for line in lines.iter().filter(|l| l.kind == SettlementKind::Dispute) {
        let id = DisputeId::derived(&line.reference);
        if let Some(dispute) = records.get::<Dispute>(ns::DISPUTE, &id).await? {
            found.insert(line.reference.clone(), dispute.value);
        }
    }
    Ok(found)
}

async fn indexed_on<R: RecordReads + Sync>(
    records: &R,
    day: NaiveDate,
) -> Result<BTreeSet<(IndexKind, String)>, PayError> {
    let mut wanted = BTreeSet::new();
    let prefix = format!("{day}/");
    let mut after = String::new();
    loop {
        let page = records
            .scan::<String>(ns::RECON_INDEX, &prefix, &after, RECON_INDEX_PAGE_MAX)
            .await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = last.clone();
        for (key, _) in &page {
            let (kind, id) = parse_index_key(key).ok_or_else(|| {
                PayError::Internal(format!(
                    "{} has a record with the key {key:?}",
                    ns::RECON_INDEX
                ))
            })?;
            wanted.insert((kind, id.to_string()));
        }
    }
    Ok(wanted)
}

/// One object of `kind` by id, with its id; `None` when there is none.
async fn load_object<R: RecordReads + Sync>(
    records: &R,
    kind: IndexKind,
    id: String,
) -> Result<Option<(String, Loaded)>, PayError> {
    let namespace = kind.namespace();
    let object = match kind {
        IndexKind::Order => records
            .get::<Order>(namespace, &id)
            .await?
            .map(|v| Loaded::Order(Box::new(v.value))),
        IndexKind::Refund => records
            .get::<Refund>(namespace, &id)
            .await?
            .map(|v| Loaded::Refund(v.value)),
        IndexKind::Payout => records
            .get::<Payout>(namespace, &id)
            .await?
            .map(|v| Loaded::Payout(v.value)),
    };
    Ok(object.map(|o| (id, o)))
}

/// What the backfill needs of any object.
#[derive(Deserialize)]
struct Created {
    created_at: i64,
}

impl Pay {
    /// Files every object created before the day index existed, once: a store written by a
    /// tally-pay without the index has objects no index entry names, and reconciliation would
    /// not miss them at the PSP. Idempotent (an entry's value is fixed by its key), so runs that
    /// race or stop half-way are harmless; the marker is written last.
    pub(super) async fn ensure_recon_index(&self) -> Result<(), PayError> {
        let marker = self
            .store
            .get::<serde::de::IgnoredAny>(ns::RECON_INDEX_BACKFILL, BACKFILL_KEY)
            .await?;
        if marker.is_some() {
            return Ok(());
        }
        for kind in IndexKind::ALL {
            let mut after = String::new();
            loop {
                let page = self
                    .store
                    .scan::<Created>(kind.namespace(), "", &after, RECON_INDEX_PAGE_MAX)
                    .await?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                after = last.clone();
                for chunk in page.chunks(BACKFILL_PUTS_PER_TXN_MAX) {
                    let txn = chunk.iter().fold(Txn::new(), |txn, (id, object)| {
                        indexed(txn, kind, id, object.value.created_at)
                    });
                    let commit = self.store.commit(txn).await?;
                    if commit != Commit::Committed {
                        return Err(PayError::Internal(format!(
                            "indexing earlier objects: {}",
                            describe_commit(&commit)
                        )));
                    }
                }
            }
        }
        let txn = Txn::new()
            .require_version(ns::RECON_INDEX_BACKFILL, BACKFILL_KEY, 0)
            .put(ns::RECON_INDEX_BACKFILL, BACKFILL_KEY, &self.clock.now_ms());
        match self.store.commit(txn).await? {
            Commit::Committed | Commit::ConditionFailed { .. } => Ok(()),
            other => Err(PayError::Internal(format!(
                "marking the day index complete: {}",
                describe_commit(&other)
            ))),
        }
    }
}
