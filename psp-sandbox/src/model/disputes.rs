//! Disputes (chargebacks): opened on a succeeded charge by `POST /_sandbox/charges/{ref}/dispute`
//! or by the disputed test card at capture, answered with evidence (`POST
//! /v1/disputes/{id}/evidence`, once), and closed `won` or `lost` by `POST
//! /_sandbox/disputes/{id}/resolve`. Opening takes the amount and [`DISPUTE_FEE`] from the
//! merchant (webhook `charge.dispute.created`); closing sends `charge.dispute.closed`, and a won
//! dispute gives the amount back (the fee stays with the PSP).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Effect, Model, Outcome};
use crate::constants::{DISPUTE_FEE, EVIDENCE_TEXT_LENGTH_MAX};
use crate::error::ApiError;
use crate::wire::{ChargeStatus, Dispute, DisputeStatus, EventObject};

/// The reasons a card holder's bank may give.
pub const REASONS: [&str; 6] = [
    "fraudulent",
    "product_not_received",
    "duplicate",
    "subscription_canceled",
    "unrecognized",
    "general",
];

/// A dispute as the sandbox keeps it: the wire object and the evidence it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeRecord {
    #[serde(flatten)]
    pub dispute: Dispute,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceInput>,
}

/// The body of `POST /_sandbox/charges/{reference}/dispute`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeInput {
    /// At most what is left of the charge after refunds; default: all of that.
    #[serde(default)]
    pub amount: Option<u64>,
    /// One of [`REASONS`]; default `fraudulent`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The body of `POST /v1/disputes/{id}/evidence`: texts of at most
/// [`EVIDENCE_TEXT_LENGTH_MAX`] bytes, at least one of them not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    #[serde(default)]
    pub product_description: Option<String>,
    #[serde(default)]
    pub customer_communication: Option<String>,
    #[serde(default)]
    pub uncategorized_text: Option<String>,
}

/// The body of `POST /_sandbox/disputes/{id}/resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// `won` or `lost`.
    pub outcome: DisputeStatus,
}

impl EvidenceInput {
    fn validate(&self) -> Result<(), ApiError> {
        let texts = [
            &self.product_description,
            &self.customer_communication,
            &self.uncategorized_text,
        ];
        if texts.iter().any(|t| {
            t.as_ref()
                .is_some_and(|t| t.len() > EVIDENCE_TEXT_LENGTH_MAX)
        }) {
            return Err(ApiError::invalid(
                "evidence_too_long",
                format!("each evidence text is at most {EVIDENCE_TEXT_LENGTH_MAX} bytes"),
            ));
        }
        if texts
            .iter()
            .all(|t| t.as_ref().is_none_or(String::is_empty))
        {
            return Err(ApiError::invalid(
                "evidence_empty",
                "give at least one evidence text",
            ));
        }
        Ok(())
    }
}

impl Model {
    pub fn dispute(&self, id: &str) -> Option<&DisputeRecord> {
        self.disputes.get(id)
    }

    pub fn disputes(&self) -> &[DisputeRecord] {
        &self.disputes.items
    }

    pub(super) fn restore_disputes(&mut self, disputes: Vec<DisputeRecord>) {
        for record in disputes {
            self.disputes.insert(record.dispute.psp_id.clone(), record);
        }
    }

    /// Opens a dispute on a succeeded charge; a charge is disputed at most once.
    pub fn open_dispute(
        &mut self,
        reference: &str,
        input: &DisputeInput,
        now: DateTime<Utc>,
    ) -> Result<Outcome<DisputeRecord>, ApiError> {
        let reason = input.reason.as_deref().unwrap_or("fraudulent");
        if !REASONS.contains(&reason) {
            return Err(ApiError::invalid(
                "invalid_reason",
                format!("reason must be one of {REASONS:?}"),
            ));
        }
        self.disputes.check_room("dispute")?;
        let charge = self
            .charges
            .get(reference)
            .ok_or_else(|| ApiError::not_found("charge", reference))?;
        if charge.charge.status != ChargeStatus::Succeeded {
            return Err(ApiError::invalid(
                "charge_not_disputable",
                format!("charge `{reference}` has not succeeded"),
            ));
        }
        if self
            .disputes
            .items
            .iter()
            .any(|d| d.dispute.charge_reference == reference)
        {
            return Err(ApiError::invalid(
                "charge_already_disputed",
                format!("charge `{reference}` is disputed already"),
            ));
        }
        let left = charge.charge.amount - charge.amount_refunded;
        let amount = input.amount.unwrap_or(left);
        if amount == 0 || amount > left {
            return Err(ApiError::invalid(
                "invalid_amount",
                format!("a dispute of this charge is 1 to {left} minor units"),
            ));
        }
        let currency = charge.charge.currency.clone();
        let dispute = Dispute {
            psp_id: self.new_id("dp"),
            charge_reference: reference.to_owned(),
            amount,
            currency,
            fee: DISPUTE_FEE,
            reason: reason.to_owned(),
            status: DisputeStatus::NeedsResponse,
            evidence_submitted: false,
            created: now.timestamp(),
        };
        let effect = self.event(
            "charge.dispute.created",
            EventObject::Dispute(dispute.clone()),
            now,
        );
        let record = DisputeRecord {
            dispute,
            evidence: None,
        };
        self.disputes
            .insert(record.dispute.psp_id.clone(), record.clone());
        Ok(Outcome {
            object: record,
            effects: vec![effect],
        })
    }

    /// The dispute the disputed test card opens once its charge is captured.
    pub(super) fn dispute_if_captured(
        &mut self,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Vec<Effect> {
        let disputed = self
            .charges
            .get(reference)
            .is_some_and(|c| c.dispute_at_capture && c.charge.status == ChargeStatus::Succeeded);
        if !disputed {
            return Vec::new();
        }
        match self.open_dispute(reference, &DisputeInput::default(), now) {
            Ok(outcome) => outcome.effects,
            Err(error) => {
                tracing::warn!(%reference, code = %error.code, "test card dispute not opened");
                Vec::new()
            }
        }
    }

    /// Takes the merchant's evidence: once, while the dispute needs a response; it is then
    /// `under_review`.
    pub fn submit_evidence(
        &mut self,
        id: &str,
        input: &EvidenceInput,
    ) -> Result<Outcome<DisputeRecord>, ApiError> {
        input.validate()?;
        let record = self
            .disputes
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("dispute", id))?;
        if record.dispute.status != DisputeStatus::NeedsResponse {
            return Err(ApiError::invalid(
                "dispute_not_open_for_evidence",
                format!(
                    "dispute `{id}` is {}; evidence is taken once, while it needs a response",
                    record.dispute.status.word()
                ),
            ));
        }
        record.dispute.status = DisputeStatus::UnderReview;
        record.dispute.evidence_submitted = true;
        record.evidence = Some(input.clone());
        Ok(Outcome {
            object: record.clone(),
            effects: Vec::new(),
        })
    }

    /// Closes an open dispute `won` or `lost`.
    pub fn resolve_dispute(
        &mut self,
        id: &str,
        resolution: &Resolution,
        now: DateTime<Utc>,
    ) -> Result<Outcome<DisputeRecord>, ApiError> {
        if !matches!(resolution.outcome, DisputeStatus::Won | DisputeStatus::Lost) {
            return Err(ApiError::invalid(
                "invalid_outcome",
                "outcome must be `won` or `lost`",
            ));
        }
        let record = self
            .disputes
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("dispute", id))?;
        if matches!(
            record.dispute.status,
            DisputeStatus::Won | DisputeStatus::Lost
        ) {
            return Err(ApiError::invalid(
                "dispute_closed",
                format!("dispute `{id}` is {} already", record.dispute.status.word()),
            ));
        }
        record.dispute.status = resolution.outcome;
        let record = record.clone();
        let effect = self.event(
            "charge.dispute.closed",
            EventObject::Dispute(record.dispute.clone()),
            now,
        );
        Ok(Outcome {
            object: record,
            effects: vec![effect],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{charge_input, model, now, token};
    use super::*;
    use crate::wire::Event;

    fn kinds(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Webhook(Event { kind, .. }) => kind.as_str(),
                Effect::CompletePayout { .. } => "payout",
                Effect::ExpireChallenge { .. } => "challenge",
            })
            .collect()
    }

    #[test]
    fn a_dispute_opens_takes_evidence_once_and_closes_once() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        model
            .create_charge(&charge_input("o1", &token, 1000), now())
            .unwrap();
        let input = DisputeInput {
            amount: Some(600),
            reason: None,
        };
        let opened = model.open_dispute("o1", &input, now()).unwrap();
        assert_eq!(kinds(&opened.effects), ["charge.dispute.created"]);
        let dispute = opened.object.dispute;
        assert!(dispute.psp_id.starts_with("dp_"));
        assert_eq!((dispute.amount, dispute.fee), (600, DISPUTE_FEE));
        assert_eq!(dispute.reason, "fraudulent");
        let again = model.open_dispute("o1", &input, now()).unwrap_err();
        assert_eq!(again.code, "charge_already_disputed");
        let id = dispute.psp_id.clone();
        let empty = model.submit_evidence(&id, &EvidenceInput::default());
        assert_eq!(empty.unwrap_err().code, "evidence_empty");
        let long = EvidenceInput {
            uncategorized_text: Some("x".repeat(EVIDENCE_TEXT_LENGTH_MAX + 1)),
            ..EvidenceInput::default()
        };
        assert_eq!(
            model.submit_evidence(&id, &long).unwrap_err().code,
            "evidence_too_long"
        );
        let evidence = EvidenceInput {
            product_description: Some("shipped, tracked".to_owned()),
            ..EvidenceInput::default()
        };
        let reviewed = model.submit_evidence(&id, &evidence).unwrap().object;
        assert_eq!(reviewed.dispute.status, DisputeStatus::UnderReview);
        assert_eq!(
            model.submit_evidence(&id, &evidence).unwrap_err().code,
            "dispute_not_open_for_evidence"
        );
        let won = Resolution {
            outcome: DisputeStatus::Won,
        };
        let closed = model.resolve_dispute(&id, &won, now()).unwrap();
        assert_eq!(kinds(&closed.effects), ["charge.dispute.closed"]);
        assert_eq!(closed.object.dispute.status, DisputeStatus::Won);
        let code = model.resolve_dispute(&id, &won, now()).unwrap_err().code;
        assert_eq!(code, "dispute_closed");
    }

    #[test]
    fn only_succeeded_charges_are_disputed_and_not_beyond_their_amount() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        let declined = super::super::testing::token(&mut model, "4000000000000002");
        model
            .create_charge(&charge_input("o1", &token, 1000), now())
            .unwrap();
        model
            .create_charge(&charge_input("o2", &declined, 1000), now())
            .unwrap();
        let too_much = DisputeInput {
            amount: Some(1001),
            reason: None,
        };
        let code = |r: Result<Outcome<DisputeRecord>, ApiError>| r.unwrap_err().code;
        assert_eq!(
            code(model.open_dispute("o1", &too_much, now())),
            "invalid_amount"
        );
        let bad_reason = DisputeInput {
            amount: None,
            reason: Some("bored".to_owned()),
        };
        assert_eq!(
            code(model.open_dispute("o1", &bad_reason, now())),
            "invalid_reason"
        );
        let input = DisputeInput::default();
        assert_eq!(
            code(model.open_dispute("o2", &input, now())),
            "charge_not_disputable"
        );
        assert_eq!(
            code(model.open_dispute("nope", &input, now())),
            "resource_missing"
        );
    }

    #[test]
    fn the_disputed_test_card_opens_a_dispute_at_capture() {
        let mut model = model();
        let token = token(&mut model, "4000000000000259");
        let charged = model
            .create_charge(&charge_input("o1", &token, 1000), now())
            .unwrap();
        assert_eq!(
            kinds(&charged.effects),
            ["charge.succeeded", "charge.dispute.created"]
        );
        let authorized = super::super::ChargeInput {
            capture: false,
            ..charge_input("o2", &token, 800)
        };
        let outcome = model.create_charge(&authorized, now()).unwrap();
        assert!(outcome.effects.is_empty());
        let captured = model
            .capture("o2", &super::super::CaptureInput::default(), now())
            .unwrap();
        assert_eq!(
            kinds(&captured.effects),
            ["charge.succeeded", "charge.dispute.created"]
        );
        assert_eq!(model.disputes().len(), 2);
        assert_eq!(model.disputes()[1].dispute.amount, 800);
    }

    #[test]
    fn dispute_lines_are_on_the_report_of_the_day_they_opened() {
        let mut model = model();
        let token = token(&mut model, "4000000000000259");
        model
            .create_charge(&charge_input("o1", &token, 1000), now())
            .unwrap();
        let id = model.disputes()[0].dispute.psp_id.clone();
        let lost = Resolution {
            outcome: DisputeStatus::Lost,
        };
        model.resolve_dispute(&id, &lost, now()).unwrap();
        let lines = model.settlement(now().date_naive());
        let line = lines.iter().find(|l| l.psp_id == id).unwrap();
        assert_eq!(line.reference, id);
        assert_eq!((line.amount, line.fee), (1000, DISPUTE_FEE));
        assert_eq!(line.status, "lost");
    }
}
