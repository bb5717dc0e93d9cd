//! Uncommitted changes of one batch, with an undo log to roll back a linked chain or a Txn.

use std::collections::BTreeMap;

use super::types::{Account, Balance, PendingStatus, Record, RecordKey, Transfer};

/// The previous overlay value of one key, restored on rollback (`None` = not in the overlay).
#[derive(Debug, Clone)]
enum Undo {
    Account(u128, Option<Account>),
    Transfer(u128, Option<Transfer>),
    PendingStatus(u128, Option<PendingStatus>),
    Record(RecordKey, Option<Option<Record>>),
}

/// Where to roll back to: undo log and append-only lists are truncated to these lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Savepoint {
    undo_len: usize,
    expiry_insert_len: usize,
    expiry_remove_len: usize,
    account_transfers_len: usize,
    balance_history_len: usize,
    pub(crate) next_timestamp: u128,
}

/// Everything a batch changed so far; reads fall through to the committed state for other keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overlay {
    pub(crate) accounts: BTreeMap<u128, Account>,
    pub(crate) transfers: BTreeMap<u128, Transfer>,
    pub(crate) pending_status: BTreeMap<u128, PendingStatus>,
    /// `None` marks a record deleted by this batch.
    pub(crate) records: BTreeMap<RecordKey, Option<Record>>,
    pub(crate) expiry_insert: Vec<(u64, u128)>,
    pub(crate) expiry_remove: Vec<(u64, u128)>,
    pub(crate) account_transfers: Vec<(u128, u64, u128)>,
    pub(crate) balance_history: Vec<Balance>,
    undo: Vec<Undo>,
    /// Undo entries are kept only inside a savepoint: outside one, nothing can be rolled back, and
    /// logging would make a batch of single events pay for chains it does not have.
    savepoint_open: bool,
}

impl Overlay {
    pub(crate) fn savepoint(&mut self, next_timestamp: u128) -> Savepoint {
        // Chains and Txns never nest: a Txn ignores linked flags and a chain holds no Txn.
        debug_assert!(!self.savepoint_open);
        debug_assert!(self.undo.is_empty());
        self.savepoint_open = true;
        Savepoint {
            undo_len: self.undo.len(),
            expiry_insert_len: self.expiry_insert.len(),
            expiry_remove_len: self.expiry_remove.len(),
            account_transfers_len: self.account_transfers.len(),
            balance_history_len: self.balance_history.len(),
            next_timestamp,
        }
    }

    /// Keeps everything done since the savepoint.
    pub(crate) fn release(&mut self, savepoint: Savepoint) {
        debug_assert!(self.savepoint_open);
        self.undo.truncate(savepoint.undo_len);
        self.savepoint_open = false;
    }

    /// Undoes everything done since the savepoint, newest first.
    pub(crate) fn rollback(&mut self, savepoint: Savepoint) {
        debug_assert!(self.savepoint_open);
        while self.undo.len() > savepoint.undo_len {
            match self.undo.pop() {
                Some(entry) => self.restore(entry),
                None => break,
            }
        }
        self.expiry_insert.truncate(savepoint.expiry_insert_len);
        self.expiry_remove.truncate(savepoint.expiry_remove_len);
        self.account_transfers
            .truncate(savepoint.account_transfers_len);
        self.balance_history.truncate(savepoint.balance_history_len);
        self.savepoint_open = false;
    }

    fn restore(&mut self, entry: Undo) {
        match entry {
            Undo::Account(id, old) => restore_key(&mut self.accounts, id, old),
            Undo::Transfer(id, old) => restore_key(&mut self.transfers, id, old),
            Undo::PendingStatus(id, old) => restore_key(&mut self.pending_status, id, old),
            Undo::Record(key, old) => restore_key(&mut self.records, key, old),
        }
    }

    pub(crate) fn put_account(&mut self, account: Account) {
        debug_assert!(
            account.respects_flags(),
            "account {} breaks its flags",
            account.id
        );
        let old = self.accounts.insert(account.id, account.clone());
        if self.savepoint_open {
            self.undo.push(Undo::Account(account.id, old));
        }
    }

    pub(crate) fn put_transfer(&mut self, transfer: Transfer) {
        debug_assert!(transfer.timestamp != 0);
        let old = self.transfers.insert(transfer.id, transfer.clone());
        // Transfers are immutable: a batch creates each id at most once.
        debug_assert!(old.is_none(), "transfer {} created twice", transfer.id);
        if self.savepoint_open {
            self.undo.push(Undo::Transfer(transfer.id, old));
        }
    }

    pub(crate) fn put_pending_status(&mut self, id: u128, status: PendingStatus) {
        let old = self.pending_status.insert(id, status);
        if self.savepoint_open {
            self.undo.push(Undo::PendingStatus(id, old));
        }
    }

    /// Sets a record (`None` deletes it).
    pub(crate) fn put_record(&mut self, key: RecordKey, record: Option<Record>) {
        debug_assert!(record
            .as_ref()
            .is_none_or(|r| r.key == key && r.version > 0));
        let old = self.records.insert(key.clone(), record);
        if self.savepoint_open {
            self.undo.push(Undo::Record(key, old));
        }
    }
}

fn restore_key<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, old: Option<V>) {
    match old {
        Some(value) => {
            map.insert(key, value);
        }
        None => {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_every_kind_of_change() {
        let mut overlay = Overlay::default();
        overlay.put_account(Account {
            id: 1,
            ledger: 1,
            code: 1,
            ..Account::default()
        });
        let before = format!("{:?}", overlay.accounts);
        let savepoint = overlay.savepoint(7);
        overlay.put_account(Account {
            id: 1,
            credits_posted: 5,
            ..Account::default()
        });
        overlay.put_account(Account {
            id: 2,
            ..Account::default()
        });
        overlay.put_transfer(Transfer {
            id: 9,
            timestamp: 7,
            ..Transfer::default()
        });
        overlay.put_pending_status(9, PendingStatus::Pending);
        overlay.put_record(RecordKey::new("n", "k"), None);
        overlay.expiry_insert.push((1, 9));
        overlay.account_transfers.push((1, 7, 9));
        overlay.rollback(savepoint);
        assert_eq!(format!("{:?}", overlay.accounts), before);
        assert!(overlay.transfers.is_empty());
        assert!(overlay.pending_status.is_empty());
        assert!(overlay.records.is_empty());
        assert!(overlay.expiry_insert.is_empty());
        assert!(overlay.account_transfers.is_empty());
        assert!(overlay.undo.is_empty());
    }

    #[test]
    fn release_keeps_changes_and_drops_the_log() {
        let mut overlay = Overlay::default();
        let savepoint = overlay.savepoint(1);
        overlay.put_pending_status(3, PendingStatus::Voided);
        overlay.release(savepoint);
        assert_eq!(overlay.pending_status.get(&3), Some(&PendingStatus::Voided));
        assert!(overlay.undo.is_empty());
    }
}
