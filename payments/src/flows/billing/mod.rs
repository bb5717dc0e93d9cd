//! Subscriptions and recurring billing: plans, subscriptions of a customer to a plan with a
//! saved card, one invoice per period charged through the normal pay-in path (seller and fee
//! postings included), plan changes with proration, cancellation, and dunning.
//!
//! Exactly one successful charge per invoice, whatever crashes: an invoice's charge attempts are
//! sequential, each is recorded in the invoice (one Txn) *before* its payment is created, and the
//! payment's id is derived from the invoice id and the attempt number, so a retried billing run
//! finds the attempt and its payment instead of making another. A new attempt is made only after
//! the previous payment has definitely failed. Periods advance in the same Txn that creates the
//! period's invoice, conditioned on the subscription's version, so a period is invoiced once.
//!
//! Time comes from [`Pay::billing_now`]: the wall clock, or (config `billing.clock = "manual"`)
//! a clock kept in the cluster that tests and demos move forward.

mod changes;
mod clock;
mod run;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::domain::billing::*;
pub use clock::BillingClock;

use super::{check_text, parse_id, Pay};
use crate::domain::ids::{
    CardId, CustomerId, Id, InvoiceId, PlanId, SellerId, SubscriptionId, Unchecked,
};
use crate::domain::lists::ListKind;
use crate::domain::model::ns;
use crate::domain::money::{parse_amount, AmountInput};
use crate::edges::store::{Commit, Txn, RECORD_SCAN_PAGE_MAX};
use crate::error::PayError;
use crate::flows::{audit, lists};

/// Longest trial a plan may offer.
pub const TRIAL_DAYS_MAX: u32 = 730;

/// Periods one billing pass may invoice for one subscription (catching up after downtime).
pub const PERIODS_PER_RUN_MAX: u32 = 24;

/// Subscriptions billed concurrently by one run.
const BILLING_CONCURRENCY_MAX: usize = 8;

/// Subscriptions a billing run reads per page (it bills one page before reading the next).
pub const BILLING_PAGE_MAX: u32 = 256;
const _: () = assert!(BILLING_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// The seller the subscription revenue goes to.
    #[schema(value_type = String)]
    pub seller_id: Unchecked<SellerId>,
    pub name: String,
    pub currency: String,
    #[serde(flatten)]
    pub amount: AmountInput,
    pub interval: Interval,
    /// Days before the first charge.
    #[serde(default)]
    pub trial_days: u32,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    #[schema(value_type = String)]
    pub customer_id: Unchecked<CustomerId>,
    #[schema(value_type = String)]
    pub card_id: Unchecked<CardId>,
    #[schema(value_type = String)]
    pub plan_id: Unchecked<PlanId>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    /// Another of the customer's cards, used from the next charge attempt on.
    #[schema(value_type = String)]
    pub card_id: Unchecked<CardId>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    #[schema(value_type = String)]
    pub plan_id: Unchecked<PlanId>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSubscription {
    /// `true`: run to the end of the paid period; `false`: cancel now (an open invoice is voided).
    #[serde(default)]
    pub at_period_end: bool,
}

/// The result of a plan change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanChange {
    pub subscription: Subscription,
    /// Credit for the unused part of the old plan (minor units).
    pub credit: u64,
    /// Price of the rest of the period on the new plan.
    pub charge: u64,
    /// The proration invoice, when `charge > credit`.
    pub invoice: Option<Invoice>,
}

/// What a billing run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BillingRun {
    /// The billing clock the run used (unix ms).
    pub now: i64,
    pub subscriptions: usize,
    pub errors: Vec<String>,
}

impl Pay {
    pub async fn create_plan(&self, request: NewPlan, key: Option<&str>) -> Result<Plan, PayError> {
        check_text("name", &request.name)?;
        let currency = self
            .currency(&request.currency)
            .map_err(|e| e.with_param("currency"))?;
        let amount = parse_amount(&request.amount, currency)
            .map_err(|e| PayError::invalid_param("invalid_amount", "amount", e.to_string()))?;
        if request.trial_days > TRIAL_DAYS_MAX {
            return Err(PayError::invalid_param(
                "invalid_trial",
                "trial_days",
                format!("`trial_days` must be at most {TRIAL_DAYS_MAX}"),
            ));
        }
        let seller = self.seller(&request.seller_id).await?;
        let id = PlanId::for_request(key);
        let plan = Plan {
            id: id.clone(),
            seller_id: seller.id,
            name: request.name,
            currency: currency.code.to_string(),
            amount,
            interval: request.interval,
            trial_days: request.trial_days,
            created_at: self.clock.now_ms(),
        };
        let txn = audit::stamp(Txn::new(), "plan.create", &id)
            .require_version(ns::PLAN, &id, 0)
            .put(ns::PLAN, &id, &plan);
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(plan),
            _ => self.plan(&id).await,
        }
    }

    pub async fn plan(&self, id: &str) -> Result<Plan, PayError> {
        let id: PlanId = parse_id("plan_id", id)?;
        Ok(self.load(ns::PLAN, &id, "plan").await?.value)
    }

    pub async fn subscription(&self, id: &str) -> Result<Subscription, PayError> {
        let id: SubscriptionId = parse_id("subscription_id", id)?;
        Ok(self
            .load(ns::SUBSCRIPTION, &id, "subscription")
            .await?
            .value)
    }

    pub async fn invoice(&self, id: &str) -> Result<Invoice, PayError> {
        let id: InvoiceId = parse_id("invoice_id", id)?;
        Ok(self.load(ns::INVOICE, &id, "invoice").await?.value)
    }

    pub async fn invoices(&self, subscription_id: &str) -> Result<Vec<Invoice>, PayError> {
        self.subscription(subscription_id).await?;
        let index = self
            .store
            .scan_all::<InvoiceId>(ns::SUBSCRIPTION_INVOICE, &format!("{subscription_id}/"))
            .await?;
        let mut invoices = Vec::with_capacity(index.len());
        for (_, id) in index {
            invoices.push(self.invoice(&id.value).await?);
        }
        Ok(invoices)
    }

    /// Subscribes a customer to a plan with one of their cards; the first period's invoice (after
    /// the trial, if any) is charged at once.
    pub async fn create_subscription(
        self: &Arc<Self>,
        request: NewSubscription,
        key: &str,
    ) -> Result<Subscription, PayError> {
        let customer = self.customer(&request.customer_id).await?;
        let card = self.card(&customer.id, &request.card_id).await?;
        let plan = self.plan(&request.plan_id).await?;
        self.currency(&plan.currency)?;
        let id = SubscriptionId::derived(key);
        if self
            .store
            .get::<Subscription>(ns::SUBSCRIPTION, &id)
            .await?
            .is_none()
        {
            self.commit_new_subscription(&id, &customer.id, card.id, &plan)
                .await?;
        }
        self.bill_subscription(&id).await?;
        self.subscription(&id).await
    }

    /// Writes a new subscription starting now, with its first period's invoice unless the plan
    /// has a trial. Someone else creating it first is not an error.
    async fn commit_new_subscription(
        &self,
        id: &SubscriptionId,
        customer_id: &CustomerId,
        card_id: CardId,
        plan: &Plan,
    ) -> Result<(), PayError> {
        let now = self.billing_now().await?;
        let trial = plan.trial_days > 0;
        let mut subscription = first_period(id, customer_id, card_id, plan, now)?;
        let mut txn = audit::stamp(Txn::new(), "subscription.create", id).require_version(
            ns::SUBSCRIPTION,
            id,
            0,
        );
        if !trial {
            let end = subscription.current_period_end;
            let invoice = self.new_invoice(
                &mut subscription,
                InvoiceKind::Period,
                plan,
                plan.amount,
                (now, end),
                now,
            );
            txn = Self::issue(txn, &subscription, &invoice);
        }
        let entry = lists::parties(None, Some(customer_id));
        let txn = lists::listed(
            txn,
            ListKind::Subscription,
            id,
            subscription.created_at,
            &entry,
        )
        .put(ns::SUBSCRIPTION, id, &subscription)
        .event(ns::SUBSCRIPTION, None, &subscription);
        match self.store.commit(txn).await? {
            Commit::Committed | Commit::ConditionFailed { .. } => Ok(()),
            other => Err(PayError::Internal(format!(
                "creating subscription {id}: {}",
                crate::flows::describe_commit(&other)
            ))),
        }
    }

    /// A new invoice for `subscription` (not stored): applies its credit and makes it the open
    /// invoice.
    pub(super) fn new_invoice(
        &self,
        subscription: &mut Subscription,
        kind: InvoiceKind,
        plan: &Plan,
        amount: u64,
        (period_start, period_end): (i64, i64),
        now: i64,
    ) -> Invoice {
        let credit_applied = subscription.credit.min(amount);
        subscription.credit -= credit_applied;
        let sequence = subscription.invoice_count;
        subscription.invoice_count += 1;
        let id = InvoiceId::derived(&format!("{}/{sequence}", subscription.id));
        subscription.open_invoice = Some(id.clone());
        Invoice {
            id,
            subscription_id: subscription.id.clone(),
            kind,
            period_index: subscription.period_index,
            period_start,
            period_end,
            currency: plan.currency.clone(),
            amount,
            credit_applied,
            amount_due: amount - credit_applied,
            status: InvoiceStatus::Open,
            attempts: Vec::new(),
            first_failed_at: None,
            next_retry_at: None,
            paid_by: None,
            created_at: now,
        }
    }

    /// Adds an invoice and its index entry to `txn` (the invoice must not exist yet).
    pub(super) fn issue(txn: Txn, subscription: &Subscription, invoice: &Invoice) -> Txn {
        let index_key = format!("{}/{:010}", subscription.id, subscription.invoice_count - 1);
        let entry = lists::parties(None, Some(&subscription.customer_id));
        let txn = lists::listed(
            txn,
            ListKind::Invoice,
            &invoice.id,
            invoice.created_at,
            &entry,
        );
        audit::stamp(txn, "invoice.issue", &invoice.id)
            .require_version(ns::INVOICE, &invoice.id, 0)
            .put(ns::INVOICE, &invoice.id, invoice)
            .event(ns::INVOICE, None, invoice)
            .put(ns::SUBSCRIPTION_INVOICE, &index_key, &invoice.id)
    }
}

/// A subscription in its first period from `now`: the trial when the plan has one, else a
/// whole billing interval.
fn first_period(
    id: &SubscriptionId,
    customer_id: &CustomerId,
    card_id: CardId,
    plan: &Plan,
    now: i64,
) -> Result<Subscription, PayError> {
    let trial = plan.trial_days > 0;
    let end = if trial {
        now + i64::from(plan.trial_days) * DAY_MS
    } else {
        plan.interval
            .after(now)
            .ok_or_else(|| PayError::invalid("invalid_time", "period end out of range"))?
    };
    Ok(Subscription {
        id: id.clone(),
        customer_id: customer_id.clone(),
        card_id,
        plan_id: plan.id.clone(),
        status: if trial {
            SubscriptionStatus::Trialing
        } else {
            SubscriptionStatus::Active
        },
        period_index: 0,
        current_period_start: now,
        current_period_end: end,
        cancel_at_period_end: false,
        credit: 0,
        open_invoice: None,
        invoice_count: 0,
        canceled_at: None,
        created_at: now,
    })
}
