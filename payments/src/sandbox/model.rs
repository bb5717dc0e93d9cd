//! The sandbox PSP's books: tokens, charges, refunds, payouts, idempotency keys, the fault RNG
//! and the settlement adjustments. Synchronous and in memory; the caller passes the time in and
//! holds the one lock around every call.
//!
//! Objects are addressed by OUR reference (the caller's id), which is unique per kind. Ids
//! (`ch_`, `re_`, `po_`, `tok_`, `evt_`) come from an RNG seeded with the fault seed.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Utc};
use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::cards::{self, Card, CardInput, CardOutcome};
use super::constants::{
    AMOUNT_MAX, DESCRIPTION_LENGTH_MAX, HOLDER_NAME_LENGTH_MAX, OBJECTS_MAX, REFERENCE_LENGTH_MAX,
};
use super::error::{ApiError, ErrorKind};
use super::faults::Faults;
use super::idempotency::{IdempotencyStore, SavedKey};
use super::settlement::{self, Adjustment};
use crate::domain::bank;
use crate::edges::psp::{
    CardDetails, Charge, ChargeStatus, Payout, PayoutStatus, PspObject, Refund, RefundStatus,
    SettlementKind, SettlementLine, SettlementStatus, WebhookEvent,
};

/// Version of the [`Saved`] layout.
const SAVED_VERSION: u32 = 1;

/// The sandbox's books as saved to its state file (`--state`). Card numbers are never kept, so
/// they are never saved either.
#[derive(Debug, Serialize, Deserialize)]
pub struct Saved {
    version: u32,
    tokens: Vec<SavedCard>,
    charges: Vec<ChargeRecord>,
    refunds: Vec<Refund>,
    payouts: Vec<SavedPayout>,
    processing_errors: Vec<String>,
    idempotency: Vec<SavedKey>,
    adjustments: Vec<Adjustment>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedCard {
    token: String,
    details: CardDetails,
    /// [`CardOutcome::name`].
    outcome: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedPayout {
    record: PayoutRecord,
    closed_account: bool,
}

/// A payout to this account number fails with `account_closed`.
pub const CLOSED_ACCOUNT_NUMBER: &str = "000111111116";
/// A payout to an IBAN ending in these digits fails with `account_closed`.
pub const CLOSED_IBAN_SUFFIX: &str = "0002";

/// What the PSP keeps of each charge: `fee` is `percent` of the amount, rounded half-up to the
/// minor unit, plus `fixed` minor units, and never more than the amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSchedule {
    pub percent: Decimal,
    pub fixed: u64,
}

impl FeeSchedule {
    pub fn fee(&self, amount: u64) -> u64 {
        debug_assert!(amount <= AMOUNT_MAX);
        let variable = Decimal::from(amount)
            .checked_mul(self.percent)
            .map(|product| product / Decimal::ONE_HUNDRED)
            .map(|share| share.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero))
            .and_then(|rounded| rounded.to_u64())
            .unwrap_or(amount);
        variable.saturating_add(self.fixed).min(amount)
    }
}

/// Something to do once the lock is released.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Webhook(WebhookEvent),
    /// Settle this payout after the configured delay.
    CompletePayout {
        reference: String,
    },
}

/// An object the request created or changed, and what follows from it.
#[derive(Debug)]
pub struct Outcome<T> {
    pub object: T,
    pub effects: Vec<Effect>,
}

/// The body of `POST /v1/charges`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeInput {
    pub reference: String,
    pub card_token: String,
    pub amount: u64,
    pub currency: String,
    #[serde(default)]
    pub description: String,
    /// `false`: authorize only.
    #[serde(default = "yes")]
    pub capture: bool,
}

fn yes() -> bool {
    true
}

impl ChargeInput {
    fn validate(&self) -> Result<(), ApiError> {
        check_reference("reference", &self.reference)?;
        check_amount(self.amount)?;
        check_currency(&self.currency)?;
        if self.description.len() > DESCRIPTION_LENGTH_MAX {
            return Err(ApiError::invalid(
                "invalid_description",
                format!("description is longer than {DESCRIPTION_LENGTH_MAX} bytes"),
            ));
        }
        Ok(())
    }
}

/// The body of `POST /v1/charges/{reference}/capture`; without `amount`, all of it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureInput {
    pub amount: Option<u64>,
}

/// The body of `POST /v1/refunds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    pub reference: String,
    pub charge_reference: String,
    pub amount: u64,
    pub currency: String,
}

/// The body of `POST /v1/payouts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutInput {
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    pub destination: DestinationInput,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationInput {
    pub holder_name: String,
    pub country: String,
    pub iban: Option<String>,
    pub account_number: Option<String>,
    pub routing_number: Option<String>,
}

impl std::fmt::Debug for DestinationInput {
    /// Account numbers are not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationInput")
            .field("country", &self.country)
            .finish_non_exhaustive()
    }
}

/// The code and message a payout fails with.
pub type PayoutFailure = (&'static str, &'static str);

/// How a payout to a closed account fails.
pub const ACCOUNT_CLOSED: PayoutFailure = (
    "account_closed",
    "The bank account has been closed; the payout was returned.",
);

/// A charge as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    #[serde(flatten)]
    pub charge: Charge,
    pub description: String,
    pub amount_refunded: u64,
}

/// A payout as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRecord {
    #[serde(flatten)]
    pub payout: Payout,
    pub destination_last4: String,
    /// Set when the destination is one that fails.
    #[serde(skip)]
    pub fails_with: Option<PayoutFailure>,
}

/// Objects of one kind, in creation order, found by reference.
#[derive(Debug)]
struct Records<T> {
    items: Vec<T>,
    by_reference: HashMap<String, usize>,
}

impl<T> Default for Records<T> {
    fn default() -> Records<T> {
        Records {
            items: Vec::new(),
            by_reference: HashMap::new(),
        }
    }
}

impl<T> Records<T> {
    fn get(&self, reference: &str) -> Option<&T> {
        self.by_reference.get(reference).map(|&i| &self.items[i])
    }

    fn get_mut(&mut self, reference: &str) -> Option<&mut T> {
        self.by_reference
            .get(reference)
            .map(|&i| &mut self.items[i])
    }

    fn contains(&self, reference: &str) -> bool {
        self.by_reference.contains_key(reference)
    }

    fn insert(&mut self, reference: String, item: T) {
        debug_assert!(!self.by_reference.contains_key(&reference));
        self.by_reference.insert(reference, self.items.len());
        self.items.push(item);
    }

    fn check_room(&self, what: &str) -> Result<(), ApiError> {
        if self.items.len() >= OBJECTS_MAX {
            return Err(sandbox_full(what));
        }
        Ok(())
    }
}

/// 429: the in-memory books are at their limit.
fn sandbox_full(what: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::InvalidRequestError,
        "sandbox_full",
        format!("the sandbox holds at most {OBJECTS_MAX} {what}s; restart it"),
    )
}

pub struct Model {
    pub faults: Faults,
    /// Draws the faults; reseeded whenever the faults are replaced.
    fault_rng: StdRng,
    /// Draws ids; seeded once, so that ids never repeat, even when the faults are reseeded.
    id_rng: StdRng,
    fees: FeeSchedule,
    tokens: HashMap<String, Card>,
    charges: Records<ChargeRecord>,
    refunds: Records<Refund>,
    payouts: Records<PayoutRecord>,
    /// References of charges that have had their one processing error.
    processing_errors: HashSet<String>,
    pub idempotency: IdempotencyStore,
    adjustments: Vec<Adjustment>,
}

impl Model {
    /// `faults.seed` must be set: the caller resolves a missing seed so it can report it.
    pub fn new(faults: Faults, fees: FeeSchedule) -> Model {
        let seed = faults.seed.unwrap_or_default();
        Model {
            faults,
            fault_rng: StdRng::seed_from_u64(seed),
            id_rng: StdRng::seed_from_u64(!seed),
            fees,
            tokens: HashMap::new(),
            charges: Records::default(),
            refunds: Records::default(),
            payouts: Records::default(),
            processing_errors: HashSet::new(),
            idempotency: IdempotencyStore::default(),
            adjustments: Vec::new(),
        }
    }

    /// Everything a restart must keep: tokens, charges, refunds, payouts, completed idempotency
    /// keys and settlement adjustments (not the faults, which come from the command line).
    pub fn save(&self) -> Saved {
        let mut tokens: Vec<SavedCard> = self
            .tokens
            .iter()
            .map(|(token, card)| SavedCard {
                token: token.clone(),
                details: card.details.clone(),
                outcome: card.outcome.name().to_owned(),
            })
            .collect();
        tokens.sort_by(|a, b| a.token.cmp(&b.token));
        let mut processing_errors: Vec<String> = self.processing_errors.iter().cloned().collect();
        processing_errors.sort();
        Saved {
            version: SAVED_VERSION,
            tokens,
            charges: self.charges.items.clone(),
            refunds: self.refunds.items.clone(),
            payouts: self
                .payouts
                .items
                .iter()
                .map(|record| SavedPayout {
                    closed_account: record.fails_with.is_some(),
                    record: record.clone(),
                })
                .collect(),
            processing_errors,
            idempotency: self.idempotency.completed(),
            adjustments: self.adjustments.clone(),
        }
    }

    /// Takes over a saved state; returns the references of payouts still pending, which the
    /// caller must complete again. Ids drawn from now on come from a fresh seed, so they cannot
    /// repeat the saved ones.
    pub fn restore(&mut self, saved: Saved) -> Result<Vec<String>, String> {
        if saved.version != SAVED_VERSION {
            return Err(format!(
                "saved state has version {}, this sandbox reads version {SAVED_VERSION}",
                saved.version
            ));
        }
        for card in saved.tokens {
            let outcome = CardOutcome::from_name(&card.outcome)
                .ok_or_else(|| format!("unknown card outcome `{}`", card.outcome))?;
            let details = card.details;
            self.tokens.insert(card.token, Card { details, outcome });
        }
        for record in saved.charges {
            self.charges.insert(record.charge.reference.clone(), record);
        }
        for refund in saved.refunds {
            self.refunds.insert(refund.reference.clone(), refund);
        }
        let mut pending = Vec::new();
        for SavedPayout {
            mut record,
            closed_account,
        } in saved.payouts
        {
            record.fails_with = closed_account.then_some(ACCOUNT_CLOSED);
            let reference = record.payout.reference.clone();
            if record.payout.status == PayoutStatus::Pending {
                pending.push(reference.clone());
            }
            self.payouts.insert(reference, record);
        }
        self.processing_errors = saved.processing_errors.into_iter().collect();
        self.idempotency = IdempotencyStore::from_completed(saved.idempotency);
        self.adjustments = saved.adjustments;
        self.id_rng = StdRng::seed_from_u64(rand::random());
        Ok(pending)
    }

    /// Replaces the faults and reseeds the fault RNG with their (set) seed.
    pub fn set_faults(&mut self, faults: Faults) {
        debug_assert!(faults.seed.is_some());
        self.fault_rng = StdRng::seed_from_u64(faults.seed.unwrap_or_default());
        self.faults = faults;
    }

    /// True with the given probability.
    pub fn draw(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.fault_rng.gen_bool(probability.clamp(0.0, 1.0))
    }

    fn new_id(&mut self, prefix: &str) -> String {
        let suffix: String = (&mut self.id_rng)
            .sample_iter(Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        format!("{prefix}_{suffix}")
    }

    /// True the first time a reference meets a processing error. When the set is full the
    /// error is skipped rather than the set grown.
    fn first_processing_error(&mut self, reference: &str) -> bool {
        self.processing_errors.len() < OBJECTS_MAX
            && self.processing_errors.insert(reference.to_owned())
    }

    fn event(&mut self, kind: &str, data: PspObject, now: DateTime<Utc>) -> Effect {
        Effect::Webhook(WebhookEvent {
            id: self.new_id("evt"),
            kind: kind.to_owned(),
            created: now.timestamp(),
            data,
        })
    }

    pub fn tokenize(
        &mut self,
        input: &CardInput,
        now: DateTime<Utc>,
    ) -> Result<CardDetails, ApiError> {
        if self.tokens.len() >= OBJECTS_MAX {
            return Err(sandbox_full("token"));
        }
        let token = self.new_id("tok");
        let today = (u32::try_from(now.year()).unwrap_or(0), now.month());
        let card = cards::tokenize(input, token.clone(), today)?;
        let details = card.details.clone();
        self.tokens.insert(token, card);
        Ok(details)
    }

    pub fn card(&self, token: &str) -> Option<&CardDetails> {
        self.tokens.get(token).map(|card| &card.details)
    }

    pub fn charge(&self, reference: &str) -> Option<&ChargeRecord> {
        self.charges.get(reference)
    }

    pub fn charges(&self) -> &[ChargeRecord] {
        &self.charges.items
    }

    pub fn refund(&self, reference: &str) -> Option<&Refund> {
        self.refunds.get(reference)
    }

    pub fn refunds(&self) -> &[Refund] {
        &self.refunds.items
    }

    pub fn payout(&self, reference: &str) -> Option<&PayoutRecord> {
        self.payouts.get(reference)
    }

    pub fn payouts(&self) -> &[PayoutRecord] {
        &self.payouts.items
    }

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
        let status = match outcome {
            CardOutcome::Declined { code, message } => ChargeStatus::Failed {
                code: code.to_owned(),
                message: message.to_owned(),
            },
            CardOutcome::Succeeds | CardOutcome::ProcessingError if input.capture => {
                ChargeStatus::Succeeded
            }
            CardOutcome::Succeeds | CardOutcome::ProcessingError => ChargeStatus::Authorized,
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
        };
        let event_kind = match record.charge.status {
            ChargeStatus::Succeeded => Some("charge.succeeded"),
            ChargeStatus::Failed { .. } => Some("charge.failed"),
            ChargeStatus::Authorized => None,
        };
        let effects = event_kind
            .map(|kind| self.event(kind, PspObject::Charge(record.charge.clone()), now))
            .into_iter()
            .collect();
        self.charges.insert(input.reference.clone(), record.clone());
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
        let effect = self.event(
            "charge.succeeded",
            PspObject::Charge(record.charge.clone()),
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
        let effect = self.event("refund.succeeded", PspObject::Refund(refund.clone()), now);
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
        vec![self.event(kind, PspObject::Payout(payout), now)]
    }

    /// Replaces the settlement adjustments; extra lines get their id and date now.
    pub fn set_adjustments(
        &mut self,
        mut adjustments: Vec<Adjustment>,
        now: DateTime<Utc>,
    ) -> Result<&[Adjustment], ApiError> {
        for (index, adjustment) in adjustments.iter().enumerate() {
            adjustment.validate(index)?;
        }
        for extra in adjustments.iter_mut().filter_map(|a| a.extra.as_mut()) {
            extra.date.get_or_insert(now.date_naive());
            if extra.psp_id.is_none() {
                let prefix = match extra.kind {
                    SettlementKind::Charge => "ch",
                    SettlementKind::Refund => "re",
                    SettlementKind::Payout => "po",
                };
                extra.psp_id = Some(self.new_id(prefix));
            }
        }
        self.adjustments = adjustments;
        Ok(&self.adjustments)
    }

    pub fn adjustments(&self) -> &[Adjustment] {
        &self.adjustments
    }

    /// Every charge, refund and payout created on `day` (UTC), then the adjustments.
    pub fn settlement(&self, day: chrono::NaiveDate) -> Vec<SettlementLine> {
        let on_day = |created: i64| {
            DateTime::from_timestamp(created, 0).map(|time| time.date_naive()) == Some(day)
        };
        let charges = self.charges.items.iter().map(|record| &record.charge);
        let charges = charges
            .filter(|charge| on_day(charge.created))
            .map(|charge| charge_line(charge, day));
        let refunds = self.refunds.items.iter();
        let refunds = refunds
            .filter(|refund| on_day(refund.created))
            .map(|refund| refund_line(refund, day));
        let payouts = self.payouts.items.iter().map(|record| &record.payout);
        let payouts = payouts
            .filter(|payout| on_day(payout.created))
            .map(|payout| payout_line(payout, day));
        let lines = charges.chain(refunds).chain(payouts).collect();
        settlement::adjust(lines, &self.adjustments, day)
    }
}

fn charge_line(charge: &Charge, date: chrono::NaiveDate) -> SettlementLine {
    let status = match charge.status {
        ChargeStatus::Authorized => SettlementStatus::Authorized,
        ChargeStatus::Succeeded => SettlementStatus::Succeeded,
        ChargeStatus::Failed { .. } => SettlementStatus::Failed,
    };
    SettlementLine {
        date,
        kind: SettlementKind::Charge,
        psp_id: charge.psp_id.clone(),
        reference: charge.reference.clone(),
        amount: charge.amount,
        currency: charge.currency.clone(),
        fee: charge.fee,
        status,
    }
}

/// The PSP keeps no fee on a refund (and does not return the charge's).
fn refund_line(refund: &Refund, date: chrono::NaiveDate) -> SettlementLine {
    let status = match refund.status {
        RefundStatus::Pending => SettlementStatus::Pending,
        RefundStatus::Succeeded => SettlementStatus::Succeeded,
        RefundStatus::Failed { .. } => SettlementStatus::Failed,
    };
    SettlementLine {
        date,
        kind: SettlementKind::Refund,
        psp_id: refund.psp_id.clone(),
        reference: refund.reference.clone(),
        amount: refund.amount,
        currency: refund.currency.clone(),
        fee: 0,
        status,
    }
}

/// Payouts are free.
fn payout_line(payout: &Payout, date: chrono::NaiveDate) -> SettlementLine {
    let status = match payout.status {
        PayoutStatus::Pending => SettlementStatus::Pending,
        PayoutStatus::Paid => SettlementStatus::Paid,
        PayoutStatus::Failed { .. } => SettlementStatus::Failed,
    };
    SettlementLine {
        date,
        kind: SettlementKind::Payout,
        psp_id: payout.psp_id.clone(),
        reference: payout.reference.clone(),
        amount: payout.amount,
        currency: payout.currency.clone(),
        fee: 0,
        status,
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

/// A reference goes into URL paths: 1 to 255 visible ASCII characters.
pub fn check_reference(field: &str, reference: &str) -> Result<(), ApiError> {
    let visible = reference.bytes().all(|b| b.is_ascii_graphic());
    if reference.is_empty() || reference.len() > REFERENCE_LENGTH_MAX || !visible {
        return Err(ApiError::invalid(
            "invalid_reference",
            format!("{field} must be 1 to {REFERENCE_LENGTH_MAX} visible ASCII characters"),
        ));
    }
    Ok(())
}

fn check_amount(amount: u64) -> Result<(), ApiError> {
    if amount == 0 || amount > AMOUNT_MAX {
        return Err(ApiError::invalid(
            "invalid_amount",
            format!("amount must be 1 to {AMOUNT_MAX} minor units"),
        ));
    }
    Ok(())
}

fn check_currency(currency: &str) -> Result<(), ApiError> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "invalid_currency",
            format!("currency `{currency}` is not a 3-letter ISO 4217 code like USD"),
        ));
    }
    Ok(())
}

/// Validates a payout destination; returns its last four characters and, for the documented
/// closed accounts, the failure it will end in.
fn check_destination(
    destination: &DestinationInput,
) -> Result<(String, Option<PayoutFailure>), ApiError> {
    let name_length = destination.holder_name.chars().count();
    if name_length == 0 || name_length > HOLDER_NAME_LENGTH_MAX {
        return Err(ApiError::invalid(
            "invalid_holder_name",
            format!("holder_name must be 1 to {HOLDER_NAME_LENGTH_MAX} characters"),
        ));
    }
    let country = &destination.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "invalid_country",
            "country must be a 2-letter ISO 3166 code like DE",
        ));
    }
    let closed = Some(ACCOUNT_CLOSED);
    // The same checks tally-pay makes when an account is linked (`crate::domain::bank`).
    match (
        &destination.iban,
        &destination.account_number,
        &destination.routing_number,
    ) {
        (Some(iban), None, None) => {
            let (electronic, _) = bank::validate_iban(iban)
                .map_err(|_| ApiError::invalid("invalid_iban", "iban is not a valid IBAN"))?;
            let last4 = electronic[electronic.len().saturating_sub(4)..].to_owned();
            let fails = electronic
                .ends_with(CLOSED_IBAN_SUFFIX)
                .then_some(closed)
                .flatten();
            Ok((last4, fails))
        }
        (None, Some(account), Some(routing)) => {
            bank::validate_account_number(account).map_err(|_| {
                ApiError::invalid(
                    "invalid_account_number",
                    "account_number must be 4 to 17 digits",
                )
            })?;
            bank::validate_routing(routing).map_err(|_| {
                ApiError::invalid(
                    "invalid_routing_number",
                    "routing_number must be 9 digits with a valid ABA checksum",
                )
            })?;
            let last4 = account[account.len() - 4..].to_owned();
            let fails = (account == CLOSED_ACCOUNT_NUMBER)
                .then_some(closed)
                .flatten();
            Ok((last4, fails))
        }
        _ => Err(ApiError::invalid(
            "invalid_destination",
            "give either iban, or account_number and routing_number",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fees() -> FeeSchedule {
        FeeSchedule {
            percent: Decimal::new(29, 1),
            fixed: 30,
        }
    }

    fn model() -> Model {
        let faults = Faults {
            seed: Some(7),
            ..Faults::default()
        };
        Model::new(faults, fees())
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_741_305_600, 0).unwrap() // 2025-03-07T00:00:00Z
    }

    fn token(model: &mut Model, number: &str) -> String {
        let input = CardInput {
            number: number.to_owned(),
            exp_month: 12,
            exp_year: 2040,
            cvc: "123".to_owned(),
        };
        model.tokenize(&input, now()).unwrap().token
    }

    fn charge_input(reference: &str, token: &str, amount: u64) -> ChargeInput {
        ChargeInput {
            reference: reference.to_owned(),
            card_token: token.to_owned(),
            amount,
            currency: "USD".to_owned(),
            description: String::new(),
            capture: true,
        }
    }

    #[test]
    fn fee_is_percent_rounded_half_up_plus_fixed() {
        let fees = fees();
        assert_eq!(fees.fee(1000), 29 + 30);
        assert_eq!(fees.fee(1250), 36 + 30); // 36.25
        assert_eq!(fees.fee(50), 1 + 30); // 1.45
        assert_eq!(fees.fee(1500), 44 + 30); // 43.5 rounds up
        assert_eq!(fees.fee(10), 10); // never more than the amount
        assert_eq!(fees.fee(AMOUNT_MAX), 2_900_000_030);
    }

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
    fn settlement_lists_the_day() {
        let mut model = model();
        let token = token(&mut model, "4242424242424242");
        let declined = self::token(&mut model, "4000000000000002");
        model
            .create_charge(&charge_input("o1", &token, 1000), now())
            .unwrap();
        model
            .create_charge(&charge_input("o2", &declined, 1000), now())
            .unwrap();
        let lines = model.settlement(now().date_naive());
        let summary: Vec<_> = lines
            .iter()
            .map(|l| (l.reference.as_str(), l.status.as_str(), l.fee))
            .collect();
        assert_eq!(summary, [("o1", "succeeded", 59), ("o2", "failed", 0)]);
        assert!(model
            .settlement(now().date_naive().succ_opt().unwrap())
            .is_empty());
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
