//! The chart of accounts (DESIGN.md section 5) and how ledger ids are derived.
//!
//! One ledger per currency (its ISO numeric code). Ledger account ids are structured so that no
//! lookup table is needed: `code << 96 | ledger << 64 | owner`, where `owner` is the 64-bit number
//! inside a customer or seller id and 0 for the platform's own accounts. Transfer ids are derived
//! from the payment object's id and the leg, so every retry of a step sends the same ids and the
//! ledger applies it at most once.

use sha2::{Digest, Sha256};
use tally_client::{Account, AccountBuilder, AccountFlags};

use crate::domain::ids;
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
    /// A seller's captured money held in escrow until its order is released (delivery confirmed
    /// or hold period over); cannot go below zero, and payouts never draw on it.
    pub const SELLER_PENDING: u16 = 12;
    /// Platform fees earned.
    pub const PLATFORM_REVENUE: u16 = 20;
    /// Payouts sent to the PSP, not yet confirmed paid.
    pub const PAYOUTS_IN_TRANSIT: u16 = 30;
    /// Refunds sent to the PSP, not yet confirmed.
    pub const REFUNDS_IN_TRANSIT: u16 = 31;
    /// The platform's FX position for one currency pair, one account in each of the pair's two
    /// ledgers (`fx_position_id`): a conversion credits it in the currency it takes in and debits
    /// it in the currency it pays out, so each ledger balances on its own.
    pub const FX_POSITION: u16 = 40;
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
    /// An escrowed order's seller share moved from pending to the wallet (available).
    pub const RELEASE: u16 = 9;
    /// A seller's money converted into another currency through the FX position. (15: the
    /// disputes work takes 10 to 14.)
    pub const FX: u16 = 15;
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
pub fn system_accounts(currency: Currency) -> Vec<Account> {
    SYSTEM_CODES
        .iter()
        .map(|&code| {
            AccountBuilder::new(system_account(code, currency), currency.ledger, code).build()
        })
        .collect()
}

/// A wallet (seller or customer): can never be overdrawn.
pub fn wallet(code: u16, currency: Currency, owner: u64) -> Account {
    AccountBuilder::new(account_id(code, currency, owner), currency.ledger, code)
        .flags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY)
        .user_data_64(owner)
        .build()
}

/// The owner number of the FX position of the pair `base`/`quote`: both ledger ids.
fn fx_pair_owner(base: Currency, quote: Currency) -> u64 {
    (u64::from(base.ledger) << 32) | u64::from(quote.ledger)
}

/// The id of the FX position of the pair `base`/`quote` in the ledger of `currency` (one of
/// the two).
pub fn fx_position_id(currency: Currency, base: Currency, quote: Currency) -> u128 {
    debug_assert!(currency == base || currency == quote);
    account_id(code::FX_POSITION, currency, fx_pair_owner(base, quote))
}

/// The FX position of the pair `base`/`quote` in the ledger of `currency`: either side may be
/// larger, so no balance rule.
pub fn fx_position(currency: Currency, base: Currency, quote: Currency) -> Account {
    let id = fx_position_id(currency, base, quote);
    AccountBuilder::new(id, currency.ledger, code::FX_POSITION)
        .user_data_64(fx_pair_owner(base, quote))
        .build()
}

/// Every FX position that may exist in the ledger of `currency`, given the enabled currencies:
/// one per pair with `currency` on either side.
pub fn fx_positions_of(currency: Currency, enabled: &[Currency]) -> Vec<u128> {
    enabled
        .iter()
        .filter(|other| **other != currency)
        .flat_map(|other| {
            [
                fx_position_id(currency, currency, *other),
                fx_position_id(currency, *other, currency),
            ]
        })
        .collect()
}

fn fx_position_name(owner: u64) -> String {
    let code_of = |ledger: u64| {
        u32::try_from(ledger)
            .ok()
            .and_then(Currency::by_ledger)
            .map_or_else(|| ledger.to_string(), |c| c.code.to_string())
    };
    format!(
        "fx_position/{}/{}",
        code_of(owner >> 32),
        code_of(owner & 0xffff_ffff)
    )
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

/// What a transfer is for, from its code.
pub fn kind_name(transfer_code: u32) -> String {
    let name = match u16::try_from(transfer_code) {
        Ok(transfer_code::PAYIN) => "payin",
        Ok(transfer_code::FEE) => "fee",
        Ok(transfer_code::REFUND) => "refund",
        Ok(transfer_code::REFUND_FEE_RETURN) => "refund_fee_return",
        Ok(transfer_code::PAYOUT) => "payout",
        Ok(transfer_code::DEPOSIT) => "deposit",
        Ok(transfer_code::REFUND_SETTLE) => "refund_settle",
        Ok(transfer_code::PAYOUT_SETTLE) => "payout_settle",
        Ok(transfer_code::RELEASE) => "release",
        Ok(transfer_code::FX) => "fx",
        _ => return format!("code_{transfer_code}"),
    };
    name.to_string()
}

/// The platform's accounts by role name.
pub const SYSTEM_ACCOUNT_NAMES: [(u16, &str); 5] = [
    (code::PSP_CLEARING, "psp_clearing"),
    (code::BANK, "bank"),
    (code::PLATFORM_REVENUE, "platform_revenue"),
    (code::PAYOUTS_IN_TRANSIT, "payouts_in_transit"),
    (code::REFUNDS_IN_TRANSIT, "refunds_in_transit"),
];

const _: () = assert!(SYSTEM_ACCOUNT_NAMES.len() == SYSTEM_CODES.len());

/// The name of one of tally-pay's accounts: a system account's role, the wallet's owner id, or
/// `<seller id>/pending` for a seller's escrow.
pub fn account_name(account_id: u128) -> String {
    let account_code = u16::try_from(account_id >> 96).unwrap_or(0);
    let owner = account_id as u64;
    if let Some((_, name)) = SYSTEM_ACCOUNT_NAMES
        .iter()
        .find(|(c, _)| *c == account_code && owner == 0)
    {
        return (*name).to_string();
    }
    match account_code {
        code::SELLER_WALLET => format!("{}_{owner:016x}", ids::SELLER),
        code::CUSTOMER_WALLET => format!("{}_{owner:016x}", ids::CUSTOMER),
        code::SELLER_PENDING => format!("{}_{owner:016x}/pending", ids::SELLER),
        code::FX_POSITION => fx_position_name(owner),
        _ => format!("{account_id:032x}"),
    }
}

/// The system account with this role name, for `GET /v1/system_accounts/{name}/transactions`.
pub fn system_code(name: &str) -> Option<u16> {
    SYSTEM_ACCOUNT_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
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
            account_id(code::SELLER_PENDING, usd, 7),
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

    #[test]
    fn names_of_accounts_and_kinds() {
        let usd = Currency::by_code("USD").unwrap();
        assert_eq!(
            account_name(system_account(code::PLATFORM_REVENUE, usd)),
            "platform_revenue"
        );
        assert_eq!(
            account_name(account_id(code::SELLER_WALLET, usd, 255)),
            "sel_00000000000000ff"
        );
        assert_eq!(
            account_name(account_id(code::SELLER_PENDING, usd, 255)),
            "sel_00000000000000ff/pending"
        );
        assert_eq!(kind_name(u32::from(transfer_code::RELEASE)), "release");
        assert_eq!(system_code("psp_clearing"), Some(code::PSP_CLEARING));
        assert_eq!(system_code("sel_00000000000000ff"), None);
        assert_eq!(
            kind_name(u32::from(transfer_code::REFUND_FEE_RETURN)),
            "refund_fee_return"
        );
        assert_eq!(kind_name(999), "code_999");
        assert_eq!(kind_name(u32::from(transfer_code::FX)), "fx");
    }

    #[test]
    fn fx_positions_are_one_per_pair_and_ledger() {
        let [eur, gbp, jpy] = ["EUR", "GBP", "JPY"].map(|c| Currency::by_code(c).unwrap());
        let in_eur = fx_position_id(eur, eur, gbp);
        let in_gbp = fx_position_id(gbp, eur, gbp);
        assert_ne!(in_eur, in_gbp);
        assert_ne!(
            in_eur,
            fx_position_id(eur, gbp, eur),
            "a pair has a direction"
        );
        assert_eq!(fx_position(eur, eur, gbp).ledger, eur.ledger);
        assert_eq!(account_name(in_gbp), "fx_position/EUR/GBP");
        let of_eur = fx_positions_of(eur, &[eur, gbp, jpy]);
        assert_eq!(of_eur.len(), 4);
        assert!(of_eur.contains(&in_eur) && !of_eur.contains(&in_gbp));
    }
}
