//! The PSP gateway: what tally-pay asks of a payment service provider, independent of which one.
//!
//! A [`Connector`] knows one PSP's wire format: it builds [`HttpRequest`]s and parses
//! [`HttpResponse`]s, and verifies that PSP's webhooks. It does no IO. The one [`HttpExecutor`]
//! does the IO (timeouts, connection errors), and [`Gateway`] puts the two together. A real PSP
//! plugs in as another `Connector`; the built-in one speaks to the sandbox PSP (`sandbox/`).
//!
//! These types are the gateway's, not any PSP's: they have no serde form. Each connector reads
//! and writes its PSP's wire format with structs of its own and converts them
//! (`sandbox_connector/wire.rs`).
//!
//! Amounts are integer minor units of the ISO 4217 currency (`"USD"`, 1250 = 12.50 USD).

mod dispute;
mod executor;
mod sandbox_connector;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

pub use dispute::{Dispute, DisputeStatus};
pub use executor::{http_client, HttpExecutor};
pub use sandbox_connector::SandboxConnector;

use crate::domain::disputes::Evidence;

/// An HTTP request a connector built; the executor prefixes `path` with the PSP's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: HttpMethod,
    /// Path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

/// What came back: status and body. Transport failures never become an `HttpResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a PSP call did not give a definite answer, or gave a definite "no".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PspError {
    /// A definite refusal (card declined, insufficient funds, bad bank account): never retry.
    #[error("declined: {code}: {message}")]
    Declined { code: String, message: String },
    /// The PSP said the request had no effect and may be retried (rate limit, processing error,
    /// connection refused before anything was sent). Retry with the same idempotency key.
    #[error("retryable: {reason}")]
    Retryable { reason: String },
    /// The request may or may not have taken effect (timeout after sending, connection reset,
    /// 5xx). Ask for the status, or retry with the same idempotency key.
    #[error("outcome unknown: {reason}")]
    Unknown { reason: String },
    /// A status query found no object with that reference: the request never reached the PSP.
    #[error("not found at the PSP")]
    NotFound,
    /// The PSP rejected the request as malformed (a bug on our side, or a bad token): never retry.
    #[error("rejected by the PSP: {message}")]
    Invalid { message: String },
}

impl PspError {
    /// True for errors where retrying with the same idempotency key is the right move.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PspError::Retryable { .. } | PspError::Unknown { .. })
    }
}

/// What the PSP tells us about a tokenized card. The card number and CVV never reach tally-pay:
/// the buyer's device sends them to the PSP, which returns the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDetails {
    pub token: String,
    /// `visa`, `mastercard`, `amex`, ...
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
    /// `credit`, `debit`, `prepaid` or `unknown`.
    pub funding: String,
}

/// Charge a tokenized card (authorize and capture in one step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Our id for this charge (the payment order or deposit id); also the idempotency key.
    pub reference: String,
    pub card_token: String,
    pub amount: u64,
    pub currency: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeStatus {
    /// Authorized, capture pending (only after `authorize`).
    Authorized,
    Succeeded,
    Failed {
        code: String,
        message: String,
    },
    /// An authorization canceled before its capture (only after `cancel`).
    Canceled,
    /// Waiting for the customer's authentication (3-D Secure) on the PSP's page at `url`.
    RequiresAction {
        url: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The PSP's id (`ch_...`).
    pub psp_id: String,
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    pub status: ChargeStatus,
    /// The PSP's processing fee in minor units (what it keeps at settlement).
    pub fee: u64,
    /// Unix seconds.
    pub created: i64,
}

/// Refund (part of) a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// Our refund id; also the idempotency key.
    pub reference: String,
    /// The reference of the charge being refunded.
    pub charge_reference: String,
    pub amount: u64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed { code: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub psp_id: String,
    pub reference: String,
    pub charge_reference: String,
    pub amount: u64,
    pub currency: String,
    pub status: RefundStatus,
    pub created: i64,
}

/// Where a payout goes. Exactly one of `iban` or (`account_number`, `routing_number`) is set.
#[derive(Clone, PartialEq, Eq)]
pub struct BankDestination {
    pub holder_name: String,
    pub country: String,
    pub iban: Option<String>,
    pub account_number: Option<String>,
    pub routing_number: Option<String>,
}

impl std::fmt::Debug for BankDestination {
    /// Account numbers are sensitive: only the last four digits are ever printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mask = |value: &Option<String>| value.as_deref().map(crate::domain::bank::mask);
        f.debug_struct("BankDestination")
            .field("holder_name", &self.holder_name)
            .field("country", &self.country)
            .field("iban", &mask(&self.iban))
            .field("account_number", &mask(&self.account_number))
            .field("routing_number", &self.routing_number)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRequest {
    /// Our payout id; also the idempotency key.
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    pub destination: BankDestination,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutStatus {
    /// Accepted, money on its way (payouts complete asynchronously).
    Pending,
    Paid,
    Failed {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub psp_id: String,
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    pub status: PayoutStatus,
    pub created: i64,
}

/// The object a webhook is about, in its state when the event was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PspObject {
    Charge(Charge),
    Refund(Refund),
    Payout(Payout),
    Dispute(Dispute),
}

/// A verified webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The PSP's event id (`evt_...`): the same event delivered twice has the same id.
    pub id: String,
    /// `charge.succeeded`, `charge.failed`, `refund.succeeded`, `refund.failed`, `payout.paid`,
    /// `payout.failed`, `charge.dispute.created`, `charge.dispute.closed`.
    pub kind: String,
    /// Unix seconds when the event was created.
    pub created: i64,
    pub data: PspObject,
}

/// Why a webhook was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing signature header")]
    MissingSignature,
    #[error("malformed signature header")]
    MalformedSignature,
    #[error("signature does not match")]
    BadSignature,
    #[error("timestamp outside the tolerance ({age_seconds} s old)")]
    StaleTimestamp { age_seconds: i64 },
    #[error("malformed event: {0}")]
    Malformed(String),
}

/// What a line of the PSP's daily settlement report is about. It serializes as its word
/// (`"charge"`), which is how tests print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementKind {
    Charge,
    Refund,
    Payout,
    /// A dispute on the day it opened; its reference is the PSP's dispute id.
    Dispute,
}

/// One line of the PSP's settlement report for a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementLine {
    pub date: chrono::NaiveDate,
    pub kind: SettlementKind,
    pub psp_id: String,
    /// Our reference (order, deposit, refund or payout id).
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    pub fee: u64,
    /// `succeeded`, `failed`, `paid`, `pending`, `authorized`.
    pub status: SettlementStatus,
}

/// A settlement line's status, as the PSP words it. A word Tally does not know is kept as given
/// (`Other`), so it still reaches reconciliation (as a mismatch) and the stored items unchanged.
/// It serializes as that word.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SettlementStatus {
    Authorized,
    Succeeded,
    Pending,
    Paid,
    Failed,
    /// A dispute's statuses.
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
    Other(String),
}

impl SettlementStatus {
    pub fn as_str(&self) -> &str {
        match self {
            SettlementStatus::Authorized => "authorized",
            SettlementStatus::Succeeded => "succeeded",
            SettlementStatus::Pending => "pending",
            SettlementStatus::Paid => "paid",
            SettlementStatus::Failed => "failed",
            SettlementStatus::NeedsResponse => "needs_response",
            SettlementStatus::UnderReview => "under_review",
            SettlementStatus::Won => "won",
            SettlementStatus::Lost => "lost",
            SettlementStatus::Other(word) => word,
        }
    }
}

impl From<String> for SettlementStatus {
    fn from(word: String) -> SettlementStatus {
        match word.as_str() {
            "authorized" => SettlementStatus::Authorized,
            "succeeded" => SettlementStatus::Succeeded,
            "pending" => SettlementStatus::Pending,
            "paid" => SettlementStatus::Paid,
            "failed" => SettlementStatus::Failed,
            "needs_response" => SettlementStatus::NeedsResponse,
            "under_review" => SettlementStatus::UnderReview,
            "won" => SettlementStatus::Won,
            "lost" => SettlementStatus::Lost,
            _ => SettlementStatus::Other(word),
        }
    }
}

impl From<&str> for SettlementStatus {
    fn from(word: &str) -> SettlementStatus {
        SettlementStatus::from(word.to_string())
    }
}

impl From<SettlementStatus> for String {
    fn from(status: SettlementStatus) -> String {
        match status {
            SettlementStatus::Other(word) => word,
            known => known.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for SettlementStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One PSP's wire format. Pure: builds requests, parses responses, verifies webhooks.
pub trait Connector: Send + Sync + 'static {
    /// A short name for logs and metrics (`sandbox`).
    fn name(&self) -> &'static str;

    fn card_request(&self, token: &str) -> HttpRequest;
    fn card_response(&self, response: &HttpResponse) -> Result<CardDetails, PspError>;

    fn charge_request(&self, request: &ChargeRequest) -> HttpRequest;
    fn charge_response(&self, response: &HttpResponse) -> Result<Charge, PspError>;

    /// Authorize only; `capture` completes it.
    fn authorize_request(&self, request: &ChargeRequest) -> HttpRequest;
    fn capture_request(&self, reference: &str, amount: u64) -> HttpRequest;
    /// Cancel an authorization not captured: the hold on the card is released.
    fn cancel_request(&self, reference: &str) -> HttpRequest;

    /// Look a charge up by our reference. `Err(NotFound)` when the PSP never saw it.
    fn charge_status_request(&self, reference: &str) -> HttpRequest;

    fn refund_request(&self, request: &RefundRequest) -> HttpRequest;
    fn refund_response(&self, response: &HttpResponse) -> Result<Refund, PspError>;
    fn refund_status_request(&self, reference: &str) -> HttpRequest;

    fn payout_request(&self, request: &PayoutRequest) -> HttpRequest;
    fn payout_response(&self, response: &HttpResponse) -> Result<Payout, PspError>;
    fn payout_status_request(&self, reference: &str) -> HttpRequest;

    /// Send a dispute's evidence (once; `psp_id` is the PSP's dispute id).
    fn evidence_request(&self, psp_id: &str, key: &str, evidence: &Evidence) -> HttpRequest;
    fn dispute_response(&self, response: &HttpResponse) -> Result<Dispute, PspError>;

    fn settlement_request(&self, day: chrono::NaiveDate) -> HttpRequest;
    fn settlement_response(&self, response: &HttpResponse)
        -> Result<Vec<SettlementLine>, PspError>;

    /// Checks the signature (constant time) and the timestamp (at most `tolerance` from `now`),
    /// then parses the event.
    /// The PSP's current FX rate of a currency pair.
    fn fx_rate_request(&self, base: &str, quote: &str) -> HttpRequest;
    fn fx_rate_response(&self, response: &HttpResponse) -> Result<QuotedRate, PspError>;

    fn verify_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now_unix: i64,
        tolerance: Duration,
    ) -> Result<WebhookEvent, WebhookError>;
}

/// A rate the PSP quotes: units of `quote` per unit of `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedRate {
    pub base: String,
    pub quote: String,
    pub rate: rust_decimal::Decimal,
}

/// A connector plus the executor: the async calls the payment flows make.
#[derive(Clone)]
pub struct Gateway {
    connector: Arc<dyn Connector>,
    executor: HttpExecutor,
}

impl Gateway {
    pub fn new(connector: Arc<dyn Connector>, executor: HttpExecutor) -> Gateway {
        Gateway {
            connector,
            executor,
        }
    }

    pub fn connector(&self) -> &dyn Connector {
        self.connector.as_ref()
    }

    pub async fn card(&self, token: &str) -> Result<CardDetails, PspError> {
        let response = self
            .executor
            .execute(self.connector.card_request(token))
            .await?;
        self.connector.card_response(&response)
    }

    pub async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PspError> {
        let response = self
            .executor
            .execute(self.connector.charge_request(request))
            .await?;
        self.connector.charge_response(&response)
    }

    pub async fn authorize(&self, request: &ChargeRequest) -> Result<Charge, PspError> {
        let response = self
            .executor
            .execute(self.connector.authorize_request(request))
            .await?;
        self.connector.charge_response(&response)
    }

    pub async fn capture(&self, reference: &str, amount: u64) -> Result<Charge, PspError> {
        let response = self
            .executor
            .execute(self.connector.capture_request(reference, amount))
            .await?;
        self.connector.charge_response(&response)
    }

    pub async fn cancel(&self, reference: &str) -> Result<Charge, PspError> {
        let response = self
            .executor
            .execute(self.connector.cancel_request(reference))
            .await?;
        self.connector.charge_response(&response)
    }

    pub async fn charge_status(&self, reference: &str) -> Result<Charge, PspError> {
        let response = self
            .executor
            .execute(self.connector.charge_status_request(reference))
            .await?;
        self.connector.charge_response(&response)
    }

    pub async fn refund(&self, request: &RefundRequest) -> Result<Refund, PspError> {
        let response = self
            .executor
            .execute(self.connector.refund_request(request))
            .await?;
        self.connector.refund_response(&response)
    }

    pub async fn refund_status(&self, reference: &str) -> Result<Refund, PspError> {
        let response = self
            .executor
            .execute(self.connector.refund_status_request(reference))
            .await?;
        self.connector.refund_response(&response)
    }

    pub async fn payout(&self, request: &PayoutRequest) -> Result<Payout, PspError> {
        let response = self
            .executor
            .execute(self.connector.payout_request(request))
            .await?;
        self.connector.payout_response(&response)
    }

    pub async fn payout_status(&self, reference: &str) -> Result<Payout, PspError> {
        let response = self
            .executor
            .execute(self.connector.payout_status_request(reference))
            .await?;
        self.connector.payout_response(&response)
    }

    pub async fn fx_rate(&self, base: &str, quote: &str) -> Result<QuotedRate, PspError> {
        let response = self
            .executor
            .execute(self.connector.fx_rate_request(base, quote))
            .await?;
        self.connector.fx_rate_response(&response)
    }

    /// Sends a dispute's evidence under the idempotency key `key`.
    pub async fn submit_evidence(
        &self,
        psp_id: &str,
        key: &str,
        evidence: &Evidence,
    ) -> Result<Dispute, PspError> {
        let request = self.connector.evidence_request(psp_id, key, evidence);
        let response = self.executor.execute(request).await?;
        self.connector.dispute_response(&response)
    }

    pub async fn settlement(
        &self,
        day: chrono::NaiveDate,
    ) -> Result<Vec<SettlementLine>, PspError> {
        let response = self
            .executor
            .execute(self.connector.settlement_request(day))
            .await?;
        self.connector.settlement_response(&response)
    }

    pub fn verify_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now_unix: i64,
        tolerance: Duration,
    ) -> Result<WebhookEvent, WebhookError> {
        self.connector
            .verify_webhook(headers, body, now_unix, tolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settlement_statuses_keep_their_words() {
        for word in [
            "authorized",
            "succeeded",
            "pending",
            "paid",
            "failed",
            "needs_response",
            "under_review",
            "won",
            "lost",
            "refused",
        ] {
            let status = SettlementStatus::from(word);
            assert_eq!(status.as_str(), word);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("{word:?}"));
            assert_eq!(
                serde_json::from_str::<SettlementStatus>(&json).unwrap(),
                status
            );
        }
        assert_eq!(SettlementStatus::from("paid"), SettlementStatus::Paid);
        assert_eq!(
            SettlementStatus::from("refused"),
            SettlementStatus::Other("refused".into())
        );
    }
}
