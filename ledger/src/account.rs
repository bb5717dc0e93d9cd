//! Creating accounts: validation, idempotency and insertion, in result-code precedence order.

use super::apply::LedgerBatch;
use super::results::CreateAccountResult as R;
use super::state::LedgerState;
use super::types::{Account, AccountFlags};

type Check = Result<(), R>;

fn reject_if(condition: bool, result: R) -> Check {
    if condition {
        Err(result)
    } else {
        Ok(())
    }
}

impl<S: LedgerState> LedgerBatch<'_, S> {
    /// Creates one account. On any result but `ok` nothing changed.
    pub(crate) fn create_account(&mut self, account: &Account) -> R {
        match self.try_create_account(account) {
            Ok(()) => R::Ok,
            Err(result) => result,
        }
    }

    fn try_create_account(&mut self, account: &Account) -> Check {
        validate_account(account)?;
        if let Some(stored) = self.account(account.id) {
            return Err(account_exists_result(account, &stored));
        }
        let timestamp = self.take_timestamp().ok_or(R::TimestampExhausted)?;
        let created = Account {
            timestamp,
            ..account.clone()
        };
        debug_assert!(created.debits_total() == Some(0) && created.credits_total() == Some(0));
        self.overlay.put_account(created);
        Ok(())
    }
}

/// Field checks that need no state.
fn validate_account(account: &Account) -> Check {
    let flags = account.flags;
    reject_if(account.timestamp != 0, R::TimestampMustBeZero)?;
    reject_if(flags.has_reserved(), R::ReservedFlag)?;
    reject_if(account.id == 0, R::IdMustNotBeZero)?;
    reject_if(account.id == u128::MAX, R::IdMustNotBeIntMax)?;
    reject_if(
        flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
        R::FlagsAreMutuallyExclusive,
    )?;
    reject_if(account.debits_pending != 0, R::DebitsPendingMustBeZero)?;
    reject_if(account.debits_posted != 0, R::DebitsPostedMustBeZero)?;
    reject_if(account.credits_pending != 0, R::CreditsPendingMustBeZero)?;
    reject_if(account.credits_posted != 0, R::CreditsPostedMustBeZero)?;
    reject_if(account.ledger == 0, R::LedgerMustNotBeZero)?;
    reject_if(account.code == 0, R::CodeMustNotBeZero)
}

/// Compares a request with the stored account of the same id (exactly-once retries).
fn account_exists_result(request: &Account, stored: &Account) -> R {
    if request.flags != stored.flags {
        return R::ExistsWithDifferentFlags;
    }
    if request.user_data_128 != stored.user_data_128 {
        return R::ExistsWithDifferentUserData128;
    }
    if request.user_data_64 != stored.user_data_64 {
        return R::ExistsWithDifferentUserData64;
    }
    if request.user_data_32 != stored.user_data_32 {
        return R::ExistsWithDifferentUserData32;
    }
    if request.ledger != stored.ledger {
        return R::ExistsWithDifferentLedger;
    }
    if request.code != stored.code {
        return R::ExistsWithDifferentCode;
    }
    R::Exists
}
