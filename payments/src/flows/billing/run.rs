//! Billing runs: every due subscription's periods invoiced and collected, with dunning.

use std::sync::Arc;

use super::{BillingRun, BILLING_CONCURRENCY_MAX, BILLING_PAGE_MAX, PERIODS_PER_RUN_MAX};
use crate::config::ExhaustedPolicy;
use crate::domain::billing::*;
use crate::domain::capture::CaptureMethod;
use crate::domain::ids::{Id, PaymentId};
use crate::domain::model::{ns, Failure, PaymentStatus};
use crate::domain::money::AmountInput;
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::{audit, NewOrder, NewPayment, Pay, UPDATE_ATTEMPTS_MAX};

/// Where an invoice stands after looking at its last attempt.
enum Collection {
    Paid,
    Exhausted,
    Waiting,
}

/// What an open invoice's last attempt says.
enum LastAttempt {
    /// No attempt yet.
    None,
    /// The last attempt failed at this time.
    FailedAt(i64),
    /// The invoice or its payment was just changed: look again.
    Changed,
    /// The payment may still succeed.
    Pending,
}

/// Where the dunning schedule stands after a failed attempt.
enum Dunning {
    /// A new attempt is due now.
    Due,
    /// The retry time was (re)recorded: look again.
    Rescheduled,
    Done(Collection),
}

impl Pay {
    /// Bills every subscription that is due at the billing clock's time.
    pub async fn run_billing(self: &Arc<Self>) -> Result<BillingRun, PayError> {
        let now = self.billing_now().await?;
        let mut run = BillingRun {
            now,
            subscriptions: 0,
            errors: Vec::new(),
        };
        let mut tasks = tokio::task::JoinSet::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .store
                .next_page::<Subscription>(ns::SUBSCRIPTION, "", &mut cursor, BILLING_PAGE_MAX)
                .await?;
            if page.is_empty() {
                break;
            }
            run.subscriptions += page.len();
            for (id, _) in page {
                let pay = Arc::clone(self);
                tasks.spawn(async move { (id.clone(), pay.bill_subscription(&id).await) });
                while tasks.len() >= BILLING_CONCURRENCY_MAX {
                    if let Some(Ok((id, Err(e)))) = tasks.join_next().await {
                        run.errors.push(format!("{id}: {e}"));
                    }
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
                if self
                    .settle_open_invoice(&subscription, invoice_id, now)
                    .await?
                {
                    return Ok(());
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
            self.invoice_next_period(&subscription, current.version, now)
                .await?;
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("subscription {id} needed too many billing steps; run billing again"),
        })
    }

    /// Collects the subscription's open invoice one step and closes it when paid or exhausted
    /// (ending the subscription by the configured policy). True when billing stops here.
    async fn settle_open_invoice(
        self: &Arc<Self>,
        subscription: &Subscription,
        invoice_id: &str,
        now: i64,
    ) -> Result<bool, PayError> {
        let id = &subscription.id;
        match self.collect(subscription, invoice_id, now).await? {
            Collection::Waiting => Ok(true),
            Collection::Paid => {
                self.close_invoice(id, invoice_id, None).await?;
                Ok(false)
            }
            Collection::Exhausted => {
                let end = match self.billing_exhausted {
                    ExhaustedPolicy::Unpaid => SubscriptionStatus::Unpaid,
                    ExhaustedPolicy::Canceled => SubscriptionStatus::Canceled,
                };
                self.close_invoice(id, invoice_id, Some((end, now))).await?;
                Ok(true)
            }
        }
    }

    /// The next period has started: advances the subscription (at `version`) and invoices the
    /// period, in one Txn. A lost race is not an error; the caller looks again.
    async fn invoice_next_period(
        &self,
        subscription: &Subscription,
        version: u64,
        now: i64,
    ) -> Result<(), PayError> {
        let id = &subscription.id;
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
            .require_version(ns::SUBSCRIPTION, id, version)
            .put(ns::SUBSCRIPTION, id, &next)
            .event(ns::SUBSCRIPTION, Some(subscription), &next);
        match self.store.commit(txn).await? {
            Commit::Committed | Commit::ConditionFailed { .. } => Ok(()),
            other => Err(PayError::Internal(format!(
                "invoicing {id}: {}",
                crate::flows::describe_commit(&other)
            ))),
        }
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
            let (invoice, version) = (current.value, current.version);
            match invoice.status {
                InvoiceStatus::Paid => return Ok(Collection::Paid),
                InvoiceStatus::Uncollectible => return Ok(Collection::Exhausted),
                InvoiceStatus::Void => return Ok(Collection::Paid),
                InvoiceStatus::Open => {}
            }
            if invoice.amount_due == 0 {
                self.mark_invoice(invoice_id, version, |i| {
                    i.status = InvoiceStatus::Paid;
                })
                .await?;
                continue;
            }
            let failed_at = match self
                .last_attempt(subscription, &invoice, version, now)
                .await?
            {
                LastAttempt::None => None,
                LastAttempt::FailedAt(at) => Some(at),
                LastAttempt::Changed => continue,
                LastAttempt::Pending => return Ok(Collection::Waiting),
            };
            if let Some(failed_at) = failed_at {
                match self
                    .dunning(subscription, &invoice, version, failed_at, now)
                    .await?
                {
                    Dunning::Due => {}
                    Dunning::Rescheduled => continue,
                    Dunning::Done(collection) => return Ok(collection),
                }
            }
            self.make_attempt(subscription, &invoice, version, now)
                .await?;
        }
        Err(PayError::Conflict {
            code: "contention",
            message: format!("invoice {invoice_id} kept changing"),
        })
    }

    /// Looks at the invoice's last attempt and its payment. A recorded attempt whose payment was
    /// never made gets it made now; a payment that succeeded marks the invoice paid.
    async fn last_attempt(
        self: &Arc<Self>,
        subscription: &Subscription,
        invoice: &Invoice,
        version: u64,
        now: i64,
    ) -> Result<LastAttempt, PayError> {
        let Some(attempt) = invoice.attempts.last() else {
            return Ok(LastAttempt::None);
        };
        if attempt.failure.is_some() {
            return Ok(LastAttempt::FailedAt(attempt.at));
        }
        match self.payment(&attempt.payment_id).await {
            Err(PayError::NotFound { .. }) => {
                // Recorded, but the process died before the payment was made: make it
                // now, under the same derived id.
                let attempt_number = invoice.attempts.len() - 1;
                self.charge_invoice(subscription, invoice, attempt_number)
                    .await?;
                Ok(LastAttempt::Changed)
            }
            Err(e) => Err(e),
            Ok(payment) => match payment.status {
                PaymentStatus::Succeeded => {
                    self.mark_invoice(&invoice.id, version, |i| {
                        i.status = InvoiceStatus::Paid;
                        i.paid_by = Some(payment.id.clone());
                        i.next_retry_at = None;
                    })
                    .await?;
                    Ok(LastAttempt::Changed)
                }
                PaymentStatus::Failed => Ok(LastAttempt::FailedAt(now.max(attempt.at))),
                // Processing, or dead-lettered with an unknown outcome: it may still
                // succeed, so no new attempt.
                _ => Ok(LastAttempt::Pending),
            },
        }
    }

    /// Applies the dunning schedule after a failure at `failed_at`: gives up when the retries
    /// are used up, records the next retry time (and past-due) when it changed, or waits for it.
    async fn dunning(
        &self,
        subscription: &Subscription,
        invoice: &Invoice,
        version: u64,
        failed_at: i64,
        now: i64,
    ) -> Result<Dunning, PayError> {
        let failures = invoice.attempts.len();
        let first_failed = invoice.first_failed_at.unwrap_or(failed_at);
        let retry_days = &self.config.billing.retry_days;
        if failures > retry_days.len() {
            self.mark_invoice(&invoice.id, version, |i| {
                i.status = InvoiceStatus::Uncollectible;
                i.next_retry_at = None;
            })
            .await?;
            return Ok(Dunning::Done(Collection::Exhausted));
        }
        let retry_at = first_failed + i64::from(retry_days[failures - 1]) * DAY_MS;
        if invoice.next_retry_at != Some(retry_at) || invoice.first_failed_at.is_none() {
            self.mark_invoice(&invoice.id, version, |i| {
                i.first_failed_at = Some(first_failed);
                i.next_retry_at = Some(retry_at);
            })
            .await?;
            self.set_subscription_status(&subscription.id, SubscriptionStatus::PastDue)
                .await?;
            return Ok(Dunning::Rescheduled);
        }
        if now < retry_at {
            return Ok(Dunning::Done(Collection::Waiting));
        }
        Ok(Dunning::Due)
    }

    /// Records the next attempt first (so a crash cannot lose it), then makes its payment.
    async fn make_attempt(
        self: &Arc<Self>,
        subscription: &Subscription,
        invoice: &Invoice,
        version: u64,
        now: i64,
    ) -> Result<(), PayError> {
        let attempt_number = invoice.attempts.len();
        let payment_key = format!("{}/attempt/{attempt_number}", invoice.id);
        let attempt = InvoiceAttempt {
            payment_id: PaymentId::derived(&payment_key),
            at: now,
            failure: None,
        };
        let recorded = self
            .mark_invoice(&invoice.id, version, |i| i.attempts.push(attempt.clone()))
            .await?;
        if recorded {
            let mut invoice = invoice.clone();
            invoice.attempts.push(attempt);
            self.charge_invoice(subscription, &invoice, attempt_number)
                .await?;
        }
        Ok(())
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
            customer_id: subscription.customer_id.clone().into(),
            card_id: subscription.card_id.clone().into(),
            currency: invoice.currency.clone(),
            orders: vec![NewOrder {
                seller_id: plan.seller_id.clone().into(),
                amount: AmountInput {
                    amount: Some(invoice.amount_due.into()),
                    amount_decimal: None,
                },
            }],
            description: Some(format!("invoice {}", invoice.id)),
            capture: CaptureMethod::Automatic,
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
    pub(super) async fn mark_invoice(
        &self,
        id: &str,
        version: u64,
        change: impl FnOnce(&mut Invoice),
    ) -> Result<bool, PayError> {
        let Some(current) = self.store.get::<Invoice>(ns::INVOICE, id).await? else {
            return Err(PayError::not_found(crate::flows::echo_safe("invoice", id)));
        };
        if current.version != version {
            return Ok(false);
        }
        let mut next = current.value.clone();
        change(&mut next);
        let txn = audit::stamp(Txn::new(), "invoice.update", id)
            .require_version(ns::INVOICE, id, version)
            .put(ns::INVOICE, id, &next)
            .event(ns::INVOICE, Some(&current.value), &next);
        Ok(self.store.commit(txn).await? == Commit::Committed)
    }

    /// The open invoice is settled (paid, voided or given up): clear it from the subscription,
    /// which is active again, or ends with `end`.
    pub(super) async fn close_invoice(
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

    pub(super) async fn set_subscription_status(
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

    pub(super) async fn end_subscription(
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
}
