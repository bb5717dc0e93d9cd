//! The payment objects as they are stored in the ledger cluster's records (JSON values), and as
//! the API shows them.

use crate::domain::action::NextAction;
use crate::domain::capture::CaptureMethod;
use crate::domain::conversion::OrderFx;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::{
    BankAccountId, CardId, ChargeId, CustomerId, OrderId, PaymentId, PayoutId, RefundId, SellerId,
};

mod bank;
pub mod ns;

pub use bank::{BankAccount, BankAccountKind, BankAccountRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    #[schema(value_type = String)]
    pub id: CustomerId,
    pub name: String,
    pub email: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum PayoutSchedule {
    /// Only when asked (`POST /v1/payouts`).
    #[default]
    Manual,
    /// Every day the whole available balance of each currency goes to the default bank account.
    Daily,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Seller {
    #[schema(value_type = String)]
    pub id: SellerId,
    pub name: String,
    pub email: String,
    pub payout_schedule: PayoutSchedule,
    /// The bank account payouts go to unless a payout names another linked one.
    #[schema(value_type = Option<String>)]
    pub default_bank_account: Option<BankAccountId>,
    /// Seconds a captured order's money stays pending before it is released automatically;
    /// absent: the service's `escrow.hold_period_s`. 0: available at capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_period_s: Option<u64>,
    /// The currency this seller is paid in (`GBP`): orders charged in another currency are
    /// converted into it at their capture. Absent: each order's own currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_currency: Option<String>,
    pub created_at: i64,
}

/// A customer's card, as the PSP tokenized it. No card number, no CVV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Card {
    #[schema(value_type = String)]
    pub id: CardId,
    #[schema(value_type = String)]
    pub customer_id: CustomerId,
    pub token: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub funding: String,
    pub created_at: i64,
}

/// Why something failed, as the PSP or tally-pay stated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// A PSP charge: a payment order (for a seller) or a deposit (into the customer's own wallet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    Order,
    Deposit,
}

/// Status of a payment order or deposit. Terminal: `succeeded`, `failed`, `canceled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// Funds held in the ledger; the PSP charge is being made or its outcome is being found out.
    Processing,
    Succeeded,
    Failed,
    /// Retries exhausted without a definite answer; the hold stays until an operator retries.
    DeadLetter,
    /// Authorized at the PSP (`capture: "manual"`), the hold still pending in the ledger,
    /// waiting for `POST /v1/payment_orders/{id}/capture` or its cancellation.
    RequiresCapture,
    /// An authorization canceled before its capture (`cancellation` says why): the hold was
    /// voided, nothing was taken.
    Canceled,
    /// Waiting for the customer's 3-D Secure authentication at `next_action.url`, the hold
    /// still pending in the ledger; then charged as any order, or failed.
    RequiresAction,
}

impl ChargeStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ChargeStatus::Succeeded | ChargeStatus::Failed | ChargeStatus::Canceled
        )
    }
}

/// Why an authorization was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cancellation {
    /// `POST /v1/payment_orders/{id}/cancel`.
    Requested,
    /// Not captured within `pay.authorization_validity_s` (the worker).
    AuthorizationExpired,
}

/// Where a payment order's seller share is, as far as escrow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Escrow {
    /// Paid into the seller's wallet at capture, available at once: deposits, orders made with
    /// a hold period of 0, and every order stored before escrow existed (the serde default).
    #[default]
    NotHeld,
    /// Captured into the seller's pending balance; released by `POST
    /// /v1/payment_orders/{id}/release` or at `release_at`, whichever comes first.
    Held,
    /// Moved from pending to the seller's wallet at `released_at`.
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Order {
    #[schema(value_type = String)]
    pub id: ChargeId,
    pub kind: ChargeKind,
    /// The payment event this order belongs to (orders only).
    #[schema(value_type = Option<String>)]
    pub payment_id: Option<PaymentId>,
    /// The seller paid (orders only).
    #[schema(value_type = Option<String>)]
    pub seller_id: Option<SellerId>,
    #[schema(value_type = String)]
    pub customer_id: CustomerId,
    #[schema(value_type = String)]
    pub card_id: CardId,
    pub amount: u64,
    pub currency: String,
    /// The platform fee taken from the seller on success (0 for deposits).
    pub fee: u64,
    /// The PSP's processing fee for the charge, as the PSP reported it (reconciliation checks it
    /// against the settlement report).
    #[serde(default)]
    pub psp_fee: u64,
    pub status: ChargeStatus,
    pub failure: Option<Failure>,
    pub psp_id: Option<String>,
    /// Captured amount refunded so far (succeeded refunds).
    pub refunded: u64,
    /// Amount of refunds still pending.
    pub refund_pending: u64,
    /// Fee returned to the seller so far, and by pending refunds.
    pub fee_refunded: u64,
    pub fee_refund_pending: u64,
    #[serde(default)]
    pub escrow: Escrow,
    /// The seller's hold period when the order was made (seconds; escrow `held` only).
    #[serde(default)]
    pub hold_period_s: u64,
    /// Unix milliseconds at which the worker releases it: capture time plus the hold period.
    #[serde(default)]
    pub release_at: Option<i64>,
    /// Unix milliseconds at which it was released.
    #[serde(default)]
    pub released_at: Option<i64>,
    /// `automatic`, or `manual`: authorized only, captured later by the API.
    #[serde(default)]
    pub capture: CaptureMethod,
    /// What was authorized, once a manual capture took `amount` (possibly less) of it.
    #[serde(default)]
    pub amount_authorized: Option<u64>,
    /// Unix milliseconds at which an authorization not captured is canceled automatically.
    #[serde(default)]
    pub authorization_expires_at: Option<i64>,
    /// Why it was canceled (`canceled` only), and when (unix milliseconds).
    #[serde(default)]
    pub cancellation: Option<Cancellation>,
    #[serde(default)]
    pub canceled_at: Option<i64>,
    /// Taken out of its pending share by a dispute (`disputes.rs`).
    #[serde(default)]
    pub disputed_from_pending: u64,
    /// Taken out of its share at capture to repay its seller's recovery.
    #[serde(default)]
    pub recovery_repaid: u64,
    /// The seller's payout currency when it is not `currency`, as the seller had it when the
    /// order was made: the share is converted into it at the capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_currency: Option<String>,
    /// The conversion fixed at the capture (orders with a `payout_currency` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx: Option<OrderFx>,
    /// What the customer must do (`requires_action` only): `{"type": "redirect_to_url", "url"}`.
    #[serde(default)]
    pub next_action: Option<NextAction>,
    /// Unix milliseconds at which an order still `requires_action` is failed by the worker
    /// (after asking the PSP): `pay.action_timeout_s` after it started waiting.
    #[serde(default)]
    pub action_expires_at: Option<i64>,
    pub attempts: u32,
    /// Unix milliseconds at which a worker should next look at it.
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Order {
    /// A new charge record, `processing`: nothing refunded, captured automatically, not held in
    /// escrow, no fee. A payment order sets its payment, seller, fee, escrow and capture method.
    #[allow(clippy::too_many_arguments)]
    pub fn opened(
        id: ChargeId,
        kind: ChargeKind,
        customer_id: CustomerId,
        card_id: CardId,
        amount: u64,
        currency: &str,
        next_attempt_at: i64,
        now: i64,
    ) -> Order {
        Order {
            id,
            kind,
            payment_id: None,
            seller_id: None,
            customer_id,
            card_id,
            amount,
            currency: currency.to_string(),
            fee: 0,
            psp_fee: 0,
            status: ChargeStatus::Processing,
            failure: None,
            psp_id: None,
            refunded: 0,
            refund_pending: 0,
            fee_refunded: 0,
            fee_refund_pending: 0,
            escrow: Escrow::NotHeld,
            hold_period_s: 0,
            release_at: None,
            released_at: None,
            capture: CaptureMethod::Automatic,
            amount_authorized: None,
            authorization_expires_at: None,
            cancellation: None,
            canceled_at: None,
            disputed_from_pending: 0,
            recovery_repaid: 0,
            payout_currency: None,
            fx: None,
            next_action: None,
            action_expires_at: None,
            attempts: 0,
            next_attempt_at,
            created_at: now,
            updated_at: now,
        }
    }
}

impl Order {
    /// The part of the seller's pending balance that is this order's while it is held: the
    /// amount less the fee, less every refund not failed (pending ones too), plus the fee they
    /// gave back, less what a dispute or a recovery took of it. Refunds before release keep it
    /// at or above zero (`refunds.rs` releases first
    /// when one would not fit), so the pending account holds the sum of its orders' shares.
    pub fn pending_share(&self) -> u64 {
        let credits = self
            .amount
            .saturating_add(self.fee_refunded)
            .saturating_add(self.fee_refund_pending);
        let debits = self
            .fee
            .saturating_add(self.refunded)
            .saturating_add(self.refund_pending)
            .saturating_add(self.disputed_from_pending)
            .saturating_add(self.recovery_repaid);
        credits.saturating_sub(debits)
    }
}

/// The payment event's status, derived from its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Processing,
    Succeeded,
    Failed,
    PartiallySucceeded,
    /// At least one order is dead-lettered and none is still processing.
    RequiresAttention,
    /// At least one order waits for its customer's 3-D Secure authentication (the payment's
    /// `next_action`); none is processing.
    RequiresAction,
    /// At least one order is authorized and waits for its capture; none is processing.
    RequiresCapture,
    /// Every order's authorization was canceled.
    Canceled,
}

impl PaymentStatus {
    pub fn of(orders: &[ChargeStatus]) -> PaymentStatus {
        let count = |s: ChargeStatus| orders.iter().filter(|o| **o == s).count();
        if count(ChargeStatus::Processing) > 0 {
            PaymentStatus::Processing
        } else if count(ChargeStatus::RequiresAction) > 0 {
            PaymentStatus::RequiresAction
        } else if count(ChargeStatus::DeadLetter) > 0 {
            PaymentStatus::RequiresAttention
        } else if count(ChargeStatus::RequiresCapture) > 0 {
            PaymentStatus::RequiresCapture
        } else if count(ChargeStatus::Canceled) == orders.len() {
            PaymentStatus::Canceled
        } else if count(ChargeStatus::Succeeded) == orders.len() {
            PaymentStatus::Succeeded
        } else if count(ChargeStatus::Failed) == orders.len() {
            PaymentStatus::Failed
        } else {
            PaymentStatus::PartiallySucceeded
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub id: PaymentId,
    pub customer_id: CustomerId,
    pub card_id: CardId,
    pub currency: String,
    pub amount: u64,
    pub order_ids: Vec<OrderId>,
    pub created_at: i64,
}

/// A payment event as the API shows it: the record plus its orders and derived status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    #[schema(value_type = String)]
    pub id: PaymentId,
    pub status: PaymentStatus,
    #[schema(value_type = String)]
    pub customer_id: CustomerId,
    #[schema(value_type = String)]
    pub card_id: CardId,
    pub currency: String,
    pub amount: u64,
    pub orders: Vec<Order>,
    /// The first order's `next_action` while one `requires_action` (each order is its own
    /// charge, with its own challenge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
    pub created_at: i64,
}

impl Payment {
    /// The view of a payment record and its orders (in the record's order).
    pub fn of(record: PaymentRecord, orders: Vec<Order>) -> Payment {
        let statuses: Vec<ChargeStatus> = orders.iter().map(|o| o.status).collect();
        let next_action = orders
            .iter()
            .filter(|o| o.status == ChargeStatus::RequiresAction)
            .find_map(|o| o.next_action.clone());
        Payment {
            id: record.id,
            status: PaymentStatus::of(&statuses),
            customer_id: record.customer_id,
            card_id: record.card_id,
            currency: record.currency,
            amount: record.amount,
            orders,
            next_action,
            created_at: record.created_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
    DeadLetter,
}

impl RefundStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, RefundStatus::Succeeded | RefundStatus::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Refund {
    #[schema(value_type = String)]
    pub id: RefundId,
    #[schema(value_type = String)]
    pub order_id: OrderId,
    #[schema(value_type = String)]
    pub seller_id: SellerId,
    pub amount: u64,
    pub currency: String,
    /// Platform fee returned to the seller with this refund (per the refund fee policy).
    pub fee_returned: u64,
    /// Drawn on the seller's pending balance (the order was still held in escrow), not on the
    /// wallet; refunds stored before escrow existed drew on the wallet.
    #[serde(default)]
    pub from_pending: bool,
    /// What the seller gave back in its payout currency, for an order converted at capture
    /// (at the rate fixed then): the amount less the fee returned, converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted: Option<u64>,
    pub reason: Option<String>,
    pub status: RefundStatus,
    pub failure: Option<Failure>,
    pub psp_id: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Funds held in the seller's wallet; not yet accepted by the PSP.
    Pending,
    /// Accepted by the PSP, on its way to the bank.
    InTransit,
    Paid,
    Failed,
    DeadLetter,
}

impl PayoutStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, PayoutStatus::Paid | PayoutStatus::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutTrigger {
    OnDemand,
    Automatic,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Payout {
    #[schema(value_type = String)]
    pub id: PayoutId,
    #[schema(value_type = String)]
    pub seller_id: SellerId,
    #[schema(value_type = String)]
    pub bank_account_id: BankAccountId,
    pub amount: u64,
    pub currency: String,
    pub trigger: PayoutTrigger,
    pub status: PayoutStatus,
    pub failure: Option<Failure>,
    pub psp_id: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an in-flight index entry points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InflightKind {
    Order,
    Refund,
    Payout,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflight {
    pub kind: InflightKind,
    pub id: String,
}

/// An object whose retries are exhausted, as `GET /v1/dead_letters` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    /// `order`, `refund` or `payout`.
    #[schema(value_type = String)]
    pub kind: InflightKind,
    pub id: String,
    pub amount: u64,
    pub currency: String,
    pub attempts: u32,
    pub reason: Option<Failure>,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_status_is_derived_from_orders() {
        use ChargeStatus::*;
        assert_eq!(
            PaymentStatus::of(&[Succeeded, Succeeded]),
            PaymentStatus::Succeeded
        );
        assert_eq!(PaymentStatus::of(&[Failed, Failed]), PaymentStatus::Failed);
        assert_eq!(
            PaymentStatus::of(&[Succeeded, Failed]),
            PaymentStatus::PartiallySucceeded
        );
        assert_eq!(
            PaymentStatus::of(&[Succeeded, Processing]),
            PaymentStatus::Processing
        );
        assert_eq!(
            PaymentStatus::of(&[Succeeded, DeadLetter]),
            PaymentStatus::RequiresAttention
        );
        assert_eq!(
            PaymentStatus::of(&[RequiresCapture, RequiresAction, DeadLetter]),
            PaymentStatus::RequiresAction
        );
    }
}
