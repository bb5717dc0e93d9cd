//! Creating one transfer, by the rules of `CreateTransferResult`: new transfers (plain, pending,
//! balancing) and posts and voids of a pending transfer. Each rule list is in the order of the
//! codes; the first broken rule is the answer, and nothing changes unless every rule holds.

use tally_ledger::{
    Account, AccountFlags, CreateTransferResult as R, PendingStatus, Transfer, TransferFlags,
    NANOS_PER_SECOND,
};

use super::books::{expiry_of, has_account_flag, has_transfer_flag, Books};
use super::first_broken;

/// Every transfer flag with a meaning.
const KNOWN_TRANSFER_FLAGS: u16 = TransferFlags::LINKED.0
    | TransferFlags::PENDING.0
    | TransferFlags::POST_PENDING_TRANSFER.0
    | TransferFlags::VOID_PENDING_TRANSFER.0
    | TransferFlags::BALANCING_DEBIT.0
    | TransferFlags::BALANCING_CREDIT.0;

/// The request's flags, spelled out once.
#[derive(Clone, Copy)]
struct Shape {
    pending: bool,
    post: bool,
    void: bool,
    balancing_debit: bool,
    balancing_credit: bool,
}

impl Shape {
    fn of(transfer: &Transfer) -> Shape {
        let flag = |bit| has_transfer_flag(transfer.flags, bit);
        Shape {
            pending: flag(TransferFlags::PENDING),
            post: flag(TransferFlags::POST_PENDING_TRANSFER),
            void: flag(TransferFlags::VOID_PENDING_TRANSFER),
            balancing_debit: flag(TransferFlags::BALANCING_DEBIT),
            balancing_credit: flag(TransferFlags::BALANCING_CREDIT),
        }
    }

    fn balancing(self) -> bool {
        self.balancing_debit || self.balancing_credit
    }

    fn resolves(self) -> bool {
        self.post || self.void
    }

    /// A post or void asking for the whole pending amount: u128::MAX, or 0 for a void.
    fn whole_amount(self, amount: u128) -> bool {
        self.resolves() && (amount == u128::MAX || (self.void && amount == 0))
    }
}

pub(crate) fn create_transfer(books: &mut Books, transfer: &Transfer) -> R {
    match try_create_transfer(books, transfer) {
        Ok(()) => R::Ok,
        Err(code) => code,
    }
}

fn try_create_transfer(books: &mut Books, request: &Transfer) -> Result<(), R> {
    let shape = Shape::of(request);
    first_broken(&[
        (request.timestamp != 0, R::TimestampMustBeZero),
        (
            request.flags.0 & !KNOWN_TRANSFER_FLAGS != 0,
            R::ReservedFlag,
        ),
        (request.id == 0, R::IdMustNotBeZero),
        (request.id == u128::MAX, R::IdMustNotBeIntMax),
        (
            (shape.post && shape.void)
                || (shape.resolves() && (shape.pending || shape.balancing())),
            R::FlagsAreMutuallyExclusive,
        ),
    ])?;
    if shape.resolves() {
        resolve_pending(books, request, shape)
    } else {
        create_new(books, request, shape)
    }
}

/// The `exists*` code for a request whose id is already stored, if it is.
fn already_stored(books: &Books, request: &Transfer, shape: Shape) -> Result<(), R> {
    let Some(stored) = books.transfers.get(&request.id) else {
        return Ok(());
    };
    // A post or void may leave accounts, ledger and code zero: it inherited them.
    let matches = |asked: u128, have: u128| asked == have || (shape.resolves() && asked == 0);
    let same_amount = if shape.balancing() {
        // The request's amount was a ceiling; what was stored may be less.
        request.amount >= stored.amount
    } else if shape.whole_amount(request.amount) {
        let resolved = books.transfers.get(&stored.pending_id);
        resolved.map(|pending| pending.amount) == Some(stored.amount)
    } else {
        request.amount == stored.amount
    };
    first_broken(&[
        (request.flags != stored.flags, R::ExistsWithDifferentFlags),
        (
            !matches(request.debit_account_id, stored.debit_account_id),
            R::ExistsWithDifferentDebitAccountId,
        ),
        (
            !matches(request.credit_account_id, stored.credit_account_id),
            R::ExistsWithDifferentCreditAccountId,
        ),
        (!same_amount, R::ExistsWithDifferentAmount),
        (
            request.pending_id != stored.pending_id,
            R::ExistsWithDifferentPendingId,
        ),
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
            request.timeout != stored.timeout,
            R::ExistsWithDifferentTimeout,
        ),
        (
            !matches(request.ledger.into(), stored.ledger.into()),
            R::ExistsWithDifferentLedger,
        ),
        (
            !matches(request.code.into(), stored.code.into()),
            R::ExistsWithDifferentCode,
        ),
    ])?;
    Err(R::Exists)
}

fn closed(account: &Account) -> bool {
    has_account_flag(account.flags, AccountFlags::CLOSED)
}

fn sum_overflows(parts: &[u128]) -> bool {
    parts
        .iter()
        .try_fold(0u128, |sum, part| sum.checked_add(*part))
        .is_none()
}

/// A plain, pending or balancing transfer between two accounts.
fn create_new(books: &mut Books, request: &Transfer, shape: Shape) -> Result<(), R> {
    let (debit_id, credit_id) = (request.debit_account_id, request.credit_account_id);
    first_broken(&[
        (debit_id == 0, R::DebitAccountIdMustNotBeZero),
        (debit_id == u128::MAX, R::DebitAccountIdMustNotBeIntMax),
        (credit_id == 0, R::CreditAccountIdMustNotBeZero),
        (credit_id == u128::MAX, R::CreditAccountIdMustNotBeIntMax),
        (debit_id == credit_id, R::AccountsMustBeDifferent),
        (request.pending_id != 0, R::PendingIdMustBeZero),
        (
            !shape.pending && request.timeout != 0,
            R::TimeoutReservedForPendingTransfer,
        ),
        (request.amount == 0, R::AmountMustNotBeZero),
        (request.ledger == 0, R::LedgerMustNotBeZero),
        (request.code == 0, R::CodeMustNotBeZero),
    ])?;
    already_stored(books, request, shape)?;
    let debit = books.account(debit_id).ok_or(R::DebitAccountNotFound)?;
    let credit = books.account(credit_id).ok_or(R::CreditAccountNotFound)?;
    first_broken(&[
        (
            debit.ledger != credit.ledger,
            R::AccountsMustHaveTheSameLedger,
        ),
        (
            request.ledger != debit.ledger,
            R::TransferMustHaveTheSameLedgerAsAccounts,
        ),
        (closed(&debit), R::DebitAccountClosed),
        (closed(&credit), R::CreditAccountClosed),
    ])?;
    // A balancing transfer moves at most what leaves its balancing side at zero.
    let mut amount = request.amount;
    if shape.balancing_debit {
        let used = debit.debits_posted.saturating_add(debit.debits_pending);
        amount = amount.min(debit.credits_posted.saturating_sub(used));
    }
    if shape.balancing_credit {
        let used = credit.credits_posted.saturating_add(credit.credits_pending);
        amount = amount.min(credit.debits_posted.saturating_sub(used));
    }
    let timeout_overflows = shape.pending
        && request.timeout != 0
        && u64::from(request.timeout)
            .checked_mul(NANOS_PER_SECOND)
            .and_then(|ns| ns.checked_add(books.clock.peek()))
            .is_none();
    first_broken(&[
        (
            shape.pending && sum_overflows(&[debit.debits_pending, amount]),
            R::OverflowsDebitsPending,
        ),
        (
            shape.pending && sum_overflows(&[credit.credits_pending, amount]),
            R::OverflowsCreditsPending,
        ),
        (
            sum_overflows(&[debit.debits_posted, amount]),
            R::OverflowsDebitsPosted,
        ),
        (
            sum_overflows(&[credit.credits_posted, amount]),
            R::OverflowsCreditsPosted,
        ),
        (
            sum_overflows(&[debit.debits_pending, debit.debits_posted, amount]),
            R::OverflowsDebits,
        ),
        (
            sum_overflows(&[credit.credits_pending, credit.credits_posted, amount]),
            R::OverflowsCredits,
        ),
        (timeout_overflows, R::OverflowsTimeout),
    ])?;
    // No sum overflows now, so saturating is exact.
    let debits_after = debit
        .debits_pending
        .saturating_add(debit.debits_posted)
        .saturating_add(amount);
    let credits_after = credit
        .credits_pending
        .saturating_add(credit.credits_posted)
        .saturating_add(amount);
    let debit_limited = has_account_flag(debit.flags, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS);
    let credit_limited =
        has_account_flag(credit.flags, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS);
    first_broken(&[
        (shape.balancing_debit && amount == 0, R::ExceedsCredits),
        (shape.balancing_credit && amount == 0, R::ExceedsDebits),
        (
            debit_limited && debits_after > debit.credits_posted,
            R::ExceedsCredits,
        ),
        (
            credit_limited && credits_after > credit.debits_posted,
            R::ExceedsDebits,
        ),
    ])?;
    let timestamp = books.clock.take().ok_or(R::TimestampExhausted)?;
    let stored = Transfer {
        amount,
        timestamp,
        ..request.clone()
    };
    if shape.pending {
        books.set_status(stored.id, PendingStatus::Pending);
    }
    books.store_transfer(stored);
    Ok(())
}

/// A post or void of a pending transfer.
fn resolve_pending(books: &mut Books, request: &Transfer, shape: Shape) -> Result<(), R> {
    let pending_id = request.pending_id;
    first_broken(&[
        (pending_id == 0, R::PendingIdMustNotBeZero),
        (pending_id == u128::MAX, R::PendingIdMustNotBeIntMax),
        (pending_id == request.id, R::PendingIdMustBeDifferent),
        (request.timeout != 0, R::TimeoutReservedForPendingTransfer),
        (shape.post && request.amount == 0, R::AmountMustNotBeZero),
    ])?;
    already_stored(books, request, shape)?;
    let pending = books
        .transfers
        .get(&pending_id)
        .cloned()
        .ok_or(R::PendingTransferNotFound)?;
    // Zero means "inherit"; anything else must be what the pending transfer has.
    let differs = |asked: u128, have: u128| asked != 0 && asked != have;
    first_broken(&[
        (
            !has_transfer_flag(pending.flags, TransferFlags::PENDING),
            R::PendingTransferNotPending,
        ),
        (
            differs(request.debit_account_id, pending.debit_account_id),
            R::PendingTransferHasDifferentDebitAccountId,
        ),
        (
            differs(request.credit_account_id, pending.credit_account_id),
            R::PendingTransferHasDifferentCreditAccountId,
        ),
        (
            differs(request.ledger.into(), pending.ledger.into()),
            R::PendingTransferHasDifferentLedger,
        ),
        (
            differs(request.code.into(), pending.code.into()),
            R::PendingTransferHasDifferentCode,
        ),
    ])?;
    let amount = if shape.whole_amount(request.amount) {
        pending.amount
    } else {
        first_broken(&[
            (
                request.amount > pending.amount,
                R::ExceedsPendingTransferAmount,
            ),
            // Only a post may take part of the reservation.
            (
                shape.void && request.amount < pending.amount,
                R::PendingTransferHasDifferentAmount,
            ),
        ])?;
        request.amount
    };
    match books.statuses.get(&pending_id) {
        Some(PendingStatus::Posted) => return Err(R::PendingTransferAlreadyPosted),
        Some(PendingStatus::Voided) => return Err(R::PendingTransferAlreadyVoided),
        Some(PendingStatus::Expired) => return Err(R::PendingTransferExpired),
        Some(PendingStatus::Pending) | None => {}
    }
    // Expired at the instant this post or void would be stamped, even if no entry has
    // expired it yet.
    let now = books.clock.peek();
    if let Some(expires_at) = expiry_of(&pending) {
        let delta = i128::from(now) - i128::from(expires_at);
        if let Ok(slot) = usize::try_from(delta + 1) {
            if let Some(count) = books.coverage.resolve_at_expiry.get_mut(slot) {
                *count += 1;
            }
        }
        if expires_at <= now {
            return Err(R::PendingTransferExpired);
        }
    }
    let debit = books
        .account(pending.debit_account_id)
        .ok_or(R::DebitAccountNotFound)?;
    let credit = books
        .account(pending.credit_account_id)
        .ok_or(R::CreditAccountNotFound)?;
    if shape.post {
        // A void only hands reserved money back, so it works on closed accounts too.
        first_broken(&[
            (closed(&debit), R::DebitAccountClosed),
            (closed(&credit), R::CreditAccountClosed),
        ])?;
    }
    first_broken(&[
        (
            debit.debits_pending < pending.amount || credit.credits_pending < pending.amount,
            R::OverflowsDebitsPending,
        ),
        (
            shape.post && sum_overflows(&[debit.debits_posted, amount]),
            R::OverflowsDebitsPosted,
        ),
        (
            shape.post && sum_overflows(&[credit.credits_posted, amount]),
            R::OverflowsCreditsPosted,
        ),
    ])?;
    let timestamp = books.clock.take().ok_or(R::TimestampExhausted)?;
    let stored = Transfer {
        debit_account_id: pending.debit_account_id,
        credit_account_id: pending.credit_account_id,
        ledger: pending.ledger,
        code: pending.code,
        amount,
        timestamp,
        ..request.clone()
    };
    let status = if shape.post {
        PendingStatus::Posted
    } else {
        PendingStatus::Voided
    };
    books.set_status(pending_id, status);
    books.store_transfer(stored);
    Ok(())
}
