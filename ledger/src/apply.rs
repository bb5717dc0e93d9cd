//! The batch executor: applies commands over a committed state and collects the mutations.
//!
//! One `LedgerBatch` corresponds to one applied log entry. Commands see the effects of earlier
//! commands of the same batch through an overlay; nothing is written until the caller commits the
//! `Mutations` (in one atomic write). The same code runs in production, in the simulator and in
//! tests.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::overlay::{Overlay, Savepoint};
use super::results::{CommandResult, CreateAccountResult, CreateTransferResult};
use super::state::LedgerState;
use super::types::{
    Account, AccountFlags, Balance, Command, PendingStatus, Record, RecordKey, Transfer,
    TransferFlags,
};
use crate::limits::{EVENTS_PER_REQUEST_MAX, PENDING_EXPIRIES_PER_APPLY_MAX};

/// What the leader stamped into the log entry; the only source of time for the state machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyContext {
    pub timestamp_ns: u64,
}

/// Deliberate faults, switched on only by the simulator's planted bugs to prove that its checks
/// catch them; both off by default. Compiled only with the `planted-bugs` feature (which the
/// simulator enables): a production build has no switch to flip.
#[cfg(feature = "planted-bugs")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerFaults {
    /// A transfer whose id already exists is applied again instead of answering `exists`.
    pub skip_idempotency: bool,
    /// Balance limits (`debits_must_not_exceed_credits`, ...) are not enforced.
    pub skip_balance_check: bool,
}

/// Everything one batch changed, to be written atomically with the applied log index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutations {
    /// Full new value of every changed or created account.
    pub accounts: BTreeMap<u128, Account>,
    /// Created transfers as stored: timestamp assigned, actual amount, and for a post/void the
    /// fields inherited from the pending transfer.
    pub transfers: BTreeMap<u128, Transfer>,
    pub pending_status: BTreeMap<u128, PendingStatus>,
    /// (expires_at_ns, id) to add to the expiry index. Netted against `pending_expiry_remove`: an
    /// entry created and resolved in the same batch appears in neither list.
    pub pending_expiry_insert: Vec<(u64, u128)>,
    /// (expires_at_ns, id) to remove from the expiry index (posted, voided or expired).
    pub pending_expiry_remove: Vec<(u64, u128)>,
    pub records_put: BTreeMap<RecordKey, Record>,
    /// Deleted records (may name a key that did not exist; deleting it is a no-op).
    pub records_delete: BTreeSet<RecordKey>,
    /// (account id, transfer timestamp, transfer id), once per side of every created transfer.
    pub account_transfers: Vec<(u128, u64, u128)>,
    /// Balances after each change of an account with the `history` flag.
    pub balance_history: Vec<Balance>,
    /// The largest timestamp assigned so far, including earlier batches.
    pub last_timestamp: u64,
}

impl Mutations {
    /// True when the batch changed nothing but (possibly) the timestamp clock.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.transfers.is_empty()
            && self.pending_status.is_empty()
            && self.pending_expiry_insert.is_empty()
            && self.pending_expiry_remove.is_empty()
            && self.records_put.is_empty()
            && self.records_delete.is_empty()
    }
}

/// The result codes a linked chain needs, shared by accounts and transfers.
pub(crate) trait ChainResult: Copy + PartialEq {
    const OK: Self;
    const LINKED_EVENT_FAILED: Self;
    const LINKED_EVENT_CHAIN_OPEN: Self;
}

impl ChainResult for CreateAccountResult {
    const OK: Self = Self::Ok;
    const LINKED_EVENT_FAILED: Self = Self::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self = Self::LinkedEventChainOpen;
}

impl ChainResult for CreateTransferResult {
    const OK: Self = Self::Ok;
    const LINKED_EVENT_FAILED: Self = Self::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self = Self::LinkedEventChainOpen;
}

/// An open linked chain: where it started, how to undo it, and whether it already failed.
#[derive(Debug, Clone, Copy)]
struct Chain {
    start: usize,
    savepoint: Savepoint,
    failed: bool,
}

/// One batch of commands over a committed state `S`.
pub struct LedgerBatch<'a, S: LedgerState> {
    pub(crate) state: &'a S,
    pub(crate) overlay: Overlay,
    base_timestamp: u64,
    /// Next timestamp to assign. A u128 so that running past u64::MAX is a value, not an overflow.
    pub(crate) next_timestamp: u128,
    #[cfg(feature = "planted-bugs")]
    faults: LedgerFaults,
}

impl<'a, S: LedgerState> LedgerBatch<'a, S> {
    /// Starts a batch; its first timestamp is max(ctx.timestamp_ns, state.last_timestamp() + 1) so
    /// timestamps stay strictly increasing even when the leader's clock goes backwards.
    pub fn new(state: &'a S, ctx: &ApplyContext) -> Self {
        // Computed in u128: after u64::MAX was assigned, the next timestamp must be "none left",
        // not u64::MAX again.
        let after_last = u128::from(state.last_timestamp()) + 1;
        let next_timestamp = u128::from(ctx.timestamp_ns).max(after_last);
        let base_timestamp = u64::try_from(next_timestamp).unwrap_or(u64::MAX);
        debug_assert!(base_timestamp > 0);
        Self {
            state,
            overlay: Overlay::default(),
            base_timestamp,
            next_timestamp,
            #[cfg(feature = "planted-bugs")]
            faults: LedgerFaults::default(),
        }
    }

    /// A batch with planted faults (simulator only).
    #[cfg(feature = "planted-bugs")]
    pub fn with_faults(state: &'a S, ctx: &ApplyContext, faults: LedgerFaults) -> Self {
        Self {
            faults,
            ..Self::new(state, ctx)
        }
    }

    /// True when a planted bug re-applies a transfer whose id exists (never without the feature).
    #[cfg(feature = "planted-bugs")]
    pub(crate) fn planted_skip_idempotency(&self) -> bool {
        self.faults.skip_idempotency
    }

    #[cfg(not(feature = "planted-bugs"))]
    pub(crate) fn planted_skip_idempotency(&self) -> bool {
        false
    }

    /// True when a planted bug skips the balance limits (never without the feature).
    #[cfg(feature = "planted-bugs")]
    pub(crate) fn planted_skip_balance_check(&self) -> bool {
        self.faults.skip_balance_check
    }

    #[cfg(not(feature = "planted-bugs"))]
    pub(crate) fn planted_skip_balance_check(&self) -> bool {
        false
    }

    /// The batch's "now": the first timestamp it may assign.
    pub fn base_timestamp(&self) -> u64 {
        self.base_timestamp
    }

    /// Applies one command; later commands of the batch see its effects.
    pub fn apply(&mut self, command: &Command) -> CommandResult {
        match command {
            Command::CreateAccounts(accounts) => {
                if accounts.len() > EVENTS_PER_REQUEST_MAX {
                    return CommandResult::TooManyEvents;
                }
                let results = self.apply_chained(accounts, account_is_linked, Self::create_account);
                CommandResult::Accounts(results)
            }
            Command::CreateTransfers(transfers) => {
                if transfers.len() > EVENTS_PER_REQUEST_MAX {
                    return CommandResult::TooManyEvents;
                }
                let results =
                    self.apply_chained(transfers, transfer_is_linked, Self::create_transfer);
                CommandResult::Transfers(results)
            }
            Command::Txn(txn) => self.apply_txn(txn),
        }
    }

    /// Applies events one by one; a chain of linked events succeeds or fails as a whole.
    fn apply_chained<E, R: ChainResult>(
        &mut self,
        events: &[E],
        is_linked: fn(&E) -> bool,
        create: fn(&mut Self, &E) -> R,
    ) -> Vec<R> {
        let mut results = Vec::with_capacity(events.len());
        let mut chain: Option<Chain> = None;
        for (index, event) in events.iter().enumerate() {
            let linked = is_linked(event);
            if chain.is_none() && linked {
                let savepoint = self.savepoint();
                chain = Some(Chain {
                    start: index,
                    savepoint,
                    failed: false,
                });
            }
            let result = match chain {
                Some(Chain { failed: true, .. }) => R::LINKED_EVENT_FAILED,
                _ => create(self, event),
            };
            results.push(result);
            if let Some(open) = chain.as_mut() {
                if result != R::OK && !open.failed {
                    self.rollback(open.savepoint);
                    open.failed = true;
                    results[open.start..index].fill(R::LINKED_EVENT_FAILED);
                }
            }
            if !linked {
                self.close_chain(chain.take());
            }
        }
        if let Some(open) = chain {
            // The batch ended inside a chain: the client sent half a chain, so none of it applies.
            if !open.failed {
                self.rollback(open.savepoint);
            }
            results[open.start..].fill(R::LINKED_EVENT_CHAIN_OPEN);
        }
        debug_assert_eq!(results.len(), events.len());
        results
    }

    fn close_chain(&mut self, chain: Option<Chain>) {
        if let Some(closed) = chain {
            if !closed.failed {
                self.overlay.release(closed.savepoint);
            }
        }
    }

    pub(crate) fn savepoint(&mut self) -> Savepoint {
        self.overlay.savepoint(self.next_timestamp)
    }

    pub(crate) fn rollback(&mut self, savepoint: Savepoint) {
        // Timestamps of undone objects are handed out again: they were never visible.
        self.next_timestamp = savepoint.next_timestamp;
        self.overlay.rollback(savepoint);
    }

    /// The timestamp the next created object would get (saturated, for checks before creating).
    pub(crate) fn peek_timestamp(&self) -> u64 {
        u64::try_from(self.next_timestamp).unwrap_or(u64::MAX)
    }

    /// Assigns the next unique timestamp; `None` once the u64 range is used up.
    pub(crate) fn take_timestamp(&mut self) -> Option<u64> {
        let timestamp = u64::try_from(self.next_timestamp).ok()?;
        self.next_timestamp += 1;
        debug_assert!(timestamp >= self.base_timestamp);
        debug_assert!(timestamp > self.state.last_timestamp());
        Some(timestamp)
    }

    /// Voids pending transfers whose timeout passed at the batch's base timestamp (status
    /// `Expired`, pending balances released), oldest first and at most
    /// `PENDING_EXPIRIES_PER_APPLY_MAX`; the rest are expired by the following batches.
    pub fn expire_pending(&mut self) {
        let now = self.base_timestamp;
        let due = self
            .state
            .expired_pending(now, PENDING_EXPIRIES_PER_APPLY_MAX);
        debug_assert!(due.len() <= PENDING_EXPIRIES_PER_APPLY_MAX);
        debug_assert!(due.windows(2).all(|pair| pair[0] <= pair[1]));
        for (expires_at, id) in due.into_iter().take(PENDING_EXPIRIES_PER_APPLY_MAX) {
            debug_assert!(expires_at <= now);
            self.expire_one(expires_at, id);
        }
    }

    fn expire_one(&mut self, expires_at: u64, id: u128) {
        // An earlier command of this batch may already have posted or voided it.
        if self.pending_status(id) != Some(PendingStatus::Pending) {
            return;
        }
        let Some(pending) = self.transfer(id) else {
            debug_assert!(false, "expiry index names unknown transfer {id}");
            return;
        };
        debug_assert_eq!(pending.expires_at(), Some(expires_at));
        let (Some(debit), Some(credit)) = (
            self.account(pending.debit_account_id),
            self.account(pending.credit_account_id),
        ) else {
            debug_assert!(false, "pending transfer {id} without accounts");
            return;
        };
        let Some(released) = release_pending(debit, credit, pending.amount) else {
            debug_assert!(false, "pending balances of transfer {id} below its amount");
            return;
        };
        // Without a timestamp the balance history could not record the change; a later batch
        // (with a larger clock it cannot have, but still) is the only safe place to retry.
        let Some(timestamp) = self.take_timestamp() else {
            return;
        };
        self.overlay.put_pending_status(id, PendingStatus::Expired);
        self.overlay.expiry_remove.push((expires_at, id));
        self.put_account_pair(released.0, released.1, timestamp);
    }

    /// Stores both accounts of a transfer and records balance history for those that keep it.
    pub(crate) fn put_account_pair(&mut self, debit: Account, credit: Account, timestamp: u64) {
        debug_assert_ne!(debit.id, credit.id);
        for account in [debit, credit] {
            if account.flags.contains(AccountFlags::HISTORY) {
                self.overlay
                    .balance_history
                    .push(account.balance_at(timestamp));
            }
            self.overlay.put_account(account);
        }
    }

    /// Reads an account as this batch sees it.
    pub fn account(&self, id: u128) -> Option<Account> {
        match self.overlay.accounts.get(&id) {
            Some(account) => Some(account.clone()),
            None => self.state.account(id),
        }
    }

    /// Reads a transfer as this batch sees it.
    pub fn transfer(&self, id: u128) -> Option<Transfer> {
        match self.overlay.transfers.get(&id) {
            Some(transfer) => Some(transfer.clone()),
            None => self.state.transfer(id),
        }
    }

    /// Reads a pending transfer's status as this batch sees it.
    pub fn pending_status(&self, pending_id: u128) -> Option<PendingStatus> {
        match self.overlay.pending_status.get(&pending_id) {
            Some(status) => Some(*status),
            None => self.state.pending_status(pending_id),
        }
    }

    /// Reads a record as this batch sees it.
    pub fn record(&self, key: &RecordKey) -> Option<Record> {
        match self.overlay.records.get(key) {
            Some(record) => record.clone(),
            None => self.state.record(key),
        }
    }

    /// Ends the batch and hands over its changes.
    pub fn into_mutations(self) -> Mutations {
        let overlay = self.overlay;
        let (insert, remove) = net_expiries(overlay.expiry_insert, overlay.expiry_remove);
        let mut records_put = BTreeMap::new();
        let mut records_delete = BTreeSet::new();
        for (key, record) in overlay.records {
            match record {
                Some(record) => {
                    records_put.insert(key, record);
                }
                None => {
                    records_delete.insert(key);
                }
            }
        }
        let assigned_last = u64::try_from(self.next_timestamp - 1).unwrap_or(u64::MAX);
        let last_timestamp = assigned_last.max(self.state.last_timestamp());
        Mutations {
            accounts: overlay.accounts,
            transfers: overlay.transfers,
            pending_status: overlay.pending_status,
            pending_expiry_insert: insert,
            pending_expiry_remove: remove,
            records_put,
            records_delete,
            account_transfers: overlay.account_transfers,
            balance_history: overlay.balance_history,
            last_timestamp,
        }
    }
}

fn account_is_linked(account: &Account) -> bool {
    account.flags.contains(AccountFlags::LINKED)
}

fn transfer_is_linked(transfer: &Transfer) -> bool {
    transfer.flags.contains(TransferFlags::LINKED)
}

/// Takes `amount` off both pending balances; `None` if either is smaller (a broken invariant).
pub(crate) fn release_pending(
    mut debit: Account,
    mut credit: Account,
    amount: u128,
) -> Option<(Account, Account)> {
    debit.debits_pending = debit.debits_pending.checked_sub(amount)?;
    credit.credits_pending = credit.credits_pending.checked_sub(amount)?;
    Some((debit, credit))
}

/// (expires_at_ns, transfer id): one entry of the pending-expiry index.
pub type ExpiryEntry = (u64, u128);

/// Cancels expiry entries inserted and removed in the same batch, so the storage layer can apply
/// both lists in any order.
fn net_expiries(
    insert: Vec<ExpiryEntry>,
    remove: Vec<ExpiryEntry>,
) -> (Vec<ExpiryEntry>, Vec<ExpiryEntry>) {
    let inserted: BTreeSet<ExpiryEntry> = insert.into_iter().collect();
    let removed: BTreeSet<ExpiryEntry> = remove.into_iter().collect();
    let insert_net = inserted.difference(&removed).copied().collect();
    let remove_net = removed.difference(&inserted).copied().collect();
    (insert_net, remove_net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::MemState;

    fn account(id: u128, flags: AccountFlags) -> Account {
        Account {
            id,
            ledger: 1,
            code: 1,
            flags,
            ..Account::default()
        }
    }

    fn transfer(id: u128, debit: u128, credit: u128, flags: TransferFlags) -> Transfer {
        Transfer {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount: 10,
            ledger: 1,
            code: 1,
            flags,
            ..Transfer::default()
        }
    }

    #[test]
    fn expiry_entries_created_and_resolved_in_one_batch_cancel_out() {
        let (insert, remove) = net_expiries(vec![(5, 1), (6, 2)], vec![(5, 1), (1, 9)]);
        assert_eq!(insert, vec![(6, 2)]);
        assert_eq!(remove, vec![(1, 9)]);
    }

    #[test]
    fn timestamps_increase_across_batches_even_if_the_clock_goes_back() {
        let mut state = MemState::new();
        let accounts = vec![
            account(1, AccountFlags::empty()),
            account(2, AccountFlags::empty()),
        ];
        let mut batch = LedgerBatch::new(&state, &ApplyContext { timestamp_ns: 100 });
        batch.apply(&Command::CreateAccounts(accounts));
        let mutations = batch.into_mutations();
        assert_eq!(mutations.last_timestamp, 101);
        state.commit(mutations);
        let mut batch = LedgerBatch::new(&state, &ApplyContext { timestamp_ns: 5 });
        assert_eq!(batch.base_timestamp(), 102);
        let none = TransferFlags::empty();
        batch.apply(&Command::CreateTransfers(vec![transfer(9, 1, 2, none)]));
        let mutations = batch.into_mutations();
        assert_eq!(mutations.transfers[&9].timestamp, 102);
        assert_eq!(mutations.account_transfers, vec![(1, 102, 9), (2, 102, 9)]);
    }

    #[test]
    fn a_failed_chain_leaves_no_mutations() {
        let mut state = MemState::new();
        let mut batch = LedgerBatch::new(&state, &ApplyContext { timestamp_ns: 1 });
        let limited = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY;
        batch.apply(&Command::CreateAccounts(vec![
            account(1, AccountFlags::HISTORY),
            account(2, limited),
        ]));
        state.commit(batch.into_mutations());
        let mut batch = LedgerBatch::new(&state, &ApplyContext { timestamp_ns: 1 });
        let chain = vec![
            transfer(7, 1, 2, TransferFlags::LINKED | TransferFlags::PENDING),
            transfer(8, 2, 1, TransferFlags::empty()),
        ];
        let result = batch.apply(&Command::CreateTransfers(chain));
        let expected = vec![
            CreateTransferResult::LinkedEventFailed,
            CreateTransferResult::ExceedsCredits,
        ];
        assert_eq!(result, CommandResult::Transfers(expected));
        let mutations = batch.into_mutations();
        assert!(mutations.is_empty(), "{mutations:?}");
        assert!(mutations.balance_history.is_empty());
        assert!(mutations.account_transfers.is_empty());
    }
}
