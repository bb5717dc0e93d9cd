//! Escrow release: a captured order held in escrow moves its seller share from the seller's
//! pending balance to the wallet, when the platform confirms delivery (`release_order`) or
//! when its hold period is over (`release_due`, a worker pass), whichever comes first.
//!
//! A release is one Txn conditioned on the order's version: the order marked `released`, its
//! escrow index entry deleted, the audit entry and the `release` transfer (id derived from the
//! order id), so two processes, or the API and the worker, release an order once.

use super::{describe_commit, parse_id, Pay, UPDATE_ATTEMPTS_MAX};
use crate::domain::escrow;
use crate::domain::ids::OrderId;
use crate::domain::model::{ns, ChargeStatus, Escrow, Order, Seller};
use crate::domain::money::Currency;
use crate::domain::postings;
use crate::edges::store::{Commit, RECORD_SCAN_PAGE_MAX};
use crate::edges::store::{Txn, Versioned};
use crate::error::PayError;
use crate::flows::{audit, conversion};

/// Escrow index entries one worker step reads before releasing them.
pub const ESCROW_PAGE_MAX: u32 = 256;
const _: () = assert!(ESCROW_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);

/// Releases one worker pass makes at most; the rest wait for the next pass.
pub const RELEASES_PER_PASS_MAX: usize = 4096;
const _: () = assert!(RELEASES_PER_PASS_MAX >= ESCROW_PAGE_MAX as usize);

/// Why an order is released; named in its audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// `POST /v1/payment_orders/{id}/release`.
    Delivered,
    /// The hold period is over (the worker).
    HoldExpired,
}

impl Trigger {
    fn action(self) -> &'static str {
        match self {
            Trigger::Delivered => "payment_order.release",
            Trigger::HoldExpired => "payment_order.release_hold_expired",
        }
    }
}

impl Pay {
    /// A seller's hold period: its own, else the service's `escrow.hold_period_s`.
    pub(crate) fn hold_period_s(&self, seller: &Seller) -> u64 {
        seller
            .hold_period_s
            .unwrap_or(self.config.escrow.hold_period_s)
    }

    /// Releases a captured order's seller share to the wallet (the platform confirms delivery).
    /// An order not held (released already, or never held in escrow) is returned unchanged.
    pub async fn release_order(&self, id: &str) -> Result<Order, PayError> {
        let id: OrderId = parse_id("order_id", id)?;
        let order = self.release(&id, Trigger::Delivered).await?;
        if order.status != ChargeStatus::Succeeded {
            return Err(PayError::unprocessable(
                "order_not_captured",
                format!(
                    "order {id} is {:?}; only a succeeded (captured) payment order can be \
                     released",
                    order.status
                ),
            ));
        }
        Ok(order)
    }

    /// Releases the order `id` if it is held: read it, build the Txn, commit it conditioned on
    /// the version read; again when the order changed in between. Returns the order as it
    /// stands.
    async fn release(&self, id: &str, trigger: Trigger) -> Result<Order, PayError> {
        for _ in 0..UPDATE_ATTEMPTS_MAX {
            let current = self.load::<Order>(ns::ORDER, id, "payment order").await?;
            let Some((next, txn)) = self.release_txn(&current, trigger)? else {
                return Ok(current.value);
            };
            match self.store.commit(txn).await? {
                Commit::Committed => {
                    self.metrics.inc("tally_pay_orders_released_total");
                    return Ok(next);
                }
                Commit::ConditionFailed { .. } => continue,
                other => {
                    return Err(PayError::Internal(format!(
                        "releasing order {id}: {}",
                        describe_commit(&other)
                    )))
                }
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("order {id} kept changing; try again"),
        })
    }

    /// The released order and its Txn, or `None` when there is nothing to release (not
    /// captured, or not held).
    fn release_txn(
        &self,
        current: &Versioned<Order>,
        trigger: Trigger,
    ) -> Result<Option<(Order, Txn)>, PayError> {
        let order = &current.value;
        let Some((next, share)) = escrow::released(order, self.clock.now_ms()) else {
            return Ok(None);
        };
        let currency = Currency::by_code(&order.currency).ok_or_else(|| {
            PayError::Internal(format!(
                "order {} has currency {}",
                order.id, order.currency
            ))
        })?;
        let seller = order
            .seller_id
            .as_ref()
            .ok_or_else(|| PayError::Internal(format!("order {} has no seller", order.id)))?;
        let mut txn = audit::stamp(Txn::new(), trigger.action(), &order.id)
            .require_version(ns::ORDER, &order.id, current.version)
            .put(ns::ORDER, &order.id, &next)
            .event(ns::ORDER, Some(order), &next);
        if let Some(at) = order.release_at {
            txn = txn.delete(ns::ESCROW, &escrow::release_key(at, &order.id));
        }
        let (currency, share) = conversion::released_share(order, currency, share);
        txn = txn.postings(postings::order_released(
            &order.id,
            currency,
            seller.number(),
            share,
        ));
        Ok(Some((next, txn)))
    }

    /// One worker pass: releases every order whose hold period is over, reading the escrow
    /// index (sorted by release time) [`ESCROW_PAGE_MAX`] entries at a time and stopping at the
    /// first not yet due, or after [`RELEASES_PER_PASS_MAX`]. Returns how many it released.
    pub async fn release_due(&self) -> Result<usize, PayError> {
        let now = self.clock.now_ms();
        let mut released = 0;
        let mut seen = 0;
        let mut cursor = String::new();
        loop {
            let page = self
                .store
                .next_page::<String>(ns::ESCROW, "", &mut cursor, ESCROW_PAGE_MAX)
                .await?;
            if page.is_empty() {
                return Ok(released);
            }
            for (key, entry) in page {
                match escrow::release_time(&key) {
                    Some(at) if at > now => return Ok(released),
                    Some(_) => {}
                    None => {
                        tracing::error!(key, "malformed escrow index key; left alone");
                        continue;
                    }
                }
                seen += 1;
                match self.release(&entry.value, Trigger::HoldExpired).await {
                    Ok(order) if order.escrow == Escrow::Released => released += 1,
                    Ok(order) => {
                        // Not held any more yet still indexed: a leftover; drop the entry.
                        tracing::warn!(order = %order.id, escrow = ?order.escrow,
                            "escrow index entry of an order not held; removed");
                        self.store
                            .commit(Txn::new().delete(ns::ESCROW, &key))
                            .await?;
                    }
                    Err(error) => {
                        tracing::warn!(order = %entry.value, %error, "releasing an order failed");
                    }
                }
                if seen >= RELEASES_PER_PASS_MAX {
                    return Ok(released);
                }
            }
        }
    }
}
