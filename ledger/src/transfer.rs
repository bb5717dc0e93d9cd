//! Creating transfers: plain, pending, post and void, checked in result-code precedence order.
//!
//! Every check runs before the first write, so a rejected transfer never changes anything; a
//! linked chain relies on that plus the overlay's undo log.

use super::apply::{release_pending, LedgerBatch};
use super::results::CreateTransferResult as R;
use super::state::LedgerState;
use super::types::{Account, AccountFlags, PendingStatus, Transfer, TransferFlags};

type Check<T = ()> = Result<T, R>;

fn reject_if(condition: bool, result: R) -> Check {
    if condition {
        Err(result)
    } else {
        Ok(())
    }
}

impl<S: LedgerState> LedgerBatch<'_, S> {
    /// Creates one transfer. On any result but `ok` nothing changed.
    pub(crate) fn create_transfer(&mut self, transfer: &Transfer) -> R {
        let outcome = if transfer.is_post_or_void() {
            self.try_post_or_void(transfer)
        } else {
            self.try_create_plain(transfer)
        };
        match outcome {
            Ok(()) => R::Ok,
            Err(result) => result,
        }
    }

    /// A plain or pending transfer between two accounts.
    fn try_create_plain(&mut self, transfer: &Transfer) -> Check {
        validate_common(transfer)?;
        validate_plain(transfer)?;
        self.check_not_exists(transfer)?;
        let (debit, credit) = self.plain_accounts(transfer)?;
        let amount = balancing_amount(transfer, &debit, &credit);
        check_overflows(transfer, amount, &debit, &credit, self.peek_timestamp())?;
        if !self.planted_skip_balance_check() {
            check_limits(transfer, amount, &debit, &credit)?;
        }
        let timestamp = self.take_timestamp().ok_or(R::TimestampExhausted)?;
        self.commit_plain(transfer, amount, debit, credit, timestamp);
        Ok(())
    }

    /// Returns the `exists*` code when a transfer with this id is already stored.
    fn check_not_exists(&self, transfer: &Transfer) -> Check {
        if self.planted_skip_idempotency() {
            return Ok(());
        }
        let Some(stored) = self.transfer(transfer.id) else {
            return Ok(());
        };
        let pending_amount = if stored.is_post_or_void() {
            self.transfer(stored.pending_id)
                .map(|pending| pending.amount)
        } else {
            None
        };
        Err(transfer_exists_result(transfer, &stored, pending_amount))
    }

    fn plain_accounts(&self, transfer: &Transfer) -> Check<(Account, Account)> {
        let debit = self
            .account(transfer.debit_account_id)
            .ok_or(R::DebitAccountNotFound)?;
        let credit = self
            .account(transfer.credit_account_id)
            .ok_or(R::CreditAccountNotFound)?;
        reject_if(
            debit.ledger != credit.ledger,
            R::AccountsMustHaveTheSameLedger,
        )?;
        reject_if(
            transfer.ledger != debit.ledger,
            R::TransferMustHaveTheSameLedgerAsAccounts,
        )?;
        check_open(&debit, &credit)?;
        Ok((debit, credit))
    }

    fn commit_plain(
        &mut self,
        request: &Transfer,
        amount: u128,
        mut debit: Account,
        mut credit: Account,
        timestamp: u64,
    ) {
        let stored = Transfer {
            amount,
            timestamp,
            ..request.clone()
        };
        let before = (debit.clone(), credit.clone());
        // The checks above proved none of these additions overflows; saturating stays panic-free.
        if stored.flags.contains(TransferFlags::PENDING) {
            debit.debits_pending = debit.debits_pending.saturating_add(amount);
            credit.credits_pending = credit.credits_pending.saturating_add(amount);
            self.overlay
                .put_pending_status(stored.id, PendingStatus::Pending);
            if let Some(expires_at) = stored.expires_at() {
                self.overlay.expiry_insert.push((expires_at, stored.id));
            }
        } else {
            debit.debits_posted = debit.debits_posted.saturating_add(amount);
            credit.credits_posted = credit.credits_posted.saturating_add(amount);
        }
        debug_assert!(moves_balanced(&before, &debit, &credit));
        self.record_transfer(stored, debit, credit);
    }

    /// Stores a created transfer, its two account-index entries and its accounts.
    fn record_transfer(&mut self, stored: Transfer, debit: Account, credit: Account) {
        debug_assert_eq!(stored.debit_account_id, debit.id);
        debug_assert_eq!(stored.credit_account_id, credit.id);
        let (id, timestamp) = (stored.id, stored.timestamp);
        self.overlay
            .account_transfers
            .push((debit.id, timestamp, id));
        self.overlay
            .account_transfers
            .push((credit.id, timestamp, id));
        self.overlay.put_transfer(stored);
        self.put_account_pair(debit, credit, timestamp);
    }

    /// A post or void of a pending transfer.
    fn try_post_or_void(&mut self, transfer: &Transfer) -> Check {
        validate_common(transfer)?;
        validate_post_or_void(transfer)?;
        self.check_not_exists(transfer)?;
        let pending = self
            .transfer(transfer.pending_id)
            .ok_or(R::PendingTransferNotFound)?;
        reject_if(
            !pending.flags.contains(TransferFlags::PENDING),
            R::PendingTransferNotPending,
        )?;
        check_matches_pending(transfer, &pending)?;
        let amount = resolve_post_or_void_amount(transfer, &pending)?;
        check_still_pending(self.pending_status(pending.id))?;
        let timestamp = self.peek_timestamp();
        let expired = pending.expires_at().is_some_and(|at| at <= timestamp);
        reject_if(expired, R::PendingTransferExpired)?;
        let (debit, credit) = self.pending_accounts(transfer, &pending)?;
        let (debit, credit) = resolve_balances(transfer, &pending, amount, debit, credit)?;
        let timestamp = self.take_timestamp().ok_or(R::TimestampExhausted)?;
        self.commit_post_or_void(transfer, &pending, amount, (debit, credit), timestamp);
        Ok(())
    }

    fn pending_accounts(
        &self,
        request: &Transfer,
        pending: &Transfer,
    ) -> Check<(Account, Account)> {
        // A stored pending transfer's accounts always exist; the codes only guard a broken state.
        let debit = self
            .account(pending.debit_account_id)
            .ok_or(R::DebitAccountNotFound)?;
        let credit = self
            .account(pending.credit_account_id)
            .ok_or(R::CreditAccountNotFound)?;
        // Voiding only gives back reserved funds, so it stays possible on closed accounts.
        if request.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
            check_open(&debit, &credit)?;
        }
        Ok((debit, credit))
    }

    fn commit_post_or_void(
        &mut self,
        request: &Transfer,
        pending: &Transfer,
        amount: u128,
        (debit, credit): (Account, Account),
        timestamp: u64,
    ) {
        // Stored with the fields it inherits from the pending transfer, so queries by account work.
        let stored = Transfer {
            debit_account_id: pending.debit_account_id,
            credit_account_id: pending.credit_account_id,
            ledger: pending.ledger,
            code: pending.code,
            amount,
            timestamp,
            ..request.clone()
        };
        let status = if request.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
            PendingStatus::Posted
        } else {
            PendingStatus::Voided
        };
        self.overlay.put_pending_status(pending.id, status);
        if let Some(expires_at) = pending.expires_at() {
            self.overlay.expiry_remove.push((expires_at, pending.id));
        }
        self.record_transfer(stored, debit, credit);
    }
}

/// Checks shared by every kind of transfer.
fn validate_common(transfer: &Transfer) -> Check {
    let flags = transfer.flags;
    reject_if(transfer.timestamp != 0, R::TimestampMustBeZero)?;
    reject_if(flags.has_reserved(), R::ReservedFlag)?;
    reject_if(transfer.id == 0, R::IdMustNotBeZero)?;
    reject_if(transfer.id == u128::MAX, R::IdMustNotBeIntMax)?;
    let post = flags.contains(TransferFlags::POST_PENDING_TRANSFER);
    let void = flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
    let pending_or_balancing = flags.contains(TransferFlags::PENDING) || transfer.is_balancing();
    reject_if(
        (post && void) || ((post || void) && pending_or_balancing),
        R::FlagsAreMutuallyExclusive,
    )
}

fn validate_plain(transfer: &Transfer) -> Check {
    let (debit, credit) = (transfer.debit_account_id, transfer.credit_account_id);
    reject_if(debit == 0, R::DebitAccountIdMustNotBeZero)?;
    reject_if(debit == u128::MAX, R::DebitAccountIdMustNotBeIntMax)?;
    reject_if(credit == 0, R::CreditAccountIdMustNotBeZero)?;
    reject_if(credit == u128::MAX, R::CreditAccountIdMustNotBeIntMax)?;
    reject_if(debit == credit, R::AccountsMustBeDifferent)?;
    reject_if(transfer.pending_id != 0, R::PendingIdMustBeZero)?;
    reject_if(
        !transfer.flags.contains(TransferFlags::PENDING) && transfer.timeout != 0,
        R::TimeoutReservedForPendingTransfer,
    )?;
    reject_if(transfer.amount == 0, R::AmountMustNotBeZero)?;
    reject_if(transfer.ledger == 0, R::LedgerMustNotBeZero)?;
    reject_if(transfer.code == 0, R::CodeMustNotBeZero)
}

fn validate_post_or_void(transfer: &Transfer) -> Check {
    let pending_id = transfer.pending_id;
    reject_if(pending_id == 0, R::PendingIdMustNotBeZero)?;
    reject_if(pending_id == u128::MAX, R::PendingIdMustNotBeIntMax)?;
    reject_if(pending_id == transfer.id, R::PendingIdMustBeDifferent)?;
    reject_if(transfer.timeout != 0, R::TimeoutReservedForPendingTransfer)?;
    // A void always releases the whole amount, so it may leave the amount zero; a post may not.
    let post = transfer
        .flags
        .contains(TransferFlags::POST_PENDING_TRANSFER);
    reject_if(post && transfer.amount == 0, R::AmountMustNotBeZero)
}

fn check_open(debit: &Account, credit: &Account) -> Check {
    reject_if(
        debit.flags.contains(AccountFlags::CLOSED),
        R::DebitAccountClosed,
    )?;
    reject_if(
        credit.flags.contains(AccountFlags::CLOSED),
        R::CreditAccountClosed,
    )
}

/// A post/void may leave account ids, ledger and code zero; non-zero ones must match the pending.
fn check_matches_pending(request: &Transfer, pending: &Transfer) -> Check {
    let differs = |asked: u128, have: u128| asked != 0 && asked != have;
    reject_if(
        differs(request.debit_account_id, pending.debit_account_id),
        R::PendingTransferHasDifferentDebitAccountId,
    )?;
    reject_if(
        differs(request.credit_account_id, pending.credit_account_id),
        R::PendingTransferHasDifferentCreditAccountId,
    )?;
    reject_if(
        differs(request.ledger.into(), pending.ledger.into()),
        R::PendingTransferHasDifferentLedger,
    )?;
    reject_if(
        differs(request.code.into(), pending.code.into()),
        R::PendingTransferHasDifferentCode,
    )
}

/// The amount a post captures or a void releases. `u128::MAX` means the full pending amount (and
/// so does 0 for a void).
fn resolve_post_or_void_amount(request: &Transfer, pending: &Transfer) -> Check<u128> {
    let full = request.amount == u128::MAX
        || (request.flags.contains(TransferFlags::VOID_PENDING_TRANSFER) && request.amount == 0);
    if full {
        return Ok(pending.amount);
    }
    reject_if(
        request.amount > pending.amount,
        R::ExceedsPendingTransferAmount,
    )?;
    let partial_void = request.flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
        && request.amount < pending.amount;
    reject_if(partial_void, R::PendingTransferHasDifferentAmount)?;
    Ok(request.amount)
}

fn check_still_pending(status: Option<PendingStatus>) -> Check {
    // Every stored pending transfer has a status; `None` would be a broken state, and treating it
    // as pending at least lets the money move rather than be stuck forever.
    debug_assert!(status.is_some());
    match status {
        None | Some(PendingStatus::Pending) => Ok(()),
        Some(PendingStatus::Posted) => Err(R::PendingTransferAlreadyPosted),
        Some(PendingStatus::Voided) => Err(R::PendingTransferAlreadyVoided),
        Some(PendingStatus::Expired) => Err(R::PendingTransferExpired),
    }
}

/// New balances for a post/void: release the whole reservation, then post the captured part.
fn resolve_balances(
    request: &Transfer,
    pending: &Transfer,
    amount: u128,
    debit: Account,
    credit: Account,
) -> Check<(Account, Account)> {
    let before = (debit.clone(), credit.clone());
    // Pending balances always cover their transfers; the codes only guard a broken state.
    let (mut debit, mut credit) =
        release_pending(debit, credit, pending.amount).ok_or(R::OverflowsDebitsPending)?;
    if request.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
        debit.debits_posted = debit
            .debits_posted
            .checked_add(amount)
            .ok_or(R::OverflowsDebitsPosted)?;
        credit.credits_posted = credit
            .credits_posted
            .checked_add(amount)
            .ok_or(R::OverflowsCreditsPosted)?;
    }
    debug_assert!(moves_balanced(&before, &debit, &credit));
    debug_assert!(debit.debits_total() <= before.0.debits_total());
    Ok((debit, credit))
}

/// The amount a transfer moves: the request's, or for a balancing transfer at most what keeps
/// the balancing side from going past zero (0 when nothing can move; rejected by `check_limits`).
fn balancing_amount(transfer: &Transfer, debit: &Account, credit: &Account) -> u128 {
    let mut amount = transfer.amount;
    if transfer.flags.contains(TransferFlags::BALANCING_DEBIT) {
        let used = debit.debits_posted.saturating_add(debit.debits_pending);
        amount = amount.min(debit.credits_posted.saturating_sub(used));
    }
    if transfer.flags.contains(TransferFlags::BALANCING_CREDIT) {
        let used = credit.credits_posted.saturating_add(credit.credits_pending);
        amount = amount.min(credit.debits_posted.saturating_sub(used));
    }
    amount
}

fn check_overflows(
    transfer: &Transfer,
    amount: u128,
    debit: &Account,
    credit: &Account,
    timestamp: u64,
) -> Check {
    let fits = |a: u128, b: u128| a.checked_add(b).is_some();
    let fits3 =
        |a: u128, b: u128, c: u128| a.checked_add(b).and_then(|s| s.checked_add(c)).is_some();
    if transfer.flags.contains(TransferFlags::PENDING) {
        reject_if(
            !fits(debit.debits_pending, amount),
            R::OverflowsDebitsPending,
        )?;
        reject_if(
            !fits(credit.credits_pending, amount),
            R::OverflowsCreditsPending,
        )?;
    }
    // Checked for pending transfers too: they must stay postable later.
    reject_if(!fits(debit.debits_posted, amount), R::OverflowsDebitsPosted)?;
    reject_if(
        !fits(credit.credits_posted, amount),
        R::OverflowsCreditsPosted,
    )?;
    let debits = fits3(debit.debits_pending, debit.debits_posted, amount);
    reject_if(!debits, R::OverflowsDebits)?;
    let credits = fits3(credit.credits_pending, credit.credits_posted, amount);
    reject_if(!credits, R::OverflowsCredits)?;
    let stamped = Transfer {
        timestamp,
        ..transfer.clone()
    };
    let never_expires = !transfer.flags.contains(TransferFlags::PENDING) || transfer.timeout == 0;
    reject_if(
        !never_expires && stamped.expires_at().is_none(),
        R::OverflowsTimeout,
    )
}

fn check_limits(transfer: &Transfer, amount: u128, debit: &Account, credit: &Account) -> Check {
    let flags = transfer.flags;
    reject_if(
        flags.contains(TransferFlags::BALANCING_DEBIT) && amount == 0,
        R::ExceedsCredits,
    )?;
    reject_if(
        flags.contains(TransferFlags::BALANCING_CREDIT) && amount == 0,
        R::ExceedsDebits,
    )?;
    // Overflow was ruled out above, so the saturating sums are exact.
    let debits = debit
        .debits_total()
        .unwrap_or(u128::MAX)
        .saturating_add(amount);
    let debit_limited = debit
        .flags
        .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS);
    reject_if(
        debit_limited && debits > debit.credits_posted,
        R::ExceedsCredits,
    )?;
    let credits = credit
        .credits_total()
        .unwrap_or(u128::MAX)
        .saturating_add(amount);
    let credit_limited = credit
        .flags
        .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS);
    reject_if(
        credit_limited && credits > credit.debits_posted,
        R::ExceedsDebits,
    )
}

/// Double entry holds: whatever one side's debits changed by, the other side's credits changed by.
fn moves_balanced(before: &(Account, Account), debit: &Account, credit: &Account) -> bool {
    let (debit_before, credit_before) = before;
    let delta = |after: u128, earlier: u128| after.wrapping_sub(earlier);
    delta(debit.debits_pending, debit_before.debits_pending)
        == delta(credit.credits_pending, credit_before.credits_pending)
        && delta(debit.debits_posted, debit_before.debits_posted)
            == delta(credit.credits_posted, credit_before.credits_posted)
        && debit.respects_flags()
        && credit.respects_flags()
}

/// Compares a request with the stored transfer of the same id (exactly-once retries).
/// `pending_amount` is the amount of the pending transfer a stored post/void resolved, used to
/// decide whether a "full amount" request matches.
fn transfer_exists_result(
    request: &Transfer,
    stored: &Transfer,
    pending_amount: Option<u128>,
) -> R {
    // A post/void may leave account ids, ledger and code zero to inherit them; the stored
    // transfer holds the inherited values, so a zero in the request matches any of them.
    let inherits = request.is_post_or_void();
    let same = |asked: u128, have: u128| asked == have || (inherits && asked == 0);
    if request.flags != stored.flags {
        return R::ExistsWithDifferentFlags;
    }
    if !same(request.debit_account_id, stored.debit_account_id) {
        return R::ExistsWithDifferentDebitAccountId;
    }
    if !same(request.credit_account_id, stored.credit_account_id) {
        return R::ExistsWithDifferentCreditAccountId;
    }
    if !same_amount(request, stored, pending_amount) {
        return R::ExistsWithDifferentAmount;
    }
    if request.pending_id != stored.pending_id {
        return R::ExistsWithDifferentPendingId;
    }
    exists_result_tail(request, stored, same)
}

fn exists_result_tail(
    request: &Transfer,
    stored: &Transfer,
    same: impl Fn(u128, u128) -> bool,
) -> R {
    if request.user_data_128 != stored.user_data_128 {
        return R::ExistsWithDifferentUserData128;
    }
    if request.user_data_64 != stored.user_data_64 {
        return R::ExistsWithDifferentUserData64;
    }
    if request.user_data_32 != stored.user_data_32 {
        return R::ExistsWithDifferentUserData32;
    }
    if request.timeout != stored.timeout {
        return R::ExistsWithDifferentTimeout;
    }
    if !same(request.ledger.into(), stored.ledger.into()) {
        return R::ExistsWithDifferentLedger;
    }
    if !same(request.code.into(), stored.code.into()) {
        return R::ExistsWithDifferentCode;
    }
    R::Exists
}

/// Whether the requested amount is the one that was applied, given how each kind spells it.
fn same_amount(request: &Transfer, stored: &Transfer, pending_amount: Option<u128>) -> bool {
    if request.is_balancing() {
        // The request amount was an upper bound; the stored amount is what the balances allowed.
        return request.amount >= stored.amount;
    }
    let void = request.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
    let full = request.amount == u128::MAX || (void && request.amount == 0);
    if request.is_post_or_void() && full {
        return pending_amount == Some(stored.amount);
    }
    request.amount == stored.amount
}
