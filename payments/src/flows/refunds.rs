//! Refunds: full or partial, never more than captured minus already refunded (pending refunds
//! count), reversing the seller's posting and, per the configured policy, the platform fee.
//!
//! Creation (one Txn, conditioned on the order's version): the order's pending refund grows, the
//! fee share goes back to the seller (posted), and the refund amount is held on the seller's
//! wallet (`seller_wallet -> refunds_in_transit`, pending). PSP success posts the hold and moves
//! the money on to `psp_clearing`; failure voids the hold and takes the fee share back.
//!
//! Escrow: a refund of an order still held draws on the seller's pending balance instead of the
//! wallet, as long as the order's share of pending covers it (`Order::pending_share`); one that
//! would not (a fee kept by the `none` policy) releases the order in the same Txn and draws on
//! the wallet. A refund drawn on pending that fails after its order was released moves what it
//! put back in pending on to the wallet (`postings::refund_failed`).

use std::sync::Arc;

use serde::Deserialize;
use utoipa::ToSchema;

use super::{check_text, describe_commit, failure, Pay, UPDATE_ATTEMPTS_MAX};
use crate::config::RefundFeePolicy;
use crate::domain::escrow;
use crate::domain::ids::{Id, OrderId, RefundId, SellerId, Unchecked};
use crate::domain::lists::ListKind;
use crate::domain::model::{
    ns, ChargeKind, ChargeStatus, Escrow, Failure, InflightKind, Order, Refund, RefundStatus,
};
use crate::domain::money::{parse_amount, pro_rata, AmountInput, Currency};
use crate::domain::postings::fx::{self as fx_postings, Conversion};
use crate::domain::postings::{self, Leg, RefundFrom};
use crate::domain::recon::IndexKind;
use crate::edges::psp::{self, PspError, RefundRequest};
use crate::edges::store::{Commit, Label, Txn, Versioned};
use crate::error::PayError;
use crate::flows::{audit, conversion, lists, recon};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    /// The payment order to refund (`ord_...`).
    #[schema(value_type = String)]
    pub order_id: Unchecked<OrderId>,
    /// Omit both amount fields to refund everything not yet refunded.
    #[serde(flatten)]
    pub amount: AmountInput,
    pub reason: Option<String>,
}

/// What a refund's postings need from its order: the currency and the seller.
struct RefundLegs {
    seller: SellerId,
    currency: Currency,
}

fn legs(order: &Order) -> Option<RefundLegs> {
    let currency = Currency::by_code(&order.currency)?;
    let seller = order.seller_id.clone()?;
    Some(RefundLegs { seller, currency })
}

/// What a new refund takes from its order: the amount, the fee share returned to the seller, and
/// the currency and seller its postings need.
struct RefundTerms {
    amount: u64,
    fee_back: u64,
    legs: RefundLegs,
    /// The seller balance it draws on.
    from: RefundFrom,
    /// The order's pending share, released in the refund's Txn first: the order is held and
    /// its share does not cover the refund.
    release_first: Option<u64>,
    /// For an order converted at capture: the seller's payout-currency money converted back.
    conversion: Option<Conversion>,
}

/// Where a refund of `amount` giving back `fee_back` draws on: pending while the order is held
/// and its share covers it; else, for a held order, release it first and use the wallet.
fn refund_source(order: &Order, amount: u64, fee_back: u64) -> (RefundFrom, Option<u64>) {
    if order.escrow != Escrow::Held {
        return (RefundFrom::Wallet, None);
    }
    let share = order.pending_share();
    if amount.saturating_sub(fee_back) <= share {
        (
            RefundFrom::Pending {
                order_released: false,
            },
            None,
        )
    } else {
        (RefundFrom::Wallet, Some(share))
    }
}

fn parse_order_id(request: &NewRefund) -> Result<OrderId, PayError> {
    request.order_id.parse().map_err(|_| {
        PayError::invalid_param(
            "invalid_id",
            "order_id",
            format!(
                "`order_id` must be a payment order id (ord_...), got {:?}",
                request.order_id
            ),
        )
    })
}

fn refund_exceeds_captured(order: &Order, currency: Currency, amount: u64) -> PayError {
    PayError::unprocessable(
        "refund_exceeds_captured",
        format!(
            "a refund of {} {} exceeds what is left to refund on order {}: captured {}, \
             refunded {}, pending {}",
            currency.format(amount),
            currency.code,
            order.id,
            currency.format(order.amount),
            currency.format(order.refunded),
            currency.format(order.refund_pending)
        ),
    )
}

/// The error for a refund's creating Txn that neither committed nor lost a version race.
fn refund_create_failed(refund: &Refund, terms: &RefundTerms, commit: Commit) -> PayError {
    let id = &refund.id;
    match commit {
        Commit::TransferFailed {
            label,
            result: result @ tally_client::CreateTransferResult::ExceedsCredits,
        } if label == Label::transfer(id, Leg::Hold)
            || label == Label::transfer(id, Leg::FxOut) =>
        {
            PayError::unprocessable(
                "seller_balance_insufficient",
                format!(
                    "seller {}'s wallet cannot cover a refund of {} {} ({}); the seller \
                     was probably paid out already",
                    refund.seller_id,
                    terms.legs.currency.format(terms.amount),
                    terms.legs.currency.code,
                    result
                ),
            )
        }
        other => PayError::Internal(format!("creating refund {id}: {}", describe_commit(&other))),
    }
}

impl Pay {
    pub async fn create_refund(
        self: &Arc<Self>,
        request: NewRefund,
        idempotency_key: &str,
    ) -> Result<Refund, PayError> {
        if let Some(reason) = &request.reason {
            check_text("reason", reason)?;
        }
        let id = RefundId::derived(idempotency_key);
        if self.store.get::<Refund>(ns::REFUND, &id).await?.is_none() {
            self.commit_new_refund(&request, &id).await?;
            self.metrics.inc("tally_pay_refunds_created_total");
        }
        self.step_refund(&id, true).await?;
        self.refund(&id).await
    }

    async fn commit_new_refund(&self, request: &NewRefund, id: &RefundId) -> Result<(), PayError> {
        let order_id = parse_order_id(request)?;
        for _ in 0..UPDATE_ATTEMPTS_MAX {
            let current = self
                .load::<Order>(ns::ORDER, &order_id, "payment order")
                .await?;
            let order = current.value;
            let terms = self.refund_terms(request, &order)?;
            let now = self.clock.now_ms();
            let refund = self.new_refund_record(request, id, &order_id, &order, &terms, now);
            let txn = Self::refund_create_txn(&order, current.version, &refund, &terms, now);
            match self.store.commit(txn).await? {
                Commit::Committed => return Ok(()),
                // The refund exists already (a concurrent attempt with the same key).
                Commit::ConditionFailed { label } if label == Label::record(ns::REFUND, id) => {
                    return Ok(())
                }
                Commit::ConditionFailed { .. } => continue,
                other => return Err(refund_create_failed(&refund, &terms, other)),
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("order {} kept changing; try again", request.order_id),
        })
    }

    /// Checks that the order can be refunded by the requested amount, and works out the fee
    /// share going back to the seller under the configured policy.
    fn refund_terms(&self, request: &NewRefund, order: &Order) -> Result<RefundTerms, PayError> {
        if order.kind != ChargeKind::Order || order.status != ChargeStatus::Succeeded {
            return Err(PayError::unprocessable(
                "order_not_refundable",
                format!(
                    "order {} is {:?}; only succeeded payment orders can be refunded",
                    order.id, order.status
                ),
            ));
        }
        let currency = Currency::by_code(&order.currency).ok_or_else(|| {
            PayError::Internal(format!(
                "order {} has currency {}",
                order.id, order.currency
            ))
        })?;
        let remaining = order
            .amount
            .saturating_sub(order.refunded)
            .saturating_sub(order.refund_pending);
        let amount = if request.amount == AmountInput::default() {
            remaining
        } else {
            parse_amount(&request.amount, currency)
                .map_err(|e| PayError::invalid_param("invalid_amount", "amount", e.to_string()))?
        };
        if amount == 0 || amount > remaining {
            return Err(refund_exceeds_captured(order, currency, amount));
        }
        let fee_back = self.fee_back(order, amount, remaining);
        let legs = legs(order)
            .ok_or_else(|| PayError::Internal(format!("order {} has no seller", order.id)))?;
        let (from, release_first) = refund_source(order, amount, fee_back);
        let seller = legs.seller.number();
        let conversion = conversion::refund_conversion(order, seller, from, (amount, fee_back))?;
        Ok(RefundTerms {
            amount,
            fee_back,
            legs,
            from,
            release_first,
            conversion,
        })
    }

    /// The share of the order's fee a refund of `amount` returns to the seller.
    fn fee_back(&self, order: &Order, amount: u64, remaining: u64) -> u64 {
        let fee_left = order
            .fee
            .saturating_sub(order.fee_refunded)
            .saturating_sub(order.fee_refund_pending);
        match self.refund_fee_policy {
            RefundFeePolicy::None => 0,
            RefundFeePolicy::Proportional if amount == remaining => fee_left,
            RefundFeePolicy::Proportional => {
                pro_rata(order.fee, amount, order.amount).min(fee_left)
            }
        }
    }

    fn new_refund_record(
        &self,
        request: &NewRefund,
        id: &RefundId,
        order_id: &OrderId,
        order: &Order,
        terms: &RefundTerms,
        now: i64,
    ) -> Refund {
        Refund {
            id: id.clone(),
            order_id: order_id.clone(),
            seller_id: terms.legs.seller.clone(),
            amount: terms.amount,
            currency: order.currency.clone(),
            fee_returned: terms.fee_back,
            from_pending: matches!(terms.from, RefundFrom::Pending { .. }),
            converted: terms.conversion.map(|c| c.from.amount),
            reason: request.reason.clone(),
            status: RefundStatus::Pending,
            failure: None,
            psp_id: None,
            attempts: 0,
            next_attempt_at: self.first_check_at(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The Txn that opens a refund: the order's pending refund grows, the refund is stored,
    /// indexed and tracked, and its postings hold the amount and return the fee share.
    fn refund_create_txn(
        order: &Order,
        order_version: u64,
        refund: &Refund,
        terms: &RefundTerms,
        now: i64,
    ) -> Txn {
        let id = &refund.id;
        let mut next = order.clone();
        next.refund_pending += terms.amount;
        next.fee_refund_pending += terms.fee_back;
        next.updated_at = now;
        if let (Some(fx), Some(c)) = (next.fx.as_mut(), terms.conversion) {
            fx.returned_converted += c.from.amount;
        }
        let seller = terms.legs.seller.number();
        let entry = lists::parties(Some(&refund.seller_id), Some(&order.customer_id));
        let mut txn = lists::listed(Txn::new(), ListKind::Refund, id, refund.created_at, &entry);
        if let Some(share) = terms.release_first {
            next.escrow = Escrow::Released;
            next.released_at = Some(now);
            if let Some(at) = order.release_at {
                txn = txn.delete(ns::ESCROW, &escrow::release_key(at, &order.id));
            }
            let (currency, share) = conversion::released_share(order, terms.legs.currency, share);
            txn = txn.postings(postings::order_released(&order.id, currency, seller, share));
        }
        Self::track(
            recon::indexed(
                audit::stamp(txn, "refund.create", id)
                    .require_version(ns::ORDER, &order.id, order_version)
                    .require_version(ns::REFUND, id, 0)
                    .put(ns::ORDER, &order.id, &next)
                    .event(ns::ORDER, Some(order), &next)
                    .put(ns::REFUND, id, refund)
                    .event(ns::REFUND, None, refund),
                IndexKind::Refund,
                id,
                now,
            ),
            InflightKind::Refund,
            id,
        )
        .postings(
            terms
                .conversion
                .iter()
                .flat_map(|c| fx_postings::converted(id, c)),
        )
        .postings(postings::refund_opened(
            id,
            terms.legs.currency,
            (seller, terms.from),
            terms.amount,
            terms.fee_back,
        ))
    }

    pub async fn refund(&self, id: &str) -> Result<Refund, PayError> {
        let id: RefundId = super::parse_id("refund_id", id)?;
        Ok(self.load(ns::REFUND, &id, "refund").await?.value)
    }

    pub(crate) async fn step_refund(&self, id: &str, first: bool) -> Result<(), PayError> {
        let Some(current) = self.store.get::<Refund>(ns::REFUND, id).await? else {
            return Ok(());
        };
        let refund = current.value;
        if refund.status != RefundStatus::Pending
            || (!first && refund.next_attempt_at > self.clock.now_ms())
        {
            return Ok(());
        }
        let request = RefundRequest {
            reference: refund.id.to_string(),
            charge_reference: refund.order_id.to_string(),
            amount: refund.amount,
            currency: refund.currency.clone(),
        };
        let outcome = if refund.attempts == 0 {
            self.psp.refund(&request).await
        } else {
            match self.psp.refund_status(&refund.id).await {
                Err(PspError::NotFound) => self.psp.refund(&request).await,
                other => other,
            }
        };
        self.metrics.psp_call("refund", &outcome);
        match outcome {
            Ok(r) => match r.status {
                psp::RefundStatus::Succeeded => {
                    self.settle_refund(id, Ok(r.psp_id)).await.map(drop)
                }
                psp::RefundStatus::Failed { code, message } => self
                    .settle_refund(id, Err(failure(&code, message)))
                    .await
                    .map(drop),
                psp::RefundStatus::Pending => {
                    self.retry_later::<Refund>(id, "refund pending at the PSP")
                        .await
                }
            },
            Err(PspError::Declined { code, message }) => self
                .settle_refund(id, Err(failure(&code, message)))
                .await
                .map(drop),
            Err(PspError::Invalid { message }) => self
                .settle_refund(id, Err(failure("psp_rejected", message)))
                .await
                .map(drop),
            Err(error) => self.retry_later::<Refund>(id, &error.to_string()).await,
        }
    }

    /// Settles a refund once, updating the order's refund totals in the same Txn.
    pub(crate) async fn settle_refund(
        &self,
        id: &str,
        outcome: Result<String, Failure>,
    ) -> Result<Refund, PayError> {
        for _ in 0..UPDATE_ATTEMPTS_MAX {
            let current = self.load::<Refund>(ns::REFUND, id, "refund").await?;
            let refund = current.value;
            if refund.status.is_terminal() {
                return Ok(refund);
            }
            let order_v = self
                .load::<Order>(ns::ORDER, &refund.order_id, "payment order")
                .await?;
            let (next, txn) =
                self.refund_settle_txn(&refund, current.version, order_v, &outcome)?;
            match self.store.commit(txn).await? {
                Commit::Committed => return Ok(next),
                Commit::ConditionFailed { .. } => continue,
                other => {
                    return Err(PayError::Internal(format!(
                        "settling refund {id}: {}",
                        describe_commit(&other)
                    )))
                }
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("refund {id} kept changing"),
        })
    }

    /// The settled refund and the Txn that stores it: the order's pending totals shrink, and on
    /// success its refunded totals grow and the hold is posted, on failure the hold is voided and
    /// the fee share taken back.
    fn refund_settle_txn(
        &self,
        refund: &Refund,
        refund_version: u64,
        order_v: Versioned<Order>,
        outcome: &Result<String, Failure>,
    ) -> Result<(Refund, Txn), PayError> {
        let id = &refund.id;
        let mut order = order_v.value.clone();
        let legs = legs(&order)
            .ok_or_else(|| PayError::Internal(format!("order {} has no seller", order.id)))?;
        let mut next = refund.clone();
        next.updated_at = self.clock.now_ms();
        order.updated_at = next.updated_at;
        order.refund_pending = order.refund_pending.saturating_sub(refund.amount);
        order.fee_refund_pending = order.fee_refund_pending.saturating_sub(refund.fee_returned);
        let mut txn = Self::untrack(
            Txn::new()
                .require_version(ns::REFUND, id, refund_version)
                .require_version(ns::ORDER, &order.id, order_v.version),
            id,
        );
        match outcome {
            Ok(psp_id) => {
                next.status = RefundStatus::Succeeded;
                next.psp_id = Some(psp_id.clone());
                next.failure = None;
                order.refunded += refund.amount;
                order.fee_refunded += refund.fee_returned;
                txn = txn.postings(postings::refund_succeeded(id, legs.currency, refund.amount));
            }
            Err(reason) => {
                next.status = RefundStatus::Failed;
                next.failure = Some(reason.clone());
                txn = txn.postings(conversion::refund_failed(refund, &mut order, legs.currency));
            }
        }
        let txn = txn
            .put(ns::REFUND, id, &next)
            .event(ns::REFUND, Some(refund), &next)
            .put(ns::ORDER, &order.id, &order)
            .event(ns::ORDER, Some(&order_v.value), &order);
        Ok((next, txn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(escrow: Escrow) -> Order {
        let mut order: Order = serde_json::from_value(serde_json::json!({
            "id": "ord_00000000000000ff", "kind": "order", "payment_id": null,
            "seller_id": "sel_00000000000000ff", "customer_id": "cus_00000000000000ff",
            "card_id": "card_00000000000000ff", "amount": 10_000, "currency": "USD",
            "fee": 280, "status": "succeeded", "failure": null, "psp_id": null,
            "refunded": 0, "refund_pending": 0, "fee_refunded": 0, "fee_refund_pending": 0,
            "attempts": 1, "next_attempt_at": 0, "created_at": 0, "updated_at": 0
        }))
        .unwrap();
        order.escrow = escrow;
        order
    }

    #[test]
    fn a_refund_draws_on_pending_while_the_order_is_held_and_its_share_covers_it() {
        let pending = RefundFrom::Pending {
            order_released: false,
        };
        let held = captured(Escrow::Held);
        assert_eq!(refund_source(&held, 4_000, 112), (pending, None));
        // The whole order with the whole fee back: the share (9720) covers 10000 - 280.
        assert_eq!(refund_source(&held, 10_000, 280), (pending, None));
        // The fee kept (policy `none`): 10000 does not fit in 9720, so release, then the wallet.
        assert_eq!(
            refund_source(&held, 10_000, 0),
            (RefundFrom::Wallet, Some(9_720))
        );
        let mut partly = held.clone();
        partly.refunded = 5_000;
        assert_eq!(
            refund_source(&partly, 5_000, 0),
            (RefundFrom::Wallet, Some(4_720))
        );
        for escrow in [Escrow::Released, Escrow::NotHeld] {
            assert_eq!(
                refund_source(&captured(escrow), 4_000, 112),
                (RefundFrom::Wallet, None)
            );
        }
    }
}
