//! What a restart keeps: the books as saved to the state file (`--state`), and reading them back.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{ChargeRecord, DisputeRecord, Model, PayoutRecord, ACCOUNT_CLOSED};
use crate::cards::{Card, CardOutcome};
use crate::idempotency::{IdempotencyStore, SavedKey};
use crate::settlement::Adjustment;
use crate::wire::{CardDetails, PayoutStatus, Refund};

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
    /// Absent in a state saved before disputes existed.
    #[serde(default)]
    disputes: Vec<DisputeRecord>,
    /// 3-D Secure challenges (absent from files saved before they existed).
    #[serde(default)]
    challenges: Vec<super::Challenge>,
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

impl Model {
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
            disputes: self.disputes().to_vec(),
            challenges: self.saved_challenges(),
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
        self.restore_disputes(saved.disputes);
        self.restore_challenges(saved.challenges);
        self.id_rng = StdRng::seed_from_u64(rand::random());
        Ok(pending)
    }
}
