//! Authorize now, capture later: a payment made with `capture: "manual"` is only authorized at
//! the PSP; its order waits `requires_capture`, the hold pending in the ledger, until
//! `capture_order` (all or part of it; the ledger posts the hold for that amount and releases
//! the rest, the fee is taken on the captured amount), `cancel_order`, or the worker cancels it
//! when its authorization expires (`cancel_expired`).
//!
//! Each step asks the PSP first, under an idempotency key derived from the order id, then
//! commits one Txn conditioned on the order's version: the status, the transfers (ids derived
//! from the order id and their leg), the authorization index entry deleted, the audit entry and
//! the event. Whichever of the API and the worker reaches the PSP first wins there (a captured
//! charge cannot be canceled, nor a canceled one captured); the other settles what the PSP says.

use super::{parse_id, Pay};
use crate::domain::capture::{self, CaptureRefusal};
use crate::domain::ids::OrderId;
use crate::domain::model::{ns, Cancellation, ChargeStatus, Order};
use crate::domain::money::{parse_amount, AmountInput, Currency};
use crate::domain::postings;
use crate::edges::psp::{self, PspError};
use crate::edges::store::{Txn, RECORD_SCAN_PAGE_MAX};
use crate::error::PayError;
use crate::flows::audit;
use crate::flows::conversion::FixedRate;

/// Authorization index entries one worker step reads before canceling them.
pub const AUTHORIZATION_PAGE_MAX: u32 = 256;
const _: () = assert!(AUTHORIZATION_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);

/// Expired authorizations one worker pass cancels at most; the rest wait for the next pass.
pub const CANCELS_PER_PASS_MAX: usize = 4096;
const _: () = assert!(CANCELS_PER_PASS_MAX >= AUTHORIZATION_PAGE_MAX as usize);

impl Cancellation {
    /// The audit action of a cancellation.
    fn action(self) -> &'static str {
        match self {
            Cancellation::Requested => "payment_order.cancel",
            Cancellation::AuthorizationExpired => "payment_order.cancel_authorization_expired",
        }
    }
}

impl Pay {
    /// Records an order's authorization: `requires_capture`, out of the in-flight (or action)
    /// index, into the authorization index under its expiry time. Only a manual-capture order
    /// still processing (or waiting for its customer's authentication) changes.
    pub(crate) async fn authorized(&self, id: &str, psp_id: String) -> Result<(), PayError> {
        let validity_s = self.config.pay.authorization_validity_s;
        self.update::<Order, _>(ns::ORDER, id, |order| {
            let waiting = matches!(
                order.status,
                ChargeStatus::Processing | ChargeStatus::DeadLetter | ChargeStatus::RequiresAction
            );
            if !waiting || order.capture != capture::CaptureMethod::Manual {
                return None;
            }
            let now = self.clock.now_ms();
            let at = capture::expires_at(now, validity_s);
            let mut next = order.clone();
            next.status = ChargeStatus::RequiresCapture;
            next.psp_id = Some(psp_id.clone());
            next.authorization_expires_at = Some(at);
            next.failure = None;
            next.updated_at = now;
            let key = capture::expiry_key(at, &order.id);
            let txn = Self::untrack(Txn::new(), &order.id).put(ns::AUTHORIZATION, &key, &order.id);
            let txn = Self::end_action(txn, order, &mut next);
            Some((next, txn))
        })
        .await
        .map(drop)
    }

    /// Captures an authorized order, `amount` of it or all; the rest of the authorization is
    /// released.
    pub async fn capture_order(
        &self,
        id: &str,
        amount: Option<&AmountInput>,
    ) -> Result<Order, PayError> {
        let id: OrderId = parse_id("order_id", id)?;
        let order = self
            .load::<Order>(ns::ORDER, &id, "payment order")
            .await?
            .value;
        let requested = match amount {
            Some(input) if input.amount.is_some() || input.amount_decimal.is_some() => {
                let currency = Currency::by_code(&order.currency).ok_or_else(|| {
                    PayError::Internal(format!("order {id} has currency {}", order.currency))
                })?;
                let parsed = parse_amount(input, currency)
                    .map_err(|e| PayError::invalid("invalid_amount", e.to_string()))?;
                Some(parsed)
            }
            _ => None,
        };
        if capture::captured_already(&order, requested) {
            return Ok(order);
        }
        let amount = capture::capture_amount(&order, requested).map_err(refusal)?;
        let outcome = self.psp.capture(&order.id, amount).await;
        self.metrics.psp_call("capture", &outcome);
        let charge = match outcome {
            Ok(charge) => charge,
            // Refused: canceled (the authorization expired meanwhile) or captured already.
            Err(PspError::Invalid { message } | PspError::Declined { message, .. }) => {
                let order = self.settle_as_the_psp_has_it(&order.id).await?;
                return Err(match order.status {
                    ChargeStatus::RequiresCapture => PayError::unprocessable(
                        "capture_refused",
                        format!("the PSP refused the capture: {message}"),
                    ),
                    status => refusal(CaptureRefusal::NotCapturable(status)),
                });
            }
            Err(error) => return Err(PayError::PspUnavailable(error.to_string())),
        };
        if charge.status != psp::ChargeStatus::Succeeded {
            return Err(PayError::PspUnavailable(format!(
                "the PSP answered a capture with {:?}",
                charge.status
            )));
        }
        let settled = self.settle_charge(&order.id, Ok(captured(&charge))).await?;
        self.metrics.inc("tally_pay_orders_captured_total");
        Ok(settled)
    }

    /// Cancels an authorized order: the authorization is released at the PSP and the hold
    /// voided. An order canceled already is returned as it is.
    pub async fn cancel_order(&self, id: &str) -> Result<Order, PayError> {
        let id: OrderId = parse_id("order_id", id)?;
        let order = self
            .load::<Order>(ns::ORDER, &id, "payment order")
            .await?
            .value;
        if order.status == ChargeStatus::Canceled {
            return Ok(order);
        }
        if order.status != ChargeStatus::RequiresCapture {
            return Err(not_cancelable(&order));
        }
        let order = self
            .cancel_authorization(&order.id, Cancellation::Requested)
            .await?;
        match order.status {
            ChargeStatus::Canceled => Ok(order),
            // The PSP refused, yet still holds the authorization.
            ChargeStatus::RequiresCapture => Err(PayError::unprocessable(
                "cancel_refused",
                "the PSP refused to cancel the authorization; try again",
            )),
            _ => Err(not_cancelable(&order)),
        }
    }

    /// Cancels the authorization of order `id` at the PSP, then in the ledger. When the PSP
    /// refuses (captured first), settles the order as the PSP has it. Returns the order.
    async fn cancel_authorization(&self, id: &str, why: Cancellation) -> Result<Order, PayError> {
        let outcome = self.psp.cancel(id).await;
        self.metrics.psp_call("cancel", &outcome);
        match outcome {
            Ok(charge) if charge.status == psp::ChargeStatus::Canceled => {
                self.commit_cancel(id, why).await
            }
            Ok(_) | Err(PspError::Invalid { .. } | PspError::Declined { .. }) => {
                self.settle_as_the_psp_has_it(id).await
            }
            Err(error) => Err(PayError::PspUnavailable(error.to_string())),
        }
    }

    /// The canceled order in one Txn: the hold voided, the index entry deleted, the audit
    /// entry (and, through `update`, the event). Once: an order not waiting for its capture is
    /// left as it is.
    async fn commit_cancel(&self, id: &str, why: Cancellation) -> Result<Order, PayError> {
        let mut changed = false;
        let order = self
            .update::<Order, _>(ns::ORDER, id, |order| {
                let next = capture::canceled(order, why, self.clock.now_ms());
                changed = next.is_some();
                let mut txn = audit::stamp(Txn::new(), why.action(), &order.id)
                    .postings([postings::hold_voided(&order.id)]);
                if let Some(at) = order.authorization_expires_at {
                    txn = txn.delete(ns::AUTHORIZATION, &capture::expiry_key(at, &order.id));
                }
                Some((next?, txn))
            })
            .await?;
        if changed {
            self.metrics.inc("tally_pay_orders_canceled_total");
        }
        Ok(order)
    }

    /// Asks the PSP how an authorized order's charge stands and settles the order so: captured
    /// (for what was captured) or canceled. Returns the order as it then is.
    async fn settle_as_the_psp_has_it(&self, id: &str) -> Result<Order, PayError> {
        let charge = self
            .psp
            .charge_status(id)
            .await
            .map_err(|error| PayError::PspUnavailable(error.to_string()))?;
        match charge.status {
            psp::ChargeStatus::Succeeded => self.settle_charge(id, Ok(captured(&charge))).await,
            psp::ChargeStatus::Canceled => {
                self.commit_cancel(id, Cancellation::AuthorizationExpired)
                    .await
            }
            _ => Ok(self
                .load::<Order>(ns::ORDER, id, "payment order")
                .await?
                .value),
        }
    }

    /// One worker pass: cancels every authorization past its validity, reading the
    /// authorization index (sorted by expiry) [`AUTHORIZATION_PAGE_MAX`] entries at a time and
    /// stopping at the first not yet expired, or after [`CANCELS_PER_PASS_MAX`]. Returns how
    /// many it canceled.
    pub async fn cancel_expired(&self) -> Result<usize, PayError> {
        let now = self.clock.now_ms();
        let (mut canceled, mut seen) = (0, 0);
        let mut cursor = String::new();
        loop {
            let page = self
                .store
                .next_page::<String>(ns::AUTHORIZATION, "", &mut cursor, AUTHORIZATION_PAGE_MAX)
                .await?;
            if page.is_empty() {
                return Ok(canceled);
            }
            for (key, entry) in page {
                match capture::expiry_time(&key) {
                    Some(at) if at > now => return Ok(canceled),
                    Some(_) => {}
                    None => {
                        tracing::error!(key, "malformed authorization index key; left alone");
                        continue;
                    }
                }
                seen += 1;
                if self.cancel_one_expired(&key, &entry.value).await? {
                    canceled += 1;
                }
                if seen >= CANCELS_PER_PASS_MAX {
                    return Ok(canceled);
                }
            }
        }
    }

    /// Cancels the expired authorization of one index entry; true when it was canceled now.
    async fn cancel_one_expired(&self, key: &str, id: &str) -> Result<bool, PayError> {
        let order = self
            .load::<Order>(ns::ORDER, id, "payment order")
            .await?
            .value;
        if order.status != ChargeStatus::RequiresCapture {
            // Captured or canceled yet still indexed: a leftover; drop the entry.
            tracing::warn!(order = %order.id, status = ?order.status,
                "authorization index entry of an order not authorized; removed");
            self.store
                .commit(Txn::new().delete(ns::AUTHORIZATION, key))
                .await?;
            return Ok(false);
        }
        match self
            .cancel_authorization(id, Cancellation::AuthorizationExpired)
            .await
        {
            Ok(order) => Ok(order.cancellation == Some(Cancellation::AuthorizationExpired)),
            Err(error) => {
                tracing::warn!(order = %id, %error, "canceling an expired authorization failed");
                Ok(false)
            }
        }
    }
}

/// A capture refused before (or by) the PSP, as the API answers it.
fn refusal(refusal: CaptureRefusal) -> PayError {
    match refusal {
        CaptureRefusal::NotCapturable(status) => PayError::unprocessable(
            "order_not_capturable",
            format!(
                "the order is {}; only an authorized order (requires_capture) can be captured",
                status_word(status)
            ),
        ),
        CaptureRefusal::AmountOutOfRange { authorized } => PayError::unprocessable(
            "capture_amount_too_large",
            format!("amount must be 1 to {authorized}, the amount authorized (minor units)"),
        ),
    }
}

fn not_cancelable(order: &Order) -> PayError {
    PayError::unprocessable(
        "order_not_cancelable",
        format!(
            "the order is {}; only an authorized order (requires_capture) can be canceled",
            status_word(order.status)
        ),
    )
}

/// The status as the API writes it.
fn status_word(status: ChargeStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// What the PSP captured of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Captured {
    pub psp_id: String,
    /// The PSP's processing fee.
    pub psp_fee: u64,
    /// What was captured; `None`: all of it. Only an authorized order (`requires_capture`)
    /// takes less than its amount.
    pub amount: Option<u64>,
    /// The FX rate read for the capture, for an order paid out in another currency.
    pub rate: Option<FixedRate>,
}

/// A succeeded PSP charge as captured.
pub(crate) fn captured(charge: &psp::Charge) -> Captured {
    Captured {
        psp_id: charge.psp_id.clone(),
        psp_fee: charge.fee,
        amount: Some(charge.amount),
        rate: None,
    }
}
