//! The sandbox PSP's books: tokens, charges, refunds, payouts, idempotency keys, the fault RNG
//! and the settlement adjustments. Synchronous and in memory; the caller passes the time in and
//! holds the one lock around every call.
//!
//! Objects are addressed by OUR reference (the caller's id), which is unique per kind. Ids
//! (`ch_`, `re_`, `po_`, `dp_`, `tok_`, `evt_`) come from an RNG seeded with the fault seed. What the
//! API accepts is in `inputs.rs`, what it does in `operations.rs` (disputes in `disputes.rs`),
//! the day's settlement lines
//! in `report.rs`, and what a restart keeps in `saved.rs`.

mod disputes;
mod inputs;
mod operations;
mod report;
mod saved;
#[cfg(test)]
mod testing;
mod three_ds;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Utc};
use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::cards::{self, Card, CardInput};
use crate::constants::{AMOUNT_MAX, OBJECTS_MAX};
use crate::error::{ApiError, ErrorKind};
use crate::faults::Faults;
use crate::idempotency::IdempotencyStore;
use crate::settlement::Adjustment;
use crate::wire::{CardDetails, Charge, Event, EventObject, Payout, Refund, SettlementKind};

pub use disputes::{DisputeInput, DisputeRecord, EvidenceInput, Resolution};

pub use inputs::{CancelInput, CaptureInput, ChargeInput, PayoutInput, RefundInput};
pub use saved::Saved;
pub use three_ds::{Answer, Challenge, THREE_DS_TIMEOUT_DEFAULT};

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
    Webhook(Event),
    /// Settle this payout after the configured delay.
    CompletePayout {
        reference: String,
    },
    /// Fail this 3-D Secure challenge's charge at `at` if it is still open then.
    ExpireChallenge {
        id: String,
        at: DateTime<Utc>,
    },
}

/// An object the request created or changed, and what follows from it.
#[derive(Debug)]
pub struct Outcome<T> {
    pub object: T,
    pub effects: Vec<Effect>,
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
    /// Charged with the disputed test card: its capture opens a dispute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dispute_at_capture: bool,
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
    /// Keyed by the dispute's own id (`dp_...`).
    disputes: Records<DisputeRecord>,
    /// References of charges that have had their one processing error.
    processing_errors: HashSet<String>,
    pub idempotency: IdempotencyStore,
    adjustments: Vec<Adjustment>,
    three_ds: three_ds::ThreeDs,
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
            disputes: Records::default(),
            processing_errors: HashSet::new(),
            idempotency: IdempotencyStore::default(),
            adjustments: Vec::new(),
            three_ds: three_ds::ThreeDs::default(),
        }
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

    fn event(&mut self, kind: &str, data: EventObject, now: DateTime<Utc>) -> Effect {
        Effect::Webhook(Event {
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
                    SettlementKind::Dispute => "dp",
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
}

#[cfg(test)]
mod tests {
    use super::testing::fees;
    use super::*;

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
}
