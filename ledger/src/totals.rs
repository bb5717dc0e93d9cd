//! Per-ledger sums of account balances, for `verify` and the conservation checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::Account;

/// Sums of one ledger's account balances. The sums wrap modulo 2^128: a ledger's total volume can
/// exceed u128 even though no single account does, and wrapped sums still compare equal exactly
/// when the true sums do (up to a multiple of 2^128, which no realistic error is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
}

impl LedgerTotals {
    /// Double entry holds: debits equal credits, posted and pending separately.
    pub fn is_balanced(&self) -> bool {
        self.debits_posted == self.credits_posted && self.debits_pending == self.credits_pending
    }

    fn add(&mut self, account: &Account) {
        self.debits_pending = self.debits_pending.wrapping_add(account.debits_pending);
        self.debits_posted = self.debits_posted.wrapping_add(account.debits_posted);
        self.credits_pending = self.credits_pending.wrapping_add(account.credits_pending);
        self.credits_posted = self.credits_posted.wrapping_add(account.credits_posted);
    }
}

/// Sums balances per ledger.
pub fn ledger_totals<'a>(
    accounts: impl Iterator<Item = &'a Account>,
) -> BTreeMap<u32, LedgerTotals> {
    let mut totals: BTreeMap<u32, LedgerTotals> = BTreeMap::new();
    for account in accounts {
        totals.entry(account.ledger).or_default().add(account);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_per_ledger() {
        let debit = Account {
            id: 1,
            ledger: 7,
            debits_posted: 5,
            debits_pending: 2,
            ..Account::default()
        };
        let credit = Account {
            id: 2,
            ledger: 7,
            credits_posted: 5,
            credits_pending: 2,
            ..Account::default()
        };
        let other = Account {
            id: 3,
            ledger: 8,
            credits_posted: 1,
            ..Account::default()
        };
        let totals = ledger_totals([debit, credit, other].iter());
        assert!(totals[&7].is_balanced());
        assert!(!totals[&8].is_balanced());
        assert_eq!(totals[&7].debits_posted, 5);
    }
}
