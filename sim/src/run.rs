//! One seed, start to finish: bring the cluster up, run clients under the nemesis, heal, wait
//! for convergence, and judge the history. Everything runs on one thread in a paused-time tokio
//! runtime whose scheduler is seeded too, inside openraft's deterministic-rng scope.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use tally_node::raft::{NodeId, RaftNode, Runtime};
use tokio::runtime::{Builder, RngSeed};

use crate::checker::Failure;
use crate::config::Plant;
use crate::rng::SimRng;
use crate::workload::{applied_index, base_accounts, learn_base, run_client, Client, Known};
use crate::world::{addr_of, Watch, World};
use tally_ledger::Command;

/// After the faults heal, every client request and the convergence of all replicas must finish
/// within this much simulated time.
pub const LIVENESS_MS: u64 = 20_000;
/// How long the cluster may take to elect its first leader.
const FIRST_LEADER_MS: u64 = 10_000;
/// Real time a seed may take before it is reported as hung (a healthy seed takes well under a
/// second in a release build).
const SEED_REAL_TIME_LIMIT: Duration = Duration::from_secs(30);
/// Clients keep sending for this long after the faults heal.
const CLIENTS_AFTER_HEAL_MS: u64 = 300;

/// What one seed did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    pub plant: Option<Plant>,
    pub failure: Option<String>,
    pub requests: u64,
    pub faults: u64,
    pub sim_ms: u64,
    pub trace: u64,
    pub config: String,
    pub recent_events: Vec<String>,
    /// Faults injected, by kind.
    pub fault_kinds: BTreeMap<String, u64>,
}

impl Outcome {
    /// The line `tally-sim --seed N` ends with.
    pub fn summary(&self) -> String {
        format!(
            "seed={} result={} requests={} faults={} sim_ms={} trace={:016x}",
            self.seed,
            if self.failure.is_some() { "fail" } else { "ok" },
            self.requests,
            self.faults,
            self.sim_ms,
            self.trace
        )
    }

    pub fn replay_command(&self) -> String {
        match self.plant {
            Some(plant) => format!("tally-sim --seed {} --plant {plant}", self.seed),
            None => format!("tally-sim --seed {}", self.seed),
        }
    }

    /// The failure report: the broken invariant, the last events, and how to replay it.
    pub fn report(&self) -> String {
        let Some(failure) = &self.failure else {
            return String::new();
        };
        let mut text = format!("FAILED seed {}: {failure}\n", self.seed);
        text.push_str(&format!("  config: {}\n", self.config));
        text.push_str("  events (around the violation when the checker knows its moment):\n");
        for event in &self.recent_events {
            text.push_str(&format!("    {event}\n"));
        }
        text.push_str(&format!("  replay: {}\n", self.replay_command()));
        text
    }
}

thread_local! {
    /// Panics raised on this thread (the simulation's only thread) since the run began.
    static PANICS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn capture_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let recorded = PANICS.try_with(|panics| {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                panics.borrow_mut().push(format!("{message} at {location}"));
            });
            if recorded.is_err() {
                default_hook(info);
            }
        }));
    });
}

fn take_panic() -> Option<String> {
    PANICS.with(|panics| panics.borrow_mut().drain(..).next())
}

/// Runs one seed.
pub fn run_seed(seed: u64, plant: Option<Plant>) -> Outcome {
    run_seed_with(seed, plant, false)
}

/// Runs one seed; with `echo`, every event is printed to stderr as it happens.
///
/// The seed runs on a thread of its own, watched in real time: a task that busy-loops keeps the
/// paused clock from ever advancing (openraft's core does, on storage that broke its contract),
/// so a run that takes longer than [`SEED_REAL_TIME_LIMIT`] is reported as hung instead of
/// hanging the caller.
pub fn run_seed_with(seed: u64, plant: Option<Plant>, echo: bool) -> Outcome {
    run_seed_sized(seed, plant, echo, None)
}

/// As [`run_seed_with`], forcing the cluster size to `replicas` (3 or 5) instead of drawing it
/// from the seed; everything else the seed draws stays the same.
pub fn run_seed_sized(
    seed: u64,
    plant: Option<Plant>,
    echo: bool,
    replicas: Option<u64>,
) -> Outcome {
    let watch = Watch::default();
    let (sender, receiver) = std::sync::mpsc::channel();
    let watched = watch.clone();
    #[allow(clippy::disallowed_methods)]
    let spawned = std::thread::Builder::new()
        .name(format!("tally-sim-{seed}"))
        .spawn(move || {
            let options = RunOptions {
                plant,
                echo,
                replicas,
            };
            let _ = sender.send(run_in_runtime(seed, options, &watched));
        });
    if let Err(error) = spawned {
        panic!("cannot start the thread for seed {seed}: {error}");
    }
    match receiver.recv_timeout(SEED_REAL_TIME_LIMIT) {
        Ok(outcome) => outcome,
        Err(_) => hung(seed, plant, &watch),
    }
}

/// The outcome of a seed whose run stopped advancing (its thread is left spinning).
fn hung(seed: u64, plant: Option<Plant>, watch: &Watch) -> Outcome {
    let violation = watch
        .violation
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let hang = format!(
        "hang: simulated time stopped advancing for {} s of real time (a task busy-loops; \
         replay with --events to see where)",
        SEED_REAL_TIME_LIMIT.as_secs()
    );
    let trace = watch.trace.lock().unwrap_or_else(|p| p.into_inner());
    Outcome {
        seed,
        plant,
        failure: Some(match violation {
            Some(violation) => format!("{violation}; then {hang}"),
            None => hang,
        }),
        requests: 0,
        faults: 0,
        sim_ms: 0,
        trace: trace.hash(),
        config: String::new(),
        recent_events: trace.recent().cloned().collect(),
        fault_kinds: BTreeMap::new(),
    }
}

/// How one seed runs, besides the seed itself.
#[derive(Clone, Copy)]
struct RunOptions {
    plant: Option<Plant>,
    /// Print every event to stderr as it happens.
    echo: bool,
    /// Force the cluster size instead of drawing it.
    replicas: Option<u64>,
}

fn run_in_runtime(seed: u64, options: RunOptions, watch: &Watch) -> Outcome {
    capture_panics();
    PANICS.with(|panics| panics.borrow_mut().clear());
    let runtime = Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .rng_seed(RngSeed::from_bytes(&seed.to_le_bytes()))
        .build()
        .expect("a current-thread tokio runtime");
    let outcome = runtime.block_on(Runtime::scope(seed, simulate(seed, options, watch)));
    drop(runtime);
    outcome
}

async fn simulate(seed: u64, options: RunOptions, watch: &Watch) -> Outcome {
    let RunOptions {
        plant,
        echo,
        replicas,
    } = options;
    let world = World::new(seed, plant, echo, replicas, watch);
    let config = world.config.describe();
    world.note(&format!("seed {seed} plant {plant:?} {config}"));
    if let Err(failure) = drive(&world).await {
        world.fail(failure);
    }
    if let Some(panic) = take_panic() {
        world.fail(format!("a replica panicked: {panic}"));
    }
    let outcome = Outcome {
        seed,
        plant,
        failure: world.violation(),
        requests: world.requests.load(std::sync::atomic::Ordering::Relaxed),
        faults: world.faults.load(std::sync::atomic::Ordering::Relaxed),
        sim_ms: world.now_ms(),
        trace: world.trace_hash(),
        config,
        recent_events: world.events_for_report(),
        fault_kinds: world
            .fault_kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    };
    world.teardown();
    outcome
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

async fn wait_for_leader(world: &World, within_ms: u64) -> Result<NodeId, String> {
    let deadline = world.now_ms() + within_ms;
    loop {
        if let Some(leader) = world.leader() {
            return Ok(leader);
        }
        if world.now_ms() > deadline {
            return Err(format!("liveness: no leader within {within_ms} ms"));
        }
        sleep_ms(10).await;
    }
}

async fn bring_up(world: &Arc<World>) -> Result<(), String> {
    let voters = world.config.replicas;
    let spare = u64::from(world.config.membership);
    for id in 1..=voters + spare {
        world.add_slot(id);
        world.start_node(id).await?;
    }
    let members: BTreeMap<NodeId, String> = (1..=voters).map(|id| (id, addr_of(id))).collect();
    let first = world.node(1).ok_or("replica 1 is down")?;
    first
        .initialize(members)
        .await
        .map_err(|error| format!("initialize failed: {error}"))?;
    wait_for_leader(world, FIRST_LEADER_MS).await?;
    let mut setup = Client::new(0, SimRng::new(world.seed ^ 0x5e7));
    let command = Command::CreateAccounts(base_accounts());
    for _ in 0..20 {
        if setup.submit(world, &command).await.is_some() {
            return Ok(());
        }
    }
    Err("liveness: the base accounts were never created".into())
}

/// Watches leaders, fatal errors and panics while the run goes on.
fn spawn_monitor(world: &Arc<World>) -> tokio::task::JoinHandle<()> {
    let world = world.clone();
    crate::spawn(async move {
        loop {
            sleep_ms(10).await;
            world.check_replicas();
            if let Some(panic) = take_panic() {
                world.fail(format!("a replica panicked: {panic}"));
            }
        }
    })
}

/// Proposes a checkpoint now and then, so replicas compute digests the checker compares.
fn spawn_checkpoints(world: &Arc<World>, end_ms: u64) {
    let world = world.clone();
    crate::spawn(async move {
        while world.now_ms() < end_ms {
            sleep_ms(world.random(|rng| rng.between(300, 900))).await;
            let Some(node) = world.leader().and_then(|id| world.node(id)) else {
                continue;
            };
            let call = tokio::time::timeout(Duration::from_millis(1_000), node.checkpoint());
            if let Ok(Ok(index)) = call.await {
                world.note(&format!("checkpoint at {index}"));
            }
        }
    });
}

async fn drive(world: &Arc<World>) -> Result<(), String> {
    bring_up(world).await?;
    let monitor = spawn_monitor(world);
    let outcome = run_workload(world).await;
    monitor.abort();
    outcome?;
    if world.violation().is_some() {
        return Ok(());
    }
    let nodes = converge(world).await?;
    let checked = {
        let history = world.history.lock().unwrap_or_else(|p| p.into_inner());
        crate::checker::check(&history, &nodes)
    };
    match checked {
        Ok(model) => {
            // What the reference covered, for the trace (and the tests that check the workload).
            world.note(&model.summary());
            Ok(())
        }
        Err(Failure {
            message,
            at_ms: Some(at_ms),
        }) => {
            world.fail_at(message, at_ms);
            Ok(())
        }
        Err(failure) => Err(failure.message),
    }
}

async fn run_workload(world: &Arc<World>) -> Result<(), String> {
    let known = Arc::new(Known::default());
    learn_base(&known);
    let fault_end = world.now_ms() + world.config.fault_phase_ms;
    let mut clients = Vec::new();
    for id in 1..=world.config.clients {
        let rng = SimRng::new(world.random(|rng| rng.next_u64()));
        let client = Client::new(id, rng);
        let end = fault_end + CLIENTS_AFTER_HEAL_MS;
        clients.push(crate::spawn(run_client(
            world.clone(),
            known.clone(),
            client,
            end,
        )));
    }
    let nemesis = crate::spawn(crate::nemesis::run(world.clone(), fault_end));
    spawn_checkpoints(world, fault_end);
    while world.now_ms() < fault_end && world.violation().is_none() {
        sleep_ms(10).await;
    }
    nemesis.abort();
    let _ = nemesis.await;
    world.heal_network();
    world.set_healed();
    world.note("faults healed");
    for id in world.node_ids() {
        world.start_node(id).await?;
    }
    for client in clients {
        let _ = client.await;
    }
    Ok(())
}

/// After healing: a final checkpoint, applied with the same digest everywhere in time.
async fn converge(world: &Arc<World>) -> Result<Vec<Arc<RaftNode>>, String> {
    let deadline = world.now_ms() + LIVENESS_MS;
    let index = loop {
        if world.now_ms() > deadline {
            return Err("liveness: no final checkpoint committed after the faults healed".into());
        }
        if let Some(node) = world.leader().and_then(|id| world.node(id)) {
            let call = tokio::time::timeout(Duration::from_millis(1_000), node.checkpoint());
            if let Ok(Ok(index)) = call.await {
                break index;
            }
        }
        sleep_ms(50).await;
    };
    world.note(&format!("final checkpoint at {index}"));
    loop {
        let members = crate::nemesis::members(world).unwrap_or_default();
        let nodes: Vec<Arc<RaftNode>> = members.keys().filter_map(|id| world.node(*id)).collect();
        // Applied as stored (a replica that installed a snapshot skipped the entries in it).
        let applied: Vec<u64> = nodes
            .iter()
            .map(|node| {
                node.storage_handle()
                    .read_view()
                    .map_or(0, |v| applied_index(&*v))
            })
            .collect();
        let highest = applied.iter().copied().max().unwrap_or(0);
        let behind: Vec<NodeId> = nodes
            .iter()
            .zip(&applied)
            .filter(|(_, at)| **at < index || **at != highest)
            .map(|(node, _)| node.id())
            .collect();
        if !members.is_empty() && nodes.len() == members.len() && behind.is_empty() {
            return Ok(nodes);
        }
        if world.now_ms() > deadline {
            return Err(format!(
                "liveness: replicas {behind:?} did not apply the final checkpoint {index} within \
                 {LIVENESS_MS} ms of healing"
            ));
        }
        sleep_ms(20).await;
    }
}
