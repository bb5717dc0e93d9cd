//! PSP webhooks: verified (signature in constant time, timestamp tolerance), deduplicated by the
//! event id, and applied through the same settle functions as the worker, so whichever of the two
//! comes second is a no-op. Events may arrive in any order: only terminal states are acted on,
//! and a terminal object never changes again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::capture::captured;
use super::{failure, Pay};
use crate::domain::model::ns;
use crate::edges::psp::{self, PspObject, WebhookError, WebhookEvent};
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;

/// What happened to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookReceipt {
    pub event_id: String,
    /// `applied`, `duplicate` or `ignored` (an event about an object Tally does not have, or a
    /// non-terminal state).
    pub result: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SeenEvent {
    kind: String,
    received_at: i64,
}

impl Pay {
    pub async fn receive_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookReceipt, PayError> {
        let event = self.verified_event(headers, body)?;
        if self
            .store
            .get::<SeenEvent>(ns::WEBHOOK, &event.id)
            .await?
            .is_some()
        {
            self.metrics.inc("tally_pay_webhooks_duplicate_total");
            return Ok(WebhookReceipt {
                event_id: event.id,
                result: "duplicate".into(),
            });
        }
        let applied = self.apply_event(&event).await?;
        // Remember the event after applying it: a crash in between means the PSP redelivers and
        // the second application is a no-op anyway.
        let duplicate = self.remember_event(&event).await?;
        self.metrics.inc("tally_pay_webhooks_applied_total");
        Ok(WebhookReceipt {
            event_id: event.id,
            result: if duplicate {
                "duplicate"
            } else if applied {
                "applied"
            } else {
                "ignored"
            }
            .into(),
        })
    }

    /// The event, once its signature and timestamp check out and its id is well formed.
    fn verified_event(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookEvent, PayError> {
        let tolerance = Duration::from_secs(self.config.psp.webhook_tolerance_s);
        let event = self
            .psp
            .verify_webhook(headers, body, self.clock.now_ms() / 1000, tolerance)
            .map_err(|e| {
                self.metrics.inc("tally_pay_webhooks_rejected_total");
                match e {
                    WebhookError::Malformed(m) => PayError::invalid("malformed_event", m),
                    WebhookError::StaleTimestamp { .. } => PayError::Unauthorized {
                        code: "stale_timestamp",
                        message: e.to_string(),
                    },
                    other => PayError::Unauthorized {
                        code: "bad_signature",
                        message: other.to_string(),
                    },
                }
            })?;
        if event.id.is_empty() || event.id.len() > 255 {
            return Err(PayError::invalid(
                "malformed_event",
                "event id must be 1 to 255 bytes",
            ));
        }
        Ok(event)
    }

    /// Records the event as seen; true if a concurrent delivery recorded it first.
    async fn remember_event(&self, event: &WebhookEvent) -> Result<bool, PayError> {
        let txn = Txn::new().require_version(ns::WEBHOOK, &event.id, 0).put(
            ns::WEBHOOK,
            &event.id,
            &SeenEvent {
                kind: event.kind.clone(),
                received_at: self.clock.now_ms(),
            },
        );
        Ok(matches!(
            self.store.commit(txn).await?,
            Commit::ConditionFailed { .. }
        ))
    }

    /// Applies a verified event; false when there was nothing to act on.
    async fn apply_event(&self, event: &WebhookEvent) -> Result<bool, PayError> {
        match &event.data {
            PspObject::Charge(charge) => return self.charge_event(charge).await,
            PspObject::Refund(refund) => {
                if !self.known(ns::REFUND, &refund.reference).await? {
                    return Ok(false);
                }
                match &refund.status {
                    psp::RefundStatus::Succeeded => {
                        self.settle_refund(&refund.reference, Ok(refund.psp_id.clone()))
                            .await?;
                    }
                    psp::RefundStatus::Failed { code, message } => {
                        self.settle_refund(&refund.reference, Err(failure(code, message.clone())))
                            .await?;
                    }
                    psp::RefundStatus::Pending => return Ok(false),
                }
            }
            PspObject::Payout(payout) => {
                if !self.known(ns::PAYOUT, &payout.reference).await? {
                    return Ok(false);
                }
                match &payout.status {
                    psp::PayoutStatus::Paid => {
                        self.settle_payout(&payout.reference, Ok(payout.psp_id.clone()))
                            .await?;
                    }
                    psp::PayoutStatus::Failed { code, message } => {
                        self.settle_payout(&payout.reference, Err(failure(code, message.clone())))
                            .await?;
                    }
                    psp::PayoutStatus::Pending => return Ok(false),
                }
            }
            PspObject::Dispute(dispute) => return self.dispute_event(dispute).await,
        }
        Ok(true)
    }

    /// Applies a charge event: settles the order as the PSP has it; false when there was
    /// nothing to do.
    async fn charge_event(&self, charge: &psp::Charge) -> Result<bool, PayError> {
        if !self.known(ns::ORDER, &charge.reference).await? {
            return Ok(false);
        }
        match &charge.status {
            psp::ChargeStatus::Succeeded => {
                self.settle_charge(&charge.reference, Ok(captured(charge)))
                    .await?;
            }
            psp::ChargeStatus::Failed { code, message } => {
                self.settle_order(&charge.reference, Err(failure(code, message.clone())))
                    .await?;
            }
            // An authorization completed by the customer's 3-D Secure challenge
            // (otherwise tally-pay records it from its own call: a no-op).
            psp::ChargeStatus::Authorized => {
                self.authorized(&charge.reference, charge.psp_id.clone())
                    .await?;
            }
            // tally-pay records a cancellation and a wait for the customer from its
            // own calls (`capture.rs`, `action.rs`), each once, in order.
            psp::ChargeStatus::Canceled | psp::ChargeStatus::RequiresAction { .. } => {
                return Ok(false)
            }
        }
        Ok(true)
    }

    async fn known(&self, namespace: &str, reference: &str) -> Result<bool, PayError> {
        if reference.is_empty() || reference.len() > 64 {
            return Ok(false);
        }
        Ok(self
            .store
            .get::<serde_json::Value>(namespace, reference)
            .await?
            .is_some())
    }
}
