//! Builders of the ledger's accounts and transfers to create, and the balances of an account.

use tally_ledger::{Account, AccountFlags, Balance, Transfer, TransferFlags};

/// Builds an [`Account`] to create. Balances and timestamp stay zero (the cluster sets them).
#[derive(Clone, Debug)]
pub struct AccountBuilder {
    account: Account,
}

impl AccountBuilder {
    /// An account with client-chosen `id` (non-zero) on `ledger` (currency) with `code` (type).
    pub fn new(id: u128, ledger: u32, code: u16) -> AccountBuilder {
        AccountBuilder {
            account: Account {
                id,
                ledger,
                code,
                ..Account::default()
            },
        }
    }

    /// Sets the flags.
    pub fn flags(mut self, flags: AccountFlags) -> AccountBuilder {
        self.account.flags = flags;
        self
    }

    /// Sets `user_data_128`.
    pub fn user_data_128(mut self, value: u128) -> AccountBuilder {
        self.account.user_data_128 = value;
        self
    }

    /// Sets `user_data_64`.
    pub fn user_data_64(mut self, value: u64) -> AccountBuilder {
        self.account.user_data_64 = value;
        self
    }

    /// Sets `user_data_32`.
    pub fn user_data_32(mut self, value: u32) -> AccountBuilder {
        self.account.user_data_32 = value;
        self
    }

    /// The account.
    pub fn build(self) -> Account {
        self.account
    }
}

/// Builds a [`Transfer`] to create.
#[derive(Clone, Debug)]
pub struct TransferBuilder {
    transfer: Transfer,
}

impl TransferBuilder {
    /// A transfer of `amount` from `debit_account_id` to `credit_account_id`.
    pub fn new(
        id: u128,
        debit_account_id: u128,
        credit_account_id: u128,
        amount: u128,
        ledger: u32,
        code: u16,
    ) -> TransferBuilder {
        TransferBuilder {
            transfer: Transfer {
                id,
                debit_account_id,
                credit_account_id,
                amount,
                ledger,
                code,
                ..Transfer::default()
            },
        }
    }

    /// Posts (captures) pending transfer `pending_id`. `amount: None` posts the full pending
    /// amount. Accounts, ledger and code are inherited from the pending transfer.
    pub fn post(id: u128, pending_id: u128, amount: Option<u128>) -> TransferBuilder {
        TransferBuilder::new(id, 0, 0, amount.unwrap_or(u128::MAX), 0, 0)
            .pending_id(pending_id)
            .flags(TransferFlags::POST_PENDING_TRANSFER)
    }

    /// Voids (releases) pending transfer `pending_id` in full.
    pub fn void(id: u128, pending_id: u128) -> TransferBuilder {
        TransferBuilder::new(id, 0, 0, 0, 0, 0)
            .pending_id(pending_id)
            .flags(TransferFlags::VOID_PENDING_TRANSFER)
    }

    /// Sets the flags, replacing any set before.
    pub fn flags(mut self, flags: TransferFlags) -> TransferBuilder {
        self.transfer.flags = flags;
        self
    }

    /// Adds flags to the ones already set.
    pub fn add_flags(mut self, flags: TransferFlags) -> TransferBuilder {
        self.transfer.flags = self.transfer.flags | flags;
        self
    }

    /// Sets the pending transfer this one posts or voids.
    pub fn pending_id(mut self, pending_id: u128) -> TransferBuilder {
        self.transfer.pending_id = pending_id;
        self
    }

    /// Sets the timeout of a pending transfer, in seconds (0 = never expires).
    pub fn timeout_seconds(mut self, seconds: u32) -> TransferBuilder {
        self.transfer.timeout = seconds;
        self
    }

    /// Sets `user_data_128`.
    pub fn user_data_128(mut self, value: u128) -> TransferBuilder {
        self.transfer.user_data_128 = value;
        self
    }

    /// Sets `user_data_64`.
    pub fn user_data_64(mut self, value: u64) -> TransferBuilder {
        self.transfer.user_data_64 = value;
        self
    }

    /// Sets `user_data_32`.
    pub fn user_data_32(mut self, value: u32) -> TransferBuilder {
        self.transfer.user_data_32 = value;
        self
    }

    /// The transfer.
    pub fn build(self) -> Transfer {
        self.transfer
    }
}

/// The four balances of an account (or of one point of its history), as u128.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balances {
    /// Reserved by pending transfers, debit side.
    pub debits_pending: u128,
    /// Posted debits.
    pub debits_posted: u128,
    /// Reserved by pending transfers, credit side.
    pub credits_pending: u128,
    /// Posted credits.
    pub credits_posted: u128,
}

impl Balances {
    /// The balances of `account`.
    pub fn of_account(account: &Account) -> Balances {
        Balances {
            debits_pending: account.debits_pending,
            debits_posted: account.debits_posted,
            credits_pending: account.credits_pending,
            credits_posted: account.credits_posted,
        }
    }

    /// The balances at one point of an account's history.
    pub fn of_history(balance: &Balance) -> Balances {
        Balances {
            debits_pending: balance.debits_pending,
            debits_posted: balance.debits_posted,
            credits_pending: balance.credits_pending,
            credits_posted: balance.credits_posted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_builder_sets_fields() {
        let account = AccountBuilder::new(u128::MAX - 1, 840, 7)
            .flags(AccountFlags::HISTORY)
            .user_data_128(1 << 100)
            .user_data_64(64)
            .user_data_32(32)
            .build();
        assert_eq!(account.id, u128::MAX - 1);
        assert_eq!(
            (account.ledger, account.code, account.flags),
            (840, 7, AccountFlags::HISTORY)
        );
        assert_eq!(account.user_data_128, 1 << 100);
        assert_eq!((account.user_data_64, account.user_data_32), (64, 32));
        assert_eq!(Balances::of_account(&account), Balances::default());
        assert_eq!(account.timestamp, 0);
    }

    #[test]
    fn transfer_builders() {
        let transfer = TransferBuilder::new(1, 2, 3, 4, 5, 6)
            .flags(TransferFlags::PENDING)
            .add_flags(TransferFlags::LINKED)
            .timeout_seconds(60)
            .build();
        assert_eq!(transfer.id, 1);
        assert_eq!(transfer.debit_account_id, 2);
        assert_eq!(transfer.credit_account_id, 3);
        assert_eq!(transfer.amount, 4);
        assert_eq!((transfer.ledger, transfer.code), (5, 6));
        assert_eq!(
            (transfer.flags, transfer.timeout),
            (TransferFlags::PENDING | TransferFlags::LINKED, 60)
        );

        let post = TransferBuilder::post(10, 1, None).build();
        assert_eq!(post.flags, TransferFlags::POST_PENDING_TRANSFER);
        assert_eq!(post.pending_id, 1);
        assert_eq!(post.amount, u128::MAX);
        let partial = TransferBuilder::post(11, 1, Some(3)).build();
        assert_eq!(partial.amount, 3);
        let void = TransferBuilder::void(12, 1).build();
        assert_eq!(void.flags, TransferFlags::VOID_PENDING_TRANSFER);
        assert_eq!(void.amount, 0);
    }
}
