//! The nemesis: injects the seed's faults while the clients run — crashes (one replica, the
//! whole cluster, or a voter in the middle of an election), partitions (leader isolated,
//! minority/majority, one-way, flapping), pauses longer than the election timeout, and
//! membership changes (add a learner, promote it, remove a voter).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tally_node::raft::NodeId;

use crate::world::{addr_of, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Crash,
    PowerLoss,
    CrashDuringElection,
    IsolateLeader,
    Split,
    OneWay,
    Flap,
    Pause,
    Membership,
}

fn enabled(world: &World) -> Vec<Fault> {
    let config = &world.config;
    let mut faults = Vec::new();
    if config.crashes {
        faults.extend([Fault::Crash, Fault::Crash, Fault::CrashDuringElection]);
    }
    if config.power_loss {
        faults.push(Fault::PowerLoss);
    }
    if config.partitions {
        faults.extend([
            Fault::IsolateLeader,
            Fault::Split,
            Fault::OneWay,
            Fault::Flap,
        ]);
    }
    if config.pauses {
        faults.push(Fault::Pause);
    }
    if config.membership {
        faults.push(Fault::Membership);
    }
    faults
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn random_node(world: &World) -> NodeId {
    let ids = world.node_ids();
    ids[world.random(|rng| rng.below(ids.len() as u64)) as usize]
}

fn restart_later(world: &Arc<World>, id: NodeId, after_ms: u64) {
    let world = world.clone();
    crate::spawn(async move {
        sleep_ms(after_ms).await;
        if let Err(error) = world.start_node(id).await {
            world.fail(error);
        }
    });
}

/// Blocks links now and unblocks them after `duration_ms`.
fn cut(world: &Arc<World>, links: Vec<(NodeId, NodeId)>, duration_ms: u64) {
    for (from, to) in &links {
        world.block(*from, *to);
    }
    let world = world.clone();
    crate::spawn(async move {
        sleep_ms(duration_ms).await;
        for (from, to) in links {
            world.unblock(from, to);
        }
    });
}

fn both_ways(group: &[NodeId], rest: &[NodeId]) -> Vec<(NodeId, NodeId)> {
    let mut links = Vec::new();
    for a in group {
        for b in rest {
            links.push((*a, *b));
            links.push((*b, *a));
        }
    }
    links
}

pub async fn run(world: Arc<World>, end_ms: u64) {
    let faults = enabled(&world);
    if faults.is_empty() {
        return;
    }
    let interval = world.config.fault_interval_ms;
    let mut power_losses = 0;
    let mut membership_step = 0;
    loop {
        sleep_ms(world.random(|rng| rng.between(interval / 2, interval * 3 / 2))).await;
        if world.now_ms() >= end_ms || world.violation().is_some() {
            return;
        }
        let fault = world.random(|rng| rng.below(faults.len() as u64)) as usize;
        match faults[fault] {
            Fault::Crash => {
                let id = random_node(&world);
                world.crash_in_window(id).await;
                restart_later(&world, id, world.random(|rng| rng.between(10, 800)));
            }
            Fault::PowerLoss if power_losses < 3 => {
                power_losses += 1;
                if let Some(leader) = world.leader() {
                    world.crash_in_window(leader).await;
                }
                world.count_fault("power loss", "power loss: every replica crashes");
                for id in world.node_ids() {
                    world.crash(id);
                    restart_later(&world, id, world.random(|rng| rng.between(10, 300)));
                }
            }
            Fault::PowerLoss => {}
            Fault::CrashDuringElection => crash_during_election(&world).await,
            Fault::IsolateLeader => {
                let Some(leader) = world.leader() else {
                    continue;
                };
                let others: Vec<NodeId> = world
                    .node_ids()
                    .into_iter()
                    .filter(|id| *id != leader)
                    .collect();
                world.count_fault("isolate leader", &format!("isolate leader {leader}"));
                let duration = world.random(|rng| rng.between(300, 1500));
                cut(&world, both_ways(&[leader], &others), duration);
            }
            Fault::Split => {
                let mut ids = world.node_ids();
                let minority = ids.len() / 2;
                let mut group = Vec::new();
                while group.len() < minority {
                    let index = world.random(|rng| rng.below(ids.len() as u64)) as usize;
                    group.push(ids.swap_remove(index));
                }
                world.count_fault("partition", &format!("partition {group:?} from {ids:?}"));
                let duration = world.random(|rng| rng.between(300, 2000));
                cut(&world, both_ways(&group, &ids), duration);
            }
            Fault::OneWay => {
                let (from, to) = (random_node(&world), random_node(&world));
                if from != to {
                    world.count_fault(
                        "one-way partition",
                        &format!("one-way partition {from}->{to}"),
                    );
                    let duration = world.random(|rng| rng.between(300, 2000));
                    cut(&world, vec![(from, to)], duration);
                }
            }
            Fault::Flap => flap(&world),
            Fault::Pause => {
                let id = random_node(&world);
                let max = world.settings.election_timeout_max_ms;
                let duration = world.random(|rng| rng.between(max * 2, max * 5));
                world.count_fault("pause", &format!("pause replica {id} for {duration}ms"));
                world.pause(id, Duration::from_millis(duration));
            }
            Fault::Membership => {
                if change_membership(&world, membership_step).await {
                    membership_step += 1;
                }
            }
        }
    }
}

/// Isolates the leader, waits until an election is under way, then crashes a voter and brings
/// it back at once: a replica that forgot its vote may vote twice in one term.
async fn crash_during_election(world: &Arc<World>) {
    let Some(leader) = world.leader() else {
        return;
    };
    let others: Vec<NodeId> = world
        .node_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    world.count_fault(
        "crash mid-election",
        &format!("isolate leader {leader}, then crash a voter mid-election"),
    );
    cut(world, both_ways(&[leader], &others), 1500);
    let settings = &world.settings;
    let (low, high) = (
        settings.election_timeout_min_ms,
        settings.election_timeout_max_ms + 100,
    );
    sleep_ms(world.random(|rng| rng.between(low, high))).await;
    let victim = others[world.random(|rng| rng.below(others.len() as u64)) as usize];
    world.crash(victim);
    restart_later(world, victim, world.random(|rng| rng.between(1, 30)));
}

/// Cuts and restores one link several times in quick succession.
fn flap(world: &Arc<World>) {
    let (from, to) = (random_node(world), random_node(world));
    if from == to {
        return;
    }
    world.count_fault("flapping link", &format!("flapping link {from}<->{to}"));
    let world = world.clone();
    crate::spawn(async move {
        for _ in 0..6 {
            world.block(from, to);
            world.block(to, from);
            sleep_ms(world.random(|rng| rng.between(30, 150))).await;
            world.unblock(from, to);
            world.unblock(to, from);
            sleep_ms(world.random(|rng| rng.between(30, 150))).await;
        }
    });
}

/// Step 0 adds the spare replica as a learner, step 1 promotes it, step 2 removes another voter.
async fn change_membership(world: &Arc<World>, step: u32) -> bool {
    let spare = world.config.replicas + 1;
    let Some(leader) = world.leader() else {
        return false;
    };
    let Some(node) = world.node(leader) else {
        return false;
    };
    let status = node.status();
    let voters: BTreeSet<NodeId> = status.voters.keys().copied().collect();
    let (description, change) = match step {
        0 => ("add learner", None),
        1 => {
            let mut promoted = voters.clone();
            promoted.insert(spare);
            ("promote learner", Some((promoted, BTreeSet::new())))
        }
        2 => {
            let candidates: Vec<NodeId> =
                voters.iter().copied().filter(|id| *id != spare).collect();
            let victim =
                candidates[world.random(|rng| rng.below(candidates.len() as u64)) as usize];
            (
                "remove voter",
                Some((BTreeSet::new(), BTreeSet::from([victim]))),
            )
        }
        _ => return false,
    };
    world.count_fault(
        "membership change",
        &format!("membership: {description} (via leader {leader})"),
    );
    let timeout = Duration::from_millis(2_000);
    let outcome = match change {
        None => {
            let call = node.add_learner(spare, addr_of(spare));
            tokio::time::timeout(timeout, call)
                .await
                .map(|r| r.map(|_| ()))
        }
        Some((voters, remove)) => {
            let call = node.change_membership(voters, remove);
            tokio::time::timeout(timeout, call)
                .await
                .map(|r| r.map(|_| ()))
        }
    };
    let done = matches!(outcome, Ok(Ok(())));
    world.note(&format!(
        "membership {description}: {}",
        if done { "done" } else { "failed" }
    ));
    done
}

/// Members of the cluster as the leader sees them.
pub fn members(world: &World) -> Option<BTreeMap<NodeId, String>> {
    let leader = world.leader()?;
    let status = world.node(leader)?.status();
    let mut members = status.voters;
    members.extend(status.learners);
    Some(members)
}
