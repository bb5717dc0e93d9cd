//! The chart of accounts (DESIGN.md section 5) and how ledger ids are derived.
//!
//! One ledger per currency (its ISO numeric code). Ledger account ids are structured so that no
//! lookup table is needed: `code << 96 | ledger << 64 | owner`, where `owner` is the 64-bit number
//! inside a customer or seller id and 0 for the platform's own accounts. Transfer ids are derived
//! from the payment object's id and the leg, so every retry of a step sends the same ids and the
//! ledger applies it at most once.

use sha2::{Digest, Sha256};
use tally_client::codes::account_flags;
use tally_client::{v1, AccountBuilder};

use crate::domain::money::Currency;

/// Account codes (u16 `code` of a ledger account).
pub mod code {
    /// Money in flight at the PSP: debited by charges, credited by refunds and payouts.
    pub const PSP_CLEARING: u16 = 1;
    /// Our settlement bank account.
    pub const BANK: u16 = 2;
    /// What we owe a seller; cannot go below zero.
    pub const SELLER_WALLET: u16 = 10;
    /// A customer's deposits; cannot go below zero.
    pub const CUSTOMER_WALLET: u16 = 11;
    /// Platform fees earned.
    pub const PLATFORM_REVENUE: u16 = 20;
    /// Payouts sent to the PSP, not yet confirmed paid.
    pub const PAYOUTS_IN_TRANSIT: u16 = 30;
    /// Refunds sent to the PSP, not yet confirmed.
    pub const REFUNDS_IN_TRANSIT: u16 = 31;
}

/// Transfer codes (u16 `code` of a ledger transfer): what a posting is for.
pub mod transfer_code {
    pub const PAYIN: u16 = 1;
    pub const FEE: u16 = 2;
    pub const REFUND: u16 = 3;
    pub const REFUND_FEE_RETURN: u16 = 4;
    pub const PAYOUT: u16 = 5;
    pub const DEPOSIT: u16 = 6;
    pub const REFUND_SETTLE: u16 = 7;
    pub const PAYOUT_SETTLE: u16 = 8;
}

/// The platform's own accounts, one of each per currency.
pub const SYSTEM_CODES: &[u16] = &[
    code::PSP_CLEARING,
    code::BANK,
    code::PLATFORM_REVENUE,
    code::PAYOUTS_IN_TRANSIT,
    code::REFUNDS_IN_TRANSIT,
];

pub fn account_id(code: u16, currency: Currency, owner: u64) -> u128 {
    (u128::from(code) << 96) | (u128::from(currency.ledger) << 64) | u128::from(owner)
}

pub fn system_account(code: u16, currency: Currency) -> u128 {
    account_id(code, currency, 0)
}

/// The ledger accounts of the platform for `currency`.
pub fn system_accounts(currency: Currency) -> Vec<v1::Account> {
    SYSTEM_CODES
        .iter()
        .map(|&code| {
            AccountBuilder::new(system_account(code, currency), currency.ledger, code).build()
        })
        .collect()
}

/// A wallet (seller or customer): can never be overdrawn.
pub fn wallet(code: u16, currency: Currency, owner: u64) -> v1::Account {
    AccountBuilder::new(account_id(code, currency, owner), currency.ledger, code)
        .flags(account_flags::DEBITS_MUST_NOT_EXCEED_CREDITS | account_flags::HISTORY)
        .user_data_64(owner)
        .build()
}

/// A transfer id derived from the object it belongs to and the leg: the same inputs always give
/// the same non-zero id.
pub fn transfer_id(object_id: &str, leg: &str) -> u128 {
    let digest = Sha256::new()
        .chain_update(b"tally-pay transfer\0")
        .chain_update(object_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(leg.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let id = u128::from_be_bytes(bytes);
    id.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_distinct_per_code_currency_and_owner() {
        let usd = Currency::by_code("USD").unwrap();
        let eur = Currency::by_code("EUR").unwrap();
        let ids = [
            account_id(code::SELLER_WALLET, usd, 7),
            account_id(code::SELLER_WALLET, eur, 7),
            account_id(code::CUSTOMER_WALLET, usd, 7),
            account_id(code::SELLER_WALLET, usd, 8),
            system_account(code::PSP_CLEARING, usd),
        ];
        for (i, a) in ids.iter().enumerate() {
            assert_ne!(*a, 0);
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn transfer_ids_are_stable_and_distinct_per_leg() {
        assert_eq!(transfer_id("ord_1", "hold"), transfer_id("ord_1", "hold"));
        assert_ne!(transfer_id("ord_1", "hold"), transfer_id("ord_1", "post"));
        assert_ne!(transfer_id("ord_1", "hold"), transfer_id("ord_2", "hold"));
    }
}
