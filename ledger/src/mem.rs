//! `MemState`: committed ledger state in BTreeMaps, for tests and the deterministic simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::apply::Mutations;
use super::state::LedgerState;
use super::totals::ledger_totals;
use super::types::{Account, Balance, PendingStatus, Record, RecordKey, Transfer};
use crate::limits::{ACCOUNT_TRANSFERS_PAGE_MAX, RECORD_SCAN_PAGE_MAX};

/// The whole committed ledger in memory. Every map is ordered, so iteration (and a digest of it) is
/// the same on every replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemState {
    accounts: BTreeMap<u128, Account>,
    transfers: BTreeMap<u128, Transfer>,
    pending_status: BTreeMap<u128, PendingStatus>,
    /// (expires_at_ns, transfer id) of pending transfers with a timeout that are still pending.
    pending_expiry: BTreeSet<(u64, u128)>,
    records: BTreeMap<RecordKey, Record>,
    /// (account id, timestamp, transfer id).
    account_transfers: BTreeSet<(u128, u64, u128)>,
    /// (account id, timestamp) -> balances after that change.
    balance_history: BTreeMap<(u128, u64), Balance>,
    last_timestamp: u64,
}

/// Normalises a query's time range: 0 as the maximum means "no upper bound".
fn time_range(timestamp_min: u64, timestamp_max: u64) -> Option<(u64, u64)> {
    let max = if timestamp_max == 0 {
        u64::MAX
    } else {
        timestamp_max
    };
    (timestamp_min <= max).then_some((timestamp_min, max))
}

impl MemState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes one batch's mutations; the counterpart of the storage layer's atomic write.
    pub fn commit(&mut self, mutations: Mutations) {
        debug_assert!(mutations.last_timestamp >= self.last_timestamp);
        self.accounts.extend(mutations.accounts);
        self.transfers.extend(mutations.transfers);
        self.pending_status.extend(mutations.pending_status);
        for entry in &mutations.pending_expiry_remove {
            let removed = self.pending_expiry.remove(entry);
            debug_assert!(removed, "expiry entry {entry:?} was not indexed");
        }
        self.pending_expiry.extend(mutations.pending_expiry_insert);
        for key in &mutations.records_delete {
            self.records.remove(key);
        }
        self.records.extend(mutations.records_put);
        self.account_transfers.extend(mutations.account_transfers);
        for balance in mutations.balance_history {
            self.balance_history
                .insert((balance.account_id, balance.timestamp), balance);
        }
        self.last_timestamp = self.last_timestamp.max(mutations.last_timestamp);
        debug_assert!(self.is_consistent());
    }

    /// Conservation per ledger and every account within its flags.
    pub fn is_consistent(&self) -> bool {
        let balanced = ledger_totals(self.accounts.values())
            .values()
            .all(|t| t.is_balanced());
        balanced && self.accounts.values().all(Account::respects_flags)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    pub fn transfers(&self) -> impl Iterator<Item = &Transfer> {
        self.transfers.values()
    }

    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    /// Pending transfers with a timeout that are still pending: (expires_at_ns, id), oldest first.
    pub fn pending_expiries(&self) -> impl Iterator<Item = &(u64, u128)> {
        self.pending_expiry.iter()
    }

    /// Transfers touching an account with `timestamp_min <= timestamp <= timestamp_max` (a max of 0
    /// means unbounded), oldest first (newest first if `reversed`), at most `limit` (capped at
    /// `ACCOUNT_TRANSFERS_PAGE_MAX`).
    pub fn account_transfers(
        &self,
        account_id: u128,
        timestamp_min: u64,
        timestamp_max: u64,
        limit: usize,
        reversed: bool,
    ) -> Vec<Transfer> {
        let Some((min, max)) = time_range(timestamp_min, timestamp_max) else {
            return Vec::new();
        };
        let range = self
            .account_transfers
            .range((account_id, min, 0)..=(account_id, max, u128::MAX));
        let limit = limit.min(ACCOUNT_TRANSFERS_PAGE_MAX);
        let ids: Vec<u128> = if reversed {
            range.rev().take(limit).map(|entry| entry.2).collect()
        } else {
            range.take(limit).map(|entry| entry.2).collect()
        };
        ids.into_iter()
            .filter_map(|id| self.transfers.get(&id).cloned())
            .collect()
    }

    /// Balance history of an account (only kept for accounts with the `history` flag); same range
    /// and paging rules as `account_transfers`.
    pub fn balances(
        &self,
        account_id: u128,
        timestamp_min: u64,
        timestamp_max: u64,
        limit: usize,
        reversed: bool,
    ) -> Vec<Balance> {
        let Some((min, max)) = time_range(timestamp_min, timestamp_max) else {
            return Vec::new();
        };
        let range = self
            .balance_history
            .range((account_id, min)..=(account_id, max))
            .map(|(_, balance)| balance.clone());
        let limit = limit.min(ACCOUNT_TRANSFERS_PAGE_MAX);
        if reversed {
            range.rev().take(limit).collect()
        } else {
            range.take(limit).collect()
        }
    }

    /// Records of `namespace` whose key starts with `prefix`, in key order, strictly after
    /// `start_after` when given, at most `limit` (capped at `RECORD_SCAN_PAGE_MAX`).
    pub fn scan_records(
        &self,
        namespace: &str,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<Record> {
        let start_key = |key: &[u8]| RecordKey::new(namespace, key);
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(start_key(after)),
            _ => Bound::Included(start_key(prefix)),
        };
        self.records
            .range((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.namespace == namespace && key.key.starts_with(prefix))
            .take(limit.min(RECORD_SCAN_PAGE_MAX))
            .map(|(_, record)| record.clone())
            .collect()
    }
}

impl LedgerState for MemState {
    fn account(&self, id: u128) -> Option<Account> {
        self.accounts.get(&id).cloned()
    }

    fn transfer(&self, id: u128) -> Option<Transfer> {
        self.transfers.get(&id).cloned()
    }

    fn pending_status(&self, pending_id: u128) -> Option<PendingStatus> {
        self.pending_status.get(&pending_id).copied()
    }

    fn record(&self, key: &RecordKey) -> Option<Record> {
        self.records.get(key).cloned()
    }

    fn expired_pending(&self, now_ns: u64, limit: usize) -> Vec<(u64, u128)> {
        self.pending_expiry
            .range(..=(now_ns, u128::MAX))
            .take(limit)
            .copied()
            .collect()
    }

    fn last_timestamp(&self) -> u64 {
        self.last_timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(namespace: &str, key: &str) -> Record {
        Record {
            key: RecordKey::new(namespace, key),
            value: Vec::new(),
            version: 1,
            timestamp: 1,
        }
    }

    #[test]
    fn scan_records_respects_namespace_prefix_and_cursor() {
        let mut state = MemState::new();
        let mut mutations = Mutations::default();
        for (namespace, key) in [
            ("a", "x1"),
            ("a", "x2"),
            ("a", "x3"),
            ("a", "y1"),
            ("b", "x1"),
        ] {
            let record = record(namespace, key);
            mutations.records_put.insert(record.key.clone(), record);
        }
        state.commit(mutations);
        let keys = |records: Vec<Record>| -> Vec<Vec<u8>> {
            records.into_iter().map(|r| r.key.key).collect()
        };
        assert_eq!(
            keys(state.scan_records("a", b"x", None, 10)),
            vec![b"x1".to_vec(), b"x2".to_vec(), b"x3".to_vec()]
        );
        assert_eq!(
            keys(state.scan_records("a", b"x", Some(b"x1"), 1)),
            vec![b"x2".to_vec()]
        );
        assert_eq!(
            keys(state.scan_records("a", b"", Some(b"x3"), 10)),
            vec![b"y1".to_vec()]
        );
        assert_eq!(state.scan_records("c", b"", None, 10), Vec::new());
    }

    #[test]
    fn expired_pending_is_bounded_by_time_and_limit() {
        let mut state = MemState::new();
        let mutations = Mutations {
            pending_expiry_insert: vec![(5, 2), (5, 1), (9, 3)],
            ..Mutations::default()
        };
        state.commit(mutations);
        assert_eq!(state.expired_pending(5, 10), vec![(5, 1), (5, 2)]);
        assert_eq!(state.expired_pending(100, 1), vec![(5, 1)]);
        assert_eq!(state.expired_pending(4, 10), Vec::new());
    }
}
