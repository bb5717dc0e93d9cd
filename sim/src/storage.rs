//! [`SimStorage`]: the simulated disk behind the node's `Storage` trait.
//!
//! Writes are visible at once; they become durable only when a sync issued after them completes,
//! and the world decides when that is. A crash keeps the durable state plus a random prefix of the
//! unsynced batches, and may tear the next one: a log append whose last entry reaches the disk
//! cut short, which the crc32 framing catches when the restarted replica reads it. Blobs
//! (snapshot files) are byte vectors, durable only once [`Blob::sync`] has run: a crash leaves a
//! never-synced blob missing or cut short, and a synced one as it was at its last sync. Opening
//! one gives an independent cursor over a copy.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use tally_node::raft::NodeId;
use tally_node::storage::{
    Blob, KeyRange, ReadView, Space, Storage, StorageError, SyncCallback, Visitor, WriteBatch,
    WriteOp,
};

use crate::rng::SimRng;
use crate::world::World;

type SpaceMap = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every space of one disk.
#[derive(Debug, Clone, Default)]
pub struct Spaces {
    maps: [SpaceMap; Space::ALL.len()],
}

impl Spaces {
    fn map(&self, space: Space) -> &SpaceMap {
        &self.maps[space as usize]
    }

    fn map_mut(&mut self, space: Space) -> &mut SpaceMap {
        &mut self.maps[space as usize]
    }

    pub fn apply(&mut self, batch: &WriteBatch) {
        for op in &batch.ops {
            self.apply_op(op);
        }
    }

    fn apply_op(&mut self, op: &WriteOp) {
        match op {
            WriteOp::Put { space, key, value } => {
                self.map_mut(*space).insert(key.clone(), value.clone());
            }
            WriteOp::Delete { space, key } => {
                self.map_mut(*space).remove(key);
            }
            WriteOp::DeleteRange { space, start, end } => {
                let range = KeyRange {
                    start: Bound::Included(start.clone()),
                    end: Bound::Excluded(end.clone()),
                };
                let doomed: Vec<Vec<u8>> = range_of(self.map(*space), &range, false)
                    .map(|(key, _)| key.clone())
                    .collect();
                let map = self.map_mut(*space);
                for key in doomed {
                    map.remove(&key);
                }
            }
        }
    }
}

/// `BTreeMap::range` panics on an inverted range; an inverted range is simply empty here.
fn range_of<'m>(
    map: &'m SpaceMap,
    range: &KeyRange,
    reverse: bool,
) -> Box<dyn Iterator<Item = (&'m Vec<u8>, &'m Vec<u8>)> + 'm> {
    let start = range.start.as_ref().map(Vec::as_slice);
    let end = range.end.as_ref().map(Vec::as_slice);
    let empty = match (start, end) {
        (Bound::Included(low), Bound::Included(high)) => low > high,
        (Bound::Included(low), Bound::Excluded(high))
        | (Bound::Excluded(low), Bound::Included(high))
        | (Bound::Excluded(low), Bound::Excluded(high)) => low >= high,
        _ => false,
    };
    if empty {
        return Box::new(std::iter::empty());
    }
    let iter = map.range::<[u8], _>((start, end));
    if reverse {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    }
}

impl ReadView for Spaces {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map(space).get(key).cloned())
    }

    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        reverse: bool,
        visit: Visitor<'_>,
    ) -> Result<(), StorageError> {
        for (key, value) in range_of(self.map(space), range, reverse) {
            if !visit(key, value) {
                break;
            }
        }
        Ok(())
    }
}

/// A point-in-time view: a shared copy of the visible state that later writes copy on write.
struct SimView(Arc<Spaces>);

impl ReadView for SimView {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.get(space, key)
    }

    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        reverse: bool,
        visit: Visitor<'_>,
    ) -> Result<(), StorageError> {
        self.0.scan(space, range, reverse, visit)
    }
}

/// One blob: what has been written, and what of it is durable.
#[derive(Debug, Default)]
struct BlobState {
    bytes: Vec<u8>,
    /// The bytes as of the last sync; `None` if it never ran.
    durable: Option<Vec<u8>>,
    /// Written since the last sync.
    dirty: bool,
}

type BlobBytes = Arc<Mutex<BlobState>>;

fn lock_blob(blob: &Mutex<BlobState>) -> MutexGuard<'_, BlobState> {
    blob.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The durable writes a crash can be aimed at: the nemesis waits for one of these to be written
/// but not yet synced, then pulls the plug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Log entries appended, not yet flushed.
    LogAppend,
    /// A vote written, not yet synced.
    Vote,
    /// A state-machine batch (an applied entry or an installed snapshot).
    Apply,
    /// A log purge or truncation.
    LogRemoval,
    /// A snapshot file written but not synced.
    SnapshotFile,
}

impl Window {
    pub const ALL: [Window; 5] = [
        Window::LogAppend,
        Window::Vote,
        Window::Apply,
        Window::LogRemoval,
        Window::SnapshotFile,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Window::LogAppend => "log append",
            Window::Vote => "vote write",
            Window::Apply => "state-machine write",
            Window::LogRemoval => "log purge/truncate",
            Window::SnapshotFile => "snapshot file",
        }
    }

    fn holds(self, batch: &WriteBatch) -> bool {
        let touches = |wanted: Space, key: Option<&[u8]>| {
            batch.ops.iter().any(|op| match op {
                WriteOp::Put { space, key: k, .. } => {
                    *space == wanted && key.is_none_or(|key| k.as_slice() == key)
                }
                WriteOp::Delete { space, .. } | WriteOp::DeleteRange { space, .. } => {
                    *space == wanted && key.is_none()
                }
            })
        };
        match self {
            Window::LogAppend => is_log_append(batch),
            Window::Vote => touches(Space::RaftMeta, Some(b"vote")),
            Window::Apply => touches(Space::StateMeta, Some(b"last_applied")),
            Window::LogRemoval => batch.ops.iter().any(|op| {
                matches!(
                    op,
                    WriteOp::Delete {
                        space: Space::RaftLog,
                        ..
                    } | WriteOp::DeleteRange {
                        space: Space::RaftLog,
                        ..
                    }
                )
            }),
            Window::SnapshotFile => false,
        }
    }
}

/// A write that reached the disk cut short at the last crash; the crc32 of its value fails.
#[derive(Debug, Clone)]
pub struct TornWrite {
    pub space: Space,
    pub key: Vec<u8>,
    /// What the key held before the torn write (restored by recovery).
    pub before: Option<Vec<u8>>,
}

/// What survives a crash: the disk the next incarnation opens.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    spaces: Spaces,
    blobs: BTreeMap<String, Vec<u8>>,
    pub torn: Option<TornWrite>,
}

impl Disk {
    /// The key-value state as it survived.
    pub fn spaces(&self) -> &Spaces {
        &self.spaces
    }

    /// The blobs that survived, with their bytes.
    pub fn blobs(&self) -> impl Iterator<Item = (&String, &Vec<u8>)> {
        self.blobs.iter()
    }

    /// Drops the torn record, as the storage engine's log recovery drops a torn tail.
    pub fn drop_torn(&mut self) -> Option<TornWrite> {
        let torn = self.torn.take()?;
        let map = self.spaces.map_mut(torn.space);
        match &torn.before {
            Some(value) => map.insert(torn.key.clone(), value.clone()),
            None => map.remove(&torn.key),
        };
        Some(torn)
    }
}

struct Inner {
    visible: Arc<Spaces>,
    durable: Spaces,
    /// Batches written but not yet durable, with their sequence numbers.
    unsynced: VecDeque<(u64, WriteBatch)>,
    written: u64,
    blobs: BTreeMap<String, BlobBytes>,
    /// A crashed incarnation's disk: writes fail and syncs never complete.
    dead: bool,
    /// Syncs complete in order: the next one is never scheduled before this instant.
    last_sync_at: tokio::time::Instant,
}

pub struct SimStorage {
    node: NodeId,
    inner: Arc<Mutex<Inner>>,
    world: Arc<World>,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl SimStorage {
    pub fn open(node: NodeId, disk: Disk, world: Arc<World>) -> Arc<SimStorage> {
        let blobs = disk
            .blobs
            .into_iter()
            .map(|(name, bytes)| {
                let state = BlobState {
                    durable: Some(bytes.clone()),
                    bytes,
                    dirty: false,
                };
                (name, Arc::new(Mutex::new(state)))
            })
            .collect();
        Arc::new(SimStorage {
            node,
            inner: Arc::new(Mutex::new(Inner {
                visible: Arc::new(disk.spaces.clone()),
                durable: disk.spaces,
                unsynced: VecDeque::new(),
                written: 0,
                blobs,
                dead: false,
                last_sync_at: tokio::time::Instant::now(),
            })),
            world,
        })
    }

    /// Power loss: this incarnation's disk stops, and what survives is returned.
    pub fn crash(&self, rng: &mut SimRng, tear: bool) -> Disk {
        let mut inner = lock(&self.inner);
        inner.dead = true;
        let mut spaces = inner.durable.clone();
        // A tear hits a log append (see `tear_log_append`): pick one, and the writes before it.
        let appends: Vec<usize> = (0..inner.unsynced.len())
            .filter(|at| is_log_append(&inner.unsynced[*at].1))
            .collect();
        let torn_at = match appends.len() {
            0 => None,
            count if tear => Some(appends[rng.below(count as u64) as usize]),
            _ => None,
        };
        let surviving = match torn_at {
            Some(at) => at,
            None => rng.below(inner.unsynced.len() as u64 + 1) as usize,
        };
        for (_, batch) in inner.unsynced.iter().take(surviving) {
            spaces.apply(batch);
        }
        let torn = torn_at.and_then(|at| tear_log_append(&mut spaces, &inner.unsynced[at].1, rng));
        let mut blobs = BTreeMap::new();
        for (name, blob) in &inner.blobs {
            let blob = lock_blob(blob);
            match &blob.durable {
                Some(durable) => {
                    blobs.insert(name.clone(), durable.clone());
                }
                // Never synced: the file may be gone, or hold any prefix of what was written.
                None if rng.chance(500) => {}
                None => {
                    let kept = rng.below(blob.bytes.len() as u64 + 1) as usize;
                    blobs.insert(name.clone(), blob.bytes[..kept].to_vec());
                }
            }
        }
        Disk {
            spaces,
            blobs,
            torn,
        }
    }

    /// Unsynced batches right now (for the trace).
    pub fn unsynced(&self) -> usize {
        lock(&self.inner).unsynced.len()
    }

    /// True while a write of this kind is made but not yet durable: where a crash hurts.
    pub fn in_window(&self, window: Window) -> bool {
        let inner = lock(&self.inner);
        match window {
            Window::SnapshotFile => inner.blobs.values().any(|blob| lock_blob(blob).dirty),
            _ => inner.unsynced.iter().any(|(_, batch)| window.holds(batch)),
        }
    }

    fn complete_sync(inner: &Mutex<Inner>, upto: u64) -> bool {
        let mut inner = lock(inner);
        if inner.dead {
            return false;
        }
        while inner.unsynced.front().is_some_and(|(seq, _)| *seq <= upto) {
            if let Some((_, batch)) = inner.unsynced.pop_front() {
                inner.durable.apply(&batch);
            }
        }
        true
    }
}

/// Tears a log append: a prefix of its entries lands, then the next one cut short. Other batches
/// are never torn: the storage engine writes a batch atomically (its own log has a checksum per
/// batch), so only values the node frames itself can reach the disk half written.
fn is_log_append(batch: &WriteBatch) -> bool {
    !batch.ops.is_empty()
        && batch.ops.iter().all(|op| {
            matches!(
                op,
                WriteOp::Put {
                    space: Space::RaftLog,
                    ..
                }
            )
        })
}

fn tear_log_append(spaces: &mut Spaces, batch: &WriteBatch, rng: &mut SimRng) -> Option<TornWrite> {
    if !is_log_append(batch) {
        return None;
    }
    let landed = rng.below(batch.ops.len() as u64) as usize;
    for op in &batch.ops[..landed] {
        spaces.apply_op(op);
    }
    let WriteOp::Put { space, key, value } = &batch.ops[landed] else {
        return None;
    };
    let before = spaces.map(*space).get(key).cloned();
    let cut = rng.below(value.len() as u64) as usize;
    let mut torn_value = value[..cut].to_vec();
    // A torn sector may also hold garbage rather than nothing.
    if rng.chance(500) {
        torn_value.extend(std::iter::repeat_n(0xa5, value.len() - cut));
    }
    spaces.map_mut(*space).insert(key.clone(), torn_value);
    Some(TornWrite {
        space: *space,
        key: key.clone(),
        before,
    })
}

impl ReadView for SimStorage {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        lock(&self.inner).visible.get(space, key)
    }

    fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        reverse: bool,
        visit: Visitor<'_>,
    ) -> Result<(), StorageError> {
        // Scan a snapshot of the state so the visitor runs without the lock held.
        let view = lock(&self.inner).visible.clone();
        view.scan(space, range, reverse, visit)
    }
}

impl Storage for SimStorage {
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let visible = {
            let mut inner = lock(&self.inner);
            if inner.dead {
                return Err(StorageError::Closed);
            }
            Arc::make_mut(&mut inner.visible).apply(&batch);
            inner.written += 1;
            let seq = inner.written;
            let visible = inner.visible.clone();
            inner.unsynced.push_back((seq, batch.clone()));
            visible
        };
        self.world
            .observe_write(self.node, &batch, visible.as_ref());
        Ok(())
    }

    fn sync(&self, done: SyncCallback) {
        let (upto, at) = {
            let mut inner = lock(&self.inner);
            if inner.dead {
                return;
            }
            let latency = self.world.sync_latency();
            let at = (tokio::time::Instant::now() + latency).max(inner.last_sync_at);
            inner.last_sync_at = at;
            (inner.written, at)
        };
        let inner = self.inner.clone();
        let world = self.world.clone();
        let node = self.node;
        crate::spawn(async move {
            tokio::time::sleep_until(at).await;
            world.wait_while_paused(node).await;
            if SimStorage::complete_sync(&inner, upto) {
                done(Ok(()));
            }
        });
    }

    fn read_view(&self) -> Result<Box<dyn ReadView>, StorageError> {
        Ok(Box::new(SimView(lock(&self.inner).visible.clone())))
    }

    fn create_blob(&self, name: &str) -> Result<Box<dyn Blob>, StorageError> {
        let bytes: BlobBytes = Arc::default();
        let mut inner = lock(&self.inner);
        if inner.dead {
            return Err(StorageError::Closed);
        }
        inner.blobs.insert(name.to_string(), bytes.clone());
        Ok(Box::new(SimBlob { bytes, position: 0 }))
    }

    fn open_blob(&self, name: &str) -> Result<Option<Box<dyn Blob>>, StorageError> {
        let inner = lock(&self.inner);
        Ok(inner
            .blobs
            .get(name)
            .map(|blob| blob_reader(lock_blob(blob).bytes.clone())))
    }

    fn remove_blob(&self, name: &str) -> Result<(), StorageError> {
        lock(&self.inner).blobs.remove(name);
        Ok(())
    }

    fn list_blobs(&self) -> Result<Vec<String>, StorageError> {
        Ok(lock(&self.inner).blobs.keys().cloned().collect())
    }
}

/// A blob over a copy of `bytes`: an opened file, or one that survived a crash being checked.
pub fn blob_reader(bytes: Vec<u8>) -> Box<dyn Blob> {
    let state = BlobState {
        durable: Some(bytes.clone()),
        bytes,
        dirty: false,
    };
    Box::new(SimBlob {
        bytes: Arc::new(Mutex::new(state)),
        position: 0,
    })
}

/// A cursor over a blob's bytes.
struct SimBlob {
    bytes: BlobBytes,
    position: u64,
}

impl Blob for SimBlob {
    fn sync(&mut self) -> io::Result<()> {
        let mut blob = lock_blob(&self.bytes);
        blob.durable = Some(blob.bytes.clone());
        blob.dirty = false;
        Ok(())
    }
}

impl Read for SimBlob {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let blob = lock_blob(&self.bytes);
        let bytes = &blob.bytes;
        let start = (self.position as usize).min(bytes.len());
        let count = buffer.len().min(bytes.len() - start);
        buffer[..count].copy_from_slice(&bytes[start..start + count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Write for SimBlob {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut blob = lock_blob(&self.bytes);
        blob.dirty = true;
        let bytes = &mut blob.bytes;
        let start = self.position as usize;
        if bytes.len() < start + data.len() {
            bytes.resize(start + data.len(), 0);
        }
        bytes[start..start + data.len()].copy_from_slice(data);
        self.position += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for SimBlob {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let length = lock_blob(&self.bytes).bytes.len() as i128;
        let target = match to {
            SeekFrom::Start(offset) => i128::from(offset),
            SeekFrom::End(delta) => length + i128::from(delta),
            SeekFrom::Current(delta) => i128::from(self.position) + i128::from(delta),
        };
        self.position = u64::try_from(target)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.position)
    }
}
