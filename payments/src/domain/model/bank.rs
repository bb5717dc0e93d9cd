//! A seller's bank account: the stored record (the number only encrypted) and what the API
//! shows of it (never the number).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::{BankAccountId, SellerId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BankAccountKind {
    Iban,
    UsAch,
}

/// A seller's bank account. The full account number (or IBAN) is only stored encrypted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccountRecord {
    pub id: BankAccountId,
    pub seller_id: SellerId,
    pub holder_name: String,
    pub country: String,
    pub kind: BankAccountKind,
    /// `****3000`.
    pub masked: String,
    pub routing_number: Option<String>,
    /// hex(nonce || AES-256-GCM ciphertext) of the IBAN or account number.
    pub encrypted_number: String,
    pub created_at: i64,
}

impl std::fmt::Debug for BankAccountRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankAccountRecord")
            .field("id", &self.id)
            .field("seller_id", &self.seller_id)
            .field("masked", &self.masked)
            .finish_non_exhaustive()
    }
}

/// What the API shows of a bank account: never the number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BankAccount {
    #[schema(value_type = String)]
    pub id: BankAccountId,
    #[schema(value_type = String)]
    pub seller_id: SellerId,
    pub holder_name: String,
    pub country: String,
    pub kind: BankAccountKind,
    pub masked: String,
    pub routing_number: Option<String>,
    pub created_at: i64,
}

impl From<&BankAccountRecord> for BankAccount {
    fn from(r: &BankAccountRecord) -> BankAccount {
        BankAccount {
            id: r.id.clone(),
            seller_id: r.seller_id.clone(),
            holder_name: r.holder_name.clone(),
            country: r.country.clone(),
            kind: r.kind,
            masked: r.masked.clone(),
            routing_number: r.routing_number.clone(),
            created_at: r.created_at,
        }
    }
}
