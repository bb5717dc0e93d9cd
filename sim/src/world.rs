//! [`World`]: everything the replicas share in the simulation: the seed's random generator, the
//! network's state (partitions, paused nodes), the disks, the replicas and their incarnations,
//! the event trace, and the history the checker judges (applied entries, acknowledgements,
//! reads, leaders).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tally_ledger::{Account, Command, CommandResult, LedgerFaults};
use tally_node::clock::Clock;
use tally_node::raft::{
    Faults, LogId, LogStoreFaults, NodeId, RaftNode, RaftSettings, StoredMembership, Vote,
};
use tally_node::storage::codec::decode;
use tally_node::storage::keys::u64_key;
use tally_node::storage::{ReadView, Space, WriteBatch, WriteOp};
use tokio::time::Instant;

use crate::config::{FaultConfig, Plant};
use crate::durability::CrashRecord;
use crate::network::SimNetworkFactory;
use crate::rng::SimRng;
use crate::storage::{Disk, SimStorage, Spaces, Window};
use crate::trace::Trace;

/// Key under which the state machine stores its last applied log id (node `raft::state_machine`).
const APPLIED_KEY: &[u8] = b"last_applied";
/// How long a crash may wait for a log append in flight.
const WINDOW_WAIT_MS: u64 = 200;
/// The simulated wall clock starts here (2026-01-01T00:00:00Z), so timestamps look real.
const EPOCH_NS: u64 = 1_767_225_600_000_000_000;

pub fn addr_of(id: NodeId) -> String {
    format!("sim-{id}")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The leader's clock: simulated time.
pub struct SimClock {
    start: Instant,
}

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        EPOCH_NS.saturating_add(elapsed)
    }
}

/// What the seed runner can still read if the run hangs: the trace and the first violation.
#[derive(Default, Clone)]
pub struct Watch {
    pub trace: Arc<Mutex<Trace>>,
    pub violation: Arc<Mutex<Option<String>>>,
}

/// A client's acknowledged request.
#[derive(Debug, Clone)]
pub struct Ack {
    pub seq: u64,
    pub client: u64,
    pub command: Command,
    pub result: CommandResult,
}

/// A lookup and what it saw.
#[derive(Debug, Clone)]
pub struct ReadSeen {
    /// Taken before the read started: every ack with a smaller `seq` happened before it.
    pub seq: u64,
    pub node: NodeId,
    pub applied_index: u64,
    pub account_id: u128,
    pub account: Option<Account>,
}

#[derive(Default)]
pub struct History {
    /// Every applied log entry, as first seen: index -> (node, framed entry bytes).
    pub applied: BTreeMap<u64, (NodeId, Vec<u8>)>,
    pub acks: Vec<Ack>,
    pub reads: Vec<ReadSeen>,
    /// Leader ids seen: (term, leader). openraft runs with its default `leader_id_adv` ids, so
    /// several replicas may lead in one term, each under its own (term, node id); a leader
    /// with a durable committed vote may even resume after a restart. What must hold is that
    /// no quorum grants two conflicting votes, checked through [`History::granted`].
    pub leaders: BTreeSet<(u64, NodeId)>,
    /// Replica -> the highest vote it granted. A granted vote is durable before the answer
    /// leaves, so a replica never grants a lower one afterwards, restarts included.
    pub granted: BTreeMap<NodeId, Vote>,
    /// What every crash left on disk, for [`crate::durability::check_crashes`].
    pub crashes: Vec<CrashRecord>,
    /// What every snapshot install wrote: the applied id and membership stored with the new
    /// state, for [`crate::durability::check_installs`].
    pub installs: Vec<InstallRecord>,
}

/// The applied state a snapshot install left in a replica's state-machine spaces.
#[derive(Debug, Clone)]
pub struct InstallRecord {
    pub node: NodeId,
    pub at_ms: u64,
    pub applied: Option<LogId>,
    pub membership: StoredMembership,
}

struct Slot {
    node: Option<Arc<RaftNode>>,
    storage: Option<Arc<SimStorage>>,
    /// The disk while the replica is down.
    disk: Disk,
    incarnation: u64,
    /// A start is under way: a second one waits for it instead of opening the disk twice.
    starting: bool,
}

#[derive(Default)]
struct NetState {
    /// Directed links that drop everything.
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Paused replicas: messages and disk completions are held until then.
    paused_until: BTreeMap<NodeId, Instant>,
    /// Message loss, duplication and long delays are on (off once the faults heal).
    faulty: bool,
}

pub struct World {
    pub seed: u64,
    /// Print every event as it happens (`--events`).
    echo: bool,
    pub plant: Option<Plant>,
    pub config: FaultConfig,
    pub settings: RaftSettings,
    start: Instant,
    clock: Arc<SimClock>,
    rng: Mutex<SimRng>,
    trace: Arc<Mutex<Trace>>,
    net: Mutex<NetState>,
    slots: Mutex<BTreeMap<NodeId, Slot>>,
    pub history: Mutex<History>,
    violation: Arc<Mutex<Option<String>>>,
    events_at_violation: Mutex<Vec<String>>,
    seq: AtomicU64,
    pub faults: AtomicU64,
    /// Faults injected so far, by kind.
    pub fault_kinds: Mutex<BTreeMap<String, u64>>,
    pub requests: AtomicU64,
    /// Simulated ms at which the faults healed; 0 while they are on.
    healed_at_ms: AtomicU64,
}

impl World {
    pub fn new(
        seed: u64,
        plant: Option<Plant>,
        echo: bool,
        replicas: Option<u64>,
        watch: &Watch,
    ) -> Arc<World> {
        let mut rng = SimRng::new(seed);
        let mut config = FaultConfig::draw(&mut rng);
        if let Some(replicas) = replicas {
            config.replicas = replicas;
        }
        let settings = RaftSettings {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
            snapshot_every_entries: rng.between(20, 60),
            entries_kept_behind_snapshot: rng.between(0, 10),
            disk_free_min_bytes: 0,
        };
        let start = Instant::now();
        Arc::new(World {
            seed,
            echo,
            plant,
            config,
            settings,
            start,
            clock: Arc::new(SimClock { start }),
            rng: Mutex::new(rng),
            trace: watch.trace.clone(),
            net: Mutex::new(NetState {
                faulty: true,
                ..NetState::default()
            }),
            slots: Mutex::new(BTreeMap::new()),
            history: Mutex::new(History::default()),
            violation: watch.violation.clone(),
            events_at_violation: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            fault_kinds: Mutex::new(BTreeMap::new()),
            requests: AtomicU64::new(0),
            healed_at_ms: AtomicU64::new(0),
        })
    }

    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The simulated wall clock the leaders stamp entries with, in ns (for clients that aim a
    /// request at a ledger timestamp).
    pub fn clock_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// A number that orders events: every call returns a larger one.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn random(&self, draw: impl FnOnce(&mut SimRng) -> u64) -> u64 {
        draw(&mut lock(&self.rng))
    }

    pub fn chance(&self, permille: u64) -> bool {
        lock(&self.rng).chance(permille)
    }

    pub fn note(&self, text: &str) {
        let now = self.now_ms();
        lock(&self.trace).record(now, text);
        if self.echo {
            eprintln!("{now:>6}ms {text}");
        }
    }

    pub fn trace_hash(&self) -> u64 {
        lock(&self.trace).hash()
    }

    pub fn recent_events(&self) -> Vec<String> {
        lock(&self.trace).recent().cloned().collect()
    }

    /// Records a broken invariant; the first one is what the run reports.
    pub fn fail(&self, invariant: String) {
        self.note(&format!("VIOLATION {invariant}"));
        let mut violation = lock(&self.violation);
        if violation.is_none() {
            *violation = Some(invariant);
            *lock(&self.events_at_violation) = self.recent_events();
        }
    }

    /// Records a broken invariant found after the fact, about the moment `at_ms`: the report shows
    /// the events around that moment rather than the last ones.
    pub fn fail_at(&self, invariant: String, at_ms: u64) {
        let around = lock(&self.trace).around(at_ms, 40, 15);
        self.note(&format!("VIOLATION {invariant}"));
        let mut violation = lock(&self.violation);
        if violation.is_none() {
            *violation = Some(invariant);
            let mut events = around;
            events.push("   ... (then, at the end of the run:)".to_string());
            events.extend(self.recent_events().into_iter().rev().take(10).rev());
            *lock(&self.events_at_violation) = events;
        }
    }

    /// The last events up to the first violation (or up to now when there is none).
    pub fn events_for_report(&self) -> Vec<String> {
        let kept = lock(&self.events_at_violation).clone();
        if kept.is_empty() {
            self.recent_events()
        } else {
            kept
        }
    }

    pub fn violation(&self) -> Option<String> {
        lock(&self.violation).clone()
    }

    /// Counts one injected fault of `kind` (for the sweep's coverage line) and traces `text`.
    pub fn count_fault(&self, kind: &str, text: &str) {
        self.faults.fetch_add(1, Ordering::Relaxed);
        *lock(&self.fault_kinds).entry(kind.to_string()).or_default() += 1;
        self.note(&format!("fault: {text}"));
    }

    pub fn set_healed(&self) {
        self.healed_at_ms
            .store(self.now_ms().max(1), Ordering::Relaxed);
    }

    pub fn is_healed(&self) -> bool {
        self.healed_at_ms.load(Ordering::Relaxed) != 0
    }

    /// True once the faults healed more than the liveness bound ago.
    pub fn past_liveness_deadline(&self) -> bool {
        let healed = self.healed_at_ms.load(Ordering::Relaxed);
        healed != 0 && self.now_ms() > healed + crate::run::LIVENESS_MS
    }

    pub fn record_ack(&self, ack: Ack) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        lock(&self.history).acks.push(ack);
    }

    pub fn record_read(&self, read: ReadSeen) {
        self.note(&format!(
            "read account {} at replica {} applied {}",
            read.account_id, read.node, read.applied_index
        ));
        lock(&self.history).reads.push(read);
    }

    // --- disk --------------------------------------------------------------------------------

    pub fn sync_latency(&self) -> Duration {
        let mut rng = lock(&self.rng);
        let slow = rng.chance(self.config.slow_sync_permille);
        let ms = if slow {
            rng.between(5, 30)
        } else {
            rng.between(0, 3)
        };
        Duration::from_millis(ms)
    }

    /// Sees every write: an entry applied by the state machine is recorded with its bytes, so
    /// the checker can replay the committed log and catch an index applied with two entries.
    pub fn observe_write(&self, node: NodeId, batch: &WriteBatch, visible: &Spaces) {
        // Installing a snapshot clears the state-machine spaces first; its applied id covers
        // entries that some replica applied one by one.
        let installs_snapshot = batch
            .ops
            .iter()
            .any(|op| matches!(op, WriteOp::DeleteRange { space, .. } if *space != Space::RaftLog));
        if installs_snapshot {
            // What a restart would start from, right after the install.
            match tally_node::raft::applied_state_of(visible) {
                Ok((applied, membership)) => lock(&self.history).installs.push(InstallRecord {
                    node,
                    at_ms: self.now_ms(),
                    applied,
                    membership,
                }),
                Err(error) => self.fail(format!(
                    "replica {node}'s applied state after a snapshot install is unreadable: \
                     {error}"
                )),
            }
            return;
        }
        for op in &batch.ops {
            let WriteOp::Put {
                space: Space::StateMeta,
                key,
                value,
            } = op
            else {
                continue;
            };
            if key.as_slice() != APPLIED_KEY {
                continue;
            }
            let Ok(Some(log_id)) = decode::<Option<LogId>>(Space::StateMeta, value) else {
                continue;
            };
            let index = log_id.index();
            if let Ok(Some(bytes)) = visible.get(Space::RaftLog, &u64_key(index)) {
                self.observe_applied(node, index, bytes);
            }
        }
    }

    fn observe_applied(&self, node: NodeId, index: u64, bytes: Vec<u8>) {
        let conflict = {
            let mut history = lock(&self.history);
            match history.applied.get(&index) {
                Some((first, seen)) if *seen != bytes => Some((*first, seen.clone())),
                Some(_) => None,
                None => {
                    history.applied.insert(index, (node, bytes.clone()));
                    None
                }
            }
        };
        if let Some((first, seen)) = conflict {
            self.fail(format!(
                "raft safety: log index {index} was applied as {} on replica {first} but as {} \
                 on replica {node} (a committed entry changed)",
                crate::checker::describe_entry(&seen),
                crate::checker::describe_entry(&bytes)
            ));
        }
    }

    // --- network -----------------------------------------------------------------------------

    pub fn duplicate_message(&self) -> bool {
        let faulty = lock(&self.net).faulty;
        faulty && self.chance(self.config.duplicate_permille)
    }

    fn is_live(&self, id: NodeId, incarnation: u64) -> bool {
        lock(&self.slots)
            .get(&id)
            .is_some_and(|slot| slot.node.is_some() && slot.incarnation == incarnation)
    }

    pub fn live_node(&self, id: NodeId) -> Option<(Arc<RaftNode>, u64)> {
        let slots = lock(&self.slots);
        let slot = slots.get(&id)?;
        Some((slot.node.clone()?, slot.incarnation))
    }

    pub fn node(&self, id: NodeId) -> Option<Arc<RaftNode>> {
        self.live_node(id).map(|(node, _)| node)
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        lock(&self.slots).keys().copied().collect()
    }

    /// Carries one message leg; never returns if the message is lost (the RPC deadline fires).
    pub async fn transit(
        &self,
        from: NodeId,
        incarnation: u64,
        to: NodeId,
        kind: &str,
    ) -> Result<(), String> {
        if !self.is_live(from, incarnation) {
            std::future::pending::<()>().await;
        }
        let delay_ms = {
            let net = lock(&self.net);
            let mut rng = lock(&self.rng);
            let lost = net.faulty && rng.chance(self.config.loss_permille);
            if lost || net.blocked.contains(&(from, to)) {
                None
            } else if net.faulty && rng.chance(self.config.slow_permille) {
                Some(rng.between(5, self.config.delay_max_ms))
            } else {
                Some(rng.between(1, 3))
            }
        };
        let Some(delay_ms) = delay_ms else {
            self.note(&format!("{kind} {from}->{to} lost"));
            std::future::pending::<()>().await;
            return Err("lost".into());
        };
        self.note(&format!("{kind} {from}->{to} +{delay_ms}ms"));
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        self.wait_while_paused(from).await;
        self.wait_while_paused(to).await;
        let blocked_now = lock(&self.net).blocked.contains(&(from, to));
        if blocked_now || !self.is_live(from, incarnation) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    pub async fn wait_while_paused(&self, node: NodeId) {
        loop {
            let until = lock(&self.net).paused_until.get(&node).copied();
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    pub fn block(&self, from: NodeId, to: NodeId) {
        lock(&self.net).blocked.insert((from, to));
    }

    pub fn unblock(&self, from: NodeId, to: NodeId) {
        lock(&self.net).blocked.remove(&(from, to));
    }

    pub fn heal_network(&self) {
        let mut net = lock(&self.net);
        net.blocked.clear();
        net.paused_until.clear();
        net.faulty = false;
    }

    pub fn pause(&self, node: NodeId, duration: Duration) {
        lock(&self.net)
            .paused_until
            .insert(node, Instant::now() + duration);
    }

    // --- replicas ----------------------------------------------------------------------------

    pub fn add_slot(&self, id: NodeId) {
        lock(&self.slots).insert(
            id,
            Slot {
                node: None,
                storage: None,
                disk: Disk::default(),
                incarnation: 0,
                starting: false,
            },
        );
    }

    fn faults_for_nodes(&self) -> Faults {
        Faults {
            log_store: LogStoreFaults {
                ack_before_sync: self.plant == Some(Plant::AckBeforeSync),
                forget_vote: self.plant == Some(Plant::ForgetVote),
            },
            ledger: LedgerFaults {
                skip_idempotency: self.plant == Some(Plant::SkipIdempotency),
                skip_balance_check: self.plant == Some(Plant::SkipBalanceCheck),
            },
        }
    }

    /// Starts (or restarts) a replica on its disk. A replica that refuses to start because the
    /// crc32 of a torn, never-synced log record fails is recovered the way the storage engine's
    /// log recovery would: the torn record is dropped, and it starts again.
    pub async fn start_node(self: &Arc<Self>, id: NodeId) -> Result<(), String> {
        loop {
            let claimed = {
                let mut slots = lock(&self.slots);
                let Some(slot) = slots.get_mut(&id) else {
                    return Err(format!("no replica {id}"));
                };
                if slot.node.is_some() {
                    return Ok(());
                }
                if slot.starting {
                    None
                } else {
                    slot.starting = true;
                    slot.incarnation += 1;
                    Some((slot.disk.clone(), slot.incarnation))
                }
            };
            let Some((disk, incarnation)) = claimed else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            let torn = disk.torn.is_some();
            let storage = SimStorage::open(id, disk, self.clone());
            let network = SimNetworkFactory::new(self.clone(), id, incarnation);
            let seed = self.random(|rng| rng.next_u64());
            let started = RaftNode::start_with_faults(
                id,
                addr_of(id),
                storage.clone(),
                network,
                &self.settings,
                self.clock.clone(),
                seed,
                self.faults_for_nodes(),
            )
            .await;
            match started {
                Ok(node) => {
                    let mut slots = lock(&self.slots);
                    if let Some(slot) = slots.get_mut(&id) {
                        slot.node = Some(node);
                        slot.storage = Some(storage);
                        slot.starting = false;
                    }
                    drop(slots);
                    self.note(&format!("replica {id} started (incarnation {incarnation})"));
                    return Ok(());
                }
                Err(error) if torn => {
                    let mut slots = lock(&self.slots);
                    if let Some(slot) = slots.get_mut(&id) {
                        slot.disk.drop_torn();
                        slot.starting = false;
                    }
                    drop(slots);
                    self.note(&format!(
                        "replica {id} refused to start ({error}); recovery drops the torn record"
                    ));
                }
                Err(error) => {
                    if let Some(slot) = lock(&self.slots).get_mut(&id) {
                        slot.starting = false;
                    }
                    return Err(format!("replica {id} failed to start: {error}"));
                }
            }
        }
    }

    /// Power loss on one replica: it stops at once; unsynced writes may be lost, the last torn.
    pub fn crash(self: &Arc<Self>, id: NodeId) {
        self.crash_after(id, None);
    }

    fn crash_after(self: &Arc<Self>, id: NodeId, window: Option<Window>) {
        let tear = self.config.torn_writes && self.chance(500);
        let (node, unsynced, torn, survived) = {
            let mut slots = lock(&self.slots);
            let Some(slot) = slots.get_mut(&id) else {
                return;
            };
            let (Some(node), Some(storage)) = (slot.node.take(), slot.storage.take()) else {
                return;
            };
            let unsynced = storage.unsynced();
            slot.disk = storage.crash(&mut lock(&self.rng), tear);
            (node, unsynced, slot.disk.torn.is_some(), slot.disk.clone())
        };
        let kind = window.map_or("crash".to_string(), |window| {
            format!("crash during a {}", window.name())
        });
        self.count_fault(
            &kind,
            &format!(
                "crash replica {id} ({unsynced} unsynced batches{}{})",
                if torn { ", last write torn" } else { "" },
                window.map_or(String::new(), |window| format!(
                    ", during a {}",
                    window.name()
                ))
            ),
        );
        let granted = lock(&self.history).granted.get(&id).copied();
        let checked = crate::durability::check_vote(id, &survived, granted.as_ref())
            .and_then(|()| crate::durability::record(id, self.now_ms(), &survived));
        match checked {
            Ok(record) => lock(&self.history).crashes.push(record),
            Err(violation) => self.fail(violation),
        }
        crate::spawn(async move { node.shutdown().await });
    }

    /// Picks a kind of durable write ([`Window`]) and waits (briefly) for a moment when `id` has
    /// one written but not yet synced, so that crashes land where lost and torn writes matter,
    /// then crashes it.
    pub async fn crash_in_window(self: &Arc<Self>, id: NodeId) {
        let window = Window::ALL[self.random(|rng| rng.below(Window::ALL.len() as u64)) as usize];
        let mut hit = None;
        for _ in 0..WINDOW_WAIT_MS {
            let storage = lock(&self.slots)
                .get(&id)
                .and_then(|slot| slot.storage.clone());
            match storage {
                Some(storage) if storage.in_window(window) => {
                    hit = Some(window);
                    break;
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                None => return,
            }
        }
        self.crash_after(id, hit);
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        lock(&self.slots)
            .get(&id)
            .is_some_and(|slot| slot.node.is_some())
    }

    /// The replica that believes it leads in the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        let nodes: Vec<Arc<RaftNode>> = lock(&self.slots)
            .values()
            .filter_map(|slot| slot.node.clone())
            .collect();
        nodes
            .iter()
            .map(|node| node.status())
            .filter(|status| status.role == "leader")
            .max_by_key(|status| status.term)
            .map(|status| status.id)
    }

    /// Records leaders, and fails a replica stopped by a fatal error.
    pub fn check_replicas(&self) {
        let nodes: Vec<Arc<RaftNode>> = lock(&self.slots)
            .values()
            .filter_map(|slot| slot.node.clone())
            .collect();
        for node in nodes {
            let metrics = node.raft().metrics().borrow_watched().clone();
            if let Err(fatal) = &metrics.running_state {
                self.fail(format!("replica {} stopped: {fatal}", node.id()));
                continue;
            }
            let status = node.status();
            if status.role != "leader" {
                continue;
            }
            let new = lock(&self.history).leaders.insert((status.term, status.id));
            if new {
                self.note(&format!(
                    "replica {} leads in term {}",
                    status.id, status.term
                ));
            }
        }
    }

    /// Sees every vote a replica granted (see [`History::granted`]).
    pub fn observe_vote(&self, voter: NodeId, vote: &Vote, granted: bool) {
        if !granted {
            return;
        }
        let mut history = lock(&self.history);
        let lower = match history.granted.get(&voter) {
            Some(highest) if vote.partial_cmp(highest) == Some(std::cmp::Ordering::Less) => {
                Some(*highest)
            }
            Some(highest) if vote.partial_cmp(highest) != Some(std::cmp::Ordering::Greater) => {
                return;
            }
            _ => None,
        };
        match lower {
            Some(highest) => {
                drop(history);
                self.fail(format!(
                    "raft safety: replica {voter} granted vote {vote} after it had granted \
                     {highest} (a granted vote was not durable)"
                ));
            }
            None => {
                history.granted.insert(voter, *vote);
            }
        }
    }

    /// Drops every replica, breaking the reference cycles through the network and disks.
    pub fn teardown(&self) {
        lock(&self.slots).clear();
    }
}
