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

use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, Months, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_id, check_text, now_ms, NewOrder, NewPayment, Pay, UPDATE_ATTEMPTS_MAX};
use crate::config::{BillingClockMode, ExhaustedPolicy};
use crate::domain::ids;
use crate::domain::model::{Failure, PaymentStatus};
use crate::domain::money::{parse_amount, AmountInput};
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::audit;

/// Record namespaces of billing.
pub mod ns {
    pub const PLAN: &str = "pay.plan";
    pub const SUBSCRIPTION: &str = "pay.subscription";
    pub const INVOICE: &str = "pay.invoice";
    /// `<subscription id>/<sequence>` -> invoice id: a subscription's invoices in order.
    pub const SUBSCRIPTION_INVOICE: &str = "pay.subscription_invoice";
    /// The manual billing clock (key `billing`, value: unix milliseconds).
    pub const CLOCK: &str = "pay.clock";
}

pub const PLAN_ID: &str = "plan";
pub const SUBSCRIPTION_ID: &str = "sub";
pub const INVOICE_ID: &str = "inv";

/// Longest trial a plan may offer.
pub const TRIAL_DAYS_MAX: u32 = 730;

/// Periods one billing pass may invoice for one subscription (catching up after downtime).
pub const PERIODS_PER_RUN_MAX: u32 = 24;

/// Subscriptions billed concurrently by one run.
const BILLING_CONCURRENCY_MAX: usize = 8;

const CLOCK_KEY: &str = "billing";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    /// `start` plus one interval, in unix milliseconds (calendar months and years, UTC).
    pub fn after(self, start_ms: i64) -> Option<i64> {
        let start = DateTime::<Utc>::from_timestamp_millis(start_ms)?;
        let end = match self {
            Interval::Day => start.checked_add_signed(ChronoDuration::days(1))?,
            Interval::Week => start.checked_add_signed(ChronoDuration::days(7))?,
            Interval::Month => start.checked_add_months(Months::new(1))?,
            Interval::Year => start.checked_add_months(Months::new(12))?,
        };
        Some(end.timestamp_millis())
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// The seller the subscription revenue goes to.
    pub seller_id: String,
    pub name: String,
    pub currency: String,
    #[serde(flatten)]
    pub amount: AmountInput,
    pub interval: Interval,
    /// Days before the first charge.
    #[serde(default)]
    pub trial_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub id: String,
    pub seller_id: String,
    pub name: String,
    pub currency: String,
    pub amount: u64,
    pub interval: Interval,
    pub trial_days: u32,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    /// The current invoice's charge failed; dunning retries are scheduled.
    PastDue,
    Canceled,
    /// Retries exhausted and `billing.exhausted = "unpaid"`: kept, but no longer billed.
    Unpaid,
}

impl SubscriptionStatus {
    fn is_terminal(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::Unpaid
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub id: String,
    pub customer_id: String,
    pub card_id: String,
    pub plan_id: String,
    pub status: SubscriptionStatus,
    /// 0 for the first period (the trial, if the plan has one).
    pub period_index: u32,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    /// Proration credit (minor units) applied to the next invoices.
    pub credit: u64,
    /// The invoice being collected, if any.
    pub open_invoice: Option<String>,
    /// Invoices issued so far (also the next invoice's sequence number).
    pub invoice_count: u32,
    pub canceled_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    Paid,
    Void,
    /// Dunning gave up.
    Uncollectible,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// The charge for one billing period.
    Period,
    /// The difference charged when a plan change costs more than the unused part's credit.
    Proration,
}

/// One charge attempt of an invoice: the payment made for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvoiceAttempt {
    pub payment_id: String,
    pub at: i64,
    /// Set when the payment could not even be created (e.g. refused by risk checks).
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invoice {
    pub id: String,
    pub subscription_id: String,
    pub kind: InvoiceKind,
    pub period_index: u32,
    pub period_start: i64,
    pub period_end: i64,
    pub currency: String,
    /// The plan's price for the period (or the proration difference).
    pub amount: u64,
    /// Proration credit used on this invoice.
    pub credit_applied: u64,
    pub amount_due: u64,
    pub status: InvoiceStatus,
    pub attempts: Vec<InvoiceAttempt>,
    pub first_failed_at: Option<i64>,
    pub next_retry_at: Option<i64>,
    pub paid_by: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    pub customer_id: String,
    pub card_id: String,
    pub plan_id: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    /// Another of the customer's cards, used from the next charge attempt on.
    pub card_id: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    pub plan_id: String,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BillingClock {
    /// Unix milliseconds.
    pub now: i64,
    /// RFC 3339.
    pub time: String,
    /// `system` or `manual`.
    #[schema(value_type = String)]
    pub mode: BillingClockMode,
}

/// `amount * part / whole`, rounded to whole minor units half away from zero. This is the
/// proration rule: the unused share of a period's price, by time.
pub fn prorate(amount: u64, part_ms: i64, whole_ms: i64) -> u64 {
    if whole_ms <= 0 || part_ms <= 0 {
        return 0;
    }
    let part = part_ms.min(whole_ms);
    (Decimal::from(amount) * Decimal::from(part) / Decimal::from(whole_ms))
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_u64()
        .unwrap_or(amount)
        .min(amount)
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// Where an invoice stands after looking at its last attempt.
enum Collection {
    Paid,
    Exhausted,
    Waiting,
}

impl Pay {
    fn manual_clock(&self) -> bool {
        self.billing_clock == BillingClockMode::Manual
    }

    /// The billing clock, in unix milliseconds.
    pub async fn billing_now(&self) -> Result<i64, PayError> {
        if !self.manual_clock() {
            return Ok(now_ms());
        }
        Ok(self
            .store
            .get::<i64>(ns::CLOCK, CLOCK_KEY)
            .await?
            .map_or_else(now_ms, |v| v.value))
    }

    pub async fn billing_clock(&self) -> Result<BillingClock, PayError> {
        let now = self.billing_now().await?;
        Ok(BillingClock {
            now,
            time: rfc3339(now),
            mode: self.billing_clock,
        })
    }

    /// Moves the manual billing clock forward (never back).
    pub async fn set_billing_clock(&self, time: &str) -> Result<BillingClock, PayError> {
        if !self.manual_clock() {
            return Err(PayError::unprocessable(
                "clock_not_manual",
                "the billing clock is the system clock; set billing.clock = \"manual\" to move it",
            ));
        }
        let target = DateTime::parse_from_rfc3339(time)
            .map_err(|_| PayError::invalid("invalid_time", "`time` is not an RFC 3339 time"))?
            .timestamp_millis();
        for _ in 0..UPDATE_ATTEMPTS_MAX {
            let current = self.store.get::<i64>(ns::CLOCK, CLOCK_KEY).await?;
            let (now, version) = current.map_or((i64::MIN, 0), |v| (v.value, v.version));
            if target < now {
                return Err(PayError::unprocessable(
                    "clock_backwards",
                    format!(
                        "the billing clock is at {}; it only moves forward",
                        rfc3339(now)
                    ),
                ));
            }
            let txn = audit::stamp(Txn::new(), "billing_clock.set", CLOCK_KEY)
                .expect(ns::CLOCK, CLOCK_KEY, version)
                .put(ns::CLOCK, CLOCK_KEY, &target);
            if self.store.commit(txn).await? == Commit::Committed {
                return self.billing_clock().await;
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: "the billing clock kept changing".into(),
        })
    }

    pub async fn create_plan(&self, request: NewPlan, key: Option<&str>) -> Result<Plan, PayError> {
        check_text("name", &request.name)?;
        let currency = self.currency(&request.currency)?;
        let amount = parse_amount(&request.amount, currency)
            .map_err(|e| PayError::invalid("invalid_amount", e.to_string()))?;
        if request.trial_days > TRIAL_DAYS_MAX {
            return Err(PayError::invalid(
                "invalid_trial",
                format!("`trial_days` must be at most {TRIAL_DAYS_MAX}"),
            ));
        }
        self.seller(&request.seller_id).await?;
        let id = ids::for_request(PLAN_ID, key);
        let plan = Plan {
            id: id.clone(),
            seller_id: request.seller_id,
            name: request.name,
            currency: currency.code.to_string(),
            amount,
            interval: request.interval,
            trial_days: request.trial_days,
            created_at: now_ms(),
        };
        let txn = audit::stamp(Txn::new(), "plan.create", &id)
            .expect(ns::PLAN, &id, 0)
            .put(ns::PLAN, &id, &plan);
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(plan),
            _ => self.plan(&id).await,
        }
    }

    pub async fn plan(&self, id: &str) -> Result<Plan, PayError> {
        check_id("plan_id", PLAN_ID, id)?;
        Ok(self.load(ns::PLAN, id, "plan").await?.value)
    }

    pub async fn subscription(&self, id: &str) -> Result<Subscription, PayError> {
        check_id("subscription_id", SUBSCRIPTION_ID, id)?;
        Ok(self.load(ns::SUBSCRIPTION, id, "subscription").await?.value)
    }

    pub async fn invoice(&self, id: &str) -> Result<Invoice, PayError> {
        check_id("invoice_id", INVOICE_ID, id)?;
        Ok(self.load(ns::INVOICE, id, "invoice").await?.value)
    }

    pub async fn invoices(&self, subscription_id: &str) -> Result<Vec<Invoice>, PayError> {
        self.subscription(subscription_id).await?;
        let index = self
            .store
            .scan_all::<String>(ns::SUBSCRIPTION_INVOICE, &format!("{subscription_id}/"))
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
        self.card(&customer.id, &request.card_id).await?;
        let plan = self.plan(&request.plan_id).await?;
        self.currency(&plan.currency)?;
        let id = ids::derived(SUBSCRIPTION_ID, key);
        if self
            .store
            .get::<Subscription>(ns::SUBSCRIPTION, &id)
            .await?
            .is_none()
        {
            let now = self.billing_now().await?;
            let trial = plan.trial_days > 0;
            let end = if trial {
                now + i64::from(plan.trial_days) * DAY_MS
            } else {
                plan.interval
                    .after(now)
                    .ok_or_else(|| PayError::invalid("invalid_time", "period end out of range"))?
            };
            let mut subscription = Subscription {
                id: id.clone(),
                customer_id: customer.id.clone(),
                card_id: request.card_id.clone(),
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
            };
            let mut txn = audit::stamp(Txn::new(), "subscription.create", &id).expect(
                ns::SUBSCRIPTION,
                &id,
                0,
            );
            if !trial {
                let invoice = self.new_invoice(
                    &mut subscription,
                    InvoiceKind::Period,
                    &plan,
                    plan.amount,
                    (now, end),
                    now,
                );
                txn = Self::issue(txn, &subscription, &invoice);
            }
            let txn = txn.put(ns::SUBSCRIPTION, &id, &subscription);
            match self.store.commit(txn).await? {
                Commit::Committed | Commit::ConditionFailed { .. } => {}
                other => {
                    return Err(PayError::Internal(format!(
                        "creating subscription {id}: {}",
                        super::describe_commit(&other)
                    )))
                }
            }
        }
        self.bill_subscription(&id).await?;
        self.subscription(&id).await
    }

    /// A new invoice for `subscription` (not stored): applies its credit and makes it the open
    /// invoice.
    fn new_invoice(
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
        let id = ids::derived(INVOICE_ID, &format!("{}/{sequence}", subscription.id));
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
    fn issue(txn: Txn, subscription: &Subscription, invoice: &Invoice) -> Txn {
        let index_key = format!("{}/{:010}", subscription.id, subscription.invoice_count - 1);
        audit::stamp(txn, "invoice.issue", &invoice.id)
            .expect(ns::INVOICE, &invoice.id, 0)
            .put(ns::INVOICE, &invoice.id, invoice)
            .put(ns::SUBSCRIPTION_INVOICE, &index_key, &invoice.id)
    }

    /// Bills every subscription that is due at the billing clock's time.
    pub async fn run_billing(self: &Arc<Self>) -> Result<BillingRun, PayError> {
        let now = self.billing_now().await?;
        let subscriptions = self
            .store
            .scan_all::<Subscription>(ns::SUBSCRIPTION, "")
            .await?;
        let mut run = BillingRun {
            now,
            subscriptions: subscriptions.len(),
            errors: Vec::new(),
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (id, _) in subscriptions {
            let pay = Arc::clone(self);
            tasks.spawn(async move { (id.clone(), pay.bill_subscription(&id).await) });
            while tasks.len() >= BILLING_CONCURRENCY_MAX {
                if let Some(Ok((id, Err(e)))) = tasks.join_next().await {
                    run.errors.push(format!("{id}: {e}"));
                }
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok((id, Err(e))) = joined {
                run.errors.push(format!("{id}: {e}"));
            }
        }
        Ok(run)
    }

    /// Brings one subscription up to the billing clock: collects its open invoice (charge,
    /// dunning), ends it when due, and invoices each period that has started.
    pub async fn bill_subscription(self: &Arc<Self>, id: &str) -> Result<(), PayError> {
        let now = self.billing_now().await?;
        for _ in 0..PERIODS_PER_RUN_MAX * 4 {
            let current = self
                .load::<Subscription>(ns::SUBSCRIPTION, id, "subscription")
                .await?;
            let subscription = current.value;
            if subscription.status.is_terminal() {
                return Ok(());
            }
            if let Some(invoice_id) = &subscription.open_invoice {
                match self.collect(&subscription, invoice_id, now).await? {
                    Collection::Waiting => return Ok(()),
                    Collection::Paid => {
                        self.close_invoice(id, invoice_id, None).await?;
                    }
                    Collection::Exhausted => {
                        let end = match self.billing_exhausted {
                            ExhaustedPolicy::Unpaid => SubscriptionStatus::Unpaid,
                            ExhaustedPolicy::Canceled => SubscriptionStatus::Canceled,
                        };
                        self.close_invoice(id, invoice_id, Some((end, now))).await?;
                        return Ok(());
                    }
                }
                continue;
            }
            if now < subscription.current_period_end {
                return Ok(());
            }
            if subscription.cancel_at_period_end {
                self.end_subscription(id, SubscriptionStatus::Canceled, now)
                    .await?;
                return Ok(());
            }
            // The next period has started: advance and invoice it, in one Txn.
            let plan = self.plan(&subscription.plan_id).await?;
            let start = subscription.current_period_end;
            let end = plan
                .interval
                .after(start)
                .ok_or_else(|| PayError::Internal(format!("{id}: period end out of range")))?;
            let mut next = subscription.clone();
            next.period_index += 1;
            next.current_period_start = start;
            next.current_period_end = end;
            if next.status == SubscriptionStatus::Trialing {
                next.status = SubscriptionStatus::Active;
            }
            let invoice = self.new_invoice(
                &mut next,
                InvoiceKind::Period,
                &plan,
                plan.amount,
                (start, end),
                now,
            );
            let txn = Self::issue(Txn::new(), &next, &invoice)
                .expect(ns::SUBSCRIPTION, id, current.version)
                .put(ns::SUBSCRIPTION, id, &next);
            match self.store.commit(txn).await? {
                Commit::Committed | Commit::ConditionFailed { .. } => continue,
                other => {
                    return Err(PayError::Internal(format!(
                        "invoicing {id}: {}",
                        super::describe_commit(&other)
                    )))
                }
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("subscription {id} needed too many billing steps; run billing again"),
        })
    }

    /// Drives an open invoice one step: looks at its last attempt, and makes the next one when
    /// the previous payment definitely failed and the dunning schedule says it is time.
    async fn collect(
        self: &Arc<Self>,
        subscription: &Subscription,
        invoice_id: &str,
        now: i64,
    ) -> Result<Collection, PayError> {
        for _ in 0..UPDATE_ATTEMPTS_MAX {
            let current = self
                .load::<Invoice>(ns::INVOICE, invoice_id, "invoice")
                .await?;
            let invoice = current.value;
            match invoice.status {
                InvoiceStatus::Paid => return Ok(Collection::Paid),
                InvoiceStatus::Uncollectible => return Ok(Collection::Exhausted),
                InvoiceStatus::Void => return Ok(Collection::Paid),
                InvoiceStatus::Open => {}
            }
            if invoice.amount_due == 0 {
                self.mark_invoice(invoice_id, current.version, |i| {
                    i.status = InvoiceStatus::Paid;
                })
                .await?;
                continue;
            }
            let last = invoice.attempts.last().cloned();
            let failed_at = match &last {
                None => None,
                Some(attempt) if attempt.failure.is_some() => Some(attempt.at),
                Some(attempt) => match self.payment(&attempt.payment_id).await {
                    Err(PayError::NotFound { .. }) => {
                        // Recorded, but the process died before the payment was made: make it
                        // now, under the same derived id.
                        let attempt_number = invoice.attempts.len() - 1;
                        self.charge_invoice(subscription, &invoice, attempt_number)
                            .await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                    Ok(payment) => match payment.status {
                        PaymentStatus::Succeeded => {
                            self.mark_invoice(invoice_id, current.version, |i| {
                                i.status = InvoiceStatus::Paid;
                                i.paid_by = Some(payment.id.clone());
                                i.next_retry_at = None;
                            })
                            .await?;
                            continue;
                        }
                        PaymentStatus::Failed => Some(now.max(attempt.at)),
                        // Processing, or dead-lettered with an unknown outcome: it may still
                        // succeed, so no new attempt.
                        _ => return Ok(Collection::Waiting),
                    },
                },
            };
            if let Some(failed_at) = failed_at {
                let failures = invoice.attempts.len();
                let first_failed = invoice.first_failed_at.unwrap_or(failed_at);
                let retry_days = &self.config.billing.retry_days;
                if failures > retry_days.len() {
                    self.mark_invoice(invoice_id, current.version, |i| {
                        i.status = InvoiceStatus::Uncollectible;
                        i.next_retry_at = None;
                    })
                    .await?;
                    return Ok(Collection::Exhausted);
                }
                let retry_at = first_failed + i64::from(retry_days[failures - 1]) * DAY_MS;
                if invoice.next_retry_at != Some(retry_at) || invoice.first_failed_at.is_none() {
                    self.mark_invoice(invoice_id, current.version, |i| {
                        i.first_failed_at = Some(first_failed);
                        i.next_retry_at = Some(retry_at);
                    })
                    .await?;
                    self.set_subscription_status(&subscription.id, SubscriptionStatus::PastDue)
                        .await?;
                    continue;
                }
                if now < retry_at {
                    return Ok(Collection::Waiting);
                }
            }
            // Record the attempt first (so a crash cannot lose it), then make its payment.
            let attempt_number = invoice.attempts.len();
            let payment_key = format!("{invoice_id}/attempt/{attempt_number}");
            let attempt = InvoiceAttempt {
                payment_id: ids::derived(ids::PAYMENT, &payment_key),
                at: now,
                failure: None,
            };
            let recorded = self
                .mark_invoice(invoice_id, current.version, |i| {
                    i.attempts.push(attempt.clone())
                })
                .await?;
            if recorded {
                let mut invoice = invoice.clone();
                invoice.attempts.push(attempt);
                self.charge_invoice(subscription, &invoice, attempt_number)
                    .await?;
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("invoice {invoice_id} kept changing"),
        })
    }

    /// Creates the payment of attempt `attempt_number` (already recorded in the invoice) through
    /// the normal pay-in path; a refusal before any charge is recorded as the attempt's failure.
    async fn charge_invoice(
        self: &Arc<Self>,
        subscription: &Subscription,
        invoice: &Invoice,
        attempt_number: usize,
    ) -> Result<(), PayError> {
        let plan = self.plan(&subscription.plan_id).await?;
        let key = format!("{}/attempt/{attempt_number}", invoice.id);
        let request = NewPayment {
            customer_id: subscription.customer_id.clone(),
            card_id: subscription.card_id.clone(),
            currency: invoice.currency.clone(),
            orders: vec![NewOrder {
                seller_id: plan.seller_id.clone(),
                amount: AmountInput {
                    amount: Some(invoice.amount_due.into()),
                    amount_decimal: None,
                },
            }],
            description: Some(format!("invoice {}", invoice.id)),
        };
        match self.create_payment(request, &key).await {
            Ok(_) => Ok(()),
            Err(
                e @ (PayError::Invalid { .. }
                | PayError::Unprocessable { .. }
                | PayError::Risk { .. }
                | PayError::NotFound { .. }),
            ) => {
                let body = e.body().error;
                let failure = Failure {
                    code: body.code,
                    message: body.message,
                };
                for _ in 0..UPDATE_ATTEMPTS_MAX {
                    let current = self
                        .load::<Invoice>(ns::INVOICE, &invoice.id, "invoice")
                        .await?;
                    let recorded = self
                        .mark_invoice(&invoice.id, current.version, |i| {
                            if let Some(a) = i.attempts.get_mut(attempt_number) {
                                a.failure = Some(failure.clone());
                            }
                        })
                        .await?;
                    if recorded {
                        return Ok(());
                    }
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Applies `change` to an invoice if it is still at `version`; false if it moved on.
    async fn mark_invoice(
        &self,
        id: &str,
        version: u64,
        change: impl FnOnce(&mut Invoice),
    ) -> Result<bool, PayError> {
        let Some(current) = self.store.get::<Invoice>(ns::INVOICE, id).await? else {
            return Err(PayError::not_found(super::echo_safe("invoice", id)));
        };
        if current.version != version {
            return Ok(false);
        }
        let mut next = current.value;
        change(&mut next);
        let txn = audit::stamp(Txn::new(), "invoice.update", id)
            .expect(ns::INVOICE, id, version)
            .put(ns::INVOICE, id, &next);
        Ok(self.store.commit(txn).await? == Commit::Committed)
    }

    /// The open invoice is settled (paid, voided or given up): clear it from the subscription,
    /// which is active again, or ends with `end`.
    async fn close_invoice(
        &self,
        id: &str,
        invoice_id: &str,
        end: Option<(SubscriptionStatus, i64)>,
    ) -> Result<(), PayError> {
        self.update::<Subscription, _>(ns::SUBSCRIPTION, id, |s| {
            if s.open_invoice.as_deref() != Some(invoice_id) {
                return None;
            }
            let mut next = s.clone();
            next.open_invoice = None;
            match end {
                Some((status, at)) => {
                    next.status = status;
                    next.canceled_at = Some(at);
                }
                None if next.status == SubscriptionStatus::PastDue => {
                    next.status = SubscriptionStatus::Active;
                }
                None => {}
            }
            Some((next, audit::stamp(Txn::new(), "invoice.close", invoice_id)))
        })
        .await?;
        Ok(())
    }

    async fn set_subscription_status(
        &self,
        id: &str,
        status: SubscriptionStatus,
    ) -> Result<(), PayError> {
        self.update::<Subscription, _>(ns::SUBSCRIPTION, id, |s| {
            if s.status == status || s.status.is_terminal() {
                return None;
            }
            let mut next = s.clone();
            next.status = status;
            Some((next, audit::stamp(Txn::new(), "subscription.status", id)))
        })
        .await?;
        Ok(())
    }

    async fn end_subscription(
        &self,
        id: &str,
        status: SubscriptionStatus,
        at: i64,
    ) -> Result<Subscription, PayError> {
        let mut voided = None;
        let result = self
            .update::<Subscription, _>(ns::SUBSCRIPTION, id, |s| {
                if s.status.is_terminal() {
                    return None;
                }
                let mut next = s.clone();
                next.status = status;
                next.canceled_at = Some(at);
                voided = next.open_invoice.take();
                Some((next, audit::stamp(Txn::new(), "subscription.end", id)))
            })
            .await?;
        if let Some(invoice_id) = voided {
            let current = self
                .load::<Invoice>(ns::INVOICE, &invoice_id, "invoice")
                .await?;
            if current.value.status == InvoiceStatus::Open {
                self.mark_invoice(&invoice_id, current.version, |i| {
                    i.status = InvoiceStatus::Void;
                    i.next_retry_at = None;
                })
                .await?;
            }
        }
        Ok(result)
    }

    pub async fn update_subscription(
        &self,
        id: &str,
        request: UpdateSubscription,
    ) -> Result<Subscription, PayError> {
        let subscription = self.subscription(id).await?;
        self.card(&subscription.customer_id, &request.card_id)
            .await?;
        self.update::<Subscription, _>(ns::SUBSCRIPTION, id, |s| {
            let mut next = s.clone();
            next.card_id = request.card_id.clone();
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
            let marker = ids::derived(INVOICE_ID, &format!("{id}/change/{key}"));
            if subscription.plan_id == new_plan.id {
                let invoice = self
                    .store
                    .get::<Invoice>(ns::INVOICE, &marker)
                    .await?
                    .map(|v| v.value);
                self.bill_subscription(id).await?;
                return Ok(PlanChange {
                    subscription: self.subscription(id).await?,
                    credit: 0,
                    charge: 0,
                    invoice,
                });
            }
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
            let now = self.billing_now().await?;
            let whole = subscription.current_period_end - subscription.current_period_start;
            let left = subscription.current_period_end - now;
            let trialing = subscription.status == SubscriptionStatus::Trialing;
            let (credit, charge) = if trialing {
                (0, 0)
            } else {
                (
                    prorate(old_plan.amount, left, whole),
                    prorate(new_plan.amount, left, whole),
                )
            };
            let mut next = subscription.clone();
            next.plan_id = new_plan.id.clone();
            let mut txn = audit::stamp(Txn::new(), "subscription.change_plan", id);
            let mut invoice = None;
            if charge > credit {
                let mut proration = self.new_invoice(
                    &mut next,
                    InvoiceKind::Proration,
                    &new_plan,
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
            let txn =
                txn.expect(ns::SUBSCRIPTION, id, current.version)
                    .put(ns::SUBSCRIPTION, id, &next);
            match self.store.commit(txn).await? {
                Commit::Committed => {
                    self.bill_subscription(id).await?;
                    let invoice = match invoice {
                        Some(i) => Some(self.invoice(&i.id).await?),
                        None => None,
                    };
                    return Ok(PlanChange {
                        subscription: self.subscription(id).await?,
                        credit,
                        charge,
                        invoice,
                    });
                }
                Commit::ConditionFailed { .. } => continue,
                other => {
                    return Err(PayError::Internal(format!(
                        "changing the plan of {id}: {}",
                        super::describe_commit(&other)
                    )))
                }
            }
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("subscription {id} kept changing; try again"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn intervals_follow_the_calendar() {
        assert_eq!(
            Interval::Month.after(ms("2026-01-31T00:00:00Z")),
            Some(ms("2026-02-28T00:00:00Z"))
        );
        assert_eq!(
            Interval::Month.after(ms("2026-04-01T00:00:00Z")),
            Some(ms("2026-05-01T00:00:00Z"))
        );
        assert_eq!(
            Interval::Year.after(ms("2028-02-29T00:00:00Z")),
            Some(ms("2029-02-28T00:00:00Z"))
        );
        assert_eq!(
            Interval::Week.after(ms("2026-01-01T00:00:00Z")),
            Some(ms("2026-01-08T00:00:00Z"))
        );
    }

    #[test]
    fn proration_is_by_time_rounded_half_away_from_zero() {
        let day = DAY_MS;
        assert_eq!(prorate(1000, 15 * day, 30 * day), 500);
        assert_eq!(prorate(1000, 10 * day, 30 * day), 333); // 333.33
        assert_eq!(prorate(1000, 20 * day, 30 * day), 667); // 666.67
        assert_eq!(prorate(3, day, 2 * day), 2); // 1.5 -> 2
        assert_eq!(prorate(1000, 0, 30 * day), 0);
        assert_eq!(prorate(1000, 40 * day, 30 * day), 1000);
    }
}
