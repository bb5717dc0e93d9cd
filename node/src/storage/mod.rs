//! The node's storage trait: ordered key spaces, batched writes, explicit durability.
//!
//! The Raft log store and the state-machine adapter are written against [`Storage`], so the
//! very same code runs over RocksDB in production ([`RocksStorage`]) and over a simulated disk in
//! the deterministic simulator. Values are framed with a crc32 ([`codec`]) so corruption is
//! caught on read instead of being applied.

pub mod codec;
pub mod keys;
pub mod ledger;
#[cfg(feature = "server")]
mod rocks;
pub mod snapshot;

use std::io::{Read, Seek, Write};
use std::ops::Bound;

#[cfg(feature = "server")]
pub use rocks::RocksStorage;

/// A key space. Each one is a RocksDB column family in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Space {
    /// Raft log store metadata: vote, last purged log id, committed log id.
    RaftMeta = 0,
    /// Raft log entries by index.
    RaftLog = 1,
    /// State-machine metadata: last applied log id, membership, last timestamp.
    StateMeta = 2,
    Accounts = 3,
    Transfers = 4,
    PendingStatus = 5,
    PendingExpiry = 6,
    Records = 7,
    AccountTransfers = 8,
    BalanceHistory = 9,
}

impl Space {
    pub const ALL: [Space; 10] = [
        Space::RaftMeta,
        Space::RaftLog,
        Space::StateMeta,
        Space::Accounts,
        Space::Transfers,
        Space::PendingStatus,
        Space::PendingExpiry,
        Space::Records,
        Space::AccountTransfers,
        Space::BalanceHistory,
    ];

    /// The spaces that make up the replicated state machine (what a snapshot carries).
    pub const STATE_MACHINE: [Space; 8] = [
        Space::StateMeta,
        Space::Accounts,
        Space::Transfers,
        Space::PendingStatus,
        Space::PendingExpiry,
        Space::Records,
        Space::AccountTransfers,
        Space::BalanceHistory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Space::RaftMeta => "raft_meta",
            Space::RaftLog => "raft_log",
            Space::StateMeta => "state_meta",
            Space::Accounts => "accounts",
            Space::Transfers => "transfers",
            Space::PendingStatus => "pending_status",
            Space::PendingExpiry => "pending_expiry",
            Space::Records => "records",
            Space::AccountTransfers => "account_transfers",
            Space::BalanceHistory => "balance_history",
        }
    }

    pub fn from_u8(value: u8) -> Option<Space> {
        Space::ALL.into_iter().find(|space| *space as u8 == value)
    }
}

/// One write operation inside a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put {
        space: Space,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        space: Space,
        key: Vec<u8>,
    },
    /// Deletes every key in `[start, end)`.
    DeleteRange {
        space: Space,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

/// Writes applied atomically and in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<WriteOp>,
}

impl WriteBatch {
    pub fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Put {
            space,
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Delete {
            space,
            key: key.into(),
        });
    }

    pub fn delete_range(
        &mut self,
        space: Space,
        start: impl Into<Vec<u8>>,
        end: impl Into<Vec<u8>>,
    ) {
        self.ops.push(WriteOp::DeleteRange {
            space,
            start: start.into(),
            end: end.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// A key range for scans.
#[derive(Debug, Clone)]
pub struct KeyRange {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        let end = match keys::prefix_successor(prefix) {
            Some(next) => Bound::Excluded(next),
            None => Bound::Unbounded,
        };
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(start) => key >= start.as_slice(),
            Bound::Excluded(start) => key > start.as_slice(),
            Bound::Unbounded => true,
        };
        let before_end = match &self.end {
            Bound::Included(end) => key <= end.as_slice(),
            Bound::Excluded(end) => key < end.as_slice(),
            Bound::Unbounded => true,
        };
        after_start && before_end
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage IO failed: {0}")]
    Io(String),
    #[error(
        "stored value in {space} is corrupt: {reason}. This node's data is damaged: it refuses \
         to serve or build on it. Rebuild it from its peers: stop it, `tallyctl cluster \
         remove-node --id N`, then add it back with an empty data directory (`tallyctl cluster \
         add-node`; docs/OPERATIONS.md, \"Replace a node\")"
    )]
    Corrupt { space: &'static str, reason: String },
    #[error("storage is closed")]
    Closed,
}

impl From<StorageError> for std::io::Error {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Corrupt { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidData, error)
            }
            other => std::io::Error::other(other),
        }
    }
}

/// Work that reads a lot of state (a snapshot, a full-state digest): [`Storage::run_heavy`]
/// keeps it off the threads that run the node's async tasks.
pub type HeavyJob = Box<dyn FnOnce() + Send + 'static>;

/// Called once every write issued before the sync request is durable.
pub type SyncCallback = Box<dyn FnOnce(Result<(), StorageError>) + Send + 'static>;

/// A visitor over scanned pairs; return `false` to stop.
pub type Visitor<'v> = &'v mut dyn FnMut(&[u8], &[u8]) -> bool;

/// Reads against one consistent state.
pub trait ReadView: Send + Sync {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Visits the pairs of `range` in key order (reverse order if `reverse`) until the visitor
    /// returns false.
    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        reverse: bool,
        visit: Visitor<'_>,
    ) -> Result<(), StorageError>;
}

/// A snapshot file (or its in-memory stand-in in the simulator).
///
/// Like the key-value writes, a blob's bytes are durable only after [`Blob::sync`]: a crash
/// before it may leave the file missing or cut short (the snapshot crc32 catches the latter).
pub trait Blob: Read + Write + Seek + Send + Sync {
    /// Makes every byte written so far durable.
    fn sync(&mut self) -> std::io::Result<()>;
}

impl Blob for std::fs::File {
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_all()
    }
}

/// An in-memory blob (tests, tools): nothing to make durable.
impl Blob for std::io::Cursor<Vec<u8>> {
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The node's whole persistent state.
///
/// Writes become visible to reads at once, in order, but are durable only after a
/// [`Storage::sync`] issued after them has completed: that is the contract the simulator's disk
/// models (a crash loses unsynced writes, and may tear the last one).
pub trait Storage: ReadView + 'static {
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError>;

    /// Asks for every write issued so far to be made durable; `done` runs when it is.
    fn sync(&self, done: SyncCallback);

    /// A consistent point-in-time view that later writes do not change.
    fn read_view(&self) -> Result<Box<dyn ReadView>, StorageError>;

    /// Creates (or truncates) a named blob, e.g. a snapshot being built or received.
    fn create_blob(&self, name: &str) -> Result<Box<dyn Blob>, StorageError>;
    fn open_blob(&self, name: &str) -> Result<Option<Box<dyn Blob>>, StorageError>;
    fn remove_blob(&self, name: &str) -> Result<(), StorageError>;
    fn list_blobs(&self) -> Result<Vec<String>, StorageError>;

    /// Runs `job`, which may read the whole state: RocksDB gives it a thread of its own, so the
    /// async workers stay free for heartbeats and requests; the simulator's disk runs it inline,
    /// at the same point of the schedule every time, so a seed still replays exactly.
    fn run_heavy(&self, job: HeavyJob) {
        job();
    }

    /// Free bytes where the data lives, if the storage can tell.
    fn free_bytes(&self) -> Option<u64> {
        None
    }

    /// Size estimates for the metrics endpoint; none by default.
    fn properties(&self) -> Vec<(StorageProperty, u64)> {
        Vec::new()
    }
}

/// A size estimate a storage engine reports (RocksDB's, summed over its column families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageProperty {
    LiveDataBytes,
    PendingCompactionBytes,
}

/// Waits for a sync to complete.
pub async fn sync_now(storage: &dyn Storage) -> Result<(), StorageError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    storage.sync(Box::new(move |result| {
        let _ = sender.send(result);
    }));
    receiver.await.map_err(|_| StorageError::Closed)?
}

/// Runs `work` through [`Storage::run_heavy`] and waits for its result without holding an async
/// worker meanwhile.
pub async fn off_runtime<T: Send + 'static>(
    storage: &dyn Storage,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StorageError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    storage.run_heavy(Box::new(move || {
        let _ = sender.send(work());
    }));
    receiver.await.map_err(|_| StorageError::Closed)
}

/// Waits for a sync from outside an async context (tools and tests).
pub fn sync_blocking(storage: &dyn Storage) -> Result<(), StorageError> {
    let (sender, receiver) = std::sync::mpsc::channel();
    storage.sync(Box::new(move |result| {
        let _ = sender.send(result);
    }));
    receiver.recv().map_err(|_| StorageError::Closed)?
}

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Reads the last pair of a range, if any.
pub fn last_in(
    view: &dyn ReadView,
    space: Space,
    range: &KeyRange,
) -> Result<Option<KeyValue>, StorageError> {
    let mut found = None;
    view.scan(space, range, true, &mut |key, value| {
        found = Some((key.to_vec(), value.to_vec()));
        false
    })?;
    Ok(found)
}
