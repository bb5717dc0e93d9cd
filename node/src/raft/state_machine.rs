//! [`StateMachineStore`]: openraft's state machine over [`Storage`]. Each log entry's effects and
//! `last_applied` go to storage in one write batch; snapshots are files of every state-machine
//! pair, built from a consistent read view so applying goes on meanwhile.

use std::collections::BTreeMap;
use std::io::{self, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};

use super::account_cache::AccountCache;
use super::{
    LogId, Request, RequestKind, Response, Snapshot, SnapshotData, SnapshotMeta, StoredMembership,
    TypeConfig,
};
#[cfg(feature = "planted-bugs")]
use crate::ledger::LedgerFaults;
use crate::ledger::{ApplyContext, CommandResult, LedgerBatch, LedgerState};
use crate::storage::codec::{decode, encode, from_bytes, to_bytes};
use crate::storage::ledger::{digest, write_mutations, DigestReport, StoreState};
use crate::storage::snapshot::{snapshot_to_batch, verify_snapshot, write_snapshot};
use crate::storage::{
    off_runtime, sync_now, Blob, ReadView, Space, Storage, StorageError, WriteBatch,
};

const APPLIED_KEY: &[u8] = b"last_applied";
const MEMBERSHIP_KEY: &[u8] = b"membership";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".bin";
/// Digests kept for `verify` to collect; older ones are dropped.
const DIGESTS_KEPT: usize = 16;

/// State the node's API reads while openraft owns the state machine.
#[derive(Default)]
pub struct SharedState {
    digests: Mutex<BTreeMap<u64, Result<DigestReport, String>>>,
}

impl SharedState {
    /// The digest computed when the checkpoint at `log_index` was applied, if it has been.
    pub fn digest(&self, log_index: u64) -> Option<Result<DigestReport, String>> {
        self.digests
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&log_index)
            .cloned()
    }

    fn keep_digest(&self, log_index: u64, report: Result<DigestReport, String>) {
        let mut digests = self
            .digests
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        digests.insert(log_index, report);
        while digests.len() > DIGESTS_KEPT {
            digests.pop_first();
        }
    }
}

pub struct StateMachineStore {
    storage: Arc<dyn Storage>,
    shared: Arc<SharedState>,
    #[cfg(feature = "planted-bugs")]
    faults: LedgerFaults,
    accounts: AccountCache,
}

impl StateMachineStore {
    pub fn new(storage: Arc<dyn Storage>, shared: Arc<SharedState>) -> Self {
        StateMachineStore {
            storage,
            shared,
            #[cfg(feature = "planted-bugs")]
            faults: LedgerFaults::default(),
            accounts: AccountCache::default(),
        }
    }

    /// A state machine whose ledger runs with planted faults (simulator only).
    #[cfg(feature = "planted-bugs")]
    pub fn with_faults(
        storage: Arc<dyn Storage>,
        shared: Arc<SharedState>,
        faults: LedgerFaults,
    ) -> Self {
        StateMachineStore {
            faults,
            ..Self::new(storage, shared)
        }
    }

    #[cfg(feature = "planted-bugs")]
    fn ledger_batch<'a, S: LedgerState>(
        &self,
        state: &'a S,
        context: &ApplyContext,
    ) -> LedgerBatch<'a, S> {
        LedgerBatch::with_faults(state, context, self.faults)
    }

    #[cfg(not(feature = "planted-bugs"))]
    fn ledger_batch<'a, S: LedgerState>(
        &self,
        state: &'a S,
        context: &ApplyContext,
    ) -> LedgerBatch<'a, S> {
        LedgerBatch::new(state, context)
    }

    fn apply_request(
        &self,
        request: &Request,
        batch: &mut WriteBatch,
    ) -> Result<Response, StorageError> {
        let RequestKind::Ledger(commands) = &request.kind else {
            return Ok(Response::Checkpoint);
        };
        let view = self.accounts.over(self.storage.as_ref());
        let state = StoreState::new(&view);
        let context = ApplyContext {
            timestamp_ns: request.timestamp_ns,
        };
        let mut ledger = self.ledger_batch(&state, &context);
        ledger.expire_pending();
        let results: Vec<CommandResult> = commands
            .iter()
            .map(|command| ledger.apply(command))
            .collect();
        let mutations = ledger.into_mutations();
        // A read that failed inside the batch makes its results untrustworthy: stop here, before
        // anything is written, rather than persist state computed from a hole.
        if let Some(error) = state.take_error() {
            return Err(error);
        }
        write_mutations(&mutations, batch);
        Ok(Response::Ledger(results))
    }

    /// Starts the digest of the state as of the checkpoint entry at `log_index`, just applied.
    /// The read view is taken here, in line, so every replica hashes exactly the state at this
    /// entry; the hashing (a scan of the whole state) runs off the async workers, and `verify`
    /// polls for its result.
    fn digest_at(&self, log_index: u64) {
        let view = match self.storage.read_view() {
            Ok(view) => view,
            Err(error) => {
                self.shared.keep_digest(log_index, Err(error.to_string()));
                return;
            }
        };
        let shared = self.shared.clone();
        self.storage.run_heavy(Box::new(move || {
            let report = digest(view.as_ref(), log_index).map_err(|error| error.to_string());
            shared.keep_digest(log_index, report);
        }));
    }
}

fn read_meta<T: serde::de::DeserializeOwned>(
    view: &dyn ReadView,
    key: &[u8],
) -> Result<Option<T>, StorageError> {
    view.get(Space::StateMeta, key)?
        .map(|bytes| decode(Space::StateMeta, &bytes))
        .transpose()
}

/// The applied log id and the membership stored with the state in `view`.
pub fn applied_state_of(
    view: &dyn ReadView,
) -> Result<(Option<LogId>, StoredMembership), StorageError> {
    let applied = read_meta::<Option<LogId>>(view, APPLIED_KEY)?.flatten();
    let membership = read_meta::<StoredMembership>(view, MEMBERSHIP_KEY)?.unwrap_or_default();
    Ok((applied, membership))
}

fn snapshot_name(meta: &SnapshotMeta) -> String {
    let index = meta
        .last_log_id
        .as_ref()
        .map(|log_id| log_id.index())
        .unwrap_or(0);
    format!("{SNAPSHOT_PREFIX}{index:020}{SNAPSHOT_SUFFIX}")
}

fn snapshot_names(storage: &dyn Storage) -> Result<Vec<String>, StorageError> {
    let mut names: Vec<String> = storage
        .list_blobs()?
        .into_iter()
        .filter(|name| name.starts_with(SNAPSHOT_PREFIX) && name.ends_with(SNAPSHOT_SUFFIX))
        .collect();
    names.sort();
    Ok(names)
}

/// Removes every snapshot file but `keep`.
fn remove_other_snapshots(storage: &dyn Storage, keep: &str) -> Result<(), StorageError> {
    for name in snapshot_names(storage)? {
        if name != keep {
            storage.remove_blob(&name)?;
        }
    }
    Ok(())
}

fn decode_meta(bytes: &[u8]) -> Result<SnapshotMeta, StorageError> {
    from_bytes(bytes).map_err(|reason| StorageError::Corrupt {
        space: "snapshot",
        reason,
    })
}

fn rewind(mut blob: SnapshotData) -> Result<SnapshotData, io::Error> {
    blob.seek(SeekFrom::Start(0))?;
    Ok(blob)
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok(applied_state_of(self.storage.as_ref())?)
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<openraft::storage::EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let (entry, responder): EntryResponder<TypeConfig> = (entry, responder);
            let started = <openraft::alias::InstantOf<TypeConfig> as openraft::Instant>::now();
            let log_id = entry.log_id();
            let mut batch = WriteBatch::default();
            let response = match &entry.payload {
                EntryPayload::Blank => Response::Empty,
                EntryPayload::Normal(request) => self.apply_request(request, &mut batch)?,
                EntryPayload::Membership(membership) => {
                    let stored = StoredMembership::new(Some(log_id), membership.clone());
                    batch.put(Space::StateMeta, MEMBERSHIP_KEY, encode(&stored));
                    Response::Empty
                }
            };
            batch.put(Space::StateMeta, APPLIED_KEY, encode(&Some(log_id)));
            self.accounts.remember(&batch);
            if let Err(error) = self.storage.write(batch) {
                self.accounts.clear();
                return Err(error.into());
            }
            ::metrics::counter!(crate::metrics::ENTRIES_APPLIED).increment(1);
            if let EntryPayload::Normal(Request {
                kind: RequestKind::Ledger(commands),
                ..
            }) = &entry.payload
            {
                let events: usize = commands.iter().map(super::batcher::events_of).sum();
                ::metrics::counter!(crate::metrics::EVENTS_APPLIED).increment(events as u64);
            }
            ::metrics::histogram!(crate::metrics::APPLY_SECONDS)
                .record(openraft::Instant::elapsed(&started).as_secs_f64());
            if response == Response::Checkpoint {
                self.digest_at(log_id.index());
            }
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            storage: self.storage.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        // Checking and loading a snapshot reads the whole file: off the async workers.
        self.accounts.clear();
        let storage = self.storage.clone();
        let expected = meta.clone();
        let snapshot = off_runtime(self.storage.as_ref(), move || {
            load_snapshot(storage.as_ref(), &expected, snapshot)
        })
        .await??;
        ::metrics::counter!(crate::metrics::SNAPSHOTS_INSTALLED).increment(1);
        sync_now(self.storage.as_ref()).await?;
        // Keep the file so this node can serve it to others.
        let storage = self.storage.clone();
        let name = snapshot_name(meta);
        off_runtime(self.storage.as_ref(), move || {
            keep_snapshot_file(storage.as_ref(), &name, snapshot)
        })
        .await??;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        for name in snapshot_names(self.storage.as_ref())?.into_iter().rev() {
            let Some(mut blob) = self.storage.open_blob(&name)? else {
                continue;
            };
            // A file cut short by a crash while it was written fails its checksum: skip it.
            let Ok(meta_bytes) = verify_snapshot(blob.as_mut()) else {
                continue;
            };
            let meta = decode_meta(&meta_bytes)?;
            return Ok(Some(Snapshot {
                meta,
                snapshot: rewind(blob)?,
            }));
        }
        Ok(None)
    }
}

/// Checks a received snapshot against its metadata and writes the state it carries (not yet
/// synced). Returns the file, for [`keep_snapshot_file`].
fn load_snapshot(
    storage: &dyn Storage,
    meta: &SnapshotMeta,
    mut snapshot: SnapshotData,
) -> Result<SnapshotData, io::Error> {
    let carried = decode_meta(&verify_snapshot(snapshot.as_mut())?)?;
    if carried.last_log_id != meta.last_log_id {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "snapshot file does not match its metadata",
        ));
    }
    let mut batch = snapshot_to_batch(snapshot.as_mut())?;
    batch.put(Space::StateMeta, APPLIED_KEY, encode(&meta.last_log_id));
    batch.put(
        Space::StateMeta,
        MEMBERSHIP_KEY,
        encode(&meta.last_membership),
    );
    storage.write(batch)?;
    Ok(snapshot)
}

/// Copies an installed snapshot into this node's own snapshot file, durably, and drops the older
/// ones.
fn keep_snapshot_file(
    storage: &dyn Storage,
    name: &str,
    mut snapshot: SnapshotData,
) -> Result<(), io::Error> {
    let mut kept = storage.create_blob(name)?;
    snapshot.seek(SeekFrom::Start(0))?;
    io::copy(&mut snapshot, &mut kept)?;
    kept.sync()?;
    remove_other_snapshots(storage, name)?;
    Ok(())
}

/// A consistent backup of the applied state, written as a snapshot file (the same format the
/// Raft snapshot path uses, with its own crc32) into the storage's blob `blob`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub blob: String,
    pub applied_index: u64,
    pub applied_term: u64,
    /// The state digest at `applied_index` (as `tallyctl verify` reports it).
    pub digest: String,
    pub bytes: u64,
}

/// Blob names of backups being streamed; leftovers of a crash are removed before the next one.
pub const BACKUP_BLOB_PREFIX: &str = "backup-";

/// Writes a backup of everything applied so far, from one read view: the file and its digest
/// describe the same state.
pub fn write_backup(storage: &dyn Storage, name: &str) -> Result<BackupFile, StorageError> {
    for stale in storage.list_blobs()? {
        if stale.starts_with(BACKUP_BLOB_PREFIX) {
            storage.remove_blob(&stale)?;
        }
    }
    let view = storage.read_view()?;
    let (last_log_id, last_membership) = applied_state_of(view.as_ref())?;
    let (applied_index, applied_term) = last_log_id
        .as_ref()
        .map_or((0, 0), |log_id| (log_id.index(), log_id.leader_id.term));
    let meta = SnapshotMeta {
        last_log_id,
        last_membership,
    };
    let mut blob = storage.create_blob(name)?;
    let bytes = write_snapshot(view.as_ref(), &to_bytes(&meta), blob.as_mut())?;
    let report = digest(view.as_ref(), applied_index)?;
    Ok(BackupFile {
        blob: name.to_string(),
        applied_index,
        applied_term,
        digest: report.digest,
        bytes,
    })
}

/// Loads a backup file into `storage` (an empty data directory) as the state a *new* cluster
/// starts from: the ledger and records as they were, without the old cluster's applied index and
/// membership, so `tallyctl cluster init` can form the new cluster on it. Returns the digest of
/// the restored state.
pub fn restore_backup(storage: &dyn Storage, file: &mut dyn Blob) -> Result<String, StorageError> {
    verify_snapshot(file)?;
    let mut batch = snapshot_to_batch(file)?;
    batch.delete(Space::StateMeta, APPLIED_KEY);
    batch.delete(Space::StateMeta, MEMBERSHIP_KEY);
    storage.write(batch)?;
    crate::storage::sync_blocking(storage)?;
    let view = storage.read_view()?;
    Ok(digest(view.as_ref(), 0)?.digest)
}

pub struct SnapshotBuilder {
    storage: Arc<dyn Storage>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        ::metrics::counter!(crate::metrics::SNAPSHOTS_BUILT).increment(1);
        // A snapshot is a scan of the whole state: off the async workers, so a node that is
        // building one still answers heartbeats.
        let storage = self.storage.clone();
        off_runtime(self.storage.as_ref(), move || {
            write_snapshot_file(storage.as_ref())
        })
        .await?
    }
}

/// Writes a snapshot of everything applied so far into its file, durably, and drops the older
/// files.
fn write_snapshot_file(storage: &dyn Storage) -> Result<Snapshot, io::Error> {
    let view = storage.read_view()?;
    let (last_log_id, last_membership) = applied_state_of(view.as_ref())?;
    let meta = SnapshotMeta {
        last_log_id,
        last_membership,
    };
    let name = snapshot_name(&meta);
    let mut blob = storage.create_blob(&name)?;
    write_snapshot(view.as_ref(), &to_bytes(&meta), blob.as_mut())?;
    drop(view);
    // Durable before the older files go: a crash must never leave no snapshot at all.
    blob.sync()?;
    remove_other_snapshots(storage, &name)?;
    Ok(Snapshot {
        meta,
        snapshot: rewind(blob)?,
    })
}
