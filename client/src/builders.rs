//! Builders from plain Rust values (u128 ids and amounts) to the protocol structs, and the
//! balances of an account as u128s.

use tally_proto::{u128_of, v1};

use crate::codes::transfer_flags;

/// Builds a [`v1::Account`] to create. Balances and timestamp stay zero (the cluster sets them).
#[derive(Clone, Debug)]
pub struct AccountBuilder {
    account: v1::Account,
}

impl AccountBuilder {
    /// An account with client-chosen `id` (non-zero) on `ledger` (currency) with `code` (type).
    pub fn new(id: u128, ledger: u32, code: u16) -> AccountBuilder {
        AccountBuilder {
            account: v1::Account {
                id: Some(id.into()),
                ledger,
                code: u32::from(code),
                ..Default::default()
            },
        }
    }

    /// Sets the flag bits (see [`crate::codes::account_flags`]).
    pub fn flags(mut self, flags: u32) -> AccountBuilder {
        self.account.flags = flags;
        self
    }

    /// Sets `user_data_128`.
    pub fn user_data_128(mut self, value: u128) -> AccountBuilder {
        self.account.user_data_128 = Some(value.into());
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
    pub fn build(self) -> v1::Account {
        self.account
    }
}

/// Builds a [`v1::Transfer`] to create.
#[derive(Clone, Debug)]
pub struct TransferBuilder {
    transfer: v1::Transfer,
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
            transfer: v1::Transfer {
                id: Some(id.into()),
                debit_account_id: Some(debit_account_id.into()),
                credit_account_id: Some(credit_account_id.into()),
                amount: Some(amount.into()),
                ledger,
                code: u32::from(code),
                ..Default::default()
            },
        }
    }

    /// Posts (captures) pending transfer `pending_id`. `amount: None` posts the full pending
    /// amount. Accounts, ledger and code are inherited from the pending transfer.
    pub fn post(id: u128, pending_id: u128, amount: Option<u128>) -> TransferBuilder {
        TransferBuilder::new(id, 0, 0, amount.unwrap_or(u128::MAX), 0, 0)
            .pending_id(pending_id)
            .flags(transfer_flags::POST_PENDING_TRANSFER)
    }

    /// Voids (releases) pending transfer `pending_id` in full.
    pub fn void(id: u128, pending_id: u128) -> TransferBuilder {
        TransferBuilder::new(id, 0, 0, 0, 0, 0)
            .pending_id(pending_id)
            .flags(transfer_flags::VOID_PENDING_TRANSFER)
    }

    /// Sets the flag bits (see [`crate::codes::transfer_flags`]), replacing any set before.
    pub fn flags(mut self, flags: u32) -> TransferBuilder {
        self.transfer.flags = flags;
        self
    }

    /// Adds flag bits to the ones already set.
    pub fn add_flags(mut self, flags: u32) -> TransferBuilder {
        self.transfer.flags |= flags;
        self
    }

    /// Sets the pending transfer this one posts or voids.
    pub fn pending_id(mut self, pending_id: u128) -> TransferBuilder {
        self.transfer.pending_id = Some(pending_id.into());
        self
    }

    /// Sets the timeout of a pending transfer, in seconds (0 = never expires).
    pub fn timeout_seconds(mut self, seconds: u32) -> TransferBuilder {
        self.transfer.timeout = seconds;
        self
    }

    /// Sets `user_data_128`.
    pub fn user_data_128(mut self, value: u128) -> TransferBuilder {
        self.transfer.user_data_128 = Some(value.into());
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
    pub fn build(self) -> v1::Transfer {
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
    pub fn of_account(account: &v1::Account) -> Balances {
        Balances {
            debits_pending: u128_of(account.debits_pending),
            debits_posted: u128_of(account.debits_posted),
            credits_pending: u128_of(account.credits_pending),
            credits_posted: u128_of(account.credits_posted),
        }
    }

    /// The balances at one point of an account's history.
    pub fn of_history(balance: &v1::AccountBalance) -> Balances {
        Balances {
            debits_pending: u128_of(balance.debits_pending),
            debits_posted: u128_of(balance.debits_posted),
            credits_pending: u128_of(balance.credits_pending),
            credits_posted: u128_of(balance.credits_posted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::account_flags;

    #[test]
    fn account_builder_sets_fields() {
        let account = AccountBuilder::new(u128::MAX - 1, 840, 7)
            .flags(account_flags::HISTORY)
            .user_data_128(1 << 100)
            .user_data_64(64)
            .user_data_32(32)
            .build();
        assert_eq!(u128_of(account.id), u128::MAX - 1);
        assert_eq!((account.ledger, account.code, account.flags), (840, 7, 8));
        assert_eq!(u128_of(account.user_data_128), 1 << 100);
        assert_eq!((account.user_data_64, account.user_data_32), (64, 32));
        assert_eq!(Balances::of_account(&account), Balances::default());
        assert_eq!(account.timestamp, 0);
    }

    #[test]
    fn transfer_builders() {
        let transfer = TransferBuilder::new(1, 2, 3, 4, 5, 6)
            .flags(transfer_flags::PENDING)
            .add_flags(transfer_flags::LINKED)
            .timeout_seconds(60)
            .build();
        assert_eq!(u128_of(transfer.id), 1);
        assert_eq!(u128_of(transfer.debit_account_id), 2);
        assert_eq!(u128_of(transfer.credit_account_id), 3);
        assert_eq!(u128_of(transfer.amount), 4);
        assert_eq!((transfer.ledger, transfer.code), (5, 6));
        assert_eq!((transfer.flags, transfer.timeout), (3, 60));

        let post = TransferBuilder::post(10, 1, None).build();
        assert_eq!(post.flags, transfer_flags::POST_PENDING_TRANSFER);
        assert_eq!(u128_of(post.pending_id), 1);
        assert_eq!(u128_of(post.amount), u128::MAX);
        let partial = TransferBuilder::post(11, 1, Some(3)).build();
        assert_eq!(u128_of(partial.amount), 3);
        let void = TransferBuilder::void(12, 1).build();
        assert_eq!(void.flags, transfer_flags::VOID_PENDING_TRANSFER);
        assert_eq!(u128_of(void.amount), 0);
    }
}
