//! [`Storage`] on RocksDB: one column family per [`Space`], a syncer thread for group fsync,
//! checkpoints for consistent read views, plain files for blobs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode,
    Options, DB,
};

use super::{
    Blob, HeavyJob, KeyRange, ReadView, Space, Storage, StorageError, StorageProperty,
    SyncCallback, Visitor, WriteBatch, WriteOp,
};

/// Block cache shared by every column family (bounded so a node stays well under 1 GiB).
const BLOCK_CACHE_BYTES: usize = 256 << 20;
/// Memtable size per column family.
const WRITE_BUFFER_BYTES: usize = 32 << 20;
/// Share of a memtable's size given to its bloom filter (where there is one).
const MEMTABLE_BLOOM_RATIO: f64 = 0.05;
/// All memtables together: without this cap ten column families could hold 10 x 2 x 32 MiB in
/// memory; with it RocksDB flushes the largest one when the sum reaches this.
const DB_WRITE_BUFFER_BYTES: usize = 128 << 20;
/// The write-ahead log is kept until every column family with data in it has flushed; rarely
/// written ones (Raft metadata) would otherwise pin old log files. Past this size RocksDB
/// flushes them, which bounds the disk the log takes and the replay after a crash.
const WAL_BYTES_MAX: u64 = 256 << 20;
/// Flushes and compactions hand their output to the disk every megabyte instead of in one burst
/// when a file closes, so the group fsync of the log does not stall behind a large write-back.
const BYTES_PER_SYNC: u64 = 1 << 20;

pub struct RocksStorage {
    db: Arc<DB>,
    dir: PathBuf,
    /// `None` only while dropping.
    sync_requests: Option<mpsc::Sender<SyncCallback>>,
    /// Joined on drop, so the database is closed before the process exits.
    syncer: Option<std::thread::JoinHandle<()>>,
    views_created: AtomicU64,
}

impl Drop for RocksStorage {
    fn drop(&mut self) {
        // Closing the channel ends the syncer, which then drops its handle on the database.
        self.sync_requests = None;
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
    }
}

fn io_error(error: impl std::fmt::Display) -> StorageError {
    StorageError::Io(error.to_string())
}

fn column_options(space: Space, cache: &Cache) -> Options {
    let mut options = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    // Point lookups by id dominate (idempotency checks miss almost always): bloom filters
    // answer those misses without touching data blocks.
    if matches!(
        space,
        Space::Accounts | Space::Transfers | Space::PendingStatus | Space::Records
    ) {
        table.set_bloom_filter(10.0, false);
    }
    options.set_block_based_table_factory(&table);
    options.set_write_buffer_size(WRITE_BUFFER_BYTES);
    if space == Space::Transfers {
        // Every new transfer's id is looked up first (exactly-once) and almost never found: a
        // bloom filter over the memtable answers that miss without a walk down its skip list.
        options.set_memtable_whole_key_filtering(true);
        options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
    }
    let compression = if space == Space::RaftLog {
        DBCompressionType::None
    } else {
        DBCompressionType::Lz4
    };
    options.set_compression_type(compression);
    options
}

impl RocksStorage {
    /// Opens (or creates) the node's database under `dir`.
    pub fn open(dir: &Path) -> Result<RocksStorage, StorageError> {
        std::fs::create_dir_all(dir).map_err(io_error)?;
        check_format(dir)?;
        std::fs::create_dir_all(dir.join("blobs")).map_err(io_error)?;
        let views = dir.join("views");
        // Views are per process: whatever a crashed process left behind is garbage.
        let _ = std::fs::remove_dir_all(&views);
        std::fs::create_dir_all(&views).map_err(io_error)?;
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(2);
        options.set_db_write_buffer_size(DB_WRITE_BUFFER_BYTES);
        options.set_max_total_wal_size(WAL_BYTES_MAX);
        options.set_bytes_per_sync(BYTES_PER_SYNC);
        let families = Space::ALL
            .iter()
            .map(|space| ColumnFamilyDescriptor::new(space.name(), column_options(*space, &cache)));
        let db = DB::open_cf_descriptors(&options, dir.join("db"), families).map_err(io_error)?;
        let db = Arc::new(db);
        let (sync_requests, syncer) = spawn_syncer(db.clone())?;
        Ok(RocksStorage {
            db,
            dir: dir.to_path_buf(),
            sync_requests: Some(sync_requests),
            syncer: Some(syncer),
            views_created: AtomicU64::new(0),
        })
    }

    fn blob_path(&self, name: &str) -> Result<PathBuf, StorageError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
        if !valid || name.starts_with('.') {
            return Err(StorageError::Io(format!("invalid blob name {name:?}")));
        }
        Ok(self.dir.join("blobs").join(name))
    }
}

/// The on-disk format this build reads and writes, recorded in `DATA/FORMAT`. A data directory
/// of a newer format is refused: an older node must not misread what a newer one wrote.
pub const DATA_FORMAT_VERSION: u32 = 1;
const FORMAT_FILE: &str = "FORMAT";

fn check_format(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(FORMAT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let version: u32 = text.trim().parse().map_err(|_| {
                StorageError::Io(format!(
                    "{} does not hold a format version ({text:?}); is this a Tally data directory?",
                    path.display()
                ))
            })?;
            if version > DATA_FORMAT_VERSION {
                return Err(StorageError::Io(format!(
                    "{} is in data format {version}, newer than the {DATA_FORMAT_VERSION} this \
                     tally-node understands: run a tally-node at least as new as the one that \
                     wrote it (or restore a backup into a new directory)",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, format!("{DATA_FORMAT_VERSION}\n")).map_err(io_error)
        }
        Err(error) => Err(io_error(error)),
    }
}

/// One thread does every fsync: requests that queue up while a sync runs share the next one.
fn spawn_syncer(
    db: Arc<DB>,
) -> Result<(mpsc::Sender<SyncCallback>, std::thread::JoinHandle<()>), StorageError> {
    let (sender, receiver) = mpsc::channel::<SyncCallback>();
    let syncer = std::thread::Builder::new()
        .name("tally-syncer".into())
        .spawn(move || {
            while let Ok(first) = receiver.recv() {
                let mut waiting = vec![first];
                waiting.extend(receiver.try_iter());
                let started = std::time::Instant::now();
                let result = db.flush_wal(true).map_err(|error| error.to_string());
                ::metrics::histogram!(crate::metrics::STORAGE_FSYNC_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                for done in waiting {
                    done(result.clone().map_err(StorageError::Io));
                }
            }
        })
        .map_err(io_error)?;
    Ok((sender, syncer))
}

fn scan_db(
    db: &DB,
    space: Space,
    range: &KeyRange,
    reverse: bool,
    visit: Visitor<'_>,
) -> Result<(), StorageError> {
    let family = db.cf_handle(space.name()).ok_or(StorageError::Closed)?;
    scan_with(
        |mode| {
            db.iterator_cf(&family, mode)
                .map(|item| item.map_err(io_error))
        },
        range,
        reverse,
        visit,
    )
}

fn scan_with<'a, I, F>(
    iterate: F,
    range: &KeyRange,
    reverse: bool,
    visit: Visitor<'_>,
) -> Result<(), StorageError>
where
    F: FnOnce(IteratorMode<'_>) -> I,
    I: Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), StorageError>> + 'a,
{
    use std::ops::Bound;
    let mode = if reverse {
        match &range.end {
            Bound::Included(end) | Bound::Excluded(end) => {
                IteratorMode::From(end, Direction::Reverse)
            }
            Bound::Unbounded => IteratorMode::End,
        }
    } else {
        match &range.start {
            Bound::Included(start) | Bound::Excluded(start) => {
                IteratorMode::From(start, Direction::Forward)
            }
            Bound::Unbounded => IteratorMode::Start,
        }
    };
    for item in iterate(mode) {
        let (key, value) = item?;
        if !range.contains(&key) {
            let past_end = if reverse {
                match &range.start {
                    Bound::Included(start) => key.as_ref() < start.as_slice(),
                    Bound::Excluded(start) => key.as_ref() <= start.as_slice(),
                    Bound::Unbounded => false,
                }
            } else {
                match &range.end {
                    Bound::Included(end) => key.as_ref() > end.as_slice(),
                    Bound::Excluded(end) => key.as_ref() >= end.as_slice(),
                    Bound::Unbounded => false,
                }
            };
            if past_end {
                break;
            }
            // The first key of a reverse scan from an excluded end, or an excluded start.
            continue;
        }
        if !visit(&key, &value) {
            break;
        }
    }
    Ok(())
}

impl ReadView for RocksStorage {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let family = self
            .db
            .cf_handle(space.name())
            .ok_or(StorageError::Closed)?;
        self.db.get_cf(&family, key).map_err(io_error)
    }

    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        reverse: bool,
        visit: Visitor<'_>,
    ) -> Result<(), StorageError> {
        scan_db(&self.db, space, range, reverse, visit)
    }
}

impl Storage for RocksStorage {
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.ops {
            match op {
                WriteOp::Put { space, key, value } => {
                    let family = self
                        .db
                        .cf_handle(space.name())
                        .ok_or(StorageError::Closed)?;
                    rocks_batch.put_cf(&family, key, value);
                }
                WriteOp::Delete { space, key } => {
                    let family = self
                        .db
                        .cf_handle(space.name())
                        .ok_or(StorageError::Closed)?;
                    rocks_batch.delete_cf(&family, key);
                }
                WriteOp::DeleteRange { space, start, end } => {
                    let family = self
                        .db
                        .cf_handle(space.name())
                        .ok_or(StorageError::Closed)?;
                    rocks_batch.delete_range_cf(&family, start, end);
                }
            }
        }
        self.db.write(rocks_batch).map_err(io_error)
    }

    fn sync(&self, done: SyncCallback) {
        let Some(requests) = &self.sync_requests else {
            return done(Err(StorageError::Closed));
        };
        if let Err(mpsc::SendError(done)) = requests.send(done) {
            done(Err(StorageError::Closed));
        }
    }

    fn read_view(&self) -> Result<Box<dyn ReadView>, StorageError> {
        let number = self.views_created.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join("views").join(format!("view-{number}"));
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(io_error)?;
        checkpoint.create_checkpoint(&path).map_err(io_error)?;
        let names: Vec<&str> = Space::ALL.iter().map(|space| space.name()).collect();
        let db = DB::open_cf_for_read_only(&Options::default(), &path, names, false)
            .map_err(io_error)?;
        Ok(Box::new(RocksView { db: Some(db), path }))
    }

    fn create_blob(&self, name: &str) -> Result<Box<dyn Blob>, StorageError> {
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.blob_path(name)?)
            .map_err(io_error)?;
        // The new name must survive a crash as well as the bytes `Blob::sync` makes durable.
        std::fs::File::open(self.dir.join("blobs"))
            .and_then(|dir| dir.sync_all())
            .map_err(io_error)?;
        Ok(Box::new(file))
    }

    fn open_blob(&self, name: &str) -> Result<Option<Box<dyn Blob>>, StorageError> {
        match std::fs::File::options()
            .read(true)
            .write(true)
            .open(self.blob_path(name)?)
        {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error(error)),
        }
    }

    fn remove_blob(&self, name: &str) -> Result<(), StorageError> {
        match std::fs::remove_file(self.blob_path(name)?) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error(error)),
        }
    }

    fn list_blobs(&self) -> Result<Vec<String>, StorageError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.dir.join("blobs")).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn run_heavy(&self, job: HeavyJob) {
        // The job moves into the thread only if the thread starts; if it cannot (out of
        // threads), it runs here rather than being lost.
        let slot = Arc::new(Mutex::new(Some(job)));
        let theirs = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("tally-heavy".into())
            .spawn(move || {
                if let Some(job) = take_job(&theirs) {
                    job();
                }
            });
        if spawned.is_err() {
            if let Some(job) = take_job(&slot) {
                job();
            }
        }
    }

    fn free_bytes(&self) -> Option<u64> {
        let stats = rustix::fs::statvfs(&self.dir).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    fn properties(&self) -> Vec<(StorageProperty, u64)> {
        let mut sums = [0u64; 2];
        for space in Space::ALL {
            let Some(family) = self.db.cf_handle(space.name()) else {
                continue;
            };
            for (sum, property) in sums.iter_mut().zip([
                "rocksdb.estimate-live-data-size",
                "rocksdb.estimate-pending-compaction-bytes",
            ]) {
                if let Ok(Some(value)) = self.db.property_int_value_cf(&family, property) {
                    *sum = sum.saturating_add(value);
                }
            }
        }
        vec![
            (StorageProperty::LiveDataBytes, sums[0]),
            (StorageProperty::PendingCompactionBytes, sums[1]),
        ]
    }
}

fn take_job(slot: &Mutex<Option<HeavyJob>>) -> Option<HeavyJob> {
    slot.lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .take()
}

/// A read-only RocksDB opened on a checkpoint; the checkpoint is removed when the view drops.
struct RocksView {
    db: Option<DB>,
    path: PathBuf,
}

impl ReadView for RocksView {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let db = self.db.as_ref().ok_or(StorageError::Closed)?;
        let family = db.cf_handle(space.name()).ok_or(StorageError::Closed)?;
        db.get_cf(family, key).map_err(io_error)
    }

    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        reverse: bool,
        visit: Visitor<'_>,
    ) -> Result<(), StorageError> {
        let db = self.db.as_ref().ok_or(StorageError::Closed)?;
        let family = db.cf_handle(space.name()).ok_or(StorageError::Closed)?;
        scan_with(
            |mode| {
                db.iterator_cf(family, mode)
                    .map(|item| item.map_err(io_error))
            },
            range,
            reverse,
            visit,
        )
    }
}

impl Drop for RocksView {
    fn drop(&mut self) {
        drop(self.db.take());
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(view: &dyn ReadView, range: KeyRange, reverse: bool) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        view.scan(Space::Records, &range, reverse, &mut |key, _| {
            keys.push(key.to_vec());
            true
        })
        .unwrap();
        keys
    }

    #[test]
    fn scans_respect_bounds_in_both_directions() {
        let dir = tempfile::tempdir().unwrap();
        let storage = RocksStorage::open(dir.path()).unwrap();
        let mut batch = WriteBatch::default();
        for key in [[1u8, 1], [1, 2], [1, 3], [2, 0]] {
            batch.put(Space::Records, key.to_vec(), b"v".to_vec());
        }
        storage.write(batch).unwrap();
        assert_eq!(
            collect(&storage, KeyRange::prefix(&[1]), false),
            vec![vec![1, 1], vec![1, 2], vec![1, 3]]
        );
        assert_eq!(
            collect(&storage, KeyRange::prefix(&[1]), true),
            vec![vec![1, 3], vec![1, 2], vec![1, 1]]
        );
        let range = KeyRange {
            start: std::ops::Bound::Excluded(vec![1, 1]),
            end: std::ops::Bound::Excluded(vec![2, 0]),
        };
        assert_eq!(
            collect(&storage, range.clone(), false),
            vec![vec![1, 2], vec![1, 3]]
        );
        assert_eq!(collect(&storage, range, true), vec![vec![1, 3], vec![1, 2]]);
    }

    #[tokio::test]
    async fn view_is_frozen_and_sync_completes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = RocksStorage::open(dir.path()).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(Space::Accounts, b"a".to_vec(), b"1".to_vec());
        storage.write(batch).unwrap();
        let view = storage.read_view().unwrap();
        let mut batch = WriteBatch::default();
        batch.put(Space::Accounts, b"a".to_vec(), b"2".to_vec());
        storage.write(batch).unwrap();
        super::super::sync_now(&storage).await.unwrap();
        assert_eq!(
            view.get(Space::Accounts, b"a").unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(
            storage.get(Space::Accounts, b"a").unwrap(),
            Some(b"2".to_vec())
        );
    }
}
