//! [`AccountCache`]: the accounts as this state machine last wrote them, so applying a transfer
//! reads its two accounts from memory. The profile of a release build under load put a tenth of
//! each node's time in RocksDB memtable lookups of accounts, which are rewritten by every
//! transfer and so sit in the memtable in many versions (docs/BENCHMARKS.md, "Profiles").
//!
//! The state machine is the only writer of [`Space::Accounts`] and applies entries one at a
//! time, so the cache is exact as long as every write of that space goes through
//! [`AccountCache::remember`] (apply) or [`AccountCache::clear`] (snapshot install, a failed
//! write). It holds encoded values, checked by their crc32 on every read like any stored value.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::storage::{
    KeyRange, ReadView, Space, Storage, StorageError, Visitor, WriteBatch, WriteOp,
};

/// Most accounts kept; past it the cache starts over (memory stays bounded at roughly
/// this many x 200 bytes, whatever the number of accounts).
pub const ACCOUNT_CACHE_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct AccountCache {
    entries: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
}

impl AccountCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Vec<u8>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn insert(&self, key: &[u8], value: &[u8]) {
        let mut entries = self.entries();
        if entries.len() >= ACCOUNT_CACHE_ENTRIES && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_vec(), value.to_vec());
    }

    /// Takes in the account writes of `batch`, about to be written.
    pub fn remember(&self, batch: &WriteBatch) {
        for op in &batch.ops {
            match op {
                WriteOp::Put {
                    space: Space::Accounts,
                    key,
                    value,
                } => self.insert(key, value),
                WriteOp::Delete {
                    space: Space::Accounts,
                    key,
                } => {
                    self.entries().remove(key);
                }
                WriteOp::DeleteRange {
                    space: Space::Accounts,
                    ..
                } => self.clear(),
                _ => {}
            }
        }
    }

    pub fn clear(&self) {
        self.entries().clear();
    }

    /// `storage` as the apply path reads it: accounts through the cache, the rest as it is.
    pub fn over<'a>(&'a self, storage: &'a dyn Storage) -> CachedView<'a> {
        CachedView {
            storage,
            cache: self,
        }
    }
}

pub struct CachedView<'a> {
    storage: &'a dyn Storage,
    cache: &'a AccountCache,
}

impl ReadView for CachedView<'_> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if space != Space::Accounts {
            return self.storage.get(space, key);
        }
        if let Some(value) = self.cache.entries().get(key) {
            return Ok(Some(value.clone()));
        }
        let value = self.storage.get(space, key)?;
        if let Some(value) = &value {
            self.cache.insert(key, value);
        }
        Ok(value)
    }

    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        reverse: bool,
        visit: Visitor<'_>,
    ) -> Result<(), StorageError> {
        self.storage.scan(space, range, reverse, visit)
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;
    use crate::storage::RocksStorage;

    fn put(space: Space, key: &[u8], value: &[u8]) -> WriteBatch {
        let mut batch = WriteBatch::default();
        batch.put(space, key.to_vec(), value.to_vec());
        batch
    }

    #[test]
    fn accounts_are_read_as_last_remembered_and_reread_after_clear() {
        let dir = tempfile::tempdir().unwrap();
        let storage = RocksStorage::open(dir.path()).unwrap();
        let cache = AccountCache::default();
        storage.write(put(Space::Accounts, b"a", b"1")).unwrap();
        // A miss reads storage and keeps the value.
        assert_eq!(
            cache.over(&storage).get(Space::Accounts, b"a").unwrap(),
            Some(b"1".to_vec())
        );
        // Apply's own write, remembered then written: read back from the cache.
        let batch = put(Space::Accounts, b"a", b"2");
        cache.remember(&batch);
        storage.write(batch).unwrap();
        // A write that bypassed the cache (only a snapshot install does that) is not seen until
        // the cache is cleared: the reads really come from memory.
        storage.write(put(Space::Accounts, b"a", b"3")).unwrap();
        assert_eq!(
            cache.over(&storage).get(Space::Accounts, b"a").unwrap(),
            Some(b"2".to_vec())
        );
        cache.clear();
        assert_eq!(
            cache.over(&storage).get(Space::Accounts, b"a").unwrap(),
            Some(b"3".to_vec())
        );
        // Other spaces are never cached.
        storage.write(put(Space::Transfers, b"t", b"1")).unwrap();
        let view = cache.over(&storage);
        assert_eq!(
            view.get(Space::Transfers, b"t").unwrap(),
            Some(b"1".to_vec())
        );
        storage.write(put(Space::Transfers, b"t", b"2")).unwrap();
        assert_eq!(
            view.get(Space::Transfers, b"t").unwrap(),
            Some(b"2".to_vec())
        );
    }

    #[test]
    fn cache_stays_within_its_bound() {
        let cache = AccountCache::default();
        for number in 0..(ACCOUNT_CACHE_ENTRIES as u64 + 10) {
            cache.remember(&put(Space::Accounts, &number.to_le_bytes(), b"v"));
        }
        assert!(cache.entries().len() <= ACCOUNT_CACHE_ENTRIES);
        cache.remember(&{
            let mut batch = WriteBatch::default();
            batch.delete_range(Space::Accounts, Vec::new(), vec![0xff]);
            batch
        });
        assert!(cache.entries().is_empty());
    }
}
