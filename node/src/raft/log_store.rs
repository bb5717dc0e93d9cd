//! [`LogStore`]: openraft's log storage over [`Storage`]. Entries are crc32-framed under their
//! big-endian index; the vote is synced before `save_vote` returns, and `append` reports its
//! entries flushed only from the storage's sync callback.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};

use super::{Entry, LogId, TypeConfig, Vote};
use crate::storage::codec::{decode, encode};
use crate::storage::keys::{read_u64, u64_key};
use crate::storage::{
    last_in, sync_now, KeyRange, ReadView, Space, Storage, StorageError, WriteBatch,
};

const VOTE_KEY: &[u8] = b"vote";
const PURGED_KEY: &[u8] = b"last_purged";
const COMMITTED_KEY: &[u8] = b"committed";

/// Deliberate faults, switched on only by the simulator's planted bugs to prove that its checks
/// catch them. Compiled only with the `planted-bugs` feature: a production build has none.
#[cfg(feature = "planted-bugs")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStoreFaults {
    /// Report appended entries durable before the sync completes.
    pub ack_before_sync: bool,
    /// Do not persist the vote.
    pub forget_vote: bool,
}

#[derive(Clone)]
pub struct LogStore {
    storage: Arc<dyn Storage>,
    #[cfg(feature = "planted-bugs")]
    faults: LogStoreFaults,
}

impl LogStore {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        LogStore {
            storage,
            #[cfg(feature = "planted-bugs")]
            faults: LogStoreFaults::default(),
        }
    }

    #[cfg(feature = "planted-bugs")]
    pub fn with_faults(storage: Arc<dyn Storage>, faults: LogStoreFaults) -> Self {
        LogStore { storage, faults }
    }

    /// True when a planted bug drops the vote instead of persisting it.
    #[cfg(feature = "planted-bugs")]
    fn planted_forget_vote(&self) -> bool {
        self.faults.forget_vote
    }

    #[cfg(not(feature = "planted-bugs"))]
    fn planted_forget_vote(&self) -> bool {
        false
    }

    /// True when a planted bug reports appends durable before their sync.
    #[cfg(feature = "planted-bugs")]
    fn planted_ack_before_sync(&self) -> bool {
        self.faults.ack_before_sync
    }

    #[cfg(not(feature = "planted-bugs"))]
    fn planted_ack_before_sync(&self) -> bool {
        false
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        self.storage
            .get(Space::RaftMeta, key)?
            .map(|bytes| decode(Space::RaftMeta, &bytes))
            .transpose()
    }
}

/// The vote stored in `view` (what a restarted replica would start from).
pub fn stored_vote(view: &dyn ReadView) -> Result<Option<Vote>, StorageError> {
    view.get(Space::RaftMeta, VOTE_KEY)?
        .map(|bytes| decode(Space::RaftMeta, &bytes))
        .transpose()
}

/// The last purged log id stored in `view`: every entry up to it is gone from the log, so a
/// snapshot file must cover it.
pub fn stored_purged(view: &dyn ReadView) -> Result<Option<LogId>, StorageError> {
    view.get(Space::RaftMeta, PURGED_KEY)?
        .map(|bytes| decode(Space::RaftMeta, &bytes))
        .transpose()
}

fn index_range<R: RangeBounds<u64>>(range: &R) -> KeyRange {
    let start = match range.start_bound() {
        Bound::Included(index) => Bound::Included(u64_key(*index).to_vec()),
        Bound::Excluded(index) => Bound::Excluded(u64_key(*index).to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    let end = match range.end_bound() {
        Bound::Included(index) => Bound::Included(u64_key(*index).to_vec()),
        Bound::Excluded(index) => Bound::Excluded(u64_key(*index).to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    KeyRange { start, end }
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, StorageError> {
    let entry: Entry = decode(Space::RaftLog, value)?;
    // Pair the key with the entry it holds: a mismatch means the log was mangled.
    if read_u64(key) != Some(entry.index()) {
        return Err(StorageError::Corrupt {
            space: Space::RaftLog.name(),
            reason: format!("key {key:?} holds entry {}", entry.index()),
        });
    }
    Ok(entry)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let mut entries = Vec::new();
        let mut failure = None;
        self.storage.scan(
            Space::RaftLog,
            &index_range(&range),
            false,
            &mut |key, value| {
                match decode_entry(key, value) {
                    Ok(entry) => entries.push(entry),
                    Err(error) => failure = Some(error),
                }
                failure.is_none()
            },
        )?;
        if let Some(error) = failure {
            return Err(error.into());
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.read_meta(VOTE_KEY)?)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.read_meta(PURGED_KEY)?;
        let last_log_id = match last_in(self.storage.as_ref(), Space::RaftLog, &KeyRange::all())? {
            Some((key, value)) => Some(decode_entry(&key, &value)?.log_id()),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        if self.planted_forget_vote() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.put(Space::RaftMeta, VOTE_KEY, encode(vote));
        self.storage.write(batch)?;
        sync_now(self.storage.as_ref()).await?;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not synced: losing it only means re-applying from the last applied index.
        let mut batch = WriteBatch::default();
        batch.put(Space::RaftMeta, COMMITTED_KEY, encode(&committed));
        self.storage.write(batch)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.read_meta::<Option<LogId>>(COMMITTED_KEY)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put(Space::RaftLog, u64_key(entry.index()), encode(&entry));
        }
        self.storage.write(batch)?;
        if self.planted_ack_before_sync() {
            callback.io_completed(Ok(()));
            self.storage.sync(Box::new(|_| {}));
            return Ok(());
        }
        self.storage.sync(Box::new(move |result| {
            callback.io_completed(result.map_err(io::Error::from))
        }));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let start = last_log_id.map(|log_id| log_id.index() + 1).unwrap_or(0);
        let mut batch = WriteBatch::default();
        batch.delete_range(Space::RaftLog, u64_key(start).to_vec(), vec![0xff; 9]);
        self.storage.write(batch)?;
        // Durable before openraft appends over the truncated range.
        sync_now(self.storage.as_ref()).await?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        ::metrics::counter!(crate::metrics::LOG_PURGES).increment(1);
        let mut batch = WriteBatch::default();
        batch.put(Space::RaftMeta, PURGED_KEY, encode(&log_id));
        batch.delete_range(
            Space::RaftLog,
            u64_key(0).to_vec(),
            u64_key(log_id.index().saturating_add(1)).to_vec(),
        );
        self.storage.write(batch)?;
        Ok(())
    }
}
