//! Disputes (chargebacks): the stored record, its statuses, the merchant's evidence and its
//! limits, and where the money a dispute takes comes from.
//!
//! When a dispute opens, the PSP takes the disputed amount and its dispute fee. Tally takes
//! both from the seller: first from the disputed order's share still pending in escrow, then
//! from the seller's wallet (available), and what the seller cannot cover from the platform's
//! loss account for that seller (`dispute_loss`), whose balance is the seller's recovery, repaid
//! first by the seller's later pay-ins. The amount waits in `disputes_open` while the dispute is
//! open; the fee goes to the PSP at once. Won: the amount comes back (to the loss account as far
//! as it paid for it and is still owed, the rest to the wallet); lost: it goes to the PSP.
//! Pure: the flows read the balances and pass them in.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::{CustomerId, DisputeId, OrderId, SellerId};

/// Longest text of one evidence field, in bytes.
pub const EVIDENCE_TEXT_BYTES_MAX: usize = 5000;
/// Longest dispute reason kept from the PSP, in bytes.
pub const REASON_BYTES_MAX: usize = 64;

/// Where a dispute stands. Terminal: `won`, `lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    /// Opened: the money is taken; evidence may be submitted.
    NeedsResponse,
    /// Evidence submitted; the card holder's bank decides.
    UnderReview,
    /// The amount came back (the PSP's fee did not).
    Won,
    /// The card holder keeps the money.
    Lost,
}

impl DisputeStatus {
    pub fn is_closed(self) -> bool {
        matches!(self, DisputeStatus::Won | DisputeStatus::Lost)
    }
}

/// How much of something came from each source, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sources {
    /// The disputed order's share still pending in escrow.
    pub pending: u64,
    /// The seller's wallet (available).
    pub wallet: u64,
    /// The platform's loss account: owed by the seller (recovery).
    pub loss: u64,
}

impl Sources {
    pub fn total(&self) -> u64 {
        self.pending
            .saturating_add(self.wallet)
            .saturating_add(self.loss)
    }

    /// `wanted` out of `pending` then `wallet` (both reduced by what is taken), the rest from
    /// the loss account.
    fn take(wanted: u64, pending: &mut u64, wallet: &mut u64) -> Sources {
        let from_pending = wanted.min(*pending);
        *pending -= from_pending;
        let from_wallet = (wanted - from_pending).min(*wallet);
        *wallet -= from_wallet;
        Sources {
            pending: from_pending,
            wallet: from_wallet,
            loss: wanted - from_pending - from_wallet,
        }
    }
}

/// Where a dispute's amount and fee came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Taken {
    pub amount: Sources,
    pub fee: Sources,
}

impl Taken {
    /// The amount first, then the fee, each from `pending` (the order's share still in escrow),
    /// then `wallet` (the seller's available balance), then the loss account.
    pub fn of(amount: u64, fee: u64, pending: u64, wallet: u64) -> Taken {
        let (mut pending, mut wallet) = (pending, wallet);
        let amount = Sources::take(amount, &mut pending, &mut wallet);
        let fee = Sources::take(fee, &mut pending, &mut wallet);
        Taken { amount, fee }
    }

    /// What the seller owes the platform because of this dispute.
    pub fn loss(&self) -> u64 {
        self.amount.loss.saturating_add(self.fee.loss)
    }
}

/// Where a won dispute's amount went back to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Returned {
    /// To the platform's loss account: the part of the amount it paid and is still owed.
    pub loss: u64,
    /// To the seller's wallet.
    pub wallet: u64,
}

impl Returned {
    /// `amount` back: the loss account gets what it paid of the amount (`taken_loss`), at most
    /// what the seller still owes (`recovery`); the wallet the rest.
    pub fn of(amount: u64, taken_loss: u64, recovery: u64) -> Returned {
        let loss = taken_loss.min(recovery).min(amount);
        Returned {
            loss,
            wallet: amount - loss,
        }
    }
}

/// The merchant's answer to a dispute, forwarded to the PSP. Each text at most
/// [`EVIDENCE_TEXT_BYTES_MAX`] bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// What was sold, and how it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_description: Option<String>,
    /// What the customer and the seller wrote to each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_communication: Option<String>,
    /// Anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncategorized_text: Option<String>,
}

impl Evidence {
    /// The field at fault and why: one too long, or none given.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let fields = [
            ("product_description", &self.product_description),
            ("customer_communication", &self.customer_communication),
            ("uncategorized_text", &self.uncategorized_text),
        ];
        for (name, text) in fields {
            if text
                .as_ref()
                .is_some_and(|t| t.len() > EVIDENCE_TEXT_BYTES_MAX)
            {
                return Err((
                    name,
                    format!("`{name}` is longer than {EVIDENCE_TEXT_BYTES_MAX} bytes"),
                ));
            }
        }
        if fields
            .iter()
            .all(|(_, t)| t.as_ref().is_none_or(|t| t.is_empty()))
        {
            return Err((
                "product_description",
                "give at least one of `product_description`, `customer_communication`, \
                 `uncategorized_text`"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// A dispute, as stored (`ns::DISPUTE`) and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Dispute {
    #[schema(value_type = String)]
    pub id: DisputeId,
    /// The PSP's dispute id (`dp_…`).
    pub psp_id: String,
    /// The disputed payment order.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    #[schema(value_type = String)]
    pub seller_id: SellerId,
    #[schema(value_type = String)]
    pub customer_id: CustomerId,
    /// Disputed, in minor units.
    pub amount: u64,
    pub currency: String,
    /// The PSP's dispute fee, kept by the PSP whatever the outcome.
    pub fee: u64,
    /// As the PSP gave it (`fraudulent`, `product_not_received`, …).
    pub reason: String,
    pub status: DisputeStatus,
    /// Where the amount and the fee were taken from.
    pub taken: Taken,
    /// Where a won dispute's amount went back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<Returned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_submitted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_then_fee_from_pending_then_wallet_then_loss() {
        let taken = Taken::of(1000, 1500, 700, 500);
        assert_eq!(
            taken.amount,
            Sources {
                pending: 700,
                wallet: 300,
                loss: 0
            }
        );
        assert_eq!(
            taken.fee,
            Sources {
                pending: 0,
                wallet: 200,
                loss: 1300
            }
        );
        assert_eq!(taken.loss(), 1300);
        assert_eq!(taken.amount.total() + taken.fee.total(), 2500);
        let covered = Taken::of(1000, 1500, 0, 10_000);
        assert_eq!((covered.amount.wallet, covered.fee.wallet), (1000, 1500));
        assert_eq!(covered.loss(), 0);
    }

    #[test]
    fn a_won_amount_repays_the_loss_still_owed_first() {
        assert_eq!(
            Returned::of(1000, 400, 1500),
            Returned {
                loss: 400,
                wallet: 600
            }
        );
        // Later pay-ins repaid most of it already.
        assert_eq!(
            Returned::of(1000, 400, 100),
            Returned {
                loss: 100,
                wallet: 900
            }
        );
        assert_eq!(
            Returned::of(1000, 0, 1500),
            Returned {
                loss: 0,
                wallet: 1000
            }
        );
    }

    #[test]
    fn evidence_is_bounded_and_not_empty() {
        let long = Evidence {
            uncategorized_text: Some("x".repeat(EVIDENCE_TEXT_BYTES_MAX + 1)),
            ..Evidence::default()
        };
        assert_eq!(long.check().unwrap_err().0, "uncategorized_text");
        assert!(Evidence::default().check().is_err());
        let empty = Evidence {
            product_description: Some(String::new()),
            ..Evidence::default()
        };
        assert!(empty.check().is_err());
        let fine = Evidence {
            customer_communication: Some("delivered on the 3rd".into()),
            ..Evidence::default()
        };
        assert!(fine.check().is_ok());
    }
}
