//! The objects of the sandbox's API as they go over the wire (and into its state file): cards,
//! charges, refunds, payouts, webhook events and settlement lines. This is the PSP's own
//! contract; whoever calls it (tally-pay's connector) keeps its own types and parses these.
//!
//! Amounts are integer minor units of the ISO 4217 currency (`"USD"`, 1250 = 12.50 USD); times
//! are unix seconds.

use serde::{Deserialize, Serialize};

/// A tokenized card as `POST /v1/tokens` and `GET /v1/tokens/{token}` show it: never the number
/// or the CVC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardDetails {
    pub token: String,
    /// `visa`, `mastercard`, `amex`, `discover` or `unknown`.
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
    /// `credit` or `debit`.
    pub funding: String,
}

/// Where a charge stands; flattened into the charge as `"status"` (and `code`, `message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChargeStatus {
    /// Authorized (`capture: false`), waiting for its capture.
    Authorized,
    Succeeded,
    Failed {
        code: String,
        message: String,
    },
    /// An authorization canceled before its capture: nothing was taken, nothing settles.
    Canceled,
    /// Waiting for the customer's 3-D Secure challenge at `next_action_url` (a page the
    /// sandbox serves); then `succeeded` (or `authorized`, with `capture: false`) or `failed`
    /// (`authentication_failed`).
    RequiresAction {
        next_action_url: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The sandbox's id (`ch_...`).
    pub psp_id: String,
    /// The caller's id for the charge, unique among charges.
    pub reference: String,
    /// Authorized, then (after a capture of less) what was captured.
    pub amount: u64,
    pub currency: String,
    #[serde(flatten)]
    pub status: ChargeStatus,
    /// What the sandbox keeps of a succeeded charge, in minor units.
    pub fee: u64,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed { code: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// `re_...`.
    pub psp_id: String,
    pub reference: String,
    /// The reference of the refunded charge.
    pub charge_reference: String,
    pub amount: u64,
    pub currency: String,
    #[serde(flatten)]
    pub status: RefundStatus,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Accepted; `paid` or `failed` after the payout delay.
    Pending,
    Paid,
    Failed {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// `po_...`.
    pub psp_id: String,
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    #[serde(flatten)]
    pub status: PayoutStatus,
    pub created: i64,
}

/// The object an event is about, in its state when the event was made; tagged `"object"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "object", rename_all = "snake_case")]
pub enum EventObject {
    Charge(Charge),
    Refund(Refund),
    Payout(Payout),
    Dispute(Dispute),
}

/// Where a dispute stands: opened `needs_response`, `under_review` once evidence is in, then
/// `won` (the amount comes back; the fee does not) or `lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

impl DisputeStatus {
    pub fn word(self) -> &'static str {
        match self {
            DisputeStatus::NeedsResponse => "needs_response",
            DisputeStatus::UnderReview => "under_review",
            DisputeStatus::Won => "won",
            DisputeStatus::Lost => "lost",
        }
    }
}

/// A chargeback the card holder's bank opened on a succeeded charge. The PSP took `amount`
/// and `fee` from the merchant's balance when it opened; `won` gives the amount back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    /// `dp_...`: the PSP names a dispute; it is also its settlement line's reference.
    pub psp_id: String,
    /// The reference of the disputed charge.
    pub charge_reference: String,
    pub amount: u64,
    pub currency: String,
    /// The PSP's dispute fee, kept whatever the outcome.
    pub fee: u64,
    /// `fraudulent`, `product_not_received`, `duplicate`, `subscription_canceled`,
    /// `unrecognized` or `general`.
    pub reason: String,
    pub status: DisputeStatus,
    pub evidence_submitted: bool,
    pub created: i64,
}

/// A webhook event: the signed body POSTed to the webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `evt_...`; a duplicated delivery carries the same id.
    pub id: String,
    /// `charge.succeeded`, `charge.failed`, `charge.canceled`, `charge.authorized` (a 3-D Secure
    /// challenge completed for a charge made with `capture: false`), `refund.succeeded`,
    /// `payout.paid`, `payout.failed`, `charge.dispute.created`, `charge.dispute.closed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub data: EventObject,
}

/// What a settlement line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementKind {
    Charge,
    Refund,
    Payout,
    /// A dispute, on the day it opened: `amount` and `fee` taken, `status` its current one.
    Dispute,
}

/// One row of the daily settlement report (CSV, columns in field order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementLine {
    pub date: chrono::NaiveDate,
    pub kind: SettlementKind,
    pub psp_id: String,
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    pub fee: u64,
    /// `authorized`, `succeeded`, `failed`, `pending` or `paid`; a dispute's `needs_response`,
    /// `under_review`, `won` or `lost`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_flatten_into_their_objects() {
        let charge = Charge {
            psp_id: "ch_1".to_owned(),
            reference: "o1".to_owned(),
            amount: 1000,
            currency: "USD".to_owned(),
            status: ChargeStatus::Failed {
                code: "card_declined".to_owned(),
                message: "Your card was declined.".to_owned(),
            },
            fee: 0,
            created: 7,
        };
        let event = Event {
            id: "evt_1".to_owned(),
            kind: "charge.failed".to_owned(),
            created: 7,
            data: EventObject::Charge(charge),
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"id":"evt_1","type":"charge.failed","created":7,"data":{"object":"charge","#
                .to_owned()
                + r#""psp_id":"ch_1","reference":"o1","amount":1000,"currency":"USD","#
                + r#""status":"failed","code":"card_declined","#
                + r#""message":"Your card was declined.","fee":0,"created":7}}"#
        );
    }
}
