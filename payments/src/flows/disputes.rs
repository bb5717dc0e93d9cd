//! Disputes (chargebacks), from the PSP's webhooks: opened (`charge.dispute.created`), answered
//! with the merchant's evidence (`POST /v1/disputes/{id}/evidence`, forwarded to the PSP) and
//! closed won or lost (`charge.dispute.closed`). Each change is one `Txn` conditioned on the
//! dispute's version, with its postings (`domain::postings::dispute_*`), its audit entry and its
//! event; a webhook delivered twice, or out of order, changes nothing the second time.
//!
//! A captured order repays its seller's recovery (what the platform's loss account paid for the
//! seller's disputes) before anything else: [`Pay::recovery_of`] reads it before the capture's
//! `Txn`, and [`repay_recovery`] adds the repayment to it.

use super::lists::{listed, parties};
use super::{audit, parse_id, Pay};
use crate::domain::chart::{self, code};
use crate::domain::disputes::{
    Dispute, DisputeStatus, Evidence, Returned, Taken, REASON_BYTES_MAX,
};
use crate::domain::ids::{DisputeId, Id, OrderId};
use crate::domain::lists::ListKind;
use crate::domain::model::{ns, ChargeKind, ChargeStatus, Escrow, Order};
use crate::domain::money::Currency;
use crate::domain::postings;
use crate::edges::psp::{self, PspError};
use crate::edges::store::{Commit, Txn, Versioned};
use crate::error::PayError;

/// Attempts to commit a dispute's opening when balances or the order moved meanwhile.
const OPEN_ATTEMPTS_MAX: u32 = 5;

impl Pay {
    /// Applies a PSP dispute event; false when it names no order of ours.
    pub(crate) async fn dispute_event(&self, event: &psp::Dispute) -> Result<bool, PayError> {
        let Some(opened) = self.open_dispute(event).await? else {
            return Ok(false);
        };
        let won = match event.status {
            psp::DisputeStatus::NeedsResponse | psp::DisputeStatus::UnderReview => return Ok(true),
            psp::DisputeStatus::Won => true,
            psp::DisputeStatus::Lost => false,
        };
        self.close_dispute(&opened, won).await?;
        Ok(true)
    }

    /// The dispute of the PSP's event, opened now if it was not: `None` when its charge is
    /// not one of our payment orders.
    async fn open_dispute(&self, event: &psp::Dispute) -> Result<Option<Dispute>, PayError> {
        let id = DisputeId::derived(&event.psp_id);
        let Ok(order_id) = event.charge_reference.parse::<OrderId>() else {
            return Ok(None);
        };
        for _ in 0..OPEN_ATTEMPTS_MAX {
            if let Some(found) = self.store.get::<Dispute>(ns::DISPUTE, &id).await? {
                return Ok(Some(found.value));
            }
            let Some(order) = self.store.get::<Order>(ns::ORDER, &order_id).await? else {
                return Ok(None);
            };
            let (dispute, txn) = self.opening(&id, event, &order).await?;
            match self.store.commit(txn).await? {
                Commit::Committed => {
                    self.metrics.inc("tally_pay_disputes_opened_total");
                    return Ok(Some(dispute));
                }
                // The order or the seller's wallet moved, or another process opened it.
                Commit::ConditionFailed { .. } | Commit::TransferFailed { .. } => continue,
                other => return Err(PayError::Internal(super::describe_commit(&other))),
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("dispute {id} could not be opened for contention; try again"),
        })
    }

    /// The new dispute and its `Txn`: the record, its list entry, audit entry and event, the
    /// order's pending share reduced, and the postings taking amount and fee.
    async fn opening(
        &self,
        id: &DisputeId,
        event: &psp::Dispute,
        order: &Versioned<Order>,
    ) -> Result<(Dispute, Txn), PayError> {
        let (seller, currency) = disputed(&order.value, event)?;
        let wallet = self
            .spendable(code::SELLER_WALLET, currency, seller.number())
            .await?;
        let pending = match order.value.escrow {
            Escrow::Held => order.value.pending_share(),
            Escrow::NotHeld | Escrow::Released => 0,
        };
        let taken = Taken::of(event.amount, event.fee, pending, wallet);
        let now = self.clock.now_ms();
        let reason = match event.reason.len() {
            1..=REASON_BYTES_MAX => event.reason.clone(),
            _ => "general".to_string(),
        };
        let dispute = Dispute {
            id: id.clone(),
            psp_id: event.psp_id.clone(),
            order_id: event.charge_reference.parse().map_err(|_| not_ours())?,
            seller_id: seller.clone(),
            customer_id: order.value.customer_id.clone(),
            amount: event.amount,
            currency: currency.code.to_string(),
            fee: event.fee,
            reason,
            status: DisputeStatus::NeedsResponse,
            taken,
            returned: None,
            evidence: None,
            evidence_submitted_at: None,
            created_at: now,
            updated_at: now,
        };
        let mut next = order.value.clone();
        next.disputed_from_pending += taken.amount.pending + taken.fee.pending;
        next.updated_at = now;
        let entry = parties(Some(&dispute.seller_id), Some(&dispute.customer_id));
        let txn = Txn::new()
            .require_version(ns::DISPUTE, id, 0)
            .put(ns::DISPUTE, id, &dispute)
            .event(ns::DISPUTE, None, &dispute)
            .require_version(ns::ORDER, &order.value.id, order.version)
            .put(ns::ORDER, &order.value.id, &next)
            .account(chart::dispute_loss(currency, seller.number()))
            .postings(postings::dispute_opened(
                id,
                currency,
                seller.number(),
                &taken,
            ));
        let txn = listed(txn, ListKind::Dispute, id, now, &entry);
        Ok((dispute, audit::stamp(txn, "dispute.open", id)))
    }

    /// Closes a dispute won or lost, once.
    async fn close_dispute(&self, opened: &Dispute, won: bool) -> Result<Dispute, PayError> {
        if opened.status.is_closed() {
            return Ok(opened.clone());
        }
        let currency = Currency::by_code(&opened.currency)
            .ok_or_else(|| PayError::Internal(format!("dispute {} currency", opened.id)))?;
        let seller = opened.seller_id.number();
        let recovery = self.recovery(currency, seller).await?;
        let closed = self
            .update::<Dispute, _>(ns::DISPUTE, &opened.id, |current| {
                if current.status.is_closed() {
                    return None;
                }
                let mut next = current.clone();
                next.updated_at = self.clock.now_ms();
                let txn = audit::stamp(Txn::new(), "dispute.close", &current.id);
                let txn = if won {
                    let back = Returned::of(current.amount, current.taken.amount.loss, recovery);
                    next.status = DisputeStatus::Won;
                    next.returned = Some(back);
                    txn.postings(postings::dispute_won(&current.id, currency, seller, &back))
                } else {
                    next.status = DisputeStatus::Lost;
                    txn.postings(postings::dispute_lost(
                        &current.id,
                        currency,
                        current.amount,
                    ))
                };
                Some((next, txn))
            })
            .await?;
        self.metrics.inc(if won {
            "tally_pay_disputes_won_total"
        } else {
            "tally_pay_disputes_lost_total"
        });
        Ok(closed)
    }

    pub async fn dispute(&self, id: &str) -> Result<Dispute, PayError> {
        let id: DisputeId = parse_id("id", id)?;
        Ok(self.load(ns::DISPUTE, &id, "dispute").await?.value)
    }

    /// Forwards the merchant's evidence to the PSP (once, under the key `<id>:evidence`), then
    /// stores it: the dispute is `under_review`.
    pub async fn submit_evidence(&self, id: &str, evidence: Evidence) -> Result<Dispute, PayError> {
        let dispute = self.dispute(id).await?;
        if dispute.status == DisputeStatus::UnderReview
            && dispute.evidence.as_ref() == Some(&evidence)
        {
            return Ok(dispute);
        }
        if dispute.status != DisputeStatus::NeedsResponse {
            return Err(PayError::unprocessable(
                "dispute_not_open_for_evidence",
                "evidence is taken once, while the dispute's status is `needs_response`",
            ));
        }
        evidence.check().map_err(|(field, message)| {
            PayError::invalid_param("invalid_evidence", field, message)
        })?;
        let key = format!("{}:evidence", dispute.id);
        match self
            .psp
            .submit_evidence(&dispute.psp_id, &key, &evidence)
            .await
        {
            Ok(_) => {}
            Err(PspError::Declined { message, .. } | PspError::Invalid { message }) => {
                return Err(PayError::unprocessable("evidence_refused", message))
            }
            Err(other) => return Err(PayError::PspUnavailable(other.to_string())),
        }
        self.update::<Dispute, _>(ns::DISPUTE, &dispute.id, |current| {
            if current.status != DisputeStatus::NeedsResponse {
                return None;
            }
            let mut next = current.clone();
            next.status = DisputeStatus::UnderReview;
            next.evidence = Some(evidence.clone());
            next.updated_at = self.clock.now_ms();
            next.evidence_submitted_at = Some(next.updated_at);
            Some((
                next,
                audit::stamp(Txn::new(), "dispute.evidence", &current.id),
            ))
        })
        .await
    }

    /// What a seller owes the platform in `currency` for its disputes: the debit balance of
    /// its loss account.
    pub(crate) async fn recovery(&self, currency: Currency, seller: u64) -> Result<u64, PayError> {
        let id = chart::account_id(code::DISPUTE_LOSS, currency, seller);
        let accounts = self.store.client().lookup_accounts(&[id]).await?;
        Ok(accounts.first().map_or(0, |a| {
            let owed = a.debits_posted.saturating_sub(a.credits_posted);
            u64::try_from(owed).unwrap_or(u64::MAX)
        }))
    }

    /// The recovery an order's capture would repay: its seller's, when the order is a payment
    /// order not yet settled (0 otherwise, or when the order is not found).
    pub(crate) async fn recovery_of(&self, order_id: &str) -> Result<u64, PayError> {
        let Some(order) = self.store.get::<Order>(ns::ORDER, order_id).await? else {
            return Ok(0);
        };
        let order = order.value;
        let (ChargeKind::Order, Some(seller), false) =
            (order.kind, &order.seller_id, order.status.is_terminal())
        else {
            return Ok(0);
        };
        match Currency::by_code(&order.currency) {
            Some(currency) => self.recovery(currency, seller.number()).await,
            None => Ok(0),
        }
    }

    /// Posted credits less posted and held debits of one of a seller's accounts.
    async fn spendable(&self, code: u16, currency: Currency, owner: u64) -> Result<u64, PayError> {
        let id = chart::account_id(code, currency, owner);
        let accounts = self.store.client().lookup_accounts(&[id]).await?;
        Ok(accounts.first().map_or(0, |a| {
            let free = a
                .credits_posted
                .saturating_sub(a.debits_posted)
                .saturating_sub(a.debits_pending);
            u64::try_from(free).unwrap_or(u64::MAX)
        }))
    }
}

/// A captured order (`next`, with its amount and fee final) repays up to `recovery` of its
/// seller's recovery out of its share, from the account the capture paid into.
pub(crate) fn repay_recovery(next: &mut Order, txn: Txn, currency: Currency, recovery: u64) -> Txn {
    let (ChargeKind::Order, Some(seller)) = (next.kind, &next.seller_id) else {
        return txn;
    };
    let share = next.amount.saturating_sub(next.fee);
    let repaid = recovery.min(share);
    let from = postings::charge_account_code(ChargeKind::Order, next.escrow);
    let posting = postings::recovery_repaid(&next.id, currency, (seller.number(), from), repaid);
    next.recovery_repaid = repaid;
    txn.postings(posting)
}

/// The disputed order's seller and currency, if the event fits the order: a succeeded payment
/// order in the event's currency. An order not settled yet is a conflict (the PSP retries).
fn disputed(
    order: &Order,
    event: &psp::Dispute,
) -> Result<(crate::domain::ids::SellerId, Currency), PayError> {
    let (ChargeKind::Order, Some(seller)) = (order.kind, &order.seller_id) else {
        return Err(not_ours());
    };
    if order.status != ChargeStatus::Succeeded {
        return Err(PayError::Conflict {
            code: "order_not_settled",
            message: "the disputed order has not settled yet; deliver the event again".into(),
        });
    }
    let currency = Currency::by_code(&order.currency)
        .filter(|c| c.code == event.currency)
        .ok_or_else(|| PayError::invalid("malformed_event", "dispute currency"))?;
    Ok((seller.clone(), currency))
}

fn not_ours() -> PayError {
    PayError::invalid(
        "malformed_event",
        "the dispute's charge is not a payment order",
    )
}
