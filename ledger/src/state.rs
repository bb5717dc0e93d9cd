//! The read-only view of committed ledger state that a batch is applied against.

use super::types::{Account, PendingStatus, Record, RecordKey, Transfer};

/// Committed state as the state machine sees it. Implemented over RocksDB by the storage layer and
/// over BTreeMaps by `MemState`; both must answer identically for the same committed mutations.
pub trait LedgerState {
    fn account(&self, id: u128) -> Option<Account>;
    fn transfer(&self, id: u128) -> Option<Transfer>;
    fn pending_status(&self, pending_id: u128) -> Option<PendingStatus>;
    fn record(&self, key: &RecordKey) -> Option<Record>;
    /// Pending transfers whose expiry (transfer.timestamp + timeout s in ns) is <= now_ns, oldest
    /// first, at most `limit`: (expires_at_ns, transfer_id).
    fn expired_pending(&self, now_ns: u64, limit: usize) -> Vec<(u64, u128)>;
    /// The largest timestamp ever assigned (0 for an empty ledger).
    fn last_timestamp(&self) -> u64;
}
