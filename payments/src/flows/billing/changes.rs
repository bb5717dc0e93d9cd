//! Changes to a subscription: another card, cancellation, a plan change with proration.

use super::{CancelSubscription, ChangePlan, PlanChange, UpdateSubscription};
use crate::domain::billing::*;
use crate::domain::model::ns;
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use std::sync::Arc;

use crate::domain::ids::{Id, InvoiceId};
use crate::flows::{audit, Pay, UPDATE_ATTEMPTS_MAX};

impl Pay {
    pub async fn update_subscription(
        &self,
        id: &str,
        request: UpdateSubscription,
    ) -> Result<Subscription, PayError> {
        let subscription = self.subscription(id).await?;
        let card = self
            .card(&subscription.customer_id, &request.card_id)
            .await?;
        self.update::<Subscription, _>(ns::SUBSCRIPTION, id, |s| {
            let mut next = s.clone();
            next.card_id = card.id.clone();
            Some((next, audit::stamp(Txn::new(), "subscription.update", id)))
        })
        .await
    }

    pub async fn cancel_subscription(
        &self,
        id: &str,
        request: CancelSubscription,
    ) -> Result<Subscription, PayError> {
        let subscription = self.subscription(id).await?;
        if subscription.status.is_terminal() {
            return Ok(subscription);
        }
        if request.at_period_end {
            return self
                .update::<Subscription, _>(ns::SUBSCRIPTION, id, |s| {
                    let mut next = s.clone();
                    next.cancel_at_period_end = true;
                    Some((next, audit::stamp(Txn::new(), "subscription.cancel", id)))
                })
                .await;
        }
        let now = self.billing_now().await?;
        self.end_subscription(id, SubscriptionStatus::Canceled, now)
            .await
    }

    /// Switches plans now. The unused part of the current period is credited at the old price
    /// and charged at the new one (both prorated by time, rounded half away from zero); a
    /// positive difference is invoiced and charged at once, a negative one is kept as credit for
    /// the next invoices. The period itself does not move.
    pub async fn change_plan(
        self: &Arc<Self>,
        id: &str,
        request: ChangePlan,
        key: &str,
    ) -> Result<PlanChange, PayError> {
        let new_plan = self.plan(&request.plan_id).await?;
        for _ in 0..UPDATE_ATTEMPTS_MAX {
            let current = self
                .load::<Subscription>(ns::SUBSCRIPTION, id, "subscription")
                .await?;
            let subscription = current.value;
            // A retried request (same key) finds the change it made.
            let marker = InvoiceId::derived(&format!("{id}/change/{key}"));
            if subscription.plan_id == new_plan.id {
                return self.plan_already_changed(id, &marker).await;
            }
            let old_plan = self.check_plan_change(id, &subscription, &new_plan).await?;
            let now = self.billing_now().await?;
            let (credit, charge) = proration_amounts(&subscription, &old_plan, &new_plan, now);
            let (next, txn, invoice) =
                self.plan_change_txn(id, &subscription, &new_plan, (credit, charge), &marker, now);
            let txn = txn
                .require_version(ns::SUBSCRIPTION, id, current.version)
                .put(ns::SUBSCRIPTION, id, &next)
                .event(ns::SUBSCRIPTION, Some(&subscription), &next);
            match self.store.commit(txn).await? {
                Commit::Committed => {
                    return self.finish_plan_change(id, credit, charge, invoice).await;
                }
                Commit::ConditionFailed { .. } => continue,
                other => {
                    return Err(PayError::Internal(format!(
                        "changing the plan of {id}: {}",
                        crate::flows::describe_commit(&other)
                    )))
                }
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("subscription {id} kept changing; try again"),
        })
    }

    /// The subscription is already on the new plan (a retried request): bill it and answer with
    /// the proration invoice the first attempt made, if any.
    async fn plan_already_changed(
        self: &Arc<Self>,
        id: &str,
        marker: &InvoiceId,
    ) -> Result<PlanChange, PayError> {
        let invoice = self
            .store
            .get::<Invoice>(ns::INVOICE, marker)
            .await?
            .map(|v| v.value);
        self.bill_subscription(id).await?;
        Ok(PlanChange {
            subscription: self.subscription(id).await?,
            credit: 0,
            charge: 0,
            invoice,
        })
    }

    /// Refuses a change on an ended subscription, one with an invoice being collected, or to a
    /// plan in another currency; returns the current plan.
    async fn check_plan_change(
        &self,
        id: &str,
        subscription: &Subscription,
        new_plan: &Plan,
    ) -> Result<Plan, PayError> {
        if subscription.status.is_terminal() {
            return Err(PayError::unprocessable(
                "subscription_ended",
                format!("subscription {id} is {:?}", subscription.status),
            ));
        }
        if subscription.open_invoice.is_some() {
            return Err(PayError::Conflict {
                code: "invoice_open",
                message: format!(
                    "subscription {id} has an invoice being collected; change the plan once it is settled"
                ),
            });
        }
        let old_plan = self.plan(&subscription.plan_id).await?;
        if old_plan.currency != new_plan.currency {
            return Err(PayError::unprocessable(
                "currency_mismatch",
                format!(
                    "plan {} is in {}, the subscription in {}",
                    new_plan.id, new_plan.currency, old_plan.currency
                ),
            ));
        }
        Ok(old_plan)
    }

    /// The subscription on the new plan and the transaction that writes it: a positive
    /// difference is issued as a proration invoice (with the id `marker`), a negative one is
    /// added to the credit.
    fn plan_change_txn(
        &self,
        id: &str,
        subscription: &Subscription,
        new_plan: &Plan,
        (credit, charge): (u64, u64),
        marker: &InvoiceId,
        now: i64,
    ) -> (Subscription, Txn, Option<Invoice>) {
        let mut next = subscription.clone();
        next.plan_id = new_plan.id.clone();
        let mut txn = audit::stamp(Txn::new(), "subscription.change_plan", id);
        let mut invoice = None;
        if charge > credit {
            let mut proration = self.new_invoice(
                &mut next,
                InvoiceKind::Proration,
                new_plan,
                charge - credit,
                (now, subscription.current_period_end),
                now,
            );
            proration.id = marker.clone();
            next.open_invoice = Some(marker.clone());
            txn = Self::issue(txn, &next, &proration);
            invoice = Some(proration);
        } else {
            next.credit += credit - charge;
        }
        (next, txn, invoice)
    }

    /// After the change is committed: bill the subscription and answer with its state and the
    /// proration invoice as it stands now.
    async fn finish_plan_change(
        self: &Arc<Self>,
        id: &str,
        credit: u64,
        charge: u64,
        invoice: Option<Invoice>,
    ) -> Result<PlanChange, PayError> {
        self.bill_subscription(id).await?;
        let invoice = match invoice {
            Some(i) => Some(self.invoice(&i.id).await?),
            None => None,
        };
        Ok(PlanChange {
            subscription: self.subscription(id).await?,
            credit,
            charge,
            invoice,
        })
    }
}

/// What the unused part of the period is worth on the old plan (credit) and on the new one
/// (charge); nothing while trialing.
fn proration_amounts(
    subscription: &Subscription,
    old_plan: &Plan,
    new_plan: &Plan,
    now: i64,
) -> (u64, u64) {
    let whole = subscription.current_period_end - subscription.current_period_start;
    let left = subscription.current_period_end - now;
    if subscription.status == SubscriptionStatus::Trialing {
        (0, 0)
    } else {
        (
            prorate(old_plan.amount, left, whole),
            prorate(new_plan.amount, left, whole),
        )
    }
}
