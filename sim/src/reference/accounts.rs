//! Creating one account, by the rules of `CreateAccountResult`: the first broken rule, in the
//! order of the codes, is the answer.

use tally_ledger::{Account, AccountFlags, CreateAccountResult as R};

use super::books::{has_account_flag, Books};
use super::first_broken;

/// Every account flag with a meaning.
const KNOWN_ACCOUNT_FLAGS: u16 = AccountFlags::LINKED.0
    | AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS.0
    | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS.0
    | AccountFlags::HISTORY.0
    | AccountFlags::CLOSED.0;

pub(crate) fn create_account(books: &mut Books, account: &Account) -> R {
    match try_create_account(books, account) {
        Ok(()) => R::Ok,
        Err(code) => code,
    }
}

fn try_create_account(books: &mut Books, request: &Account) -> Result<(), R> {
    let flags = request.flags;
    let both_limits = has_account_flag(flags, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        && has_account_flag(flags, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS);
    first_broken(&[
        (request.timestamp != 0, R::TimestampMustBeZero),
        (flags.0 & !KNOWN_ACCOUNT_FLAGS != 0, R::ReservedFlag),
        (request.id == 0, R::IdMustNotBeZero),
        (request.id == u128::MAX, R::IdMustNotBeIntMax),
        (both_limits, R::FlagsAreMutuallyExclusive),
        (request.debits_pending != 0, R::DebitsPendingMustBeZero),
        (request.debits_posted != 0, R::DebitsPostedMustBeZero),
        (request.credits_pending != 0, R::CreditsPendingMustBeZero),
        (request.credits_posted != 0, R::CreditsPostedMustBeZero),
        (request.ledger == 0, R::LedgerMustNotBeZero),
        (request.code == 0, R::CodeMustNotBeZero),
    ])?;
    if let Some(stored) = books.accounts.get(&request.id) {
        // The same id again: `exists` only if every field the client chose is the same.
        first_broken(&[
            (request.flags != stored.flags, R::ExistsWithDifferentFlags),
            (
                request.user_data_128 != stored.user_data_128,
                R::ExistsWithDifferentUserData128,
            ),
            (
                request.user_data_64 != stored.user_data_64,
                R::ExistsWithDifferentUserData64,
            ),
            (
                request.user_data_32 != stored.user_data_32,
                R::ExistsWithDifferentUserData32,
            ),
            (
                request.ledger != stored.ledger,
                R::ExistsWithDifferentLedger,
            ),
            (request.code != stored.code, R::ExistsWithDifferentCode),
        ])?;
        return Err(R::Exists);
    }
    let timestamp = books.clock.take().ok_or(R::TimestampExhausted)?;
    // Stored as sent (the linked flag included), with its creation timestamp.
    let created = Account {
        timestamp,
        ..request.clone()
    };
    books.accounts.insert(created.id, created);
    books.journal.accounts.insert(request.id);
    Ok(())
}
