//! [`RaftNode`]: one replica, as the API layer and the simulator see it: submit commands (group
//! committed), read with the requested consistency, manage membership, report status.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::Instant as _;
use openraft::{BasicNode, ChangeMembers, Config, ReadPolicy, ServerState, SnapshotPolicy};

use super::batcher::Batcher;
use super::log_store::LogStore;
#[cfg(feature = "planted-bugs")]
use super::log_store::LogStoreFaults;
use super::state_machine::{SharedState, StateMachineStore};
use super::{
    LedgerRaft, NodeId, Request, RequestKind, Response, Runtime, SnapshotData, TypeConfig,
};
use crate::clock::Clock;
#[cfg(feature = "planted-bugs")]
use crate::ledger::LedgerFaults;
use crate::ledger::{Command, CommandResult};
use crate::limits::{
    LOG_ENTRIES_BETWEEN_SNAPSHOTS, LOG_ENTRIES_KEPT_BEHIND_SNAPSHOT, SNAPSHOT_CHUNK_BYTES,
};
use crate::storage::ledger::DigestReport;
use crate::storage::{ReadView, Storage};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("not leader")]
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    #[error("the entry was discarded by a leader change; its outcome is unknown, retry with the same ids: {0}")]
    OutcomeUnknown(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Writes are refused: the storage is (nearly) full.
    #[error("{0}")]
    DiskFull(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("the node stopped: {0}")]
    Fatal(String),
}

/// One `info` line per change worth an operator's attention between two metrics samples.
fn log_changes(
    before: &openraft::RaftMetrics<TypeConfig>,
    now: &openraft::RaftMetrics<TypeConfig>,
) {
    if (before.current_term, before.current_leader) != (now.current_term, now.current_leader) {
        match now.current_leader {
            Some(leader) => tracing::info!(
                term = now.current_term,
                leader,
                role = ?now.state,
                "leader changed: node {leader} leads term {}",
                now.current_term
            ),
            None => tracing::info!(
                term = now.current_term,
                role = ?now.state,
                "election: no leader known in term {}",
                now.current_term
            ),
        }
    } else if before.state != now.state {
        tracing::info!(role = ?now.state, term = now.current_term, "role changed");
    }
    let membership = now.membership_config.membership();
    if before.membership_config.membership() != membership {
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let learners: Vec<NodeId> = membership.learner_ids().collect();
        tracing::info!(?voters, ?learners, "membership changed");
    }
    if before.snapshot != now.snapshot {
        if let Some(snapshot) = &now.snapshot {
            let installed = now.last_applied == now.snapshot && before.last_applied < now.snapshot;
            tracing::info!(
                index = snapshot.index(),
                "{}",
                if installed {
                    "snapshot installed from the leader"
                } else {
                    "snapshot built"
                }
            );
        }
    }
    if before.purged != now.purged {
        if let Some(purged) = &now.purged {
            tracing::debug!(upto = purged.index(), "log purged");
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The error a leader without a quorum answers writes and linearizable reads with.
fn no_quorum_message(quorum: &QuorumView) -> String {
    let voters: Vec<String> = quorum
        .followers
        .iter()
        .filter(|(_, view)| view.is_voter)
        .map(|(id, view)| match view.ack_age_ms {
            Some(age) => format!("node {id} last answered {age} ms ago"),
            None => format!("node {id} has not answered"),
        })
        .collect();
    format!(
        "NO QUORUM: this node is the leader but cannot reach a majority of the voters ({}); \
         nothing can commit until enough of them are running and reachable",
        voters.join(", ")
    )
}

fn forward(leader_id: Option<NodeId>, leader_node: Option<BasicNode>) -> NodeError {
    NodeError::NotLeader {
        leader_id,
        leader_addr: leader_node.map(|node| node.addr),
    }
}

pub(super) fn map_write_error(
    error: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
) -> NodeError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(to)) => {
            forward(to.leader_id, to.leader_node)
        }
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(to)) => {
            NodeError::OutcomeUnknown(to.to_string())
        }
        RaftError::APIError(other) => NodeError::Invalid(other.to_string()),
        RaftError::Fatal(fatal) => NodeError::Fatal(fatal.to_string()),
    }
}

/// Deliberate faults, switched on only by the simulator's planted bugs; all off by default.
/// Compiled only with the `planted-bugs` feature, which only tally-sim enables.
#[cfg(feature = "planted-bugs")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub log_store: LogStoreFaults,
    pub ledger: LedgerFaults,
}

/// The log store and state machine a node starts on, and the state they share.
struct Stores {
    log_store: LogStore,
    state_machine: StateMachineStore,
    shared: Arc<SharedState>,
}

/// How a read may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Linearizable: the leader confirms its leadership (read index) and waits until applied.
    Linearizable,
    /// Whatever this node has applied; may be behind the leader.
    Stale,
}

/// Raft timing and log compaction settings.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_every_entries: u64,
    pub entries_kept_behind_snapshot: u64,
    /// The leader refuses writes while its storage has less free space than this (0: no check).
    pub disk_free_min_bytes: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_every_entries: LOG_ENTRIES_BETWEEN_SNAPSHOTS,
            entries_kept_behind_snapshot: LOG_ENTRIES_KEPT_BEHIND_SNAPSHOT,
            disk_free_min_bytes: 0,
        }
    }
}

/// What `status` reports about one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub addr: String,
    pub role: &'static str,
    pub term: u64,
    pub leader_id: Option<NodeId>,
    pub leader_addr: Option<String>,
    pub last_log_index: u64,
    pub last_applied: u64,
    pub committed_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    pub voters: BTreeMap<NodeId, String>,
    pub learners: BTreeMap<NodeId, String>,
    /// The leader's view of its majority and followers (default on other nodes).
    pub quorum: QuorumView,
}

pub struct RaftNode {
    id: NodeId,
    addr: String,
    raft: LedgerRaft,
    storage: Arc<dyn Storage>,
    shared: Arc<SharedState>,
    batcher: Batcher,
    clock: Arc<dyn Clock>,
    /// Seeds for the deterministic-rng scopes that Raft calls run in.
    seeds: AtomicU64,
    /// A leader that has not heard from a majority for this long has lost its quorum.
    quorum_lease: Duration,
    /// Writes are refused below this much free storage space (0: never).
    disk_free_min_bytes: u64,
    /// The term this node was first seen leading, and since when (the lease's grace period).
    leader_since: Mutex<Option<(u64, Instant)>>,
}

/// The runtime's instant (virtual time in the simulator).
type Instant = openraft::alias::InstantOf<TypeConfig>;

/// What a leader knows about its followers and its majority.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumView {
    /// `Some` only on a leader: whether a majority of voters (itself included) acknowledged it
    /// within the lease.
    pub has_quorum: Option<bool>,
    /// Milliseconds since a majority last acknowledged this leader (`None`: never, or not leader).
    pub quorum_ack_age_ms: Option<u64>,
    /// Per follower or learner (leader only): the last log index it holds, and milliseconds since
    /// it last answered (`None`: never in this term).
    pub followers: BTreeMap<NodeId, FollowerView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FollowerView {
    pub matched_index: u64,
    pub ack_age_ms: Option<u64>,
    pub is_voter: bool,
}

impl RaftNode {
    /// Opens the node's Raft state on `storage` and starts it. `seed` feeds openraft's
    /// randomness (election timeouts): the simulator passes its own, production the clock.
    pub async fn start<N>(
        id: NodeId,
        addr: String,
        storage: Arc<dyn Storage>,
        network: N,
        settings: &RaftSettings,
        clock: Arc<dyn Clock>,
        seed: u64,
    ) -> Result<Arc<RaftNode>, NodeError>
    where
        N: openraft::network::RaftNetworkFactory<TypeConfig>,
        N::Network: openraft::network::NetSnapshot<TypeConfig, SnapshotData = SnapshotData>,
    {
        let shared = Arc::new(SharedState::default());
        let stores = Stores {
            log_store: LogStore::new(storage.clone()),
            state_machine: StateMachineStore::new(storage.clone(), shared.clone()),
            shared,
        };
        Self::launch(id, addr, storage, network, settings, clock, seed, stores).await
    }

    /// [`RaftNode::start`] with planted faults (simulator only).
    #[cfg(feature = "planted-bugs")]
    #[allow(clippy::too_many_arguments)]
    pub async fn start_with_faults<N>(
        id: NodeId,
        addr: String,
        storage: Arc<dyn Storage>,
        network: N,
        settings: &RaftSettings,
        clock: Arc<dyn Clock>,
        seed: u64,
        faults: Faults,
    ) -> Result<Arc<RaftNode>, NodeError>
    where
        N: openraft::network::RaftNetworkFactory<TypeConfig>,
        N::Network: openraft::network::NetSnapshot<TypeConfig, SnapshotData = SnapshotData>,
    {
        let shared = Arc::new(SharedState::default());
        let stores = Stores {
            log_store: LogStore::with_faults(storage.clone(), faults.log_store),
            state_machine: StateMachineStore::with_faults(
                storage.clone(),
                shared.clone(),
                faults.ledger,
            ),
            shared,
        };
        Self::launch(id, addr, storage, network, settings, clock, seed, stores).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn launch<N>(
        id: NodeId,
        addr: String,
        storage: Arc<dyn Storage>,
        network: N,
        settings: &RaftSettings,
        clock: Arc<dyn Clock>,
        seed: u64,
        stores: Stores,
    ) -> Result<Arc<RaftNode>, NodeError>
    where
        N: openraft::network::RaftNetworkFactory<TypeConfig>,
        N::Network: openraft::network::NetSnapshot<TypeConfig, SnapshotData = SnapshotData>,
    {
        let config = Config {
            cluster_name: "tally".into(),
            heartbeat_interval: settings.heartbeat_interval_ms,
            election_timeout_min: settings.election_timeout_min_ms,
            election_timeout_max: settings.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every_entries),
            max_in_snapshot_log_to_keep: settings.entries_kept_behind_snapshot,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES as u64,
            // A restarted leader must win a new election: resuming under its old leader id
            // after a power loss that dropped unsynced appends reuses log ids its followers
            // already hold for other entries (found by tally-sim, seed 58).
            enable_leader_restore: Some(false),
            ..Config::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|error| NodeError::Invalid(error.to_string()))?,
        );
        let Stores {
            log_store,
            state_machine,
            shared,
        } = stores;
        let raft = Runtime::scope(
            seed,
            LedgerRaft::new(id, config, network, log_store, state_machine),
        )
        .await
        .map_err(|error| NodeError::Fatal(error.to_string()))?;
        let batcher = Batcher::start(raft.clone(), clock.clone(), seed.rotate_left(17));
        Ok(Arc::new(RaftNode {
            id,
            addr,
            raft,
            storage,
            shared,
            batcher,
            clock,
            seeds: AtomicU64::new(seed.rotate_left(31)),
            quorum_lease: Duration::from_millis(settings.election_timeout_max_ms * 2),
            disk_free_min_bytes: settings.disk_free_min_bytes,
            leader_since: Mutex::new(None),
        }))
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The underlying openraft handle, for the Raft RPC handlers.
    pub fn raft(&self) -> &LedgerRaft {
        &self.raft
    }

    pub fn storage(&self) -> &dyn ReadView {
        self.storage.as_ref()
    }

    pub fn storage_handle(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    /// Runs a future that may call into openraft inside a deterministic-rng scope: openraft
    /// tasks spawned from it get their seeds from there.
    pub async fn scoped<F: Future>(&self, future: F) -> F::Output {
        let seed = self
            .seeds
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        Runtime::scope(seed, future).await
    }

    /// Submits one command through group commit and waits until it is committed and applied.
    pub async fn submit(&self, command: Command) -> Result<CommandResult, NodeError> {
        self.fail_fast_unless_leader()?;
        self.check_disk()?;
        self.batcher.submit(command).await
    }

    /// Refuses a write while the storage has less free space than the configured minimum, so
    /// the log and state never meet a full disk mid-write; reads are not affected.
    fn check_disk(&self) -> Result<(), NodeError> {
        if self.disk_free_min_bytes == 0 {
            return Ok(());
        }
        match self.storage.free_bytes() {
            Some(free) if free < self.disk_free_min_bytes => Err(NodeError::DiskFull(format!(
                "disk full: {free} bytes free in the data directory of node {}, below \
                 node.disk_free_min_bytes ({}); writes are refused until space is freed, reads \
                 still work",
                self.id, self.disk_free_min_bytes
            ))),
            _ => Ok(()),
        }
    }

    /// Answers at once when this node knows it is not the leader, instead of queueing; and when
    /// it leads but has lost its quorum, says so instead of waiting for a commit that cannot come.
    fn fail_fast_unless_leader(&self) -> Result<(), NodeError> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        if metrics.state == ServerState::Leader {
            let quorum = self.quorum_of(&metrics);
            if quorum.has_quorum == Some(false) {
                return Err(NodeError::Unavailable(no_quorum_message(&quorum)));
            }
            return Ok(());
        }
        let leader_addr = metrics.current_leader.and_then(|leader| {
            metrics
                .membership_config
                .membership()
                .get_node(&leader)
                .map(|node| node.addr.clone())
        });
        Err(NodeError::NotLeader {
            leader_id: metrics.current_leader,
            leader_addr,
        })
    }

    /// Waits until a read at this moment would be linearizable (or returns at once for stale).
    pub async fn read_barrier(&self, consistency: ReadConsistency) -> Result<(), NodeError> {
        if consistency == ReadConsistency::Stale {
            return Ok(());
        }
        self.fail_fast_unless_leader()?;
        self.scoped(self.raft.ensure_linearizable(ReadPolicy::ReadIndex))
            .await
            .map(|_| ())
            .map_err(|error| match error {
                RaftError::APIError(openraft::error::LinearizableReadError::ForwardToLeader(
                    to,
                )) => forward(to.leader_id, to.leader_node),
                RaftError::APIError(other) => NodeError::Unavailable(other.to_string()),
                RaftError::Fatal(fatal) => NodeError::Fatal(fatal.to_string()),
            })
    }

    /// Proposes a checkpoint entry; every replica computes its digest when it applies it.
    pub async fn checkpoint(&self) -> Result<u64, NodeError> {
        self.fail_fast_unless_leader()?;
        let request = Request {
            timestamp_ns: self.clock.now_ns(),
            kind: RequestKind::Checkpoint,
        };
        let response = self
            .scoped(self.raft.client_write(request))
            .await
            .map_err(map_write_error)?;
        match response.data {
            Response::Checkpoint => Ok(response.log_id.index()),
            other => Err(NodeError::Fatal(format!("checkpoint answered {other:?}"))),
        }
    }

    /// On the leader, when the first pending transfer's timeout has passed, proposes an empty
    /// ledger entry: applying it expires what is due, so holds are released on time on an
    /// idle cluster. Returns whether it proposed one.
    pub async fn pulse_expiry(&self) -> Result<bool, NodeError> {
        if self.fail_fast_unless_leader().is_err() {
            return Ok(false);
        }
        let now_ns = self.clock.now_ns();
        let earliest = crate::storage::ledger::earliest_pending_expiry(self.storage.as_ref())
            .map_err(|error| NodeError::Storage(error.to_string()))?;
        if earliest.is_none_or(|expires_at| expires_at > now_ns) {
            return Ok(false);
        }
        let request = Request {
            timestamp_ns: now_ns,
            kind: RequestKind::Ledger(Vec::new()),
        };
        self.scoped(self.raft.client_write(request))
            .await
            .map_err(map_write_error)?;
        Ok(true)
    }

    /// Runs [`RaftNode::pulse_expiry`] every `interval` until the node shuts down.
    pub async fn run_expiry_pulse(self: Arc<Self>, interval: std::time::Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.pulse_expiry().await {
                Ok(true) => tracing::debug!("proposed an entry to expire pending transfers"),
                Ok(false) => {}
                Err(NodeError::Fatal(message)) => {
                    tracing::warn!(%message, "expiry pulse stopped: the node has stopped");
                    return;
                }
                Err(error) => tracing::debug!(%error, "expiry pulse failed; trying again"),
            }
        }
    }

    /// The digest this node computed at the checkpoint `log_index`, once applied.
    pub fn digest(&self, log_index: u64) -> Option<Result<DigestReport, String>> {
        self.shared.digest(log_index)
    }

    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), NodeError> {
        let members: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        self.scoped(self.raft.initialize(members))
            .await
            .map_err(|error| match error {
                RaftError::APIError(error) => NodeError::Invalid(error.to_string()),
                RaftError::Fatal(fatal) => NodeError::Fatal(fatal.to_string()),
            })
    }

    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<u64, NodeError> {
        self.fail_fast_unless_leader()?;
        let response = self
            .scoped(self.raft.add_learner(id, BasicNode { addr }, false))
            .await
            .map_err(map_write_error)?;
        Ok(response.log_id.index())
    }

    /// Makes `voters` the voter set and removes `remove` from the cluster.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        remove: BTreeSet<NodeId>,
    ) -> Result<u64, NodeError> {
        self.fail_fast_unless_leader()?;
        let mut index = 0;
        if !voters.is_empty() {
            let response = self
                .scoped(
                    self.raft
                        .change_membership(ChangeMembers::ReplaceAllVoters(voters), true),
                )
                .await
                .map_err(map_write_error)?;
            index = response.log_id.index();
        }
        if !remove.is_empty() {
            let metrics = self.raft.metrics().borrow_watched().clone();
            let voters: BTreeSet<NodeId> =
                metrics.membership_config.membership().voter_ids().collect();
            let still_voting: BTreeSet<NodeId> = voters.difference(&remove).copied().collect();
            if still_voting.is_empty() {
                return Err(NodeError::Invalid("cannot remove every voter".into()));
            }
            if still_voting != voters {
                self.scoped(
                    self.raft
                        .change_membership(ChangeMembers::ReplaceAllVoters(still_voting), true),
                )
                .await
                .map_err(map_write_error)?;
            }
            let response = self
                .scoped(
                    self.raft
                        .change_membership(ChangeMembers::RemoveNodes(remove), false),
                )
                .await
                .map_err(map_write_error)?;
            index = response.log_id.index();
        }
        Ok(index)
    }

    /// The leader's view of its majority and followers (empty on other nodes).
    pub fn quorum(&self) -> QuorumView {
        let metrics = self.raft.metrics().borrow_watched().clone();
        self.quorum_of(&metrics)
    }

    fn quorum_of(&self, metrics: &openraft::RaftMetrics<TypeConfig>) -> QuorumView {
        let mut since = self.leader_since.lock().unwrap_or_else(|p| p.into_inner());
        if metrics.state != ServerState::Leader {
            *since = None;
            return QuorumView::default();
        }
        let term = metrics.current_term;
        let led_for = match *since {
            Some((led_term, at)) if led_term == term => at.elapsed(),
            _ => {
                *since = Some((term, Instant::now()));
                Duration::ZERO
            }
        };
        drop(since);
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let age = |at: &Option<openraft::alias::SerdeInstantOf<TypeConfig>>| {
            at.as_ref().map(|at| millis((**at).elapsed()))
        };
        let mut followers = BTreeMap::new();
        for (id, _) in membership.nodes() {
            if *id == self.id {
                continue;
            }
            let matched_index = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .map_or(0, |log_id| log_id.index());
            let ack_age_ms = metrics
                .heartbeat
                .as_ref()
                .and_then(|h| h.get(id))
                .and_then(age);
            followers.insert(
                *id,
                FollowerView {
                    matched_index,
                    ack_age_ms,
                    is_voter: voters.contains(id),
                },
            );
        }
        let lease = millis(self.quorum_lease);
        let fresh = |view: &FollowerView| view.ack_age_ms.is_some_and(|age| age <= lease);
        let reached = 1 + followers
            .values()
            .filter(|view| view.is_voter && fresh(view))
            .count();
        let majority = voters.len() / 2 + 1;
        // A new leader has not heard back yet: it keeps its quorum for one lease.
        let has_quorum =
            !voters.contains(&self.id) || reached >= majority || led_for < self.quorum_lease;
        QuorumView {
            has_quorum: Some(has_quorum),
            quorum_ack_age_ms: age(&metrics.last_quorum_acked),
            followers,
        }
    }

    pub fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let voter_ids: BTreeSet<NodeId> = membership.voter_ids().collect();
        let mut voters = BTreeMap::new();
        let mut learners = BTreeMap::new();
        for (id, node) in membership.nodes() {
            if voter_ids.contains(id) {
                voters.insert(*id, node.addr.clone());
            } else {
                learners.insert(*id, node.addr.clone());
            }
        }
        let role = match metrics.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let leader_addr = metrics
            .current_leader
            .and_then(|leader| membership.get_node(&leader).map(|node| node.addr.clone()));
        NodeStatus {
            id: self.id,
            addr: self.addr.clone(),
            role,
            term: metrics.current_term,
            leader_id: metrics.current_leader,
            leader_addr,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            last_applied: metrics
                .last_applied
                .map(|log_id| log_id.index())
                .unwrap_or(0),
            committed_index: metrics
                .local_committed
                .map(|log_id| log_id.index())
                .unwrap_or(0),
            snapshot_index: metrics.snapshot.map(|log_id| log_id.index()).unwrap_or(0),
            purged_index: metrics.purged.map(|log_id| log_id.index()).unwrap_or(0),
            voters,
            learners,
            quorum: self.quorum_of(&metrics),
        }
    }

    /// Logs, at `info`, what an operator needs to follow the cluster: leader changes and
    /// elections, membership changes, snapshots built or installed and log purges. Runs until the
    /// node shuts down (production only; the simulator has its own trace).
    pub async fn log_raft_events(self: Arc<Self>) {
        let mut watch = self.raft.metrics();
        let mut seen: Option<openraft::RaftMetrics<TypeConfig>> = None;
        loop {
            let now = watch.borrow_watched().clone();
            if let Some(before) = &seen {
                log_changes(before, &now);
            }
            seen = Some(now);
            if watch.changed().await.is_err() {
                return;
            }
        }
    }

    /// Hands leadership to voter `to` and waits until it leads (or `deadline` passes); returns
    /// the new term. Only the leader can do this.
    pub async fn transfer_leader(&self, to: NodeId, deadline: Duration) -> Result<u64, NodeError> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        if !membership.voter_ids().any(|id| id == to) {
            return Err(NodeError::Invalid(format!(
                "node {to} is not a voter; leadership goes only to a voter"
            )));
        }
        if metrics.current_leader == Some(to) {
            return Ok(metrics.current_term);
        }
        self.fail_fast_unless_leader()?;
        self.scoped(self.raft.trigger().transfer_leader(to))
            .await
            .map_err(|error| NodeError::Fatal(error.to_string()))?;
        let waiter = self.raft.wait(Some(deadline));
        let wait = waiter.metrics(
            |metrics| metrics.current_leader == Some(to),
            "the new leader to be elected",
        );
        match self.scoped(wait).await {
            Ok(metrics) => Ok(metrics.current_term),
            Err(error) => Err(NodeError::Unavailable(format!(
                "node {to} did not become leader in time ({error}); the cluster elects a leader \
                 on its own, see `tallyctl status`"
            ))),
        }
    }

    /// Writes a consistent backup of the applied state into a blob of this node's storage (the
    /// caller streams and removes it).
    pub fn backup(&self) -> Result<super::BackupFile, NodeError> {
        let name = format!("{}{}", super::BACKUP_BLOB_PREFIX, self.clock.now_ns());
        super::write_backup(self.storage.as_ref(), &name)
            .map_err(|error| NodeError::Storage(error.to_string()))
    }

    pub async fn shutdown(&self) {
        let _ = self.scoped(self.raft.shutdown()).await;
    }
}
