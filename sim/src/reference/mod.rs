//! The reference ledger: an independent, deliberately simple re-statement of the ledger's rules
//! that the checker judges the replicas (and the node's own ledger code) against.
//!
//! It shares only the node's plain data types (accounts, transfers, flags, commands, result
//! codes, records) and limits; every rule is written here again, from the result codes' order
//! and the documented semantics:
//!
//! - Balances are never stored: an account's balances are the sum of what the transfers touching
//!   it do now (a plain transfer or a post posts its amount, a pending transfer reserves its
//!   amount while it is still pending, a void moves nothing).
//! - A linked chain (linked events up to and including the first unlinked one) runs on a copy of
//!   the books, kept only if every event succeeded; otherwise the failing event keeps its code
//!   and every other event of the chain answers `linked_event_failed`. A chain still open at the
//!   end of the command changes nothing, and every event of it answers `linked_event_chain_open`.
//! - A `Txn` checks its conditions and record shapes first, then runs accounts, transfers and
//!   record writes on a copy, kept only if all of it succeeded.
//! - Time: an entry stamped `t` starts at `max(t, last timestamp + 1)` (its base); every created
//!   account, transfer, record put and expiry takes the next timestamp; work that is undone gives
//!   its timestamps back. At the start of every ledger entry, each pending transfer whose expiry
//!   (`timestamp + timeout` seconds) is `<=` the base expires, oldest expiry first, each taking a
//!   timestamp. A post or void whose own timestamp would be `>=` the expiry answers
//!   `pending_transfer_expired` even when no entry has expired the transfer yet. Checkpoint,
//!   blank and membership entries do not touch the ledger or its clock.

mod accounts;
mod books;
mod transfers;
mod txn;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use tally_ledger::{
    Account, AccountFlags, Balance, Command, CommandResult, CreateAccountResult,
    CreateTransferResult, PendingStatus, Record, RecordKey, Transfer, TransferFlags,
};
use tally_node::limits::{EVENTS_PER_REQUEST_MAX, PENDING_EXPIRIES_PER_APPLY_MAX};

pub use books::{Coverage, Journal};

use books::{expiry_of, has_account_flag, has_transfer_flag, Books};

/// The first broken rule's code: `Err(code)`, or `Ok(())` when every rule holds.
fn first_broken<R: Copy>(rules: &[(bool, R)]) -> Result<(), R> {
    match rules.iter().find(|(broken, _)| *broken) {
        Some((_, code)) => Err(*code),
        None => Ok(()),
    }
}

/// The three codes a chain needs, for accounts and transfers alike.
struct ChainCodes<R> {
    ok: R,
    failed: R,
    open: R,
}

/// What one entry did.
#[derive(Debug, Clone, Default)]
pub struct EntryReport {
    /// One result per command, in order.
    pub results: Vec<CommandResult>,
    pub journal: Journal,
}

/// The reference ledger after the entries replayed so far.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    books: Books,
}

impl Reference {
    pub fn new() -> Reference {
        Reference::default()
    }

    /// Runs one ledger entry stamped `timestamp_ns`: expiries first, then every command.
    pub fn execute_entry(&mut self, timestamp_ns: u64, commands: &[Command]) -> EntryReport {
        self.books.journal = Journal::default();
        self.books.clock.begin_entry(timestamp_ns);
        self.expire_due();
        let mut results = Vec::with_capacity(commands.len());
        for (position, command) in commands.iter().enumerate() {
            self.books.command = position;
            results.push(self.execute(command));
        }
        self.books.clock.end_entry();
        EntryReport {
            results,
            journal: std::mem::take(&mut self.books.journal),
        }
    }

    fn execute(&mut self, command: &Command) -> CommandResult {
        match command {
            Command::CreateAccounts(accounts) if accounts.len() > EVENTS_PER_REQUEST_MAX => {
                CommandResult::TooManyEvents
            }
            Command::CreateTransfers(transfers) if transfers.len() > EVENTS_PER_REQUEST_MAX => {
                CommandResult::TooManyEvents
            }
            Command::CreateAccounts(accounts) => CommandResult::Accounts(run_events(
                &mut self.books,
                accounts,
                |account| has_account_flag(account.flags, AccountFlags::LINKED),
                accounts::create_account,
                ChainCodes {
                    ok: CreateAccountResult::Ok,
                    failed: CreateAccountResult::LinkedEventFailed,
                    open: CreateAccountResult::LinkedEventChainOpen,
                },
            )),
            Command::CreateTransfers(transfers) => CommandResult::Transfers(run_events(
                &mut self.books,
                transfers,
                |transfer| has_transfer_flag(transfer.flags, TransferFlags::LINKED),
                transfers::create_transfer,
                ChainCodes {
                    ok: CreateTransferResult::Ok,
                    failed: CreateTransferResult::LinkedEventFailed,
                    open: CreateTransferResult::LinkedEventChainOpen,
                },
            )),
            Command::Txn(txn) => txn::execute_txn(&mut self.books, txn),
        }
    }

    /// Expires every pending transfer due at the entry's base timestamp (at most
    /// `PENDING_EXPIRIES_PER_APPLY_MAX`, oldest expiry first; the rest wait for later entries).
    fn expire_due(&mut self) {
        let now = self.books.clock.base();
        let mut due: Vec<(u64, u128)> = self
            .books
            .statuses
            .iter()
            .filter(|(_, status)| **status == PendingStatus::Pending)
            .filter_map(|(id, _)| {
                let expires_at = expiry_of(self.books.transfers.get(id)?)?;
                (expires_at <= now).then_some((expires_at, *id))
            })
            .collect();
        due.sort_unstable();
        due.truncate(PENDING_EXPIRIES_PER_APPLY_MAX);
        for (expires_at, id) in due {
            let Some(pending) = self.books.transfers.get(&id) else {
                continue;
            };
            let accounts = [pending.debit_account_id, pending.credit_account_id];
            let Some(timestamp) = self.books.clock.take() else {
                continue;
            };
            if expires_at == now {
                self.books.coverage.expired_at_base += 1;
            }
            self.books.set_status(id, PendingStatus::Expired);
            self.books.journal.expired.push(id);
            self.books.changed(&accounts, timestamp);
        }
    }

    /// An account as a replica stores it (balances included).
    pub fn account(&self, id: u128) -> Option<Account> {
        self.books.account(id)
    }

    /// Every account as a replica stores it, by id.
    pub fn accounts(&self) -> Vec<Account> {
        self.books
            .accounts
            .keys()
            .filter_map(|id| self.books.account(*id))
            .collect()
    }

    pub fn transfer(&self, id: u128) -> Option<&Transfer> {
        self.books.transfers.get(&id)
    }

    pub fn transfers(&self) -> &BTreeMap<u128, Transfer> {
        &self.books.transfers
    }

    pub fn pending_status(&self, id: u128) -> Option<PendingStatus> {
        self.books.statuses.get(&id).copied()
    }

    pub fn pending_statuses(&self) -> &BTreeMap<u128, PendingStatus> {
        &self.books.statuses
    }

    /// (expires_at, id) of every pending transfer still pending that has a timeout.
    pub fn pending_expiries(&self) -> BTreeSet<(u64, u128)> {
        self.books
            .statuses
            .iter()
            .filter(|(_, status)| **status == PendingStatus::Pending)
            .filter_map(|(id, _)| Some((expiry_of(self.books.transfers.get(id)?)?, *id)))
            .collect()
    }

    pub fn record(&self, key: &RecordKey) -> Option<&Record> {
        self.books.records.get(key)
    }

    pub fn records(&self) -> &BTreeMap<RecordKey, Record> {
        &self.books.records
    }

    /// (account id, timestamp, transfer id) for both sides of every transfer.
    pub fn account_transfers(&self) -> BTreeSet<(u128, u64, u128)> {
        let mut index = BTreeSet::new();
        for transfer in self.books.transfers.values() {
            for account in [transfer.debit_account_id, transfer.credit_account_id] {
                index.insert((account, transfer.timestamp, transfer.id));
            }
        }
        index
    }

    /// Balances after every change of an account with the `history` flag.
    pub fn balance_history(&self) -> &BTreeMap<(u128, u64), Balance> {
        &self.books.history
    }

    /// The largest timestamp handed out so far (or the last entry's stamp minus one).
    pub fn last_timestamp(&self) -> u64 {
        self.books.clock.last()
    }

    pub fn coverage(&self) -> Coverage {
        self.books.coverage
    }
}

/// Runs a command's events: single events one by one, each linked chain as a whole.
fn run_events<E, R: Copy + PartialEq>(
    books: &mut Books,
    events: &[E],
    linked: fn(&E) -> bool,
    create: fn(&mut Books, &E) -> R,
    codes: ChainCodes<R>,
) -> Vec<R> {
    let mut results = Vec::with_capacity(events.len());
    let mut start = 0;
    while start < events.len() {
        // A chain runs to its first unlinked event, inclusive.
        let Some(offset) = events[start..].iter().position(|event| !linked(event)) else {
            // Still linked at the end of the command: half a chain, so none of it happens.
            results.resize(events.len(), codes.open);
            break;
        };
        let end = start + offset + 1;
        if offset == 0 {
            results.push(create(books, &events[start]));
        } else {
            results.extend(run_chain(books, &events[start..end], create, &codes));
        }
        start = end;
    }
    results
}

fn run_chain<E, R: Copy + PartialEq>(
    books: &mut Books,
    chain: &[E],
    create: fn(&mut Books, &E) -> R,
    codes: &ChainCodes<R>,
) -> Vec<R> {
    let outcome = books.all_or_nothing(|draft| {
        for (position, event) in chain.iter().enumerate() {
            let result = create(draft, event);
            if result != codes.ok {
                return Err((position, result));
            }
        }
        Ok(())
    });
    match outcome {
        Ok(()) => vec![codes.ok; chain.len()],
        Err((failing, result)) => {
            let slot = match failing {
                0 => 0,
                last if last + 1 == chain.len() => 2,
                _ => 1,
            };
            books.coverage.chain_failed_at[slot] += 1;
            (0..chain.len())
                .map(|position| {
                    if position == failing {
                        result
                    } else {
                        codes.failed
                    }
                })
                .collect()
        }
    }
}
