//! The reference's whole state: the accounts as created, the transfers as stored, the pending
//! statuses, the records and the timestamp clock. Balances are never stored: every read of an
//! account adds up the transfers that touch it, so no update can be forgotten or applied twice.

use std::collections::{BTreeMap, BTreeSet};

use tally_ledger::{
    Account, AccountFlags, Balance, PendingStatus, Record, RecordKey, Transfer, TransferFlags,
    NANOS_PER_SECOND,
};

/// True when bit `bit` is set in a flags word (written here rather than borrowed, so the
/// reference shares no logic with the ledger it judges).
pub(crate) fn has_transfer_flag(flags: TransferFlags, bit: TransferFlags) -> bool {
    flags.0 & bit.0 == bit.0
}

pub(crate) fn has_account_flag(flags: AccountFlags, bit: AccountFlags) -> bool {
    flags.0 & bit.0 == bit.0
}

/// What a stored transfer does to balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Moves its amount to both posted balances.
    Plain,
    /// Reserves its amount in both pending balances while its status is `Pending`.
    Pending,
    /// Posts (part of) a pending transfer: its amount goes to the posted balances.
    Post,
    /// Voids a pending transfer: moves nothing itself.
    Void,
}

pub(crate) fn kind_of(transfer: &Transfer) -> Kind {
    if has_transfer_flag(transfer.flags, TransferFlags::POST_PENDING_TRANSFER) {
        Kind::Post
    } else if has_transfer_flag(transfer.flags, TransferFlags::VOID_PENDING_TRANSFER) {
        Kind::Void
    } else if has_transfer_flag(transfer.flags, TransferFlags::PENDING) {
        Kind::Pending
    } else {
        Kind::Plain
    }
}

/// When a stored pending transfer expires: its timestamp plus its timeout in seconds, in ns;
/// `None` without a timeout (or if the sum does not fit, which creation refuses).
pub(crate) fn expiry_of(transfer: &Transfer) -> Option<u64> {
    if kind_of(transfer) != Kind::Pending || transfer.timeout == 0 {
        return None;
    }
    let timeout_ns = u64::from(transfer.timeout).checked_mul(NANOS_PER_SECOND)?;
    transfer.timestamp.checked_add(timeout_ns)
}

/// The four balances of an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Balances {
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
}

/// The ledger's timestamp clock: one unique, increasing timestamp per created object.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock {
    /// The next timestamp to hand out; a u128 so that "past u64::MAX" is a value.
    next: u128,
    /// The largest timestamp of every entry before this one.
    last: u64,
    /// The entry's "now": its first timestamp, saturated to u64.
    base: u64,
}

impl Clock {
    /// An entry stamped `timestamp_ns` starts at that time, or just after the last timestamp
    /// handed out if the leader's clock is behind it.
    pub fn begin_entry(&mut self, timestamp_ns: u64) {
        self.next = u128::from(timestamp_ns).max(u128::from(self.last) + 1);
        self.base = u64::try_from(self.next).unwrap_or(u64::MAX);
    }

    /// After an entry the clock remembers the last timestamp it could have handed out.
    pub fn end_entry(&mut self) {
        let handed_out = u64::try_from(self.next - 1).unwrap_or(u64::MAX);
        self.last = self.last.max(handed_out);
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    /// The timestamp the next object would get (saturated).
    pub fn peek(&self) -> u64 {
        u64::try_from(self.next).unwrap_or(u64::MAX)
    }

    /// Hands out the next timestamp, or `None` once u64 is used up.
    pub fn take(&mut self) -> Option<u64> {
        let timestamp = u64::try_from(self.next).ok()?;
        self.next += 1;
        Some(timestamp)
    }

    pub fn last(&self) -> u64 {
        self.last
    }
}

/// What one entry changed, for the checker's comparisons.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Accounts created or whose balances changed.
    pub accounts: BTreeSet<u128>,
    /// (command position in the entry, transfer id) of every transfer created.
    pub transfers: Vec<(usize, u128)>,
    /// Pending transfers whose status was set.
    pub statuses: BTreeSet<u128>,
    /// Pending transfers expired at the start of the entry.
    pub expired: Vec<u128>,
    pub records: BTreeSet<RecordKey>,
}

/// How often the run hit the edges the workload aims at (for the run's notes and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Posts and voids of a still-pending transfer whose own timestamp was one ns before, at,
    /// and one ns after the pending transfer's expiry.
    pub resolve_at_expiry: [u64; 3],
    /// Pending transfers expired by an entry whose first timestamp equals their expiry.
    pub expired_at_base: u64,
    /// Failed linked chains (of length >= 2) by where the failing event was: first, middle, last.
    pub chain_failed_at: [u64; 3],
    /// Txns with transfers that failed on a condition.
    pub txn_condition_failed_with_transfers: u64,
    /// Txns that failed on a transfer after creating accounts or other transfers.
    pub txn_transfer_failed_late: u64,
}

/// The reference's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Books {
    /// Accounts as created: balances zero, timestamp of creation.
    pub accounts: BTreeMap<u128, Account>,
    /// Transfers as stored.
    pub transfers: BTreeMap<u128, Transfer>,
    /// Ids of the transfers touching each account, oldest first.
    pub touching: BTreeMap<u128, Vec<u128>>,
    /// Status of every pending transfer.
    pub statuses: BTreeMap<u128, PendingStatus>,
    pub records: BTreeMap<RecordKey, Record>,
    /// (account, timestamp) -> balances right after that change, for `history` accounts.
    pub history: BTreeMap<(u128, u64), Balance>,
    pub clock: Clock,
    /// The command of the entry being executed (for the journal).
    pub command: usize,
    pub journal: Journal,
    pub coverage: Coverage,
}

impl Books {
    /// An account's balances: the sum of what every transfer touching it does now.
    pub fn balances(&self, account_id: u128) -> Balances {
        let mut sums = Balances::default();
        let Some(ids) = self.touching.get(&account_id) else {
            return sums;
        };
        for transfer in ids.iter().filter_map(|id| self.transfers.get(id)) {
            let (pending, posted) = match kind_of(transfer) {
                Kind::Plain | Kind::Post => (0, transfer.amount),
                Kind::Void => (0, 0),
                Kind::Pending => match self.statuses.get(&transfer.id) {
                    Some(PendingStatus::Pending) => (transfer.amount, 0),
                    _ => (0, 0),
                },
            };
            if transfer.debit_account_id == account_id {
                sums.debits_pending = sums.debits_pending.wrapping_add(pending);
                sums.debits_posted = sums.debits_posted.wrapping_add(posted);
            }
            if transfer.credit_account_id == account_id {
                sums.credits_pending = sums.credits_pending.wrapping_add(pending);
                sums.credits_posted = sums.credits_posted.wrapping_add(posted);
            }
        }
        sums
    }

    /// An account as a replica stores it: as created, with its balances.
    pub fn account(&self, id: u128) -> Option<Account> {
        let created = self.accounts.get(&id)?;
        let sums = self.balances(id);
        Some(Account {
            debits_pending: sums.debits_pending,
            debits_posted: sums.debits_posted,
            credits_pending: sums.credits_pending,
            credits_posted: sums.credits_posted,
            ..created.clone()
        })
    }

    /// Stores a created transfer and notes the change on both of its accounts.
    pub fn store_transfer(&mut self, transfer: Transfer) {
        let (id, debit, credit, timestamp) = (
            transfer.id,
            transfer.debit_account_id,
            transfer.credit_account_id,
            transfer.timestamp,
        );
        self.transfers.insert(id, transfer);
        self.touching.entry(debit).or_default().push(id);
        self.touching.entry(credit).or_default().push(id);
        self.journal.transfers.push((self.command, id));
        self.changed(&[debit, credit], timestamp);
    }

    /// Notes that these accounts' balances changed at `timestamp`: journal and balance history.
    pub fn changed(&mut self, accounts: &[u128], timestamp: u64) {
        for id in accounts {
            self.journal.accounts.insert(*id);
            let keeps_history = self
                .accounts
                .get(id)
                .is_some_and(|a| has_account_flag(a.flags, AccountFlags::HISTORY));
            if keeps_history {
                let sums = self.balances(*id);
                let row = Balance {
                    account_id: *id,
                    timestamp,
                    debits_pending: sums.debits_pending,
                    debits_posted: sums.debits_posted,
                    credits_pending: sums.credits_pending,
                    credits_posted: sums.credits_posted,
                };
                self.history.insert((*id, timestamp), row);
            }
        }
    }

    pub fn set_status(&mut self, id: u128, status: PendingStatus) {
        self.statuses.insert(id, status);
        self.journal.statuses.insert(id);
    }

    /// Runs `step` on a copy of the books and keeps the copy only if it succeeds; coverage
    /// counts survive either way.
    pub fn all_or_nothing<T, E>(
        &mut self,
        step: impl FnOnce(&mut Books) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut draft = self.clone();
        let outcome = step(&mut draft);
        match outcome {
            Ok(_) => *self = draft,
            Err(_) => self.coverage = draft.coverage,
        }
        outcome
    }
}
