//! What the API does to the books: charges (and captures), refunds and payouts, each checked
//! in full before anything changes.

use chrono::{DateTime, Utc};

use super::inputs::{check_amount, check_currency, check_destination, check_reference};
use super::{
    CaptureInput, ChargeInput, ChargeRecord, Effect, Model, Outcome, PayoutInput, PayoutRecord,
    RefundInput,
};
use crate::cards::CardOutcome;
use crate::error::{ApiError, ErrorKind};
use crate::wire::{Charge, ChargeStatus, EventObject, Payout, PayoutStatus, Refund, RefundStatus};

impl Model {
    /// Charges (or, with `capture: false`, authorizes) a tokenized card. A declined card
    /// creates a `failed` charge; a processing error creates nothing.
    pub fn create_charge(
        &mut self,
        input: &ChargeInput,
        now: DateTime<Utc>,
    ) -> Result<Outcome<ChargeRecord>, ApiError> {
        input.validate()?;
        self.charges.check_room("charge")?;
        if self.charges.contains(&input.reference) {
            return Err(reference_in_use("charge", &input.reference));
        }
        let outcome = match self.tokens.get(&input.card_token) {
            Some(card) => card.outcome,
            None => {
                return Err(ApiError::invalid(
                    "invalid_token",
                    format!("no such card token: `{}`", input.card_token),
                ))
            }
        };
        if outcome == CardOutcome::ProcessingError && self.first_processing_error(&input.reference)
        {
            return Err(processing_error());
        }
        let mut effects = Vec::new();
        let status = match outcome {
            CardOutcome::Declined { code, message } => ChargeStatus::Failed {
                code: code.to_owned(),
                message: message.to_owned(),
            },
            // The last check: nothing has changed before it, nothing can fail after it.
            CardOutcome::RequiresAuthentication => {
                let (status, timer) = self.open_challenge(&input.reference, input.capture, now)?;
                effects.push(timer);
                status
            }
            CardOutcome::Succeeds | CardOutcome::ProcessingError | CardOutcome::Disputed
                if input.capture =>
            {
                ChargeStatus::Succeeded
            }
            CardOutcome::Succeeds | CardOutcome::ProcessingError | CardOutcome::Disputed => {
                ChargeStatus::Authorized
            }
        };
        let fee = match status {
            ChargeStatus::Succeeded => self.fees.fee(input.amount),
            _ => 0,
        };
        let record = ChargeRecord {
            charge: Charge {
                psp_id: self.new_id("ch"),
                reference: input.reference.clone(),
                amount: input.amount,
                currency: input.currency.clone(),
                status,
                fee,
                created: now.timestamp(),
            },
            description: input.description.clone(),
            amount_refunded: 0,
            dispute_at_capture: outcome == CardOutcome::Disputed,
        };
        let event_kind = match record.charge.status {
            ChargeStatus::Succeeded => Some("charge.succeeded"),
            ChargeStatus::Failed { .. } => Some("charge.failed"),
            ChargeStatus::Authorized
            | ChargeStatus::Canceled
            | ChargeStatus::RequiresAction { .. } => None,
        };
        effects.extend(
            event_kind
                .map(|kind| self.event(kind, EventObject::Charge(record.charge.clone()), now)),
        );
        self.charges.insert(input.reference.clone(), record.clone());
        effects.extend(self.dispute_if_captured(&input.reference, now));
        Ok(Outcome {
            object: record,
            effects,
        })
    }

    /// Captures an authorized charge, all of it or less (the rest is released). Capturing a
    /// captured charge again with the same amount changes nothing.
    pub fn capture(
        &mut self,
        reference: &str,
        input: &CaptureInput,
        now: DateTime<Utc>,
    ) -> Result<Outcome<ChargeRecord>, ApiError> {
        let fees = self.fees;
        let record = self
            .charges
            .get_mut(reference)
            .ok_or_else(|| ApiError::not_found("charge", reference))?;
        let amount = input.amount.unwrap_or(record.charge.amount);
        match record.charge.status {
            ChargeStatus::Authorized => {}
            ChargeStatus::Succeeded if amount == record.charge.amount => {
                return Ok(Outcome {
                    object: record.clone(),
                    effects: Vec::new(),
                });
            }
            ChargeStatus::Succeeded => {
                return Err(ApiError::invalid(
                    "charge_already_captured",
                    format!("charge `{reference}` is already captured"),
                ));
            }
            ChargeStatus::Failed { .. } => {
                return Err(ApiError::invalid(
                    "charge_not_capturable",
                    format!("charge `{reference}` failed"),
                ));
            }
            ChargeStatus::Canceled => {
                return Err(ApiError::invalid(
                    "charge_canceled",
                    format!("charge `{reference}` was canceled; nothing is left to capture"),
                ));
            }
            ChargeStatus::RequiresAction { .. } => {
                return Err(ApiError::invalid(
                    "charge_requires_action",
                    format!("charge `{reference}` waits for its 3-D Secure challenge"),
                ));
            }
        }
        if amount == 0 || amount > record.charge.amount {
            return Err(ApiError::invalid(
                "amount_too_large",
                format!(
                    "capture amount must be 1 to {} (the authorized amount)",
                    record.charge.amount
                ),
            ));
        }
        record.charge.amount = amount;
        record.charge.fee = fees.fee(amount);
        record.charge.status = ChargeStatus::Succeeded;
        let record = record.clone();
        let mut effects = vec![self.event(
            "charge.succeeded",
            EventObject::Charge(record.charge.clone()),
            now,
        )];
        effects.extend(self.dispute_if_captured(reference, now));
        Ok(Outcome {
            object: record,
            effects,
        })
    }

    /// Cancels an authorized charge, or one still waiting for its 3-D Secure challenge (which
    /// is then over): the hold on the card is released, nothing is captured and the charge
    /// never settles. Canceling a canceled charge again changes nothing; a captured or failed
    /// one cannot be canceled.
    pub fn cancel(
        &mut self,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome<ChargeRecord>, ApiError> {
        let record = self
            .charges
            .get_mut(reference)
            .ok_or_else(|| ApiError::not_found("charge", reference))?;
        match record.charge.status {
            ChargeStatus::Authorized | ChargeStatus::RequiresAction { .. } => {}
            ChargeStatus::Canceled => {
                return Ok(Outcome {
                    object: record.clone(),
                    effects: Vec::new(),
                });
            }
            ChargeStatus::Succeeded => {
                return Err(ApiError::invalid(
                    "charge_already_captured",
                    format!("charge `{reference}` is captured; refund it instead"),
                ));
            }
            ChargeStatus::Failed { .. } => {
                return Err(ApiError::invalid(
                    "charge_not_cancelable",
                    format!("charge `{reference}` failed"),
                ));
            }
        }
        record.charge.status = ChargeStatus::Canceled;
        let record = record.clone();
        let effect = self.event(
            "charge.canceled",
            EventObject::Charge(record.charge.clone()),
            now,
        );
        Ok(Outcome {
            object: record,
            effects: vec![effect],
        })
    }

    /// Refunds part or all of a succeeded charge; refunds never add up to more than the charge.
    pub fn create_refund(
        &mut self,
        input: &RefundInput,
        now: DateTime<Utc>,
    ) -> Result<Outcome<Refund>, ApiError> {
        check_reference("reference", &input.reference)?;
        check_reference("charge_reference", &input.charge_reference)?;
        check_amount(input.amount)?;
        check_currency(&input.currency)?;
        self.refunds.check_room("refund")?;
        if self.refunds.contains(&input.reference) {
            return Err(reference_in_use("refund", &input.reference));
        }
        let charge = self
            .charges
            .get_mut(&input.charge_reference)
            .ok_or_else(|| {
                ApiError::invalid(
                    "charge_not_found",
                    format!("no such charge: `{}`", input.charge_reference),
                )
            })?;
        if charge.charge.status != ChargeStatus::Succeeded {
            return Err(ApiError::invalid(
                "charge_not_refundable",
                format!("charge `{}` has not succeeded", input.charge_reference),
            ));
        }
        if charge.charge.currency != input.currency {
            return Err(ApiError::invalid(
                "currency_mismatch",
                format!("the charge is in {}", charge.charge.currency),
            ));
        }
        let refunded = charge.amount_refunded + input.amount;
        if refunded > charge.charge.amount {
            let left = charge.charge.amount - charge.amount_refunded;
            return Err(ApiError::invalid(
                "amount_too_large",
                format!("at most {left} of the charge is left to refund"),
            ));
        }
        charge.amount_refunded = refunded;
        let refund = Refund {
            psp_id: self.new_id("re"),
            reference: input.reference.clone(),
            charge_reference: input.charge_reference.clone(),
            amount: input.amount,
            currency: input.currency.clone(),
            status: RefundStatus::Succeeded,
            created: now.timestamp(),
        };
        let effect = self.event("refund.succeeded", EventObject::Refund(refund.clone()), now);
        self.refunds.insert(input.reference.clone(), refund.clone());
        Ok(Outcome {
            object: refund,
            effects: vec![effect],
        })
    }

    /// Accepts a payout as `pending`; [`Model::complete_payout`] settles it later.
    pub fn create_payout(
        &mut self,
        input: &PayoutInput,
        now: DateTime<Utc>,
    ) -> Result<Outcome<PayoutRecord>, ApiError> {
        check_reference("reference", &input.reference)?;
        check_amount(input.amount)?;
        check_currency(&input.currency)?;
        let (destination_last4, fails_with) = check_destination(&input.destination)?;
        self.payouts.check_room("payout")?;
        if self.payouts.contains(&input.reference) {
            return Err(reference_in_use("payout", &input.reference));
        }
        let record = PayoutRecord {
            payout: Payout {
                psp_id: self.new_id("po"),
                reference: input.reference.clone(),
                amount: input.amount,
                currency: input.currency.clone(),
                status: PayoutStatus::Pending,
                created: now.timestamp(),
            },
            destination_last4,
            fails_with,
        };
        self.payouts.insert(input.reference.clone(), record.clone());
        let effect = Effect::CompletePayout {
            reference: input.reference.clone(),
        };
        Ok(Outcome {
            object: record,
            effects: vec![effect],
        })
    }

    /// Marks a pending payout `paid` (or `failed`, for a closed account).
    pub fn complete_payout(&mut self, reference: &str, now: DateTime<Utc>) -> Vec<Effect> {
        let Some(record) = self.payouts.get_mut(reference) else {
            debug_assert!(false, "completing unknown payout `{reference}`");
            return Vec::new();
        };
        if record.payout.status != PayoutStatus::Pending {
            return Vec::new();
        }
        let (status, kind) = match record.fails_with {
            Some((code, message)) => {
                let (code, message) = (code.to_owned(), message.to_owned());
                (PayoutStatus::Failed { code, message }, "payout.failed")
            }
            None => (PayoutStatus::Paid, "payout.paid"),
        };
        record.payout.status = status;
        let payout = record.payout.clone();
        vec![self.event(kind, EventObject::Payout(payout), now)]
    }
}

/// 402 of type `retryable`: nothing was created, the same request will succeed.
fn processing_error() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYMENT_REQUIRED,
        ErrorKind::Retryable,
        "processing_error",
        "An error occurred while processing your card. Try again.",
    )
}

fn reference_in_use(what: &str, reference: &str) -> ApiError {
    ApiError::invalid(
        "reference_in_use",
        format!(
            "a {what} with reference `{reference}` exists; \
             repeat its idempotency key to see it, or look it up"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::inputs::DestinationInput;
    use super::super::testing::{charge_input, fees, model, now, token};
    use super::super::CLOSED_ACCOUNT_NUMBER;
    use super::*;
    use crate::constants::AMOUNT_MAX;

    #[test]
    fn charge_succeeds_with_fee_and_event() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        let outcome = model
            .create_charge(&charge_input("o1", &token, 1000), now())
            .unwrap();
        assert_eq!(outcome.object.charge.status, ChargeStatus::Succeeded);
        assert_eq!(outcome.object.charge.fee, 59);
        assert!(outcome.object.charge.psp_id.starts_with("ch_"));
        match &outcome.effects[..] {
            [Effect::Webhook(event)] => assert_eq!(event.kind, "charge.succeeded"),
            other => panic!("{other:?}"),
        }
        let again = model.create_charge(&charge_input("o1", &token, 1000), now());
        assert_eq!(again.unwrap_err().code, "reference_in_use");
    }

    #[test]
    fn processing_error_once_per_reference() {
        let mut model = model();
        let token = token(&mut model, "4000000000000119");
        let first = model.create_charge(&charge_input("o1", &token, 1000), now());
        assert_eq!(first.unwrap_err().kind, ErrorKind::Retryable);
        assert!(model.charge("o1").is_none());
        let second = model.create_charge(&charge_input("o1", &token, 1000), now());
        assert_eq!(
            second.unwrap().object.charge.status,
            ChargeStatus::Succeeded
        );
    }

    #[test]
    fn authorize_then_capture_less() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        let input = ChargeInput {
            capture: false,
            ..charge_input("o1", &token, 1000)
        };
        let outcome = model.create_charge(&input, now()).unwrap();
        assert_eq!(outcome.object.charge.status, ChargeStatus::Authorized);
        assert!(outcome.effects.is_empty());
        let too_much = CaptureInput { amount: Some(1001) };
        assert_eq!(
            model.capture("o1", &too_much, now()).unwrap_err().code,
            "amount_too_large"
        );
        let captured = model
            .capture("o1", &CaptureInput { amount: Some(800) }, now())
            .unwrap();
        assert_eq!(captured.object.charge.amount, 800);
        assert_eq!(captured.object.charge.fee, fees().fee(800));
        let repeated = model
            .capture("o1", &CaptureInput::default(), now())
            .unwrap();
        assert!(repeated.effects.is_empty());
        let other = model.capture("o1", &CaptureInput { amount: Some(700) }, now());
        assert_eq!(other.unwrap_err().code, "charge_already_captured");
    }

    #[test]
    fn authorize_then_cancel_once() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        let input = |reference: &str| ChargeInput {
            capture: false,
            ..charge_input(reference, &token, 1000)
        };
        model.create_charge(&input("o1"), now()).unwrap();
        let canceled = model.cancel("o1", now()).unwrap();
        assert_eq!(canceled.object.charge.status, ChargeStatus::Canceled);
        assert_eq!(canceled.object.charge.fee, 0);
        match &canceled.effects[..] {
            [Effect::Webhook(event)] => assert_eq!(event.kind, "charge.canceled"),
            other => panic!("{other:?}"),
        }
        assert!(model.cancel("o1", now()).unwrap().effects.is_empty());
        let capture = model.capture("o1", &CaptureInput::default(), now());
        assert_eq!(capture.unwrap_err().code, "charge_canceled");
        assert!(model.settlement(now().date_naive()).is_empty());
        // A captured charge cannot be canceled; an unknown one is not found.
        model.create_charge(&input("o2"), now()).unwrap();
        model
            .capture("o2", &CaptureInput { amount: Some(600) }, now())
            .unwrap();
        let code = model.cancel("o2", now()).unwrap_err().code;
        assert_eq!(code, "charge_already_captured");
        assert_eq!(
            model.cancel("o3", now()).unwrap_err().code,
            "resource_missing"
        );
        let lines = model.settlement(now().date_naive());
        let lines: Vec<_> = lines
            .iter()
            .map(|l| (l.reference.as_str(), l.amount))
            .collect();
        assert_eq!(lines, [("o2", 600)]);
    }

    #[test]
    fn refunds_never_exceed_the_charge() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        model
            .create_charge(&charge_input("o1", &token, 1000), now())
            .unwrap();
        let refund = |reference: &str, amount| RefundInput {
            reference: reference.to_owned(),
            charge_reference: "o1".to_owned(),
            amount,
            currency: "USD".to_owned(),
        };
        model.create_refund(&refund("r1", 600), now()).unwrap();
        let over = model.create_refund(&refund("r2", 401), now()).unwrap_err();
        assert_eq!(over.code, "amount_too_large");
        model.create_refund(&refund("r2", 400), now()).unwrap();
        assert_eq!(model.charge("o1").unwrap().amount_refunded, 1000);
        let missing = RefundInput {
            charge_reference: "nope".to_owned(),
            ..refund("r3", 1)
        };
        assert_eq!(
            model.create_refund(&missing, now()).unwrap_err().code,
            "charge_not_found"
        );
    }

    #[test]
    fn payouts_to_closed_accounts_fail() {
        let mut model = model();
        let payout = |reference: &str, iban: Option<&str>, account: Option<&str>| PayoutInput {
            reference: reference.to_owned(),
            amount: 900,
            currency: "EUR".to_owned(),
            destination: DestinationInput {
                holder_name: "Ada".to_owned(),
                country: "DE".to_owned(),
                iban: iban.map(str::to_owned),
                account_number: account.map(str::to_owned),
                routing_number: account.map(|_| "110000000".to_owned()),
            },
        };
        let ok = model.create_payout(&payout("p1", Some("DE89370400440532013000"), None), now());
        assert_eq!(ok.unwrap().object.payout.status, PayoutStatus::Pending);
        model
            .create_payout(&payout("p2", Some("DE14370400440000000002"), None), now())
            .unwrap();
        model
            .create_payout(&payout("p3", None, Some(CLOSED_ACCOUNT_NUMBER)), now())
            .unwrap();
        let bad = model.create_payout(&payout("p4", Some("DE00370400440532013000"), None), now());
        assert_eq!(bad.unwrap_err().code, "invalid_iban");
        let both = model.create_payout(
            &payout("p5", Some("DE89370400440532013000"), Some("1234")),
            now(),
        );
        assert_eq!(both.unwrap_err().code, "invalid_destination");
        let kinds: Vec<String> = ["p1", "p2", "p3"]
            .iter()
            .flat_map(|reference| model.complete_payout(reference, now()))
            .map(|effect| match effect {
                Effect::Webhook(event) => event.kind,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["payout.paid", "payout.failed", "payout.failed"]);
        assert!(model.complete_payout("p1", now()).is_empty());
    }

    #[test]
    fn inputs_are_validated() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        let code = |model: &mut Model, input: ChargeInput| {
            model.create_charge(&input, now()).unwrap_err().code
        };
        assert_eq!(
            code(&mut model, charge_input("o1", &token, 0)),
            "invalid_amount"
        );
        assert_eq!(
            code(&mut model, charge_input("o1", &token, AMOUNT_MAX + 1)),
            "invalid_amount"
        );
        assert_eq!(
            code(&mut model, charge_input("", &token, 1)),
            "invalid_reference"
        );
        assert_eq!(
            code(&mut model, charge_input("a b", &token, 1)),
            "invalid_reference"
        );
        assert_eq!(
            code(&mut model, charge_input("o1", "tok_nope", 1)),
            "invalid_token"
        );
        let lowercase = ChargeInput {
            currency: "usd".to_owned(),
            ..charge_input("o1", &token, 1)
        };
        assert_eq!(code(&mut model, lowercase), "invalid_currency");
    }
}
