//! Lists of objects, newest first, a page at a time, read through the creation index
//! (`domain::lists`: `ns::LIST_INDEX`, written by [`listed`] in each object's creating `Txn`).
//!
//! One request does bounded work. It reads at most [`LIST_EXAMINED_MAX`] index entries and
//! loads only the objects it may return: without a status filter, exactly the page's objects
//! and one more (to know whether there are more); with one, each entry that passes the seller
//! and customer filters (which the entries themselves carry). When the bound is reached before
//! the page is full, the page returns what matched, says `has_more`, and names the last object
//! examined as the cursor to continue from (it may not be in `data`).
//!
//! A new kind of object joins with a [`ListKind`] variant, a [`Listed`] impl here and a
//! [`listed`] call in its creating `Txn`.

use std::future::Future;

use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::domain::billing::{Invoice, InvoiceStatus, Subscription, SubscriptionStatus};
use crate::domain::ids::{
    CustomerId, Id, InvoiceId, OrderId, PaymentId, PayoutId, RefundId, SellerId, SubscriptionId,
};
use crate::domain::lists::{list_key, list_position, parse_list_key, ListEntry, ListKind};
use crate::domain::model::{
    ns, ChargeKind, ChargeStatus, Customer, Order, Payment, PaymentRecord, PaymentStatus, Payout,
    PayoutStatus, Refund, RefundStatus, Seller,
};
use crate::edges::store::{Commit, RecordReads, Txn, RECORD_SCAN_PAGE_MAX};
use crate::error::PayError;
use crate::flows::{describe_commit, parse_id};

/// Objects per page when the request names no `limit` (as Stripe's lists).
pub const LIST_LIMIT_DEFAULT: u32 = 10;
/// The largest `limit` a request may ask for.
pub const LIST_LIMIT_MAX: u32 = 100;
/// Index entries one request reads at most; with filters, a page may end short of `limit`
/// (with `has_more`) when this runs out.
pub const LIST_EXAMINED_MAX: u32 = 500;
/// Index entries read per scan when filtering (without filters: the page and one more).
const LIST_FILTERED_SCAN_MAX: u32 = 100;
/// Objects loaded at once.
const OBJECT_READS_CONCURRENCY_MAX: usize = 16;

// A full page and the one object after it always fit in the bound.
const _: () = assert!(LIST_LIMIT_MAX < LIST_EXAMINED_MAX);
const _: () = assert!(LIST_EXAMINED_MAX <= RECORD_SCAN_PAGE_MAX);
const _: () = assert!(LIST_FILTERED_SCAN_MAX <= LIST_EXAMINED_MAX);
const _: () = assert!(LIST_LIMIT_DEFAULT <= LIST_LIMIT_MAX);

/// Adds an object's creation index entry to the `Txn` that creates it.
pub(crate) fn listed(
    txn: Txn,
    kind: ListKind,
    id: &str,
    created_at: i64,
    entry: &ListEntry,
) -> Txn {
    txn.put(ns::LIST_INDEX, &list_key(kind, created_at, id), entry)
}

/// The entry of an object with these parties.
pub(crate) fn parties(seller: Option<&SellerId>, customer: Option<&CustomerId>) -> ListEntry {
    ListEntry {
        seller_id: seller.cloned(),
        customer_id: customer.cloned(),
    }
}

/// A list request as the edge checked it. Created bounds are inclusive Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery<S> {
    /// 1 to [`LIST_LIMIT_MAX`].
    pub limit: u32,
    /// Objects after (older than) the object with this id.
    pub starting_after: Option<String>,
    pub created_gte: Option<i64>,
    pub created_lte: Option<i64>,
    pub status: Option<S>,
    pub seller: Option<SellerId>,
    pub customer: Option<CustomerId>,
}

impl<S> ListQuery<S> {
    pub fn new(limit: u32) -> ListQuery<S> {
        ListQuery {
            limit,
            starting_after: None,
            created_gte: None,
            created_lte: None,
            status: None,
            seller: None,
            customer: None,
        }
    }

    fn filtered(&self) -> bool {
        self.status.is_some() || self.seller.is_some() || self.customer.is_some()
    }

    fn admits(&self, entry: &ListEntry) -> bool {
        let seller = self
            .seller
            .as_ref()
            .is_none_or(|s| entry.seller_id.as_ref() == Some(s));
        let customer = self
            .customer
            .as_ref()
            .is_none_or(|c| entry.customer_id.as_ref() == Some(c));
        seller && customer
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// There may be more objects after the cursor.
    pub has_more: bool,
    /// With `has_more`: the id to pass as `starting_after` for the next page.
    pub next_starting_after: Option<String>,
}

/// No status: the lists of customers and sellers take no status filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum NoStatus {}

/// An object the list endpoints serve.
pub trait Listed: Sized + Send {
    const KIND: ListKind;
    /// The type of its id (`starting_after` is parsed as one).
    type Id: Id + Send + Sync;
    type Status: Copy + PartialEq + std::fmt::Debug + DeserializeOwned + Send + Sync;
    fn status(&self) -> Option<Self::Status>;
    /// The object as the API shows it, `None` when there is none.
    fn load<R: RecordReads + Sync>(
        records: &R,
        id: &str,
    ) -> impl Future<Output = Result<Option<Self>, PayError>> + Send;
}

async fn record<T: DeserializeOwned + Send, R: RecordReads + Sync>(
    records: &R,
    namespace: &str,
    id: &str,
) -> Result<Option<T>, PayError> {
    Ok(records.get::<T>(namespace, id).await?.map(|v| v.value))
}

/// What a cursor needs of any object.
#[derive(Deserialize)]
struct Created {
    created_at: i64,
}

/// The page of `query`: newest first, at most `query.limit` objects.
pub async fn list<T: Listed, R: RecordReads + Sync>(
    records: &R,
    query: &ListQuery<T::Status>,
) -> Result<Page<T>, PayError> {
    assert!((1..=LIST_LIMIT_MAX).contains(&query.limit));
    let kind = T::KIND;
    if query.created_lte.is_some_and(|lte| lte < 0) {
        // Before any object was made.
        return Ok(finish(Vec::new(), query.limit, None));
    }
    let want = query.limit as usize + 1;
    let scan_max = if query.filtered() {
        LIST_FILTERED_SCAN_MAX
    } else {
        query.limit + 1
    };
    let mut after = start::<T, R>(records, query).await?;
    let mut found: Vec<(String, T)> = Vec::new();
    let mut examined = 0;
    let mut last_examined = None;
    while examined < LIST_EXAMINED_MAX {
        let entries = records
            .scan::<ListEntry>(
                ns::LIST_INDEX,
                &kind.prefix(),
                &after,
                scan_max.min(LIST_EXAMINED_MAX - examined),
            )
            .await?;
        let Some((last, _)) = entries.last() else {
            return Ok(finish(found, query.limit, None));
        };
        after.clone_from(last);
        examined += u32::try_from(entries.len()).expect("a page is within the bound");
        let mut candidates = Vec::new();
        let mut range_ended = false;
        for (key, entry) in &entries {
            let (created_at, id) = parse_list_key(kind, key).ok_or_else(|| {
                PayError::Internal(format!(
                    "{} has a record with the key {key:?}",
                    ns::LIST_INDEX
                ))
            })?;
            if query.created_gte.is_some_and(|gte| created_at < gte) {
                range_ended = true;
                break;
            }
            last_examined = Some(id.to_string());
            if query.admits(&entry.value) {
                candidates.push(id.to_string());
            }
        }
        take_matching::<T, R>(records, query, candidates, want, &mut found).await?;
        if found.len() == want || range_ended {
            return Ok(finish(found, query.limit, None));
        }
    }
    Ok(finish(found, query.limit, last_examined))
}

/// Where the scan starts: after the `starting_after` object, and after every object newer
/// than `created_lte`.
async fn start<T: Listed, R: RecordReads + Sync>(
    records: &R,
    query: &ListQuery<T::Status>,
) -> Result<String, PayError> {
    let kind = T::KIND;
    let mut start = match query.created_lte {
        Some(lte) => list_position(kind, lte),
        None => String::new(),
    };
    if let Some(cursor) = &query.starting_after {
        let id: T::Id = parse_id("starting_after", cursor)?;
        let Some(object) = records
            .get::<Created>(kind.namespace(), &id.to_string())
            .await?
        else {
            return Err(PayError::invalid_param(
                "invalid_cursor",
                "starting_after",
                format!(
                    "`starting_after` names no {} (it must be the id of one)",
                    kind.name()
                ),
            ));
        };
        start = start.max(list_key(kind, object.value.created_at, &id.to_string()));
    }
    Ok(start)
}

/// Loads `candidates` in order, only as many at a time as the page still needs, and keeps
/// those whose status matches, until `found` holds `want`.
async fn take_matching<T: Listed, R: RecordReads + Sync>(
    records: &R,
    query: &ListQuery<T::Status>,
    candidates: Vec<String>,
    want: usize,
    found: &mut Vec<(String, T)>,
) -> Result<(), PayError> {
    let mut candidates = candidates.into_iter();
    while found.len() < want {
        let chunk: Vec<String> = candidates.by_ref().take(want - found.len()).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        let loaded: Vec<(String, Option<T>)> = futures::stream::iter(chunk)
            .map(|id| async move {
                let object = T::load(records, &id).await?;
                Ok::<_, PayError>((id, object))
            })
            .buffered(OBJECT_READS_CONCURRENCY_MAX)
            .try_collect()
            .await?;
        for (id, object) in loaded {
            // An entry is written with its object, so `None` does not occur; skip it if it did.
            let Some(object) = object else { continue };
            if query.status.is_none_or(|s| object.status() == Some(s)) {
                found.push((id, object));
            }
        }
    }
    Ok(())
}

/// The page of `found` (at most `limit + 1`): a full page and one more means more follow; a
/// bound reached at `last_examined` means more may follow, from there.
fn finish<T>(mut found: Vec<(String, T)>, limit: u32, last_examined: Option<String>) -> Page<T> {
    let limit = limit as usize;
    let (has_more, next) = if found.len() > limit {
        found.truncate(limit);
        (true, found.last().map(|(id, _)| id.clone()))
    } else {
        (last_examined.is_some(), last_examined)
    };
    Page {
        data: found.into_iter().map(|(_, object)| object).collect(),
        has_more,
        next_starting_after: next,
    }
}

impl Listed for Customer {
    const KIND: ListKind = ListKind::Customer;
    type Id = CustomerId;
    type Status = NoStatus;
    fn status(&self) -> Option<NoStatus> {
        None
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        record(records, ns::CUSTOMER, id).await
    }
}

impl Listed for Seller {
    const KIND: ListKind = ListKind::Seller;
    type Id = SellerId;
    type Status = NoStatus;
    fn status(&self) -> Option<NoStatus> {
        None
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        record(records, ns::SELLER, id).await
    }
}

impl Listed for Payment {
    const KIND: ListKind = ListKind::Payment;
    type Id = PaymentId;
    type Status = PaymentStatus;
    fn status(&self) -> Option<PaymentStatus> {
        Some(self.status)
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        let Some(payment) = record::<PaymentRecord, R>(records, ns::PAYMENT, id).await? else {
            return Ok(None);
        };
        let mut orders = Vec::with_capacity(payment.order_ids.len());
        for order_id in &payment.order_ids {
            let order = record::<Order, R>(records, ns::ORDER, order_id).await?;
            orders.push(order.ok_or_else(|| {
                PayError::Internal(format!("payment {id} names a missing order {order_id}"))
            })?);
        }
        Ok(Some(Payment::of(payment, orders)))
    }
}

impl Listed for Order {
    const KIND: ListKind = ListKind::PaymentOrder;
    type Id = OrderId;
    type Status = ChargeStatus;
    fn status(&self) -> Option<ChargeStatus> {
        Some(self.status)
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        let order = record::<Order, R>(records, ns::ORDER, id).await?;
        Ok(order.filter(|o| o.kind == ChargeKind::Order))
    }
}

impl Listed for Refund {
    const KIND: ListKind = ListKind::Refund;
    type Id = RefundId;
    type Status = RefundStatus;
    fn status(&self) -> Option<RefundStatus> {
        Some(self.status)
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        record(records, ns::REFUND, id).await
    }
}

impl Listed for Payout {
    const KIND: ListKind = ListKind::Payout;
    type Id = PayoutId;
    type Status = PayoutStatus;
    fn status(&self) -> Option<PayoutStatus> {
        Some(self.status)
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        record(records, ns::PAYOUT, id).await
    }
}

impl Listed for Invoice {
    const KIND: ListKind = ListKind::Invoice;
    type Id = InvoiceId;
    type Status = InvoiceStatus;
    fn status(&self) -> Option<InvoiceStatus> {
        Some(self.status)
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        record(records, ns::INVOICE, id).await
    }
}

impl Listed for Subscription {
    const KIND: ListKind = ListKind::Subscription;
    type Id = SubscriptionId;
    type Status = SubscriptionStatus;
    fn status(&self) -> Option<SubscriptionStatus> {
        Some(self.status)
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        record(records, ns::SUBSCRIPTION, id).await
    }
}

impl Listed for crate::domain::disputes::Dispute {
    const KIND: ListKind = ListKind::Dispute;
    type Id = crate::domain::ids::DisputeId;
    type Status = crate::domain::disputes::DisputeStatus;
    fn status(&self) -> Option<Self::Status> {
        Some(self.status)
    }
    async fn load<R: RecordReads + Sync>(records: &R, id: &str) -> Result<Option<Self>, PayError> {
        record(records, ns::DISPUTE, id).await
    }
}

/// Objects read per backfill page (and index entries written per backfill `Txn`: one
/// operation each, the node allows 1024).
const BACKFILL_PAGE_MAX: u32 = 500;
const _: () = assert!(BACKFILL_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);

/// The key of the backfill marker.
const BACKFILL_KEY: &str = "done";

/// What the backfill reads of a stored object: its time and whatever names its parties.
#[derive(Deserialize)]
struct Stored {
    created_at: i64,
    #[serde(default)]
    seller_id: Option<SellerId>,
    #[serde(default)]
    customer_id: Option<CustomerId>,
    /// A refund's customer is its order's.
    #[serde(default)]
    order_id: Option<OrderId>,
    /// An invoice's customer is its subscription's.
    #[serde(default)]
    subscription_id: Option<SubscriptionId>,
}

/// Which kind of charge a record of `ns::ORDER` is.
#[derive(Deserialize)]
struct StoredCharge {
    kind: ChargeKind,
}

/// The index entries of one page of stored objects of `kind` after `after` (which it
/// advances); an empty page at the end.
async fn backfill_page<R: RecordReads + Sync>(
    records: &R,
    kind: ListKind,
    after: &mut String,
) -> Result<Option<Vec<(String, ListEntry)>>, PayError> {
    let page = records
        .scan::<serde_json::Value>(kind.namespace(), "", after, BACKFILL_PAGE_MAX)
        .await?;
    let Some((last, _)) = page.last() else {
        return Ok(None);
    };
    after.clone_from(last);
    let mut entries = Vec::with_capacity(page.len());
    for (id, stored) in page {
        let corrupt = |e: serde_json::Error| {
            PayError::Internal(format!(
                "record {}/{id} is not valid: {e}",
                kind.namespace()
            ))
        };
        // Orders and deposits share a namespace; deposits are not listed.
        if kind == ListKind::PaymentOrder {
            let charge: StoredCharge =
                serde_json::from_value(stored.value.clone()).map_err(corrupt)?;
            if charge.kind != ChargeKind::Order {
                continue;
            }
        }
        let stored: Stored = serde_json::from_value(stored.value).map_err(corrupt)?;
        let customer = match (
            &stored.customer_id,
            &stored.order_id,
            &stored.subscription_id,
        ) {
            (Some(customer), _, _) => Some(customer.clone()),
            (None, Some(order), _) => owner(records, ns::ORDER, order).await?,
            (None, None, Some(subscription)) => {
                owner(records, ns::SUBSCRIPTION, subscription).await?
            }
            (None, None, None) => None,
        };
        let entry = parties(stored.seller_id.as_ref(), customer.as_ref());
        entries.push((list_key(kind, stored.created_at, &id), entry));
    }
    Ok(Some(entries))
}

/// The customer of the order or subscription `id`.
async fn owner<R: RecordReads + Sync>(
    records: &R,
    namespace: &str,
    id: &str,
) -> Result<Option<CustomerId>, PayError> {
    let parent = records.get::<Stored>(namespace, id).await?;
    Ok(parent.and_then(|p| p.value.customer_id))
}

impl crate::flows::Pay {
    /// The page of `query` of objects of type `T`.
    pub async fn list<T: Listed>(&self, query: &ListQuery<T::Status>) -> Result<Page<T>, PayError> {
        list::<T, crate::edges::store::Store>(&self.store, query).await
    }

    /// Files every object created before the list index existed, once (`tally-pay serve` runs
    /// it in the background at start). Idempotent: an entry's key and value follow from its
    /// object, so runs that race or stop half-way are harmless; the marker is written last.
    pub async fn ensure_list_index(&self) -> Result<(), PayError> {
        let marker = self
            .store
            .get::<serde::de::IgnoredAny>(ns::LIST_INDEX_BACKFILL, BACKFILL_KEY)
            .await?;
        if marker.is_some() {
            return Ok(());
        }
        for kind in ListKind::ALL {
            let mut after = String::new();
            while let Some(entries) = backfill_page(&self.store, kind, &mut after).await? {
                let txn = entries.iter().fold(Txn::new(), |txn, (key, entry)| {
                    txn.put(ns::LIST_INDEX, key, entry)
                });
                self.commit_backfill(txn, "indexing earlier objects")
                    .await?;
            }
        }
        let txn = Txn::new()
            .require_version(ns::LIST_INDEX_BACKFILL, BACKFILL_KEY, 0)
            .put(ns::LIST_INDEX_BACKFILL, BACKFILL_KEY, &self.clock.now_ms());
        match self.store.commit(txn).await? {
            Commit::Committed | Commit::ConditionFailed { .. } => Ok(()),
            other => Err(PayError::Internal(format!(
                "marking the list index complete: {}",
                describe_commit(&other)
            ))),
        }
    }

    async fn commit_backfill(&self, txn: Txn, what: &str) -> Result<(), PayError> {
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(()),
            other => Err(PayError::Internal(format!(
                "{what}: {}",
                describe_commit(&other)
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
