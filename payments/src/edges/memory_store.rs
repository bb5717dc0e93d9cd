//! Unit tests only: records in memory behind [`RecordReads`], counting every read, so a test can
//! prove how much a flow reads (reconciliation of one day, one page of a list).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::de::DeserializeOwned;

use crate::edges::store::{RecordReads, StoreError, Txn, Versioned, RECORD_SCAN_PAGE_MAX};

/// What was read: calls of each kind, and the records they returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    pub gets: u64,
    pub scans: u64,
    /// Records found by `get`s.
    pub got: u64,
    /// Records returned by `scan`s.
    pub scanned: u64,
}

impl ReadCounts {
    /// Read calls of either kind.
    pub fn calls(&self) -> u64 {
        self.gets + self.scans
    }

    /// Records returned by reads of either kind.
    pub fn returned(&self) -> u64 {
        self.got + self.scanned
    }
}

#[derive(Default)]
pub struct MemoryRecords {
    records: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    gets: AtomicU64,
    scans: AtomicU64,
    got: AtomicU64,
    scanned: AtomicU64,
}

impl MemoryRecords {
    /// Applies the puts of `txn`, as a commit would.
    pub fn commit(&self, txn: Txn) {
        let mut records = self.records.lock().unwrap();
        for (namespace, key, value) in txn.puts() {
            records.insert((namespace.to_string(), key), value.to_vec());
        }
    }

    /// The reads so far.
    pub fn counts(&self) -> ReadCounts {
        ReadCounts {
            gets: self.gets.load(Ordering::Relaxed),
            scans: self.scans.load(Ordering::Relaxed),
            got: self.got.load(Ordering::Relaxed),
            scanned: self.scanned.load(Ordering::Relaxed),
        }
    }

    /// The reads since the last call, counting from zero again.
    pub fn take_counts(&self) -> ReadCounts {
        ReadCounts {
            gets: self.gets.swap(0, Ordering::Relaxed),
            scans: self.scans.swap(0, Ordering::Relaxed),
            got: self.got.swap(0, Ordering::Relaxed),
            scanned: self.scanned.swap(0, Ordering::Relaxed),
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Versioned<T> {
    Versioned {
        value: serde_json::from_slice(bytes).unwrap(),
        version: 1,
        timestamp: 1,
    }
}

impl RecordReads for MemoryRecords {
    async fn get<T: DeserializeOwned + Send>(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let records = self.records.lock().unwrap();
        let found = records.get(&(namespace.to_string(), key.to_string()));
        self.got
            .fetch_add(u64::from(found.is_some()), Ordering::Relaxed);
        Ok(found.map(|bytes| decode(bytes)))
    }

    async fn scan<T: DeserializeOwned + Send>(
        &self,
        namespace: &str,
        prefix: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Versioned<T>)>, StoreError> {
        assert!(
            limit > 0 && limit <= RECORD_SCAN_PAGE_MAX,
            "scan limit {limit}"
        );
        self.scans.fetch_add(1, Ordering::Relaxed);
        let records = self.records.lock().unwrap();
        let page: Vec<(String, Versioned<T>)> = records
            .iter()
            .filter(|((n, k), _)| {
                n == namespace && k.starts_with(prefix) && k.as_str() > start_after
            })
            .take(limit as usize)
            .map(|((_, k), v)| (k.clone(), decode(v)))
            .collect();
        self.scanned.fetch_add(page.len() as u64, Ordering::Relaxed);
        Ok(page)
    }
}
