//! What survives a crash. At every crash the world reads the disk the next incarnation will open
//! ([`CrashRecord`]): the vote there must be at least every vote the replica granted (checked at
//! once), and the state, the membership stored with it and every snapshot file that passes its
//! checksum must equal the reference model's at their log index (checked by [`check_crashes`]
//! once the committed log is known). A log purged past every surviving snapshot file is a
//! violation at once.

use tally_node::raft::StoredMembership;
use tally_node::raft::{
    applied_state_of, stored_purged, stored_vote, LogId, NodeId, SnapshotMeta, Vote,
};
use tally_node::storage::codec::from_bytes;
use tally_node::storage::ledger::{digest, DigestReport};
use tally_node::storage::snapshot::{snapshot_to_batch, verify_snapshot};

use crate::checker::Model;
use crate::storage::{blob_reader, Disk, Spaces};
use crate::world::InstallRecord;

/// A snapshot file that survived a crash and passes its checksum.
#[derive(Debug, Clone)]
pub struct SnapshotSeen {
    pub name: String,
    pub last_log_id: Option<LogId>,
    pub membership: StoredMembership,
    pub state: DigestReport,
}

/// The disk one crash left behind.
#[derive(Debug, Clone)]
pub struct CrashRecord {
    pub node: NodeId,
    pub at_ms: u64,
    pub applied: Option<LogId>,
    pub membership: StoredMembership,
    /// Digest of the surviving state (at `applied`).
    pub state: DigestReport,
    pub snapshots: Vec<SnapshotSeen>,
}

fn index_of(log_id: Option<&LogId>) -> u64 {
    log_id.map_or(0, LogId::index)
}

/// Reads what a crash left on `disk`; an unreadable disk is itself a violation.
pub fn record(node: NodeId, at_ms: u64, disk: &Disk) -> Result<CrashRecord, String> {
    let spaces = disk.spaces();
    let (applied, membership) = applied_state_of(spaces).map_err(|error| {
        format!("replica {node}'s disk after a crash has unreadable applied state: {error}")
    })?;
    let state = digest(spaces, index_of(applied.as_ref()))
        .map_err(|error| format!("replica {node}'s surviving state does not digest: {error}"))?;
    let mut snapshots = Vec::new();
    for (name, bytes) in disk.blobs() {
        if !name.starts_with("snapshot-") {
            continue;
        }
        let mut blob = blob_reader(bytes.clone());
        // A file cut short fails its checksum: the replica skips it too.
        let Ok(meta_bytes) = verify_snapshot(blob.as_mut()) else {
            continue;
        };
        let meta: SnapshotMeta = from_bytes(&meta_bytes)
            .map_err(|error| format!("snapshot {name} on replica {node}: bad meta: {error}"))?;
        let batch = snapshot_to_batch(blob.as_mut())
            .map_err(|error| format!("snapshot {name} on replica {node}: {error}"))?;
        let mut loaded = Spaces::default();
        loaded.apply(&batch);
        let state = digest(&loaded, index_of(meta.last_log_id.as_ref()))
            .map_err(|error| format!("snapshot {name} on replica {node}: {error}"))?;
        snapshots.push(SnapshotSeen {
            name: name.clone(),
            last_log_id: meta.last_log_id,
            membership: meta.last_membership,
            state,
        });
    }
    // The log purged up to an index no surviving snapshot file reaches would leave the replica
    // unable to send a follower what it lacks: the node syncs each snapshot file before it
    // removes the older ones, and purges only what a snapshot covers.
    let purged = stored_purged(spaces)
        .map_err(|error| format!("replica {node}'s stored purge mark is unreadable: {error}"))?;
    if let Some(purged) = purged {
        let covered = snapshots
            .iter()
            .filter_map(|snapshot| snapshot.last_log_id.as_ref())
            .any(|last| last.index() >= purged.index());
        if !covered {
            let kept: Vec<String> = snapshots
                .iter()
                .map(|snapshot| {
                    format!(
                        "{} at {}",
                        snapshot.name,
                        index_of(snapshot.last_log_id.as_ref())
                    )
                })
                .collect();
            return Err(format!(
                "durability: after a crash replica {node}'s log is purged up to index {} but no \
                 snapshot file that passes its checksum reaches it (valid files: {kept:?})",
                purged.index()
            ));
        }
    }
    Ok(CrashRecord {
        node,
        at_ms,
        applied,
        membership,
        state,
        snapshots,
    })
}

/// The vote on the surviving disk must cover the highest vote the replica granted.
pub fn check_vote(node: NodeId, disk: &Disk, granted: Option<&Vote>) -> Result<(), String> {
    let Some(granted) = granted else {
        return Ok(());
    };
    let stored = stored_vote(disk.spaces())
        .map_err(|error| format!("replica {node}'s stored vote is unreadable: {error}"))?;
    let covered = stored.as_ref().is_some_and(|stored| {
        stored
            .partial_cmp(granted)
            .is_some_and(|order| order.is_ge())
    });
    if covered {
        return Ok(());
    }
    let stored = stored.map_or_else(|| "none".to_string(), |vote| vote.to_string());
    Err(format!(
        "durability: replica {node} granted vote {granted} but after a crash its disk holds \
         vote {stored}"
    ))
}

/// The log indexes whose model state the crash checks need.
pub fn wanted_indexes(crashes: &[CrashRecord]) -> impl Iterator<Item = u64> + '_ {
    crashes.iter().flat_map(|crash| {
        crash
            .applied
            .iter()
            .chain(
                crash
                    .snapshots
                    .iter()
                    .filter_map(|s| s.last_log_id.as_ref()),
            )
            .map(LogId::index)
    })
}

fn compare(
    model: &Model,
    what: &str,
    log_id: Option<&LogId>,
    state: &DigestReport,
    membership: &StoredMembership,
) -> Result<(), String> {
    let Some(log_id) = log_id else {
        // Nothing applied: the state is empty and no membership is stored with it.
        let empty = digest(&Spaces::default(), 0).map_err(|error| error.to_string())?;
        if state.digest != empty.digest || membership != &StoredMembership::default() {
            return Err(format!(
                "{what} has nothing applied, yet holds {} accounts / {} transfers / {} records \
                 and membership {membership}",
                state.accounts, state.transfers, state.records
            ));
        }
        return Ok(());
    };
    let index = log_id.index();
    let expected = model
        .state_at(index)
        .ok_or_else(|| format!("{what} is at log index {index}, beyond the committed log"))?;
    if expected.digest != state.digest {
        return Err(format!(
            "{what} at log index {index} differs from the reference model's state there ({} \
             accounts / {} transfers / {} records vs {} / {} / {})",
            state.accounts,
            state.transfers,
            state.records,
            expected.accounts,
            expected.transfers,
            expected.records
        ));
    }
    let expected = model.membership_at(index);
    if membership.log_id() != expected.log_id() || membership.membership() != expected.membership()
    {
        return Err(format!(
            "{what} at log index {index} carries membership {membership} but the committed log \
             has {expected} there"
        ));
    }
    Ok(())
}

/// Every crash left a state, membership and snapshot files that equal the model's at their index.
pub fn check_crashes(model: &Model, crashes: &[CrashRecord]) -> Result<(), (String, u64)> {
    for crash in crashes {
        let node = crash.node;
        let at = |message: String| (format!("durability: {message}"), crash.at_ms);
        compare(
            model,
            &format!(
                "the state replica {node} kept through its crash at {} ms",
                crash.at_ms
            ),
            crash.applied.as_ref(),
            &crash.state,
            &crash.membership,
        )
        .map_err(at)?;
        for snapshot in &crash.snapshots {
            compare(
                model,
                &format!(
                    "snapshot file {} that replica {node} kept through its crash at {} ms",
                    snapshot.name, crash.at_ms
                ),
                snapshot.last_log_id.as_ref(),
                &snapshot.state,
                &snapshot.membership,
            )
            .map_err(at)?;
        }
    }
    Ok(())
}

/// Every snapshot install stored, with the state it installed, the membership the committed log
/// has at its applied index: a restart right after it starts from that membership.
pub fn check_installs(model: &Model, installs: &[InstallRecord]) -> Result<(), (String, u64)> {
    for install in installs {
        let Some(applied) = install.applied.as_ref() else {
            continue;
        };
        let wanted = model.membership_at(applied.index());
        let stored = &install.membership;
        if stored.log_id() != wanted.log_id() || stored.membership() != wanted.membership() {
            return Err((
                format!(
                    "durability: replica {} installed a snapshot at log index {} but stored \
                     membership {stored} with it; the committed log has {wanted} there",
                    install.node,
                    applied.index()
                ),
                install.at_ms,
            ));
        }
    }
    Ok(())
}
