//! Billing's records: plans, subscriptions and invoices (namespaces in `model::ns`), and the
//! calendar and proration rules they follow. The flows are in `flows::billing`.

use chrono::{DateTime, Duration as ChronoDuration, Months, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::{
    CardId, CustomerId, InvoiceId, PaymentId, PlanId, SellerId, SubscriptionId,
};

use crate::domain::model::Failure;

/// Milliseconds per day.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    #[schema(value_type = String)]
    pub id: PlanId,
    #[schema(value_type = String)]
    pub seller_id: SellerId,
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
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::Unpaid
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    #[schema(value_type = String)]
    pub id: SubscriptionId,
    #[schema(value_type = String)]
    pub customer_id: CustomerId,
    #[schema(value_type = String)]
    pub card_id: CardId,
    #[schema(value_type = String)]
    pub plan_id: PlanId,
    pub status: SubscriptionStatus,
    /// 0 for the first period (the trial, if the plan has one).
    pub period_index: u32,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    /// Proration credit (minor units) applied to the next invoices.
    pub credit: u64,
    /// The invoice being collected, if any.
    #[schema(value_type = Option<String>)]
    pub open_invoice: Option<InvoiceId>,
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
    #[schema(value_type = String)]
    pub payment_id: PaymentId,
    pub at: i64,
    /// Set when the payment could not even be created (e.g. refused by risk checks).
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invoice {
    #[schema(value_type = String)]
    pub id: InvoiceId,
    #[schema(value_type = String)]
    pub subscription_id: SubscriptionId,
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
    #[schema(value_type = Option<String>)]
    pub paid_by: Option<PaymentId>,
    pub created_at: i64,
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
