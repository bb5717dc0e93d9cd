//! `tallyctl cluster ...`: bootstrap, membership changes, and a status table built by asking
//! every node we know of (the --cluster list plus the voters and learners they report).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::json;
use tally_client::{v1, Client, ClientError, NodeAddress};
use tokio::time::Instant;

use crate::cli::{ClusterCommand, NodeSpec};
use crate::output::Table;
use crate::Context;

/// Pause between two polls while waiting for the cluster to reach a state.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Upper bound on nodes discovered through membership lists (a loop guard, not a cluster limit).
const DISCOVERED_NODES_MAX: usize = 1000;

pub async fn run(context: &Context, command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Init { nodes } => init(context, &nodes).await,
        ClusterCommand::AddNode {
            id,
            addr,
            learner_only,
        } => add_node(context, id, &addr, learner_only).await,
        ClusterCommand::RemoveNode { id } => remove_node(context, id).await,
        ClusterCommand::Status => status(context).await,
        ClusterCommand::TransferLeader { id } => {
            let term = context
                .client
                .transfer_leader(id)
                .await
                .with_context(|| format!("transferring leadership to node {id} failed"))?;
            if context.json {
                outln!("{}", json!({"leader_id": id, "term": term}));
            } else {
                outln!("node {id} leads (term {term})");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What one node said about itself, or why it could not be asked.
#[derive(Debug)]
pub struct Probe {
    pub addr: String,
    /// From the node itself, or from another node's membership list when it is down.
    pub id: Option<u64>,
    pub reply: Result<v1::StatusReply, String>,
}

/// Asks every node in `seeds`, then every voter and learner they report, for its status.
pub async fn discover(client: &Client, seeds: &[String]) -> Vec<Probe> {
    let mut known_ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut asked: Vec<String> = Vec::new();
    let mut pending: Vec<String> = seeds.iter().map(|seed| normalize(seed)).collect();
    let mut probes: Vec<Probe> = Vec::new();
    while !pending.is_empty() && asked.len() < DISCOVERED_NODES_MAX {
        pending.retain(|addr| !asked.contains(addr));
        pending.dedup();
        let round: Vec<String> = std::mem::take(&mut pending);
        let replies = futures::future::join_all(round.iter().map(|addr| client.status(addr))).await;
        for (addr, reply) in round.into_iter().zip(replies) {
            asked.push(addr.clone());
            let reply = reply.map_err(|error| short_error(&error));
            if let Ok(status) = &reply {
                for node in status.voters.iter().chain(&status.learners) {
                    let node_addr = normalize(&node.addr);
                    known_ids.insert(node_addr.clone(), node.id);
                    if !asked.contains(&node_addr) && !pending.contains(&node_addr) {
                        pending.push(node_addr);
                    }
                }
            }
            probes.push(Probe {
                addr,
                id: None,
                reply,
            });
        }
    }
    for probe in &mut probes {
        probe.id = match &probe.reply {
            Ok(status) => Some(status.id),
            Err(_) => known_ids.get(&probe.addr).copied(),
        };
    }
    // The same node may have been reached under two spellings of its address.
    let mut seen_ids = Vec::new();
    probes.retain(|probe| match (&probe.reply, probe.id) {
        (Ok(_), Some(id)) => {
            let first = !seen_ids.contains(&id);
            seen_ids.push(id);
            first
        }
        _ => true,
    });
    probes.sort_by_key(|probe| (probe.id.unwrap_or(u64::MAX), probe.addr.clone()));
    probes
}

fn normalize(addr: &str) -> String {
    NodeAddress::parse(addr)
        .map(|addr| addr.to_string())
        .unwrap_or_else(|_| addr.trim().to_string())
}

fn short_error(error: &ClientError) -> String {
    match error {
        ClientError::Unreachable { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The membership as the most authoritative reachable node sees it: a leader of the highest term,
/// else any node of the highest term.
pub fn authoritative(probes: &[Probe]) -> Option<&v1::StatusReply> {
    probes
        .iter()
        .filter_map(|probe| probe.reply.as_ref().ok())
        .max_by_key(|status| (status.term, status.role == "leader"))
}

/// A follower more entries than this behind the leader is flagged `behind`.
pub const LAG_BEHIND_ENTRIES: u64 = 1000;
/// A learner this close to the leader's last index counts as caught up (and may be promoted).
pub const CAUGHT_UP_LAG: u64 = 100;
/// A member that has not answered the leader for this long is flagged `unreachable`.
pub const UNREACHABLE_AFTER_MS: u64 = 2000;

/// The leader that answered with the highest term, if any.
pub fn reachable_leader(probes: &[Probe]) -> Option<&v1::StatusReply> {
    probes
        .iter()
        .filter_map(|probe| probe.reply.as_ref().ok())
        .filter(|status| status.role == "leader")
        .max_by_key(|status| status.term)
}

/// True when some reachable leader can reach a majority of the voters.
pub fn has_quorum(probes: &[Probe]) -> bool {
    reachable_leader(probes).is_some_and(|leader| leader.has_quorum)
}

/// How the leader sees member `id`: entries behind, and a flag (`ok`, `behind`, `unreachable`,
/// `NO QUORUM` for the leader itself).
fn health(leader: Option<&v1::StatusReply>, id: Option<u64>) -> (String, String) {
    let (Some(leader), Some(id)) = (leader, id) else {
        return ("-".into(), "-".into());
    };
    if leader.id == id {
        let flag = if leader.has_quorum { "ok" } else { "NO QUORUM" };
        return ("0".into(), flag.into());
    }
    let Some(progress) = leader.followers.iter().find(|f| f.id == id) else {
        return ("-".into(), "-".into());
    };
    let lag = leader.last_log_index.saturating_sub(progress.matched_index);
    let flag = if !progress.answered || progress.ack_age_ms > UNREACHABLE_AFTER_MS {
        "unreachable"
    } else if lag > LAG_BEHIND_ENTRIES {
        "behind"
    } else {
        "ok"
    };
    (lag.to_string(), flag.into())
}

pub fn status_table(probes: &[Probe]) -> String {
    let mut table = Table::new(&[
        "id",
        "addr",
        "role",
        "term",
        "leader",
        "last_log_index",
        "last_applied",
        "snapshot",
        "lag",
        "health",
    ]);
    let leader = reachable_leader(probes);
    for probe in probes {
        let id = probe.id.map_or("?".to_string(), |id| id.to_string());
        let (lag, flag) = health(leader, probe.id);
        let row = match &probe.reply {
            Ok(status) => vec![
                id,
                probe.addr.clone(),
                status.role.clone(),
                status.term.to_string(),
                dash_if_zero(status.leader_id),
                status.last_log_index.to_string(),
                status.last_applied.to_string(),
                dash_if_zero(status.snapshot_index),
                lag,
                flag,
            ],
            Err(_) => {
                let mut row = vec![id, probe.addr.clone(), "down".to_string()];
                row.extend(std::iter::repeat_n("-".to_string(), 5));
                row.push(lag);
                row.push(if flag == "-" { "down".into() } else { flag });
                row
            }
        };
        table.push(row);
    }
    table.render()
}

fn dash_if_zero(value: u64) -> String {
    if value == 0 {
        "-".to_string()
    } else {
        value.to_string()
    }
}

pub fn probe_json(probe: &Probe) -> serde_json::Value {
    match &probe.reply {
        Ok(status) => json!({
            "id": status.id,
            "addr": probe.addr,
            "up": true,
            "role": status.role,
            "term": status.term,
            "leader_id": status.leader_id,
            "leader_addr": status.leader_addr,
            "last_log_index": status.last_log_index,
            "last_applied": status.last_applied,
            "snapshot_index": status.snapshot_index,
            "purged_index": status.purged_index,
            "voters": status.voters.iter().map(|node| node.id).collect::<Vec<_>>(),
            "learners": status.learners.iter().map(|node| node.id).collect::<Vec<_>>(),
            "has_quorum": status.has_quorum,
            "followers": status.followers.iter().map(|f| json!({
                "id": f.id,
                "voter": f.voter,
                "matched_index": f.matched_index,
                "lag": status.last_log_index.saturating_sub(f.matched_index),
                "last_answer_ms_ago": f.answered.then_some(f.ack_age_ms),
            })).collect::<Vec<_>>(),
        }),
        Err(error) => json!({"id": probe.id, "addr": probe.addr, "up": false, "error": error}),
    }
}

async fn status(context: &Context) -> anyhow::Result<ExitCode> {
    let probes = discover(&context.client, &context.cluster).await;
    if context.json {
        let rows: Vec<_> = probes.iter().map(probe_json).collect();
        outln!("{}", serde_json::Value::Array(rows));
    } else {
        out!("{}", status_table(&probes));
        for probe in &probes {
            if let Err(error) = &probe.reply {
                eprintln!("{}: {error}", probe.addr);
            }
        }
    }
    if probes.iter().all(|probe| probe.reply.is_err()) {
        eprintln!("no node answered; is the cluster running? start one with `tally-node dev`");
        return Ok(ExitCode::from(2));
    }
    if !has_quorum(&probes) {
        let why = match reachable_leader(&probes) {
            Some(leader) => format!(
                "node {} leads term {} but cannot reach a majority of the voters",
                leader.id, leader.term
            ),
            None => "no reachable node is a leader".to_string(),
        };
        let message = format!(
            "NO QUORUM: {why}; writes and linearizable reads fail until a majority of the \
             voters is running and reachable"
        );
        if context.json {
            eprintln!("{message}");
        } else {
            outln!("{message}");
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn check_init_nodes(nodes: &[NodeSpec]) -> anyhow::Result<()> {
    for (index, node) in nodes.iter().enumerate() {
        if nodes[..index].iter().any(|other| other.id == node.id) {
            bail!("node id {} is listed twice in --nodes", node.id);
        }
        if nodes[..index].iter().any(|other| other.addr == node.addr) {
            bail!("address {} is listed twice in --nodes", node.addr);
        }
    }
    Ok(())
}

async fn init(context: &Context, nodes: &[NodeSpec]) -> anyhow::Result<ExitCode> {
    check_init_nodes(nodes)?;
    let first = &nodes[0].addr;
    let members: Vec<v1::Node> = nodes
        .iter()
        .map(|node| v1::Node {
            id: node.id,
            addr: node.addr.clone(),
        })
        .collect();
    let deadline = Instant::now() + context.timeout;
    // The nodes may still be starting: keep trying while the first one is unreachable.
    loop {
        match context.client.init_cluster(first, members.clone()).await {
            Ok(()) => break,
            Err(error) if error.is_unreachable() && Instant::now() + POLL_INTERVAL < deadline => {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            Err(ClientError::Rejected { code, message }) => bail!(
                "{first} refused to initialize the cluster ({code:?}: {message}); if it is already \
                 initialized, see `tallyctl cluster status`"
            ),
            Err(error) => return Err(error.into()),
        }
    }
    if !context.json {
        eprintln!("cluster initialized through {first}; waiting for a leader...");
    }
    let status = wait_for_leader(&context.client, first, deadline).await?;
    if context.json {
        outln!(
            "{}",
            json!({"leader_id": status.leader_id, "leader_addr": status.leader_addr, "term": status.term})
        );
    } else {
        outln!(
            "leader: node {} at {} (term {})",
            status.leader_id,
            status.leader_addr,
            status.term
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_leader(
    client: &Client,
    addr: &str,
    deadline: Instant,
) -> anyhow::Result<v1::StatusReply> {
    loop {
        let last = match client.status(addr).await {
            Ok(status) if status.leader_id != 0 => return Ok(status),
            Ok(status) => format!("{} is {} in term {}", addr, status.role, status.term),
            Err(error) => error.to_string(),
        };
        if Instant::now() + POLL_INTERVAL >= deadline {
            bail!(
                "no leader elected before the deadline ({last}); check that a majority of the \
                 nodes is running and can reach each other, or raise --timeout"
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The most authoritative reachable node's status (its voters and learners), and every probe.
async fn membership(context: &Context) -> anyhow::Result<(v1::StatusReply, Vec<Probe>)> {
    let probes = discover(&context.client, &context.cluster).await;
    let status = authoritative(&probes)
        .with_context(|| {
            format!(
                "no node of {} answered; is the cluster running? start one with `tally-node dev`",
                context.cluster.join(",")
            )
        })?
        .clone();
    if status.voters.is_empty() {
        bail!("the cluster has no voters yet; initialize it with `tallyctl cluster init`");
    }
    Ok((status, probes))
}

fn ids(nodes: &[v1::Node]) -> Vec<u64> {
    nodes.iter().map(|node| node.id).collect()
}

/// Why `id` at `addr` cannot join a cluster whose membership `status` shows, if it cannot.
pub fn join_conflict(status: &v1::StatusReply, id: u64, addr: &str) -> Option<String> {
    for node in status.voters.iter().chain(&status.learners) {
        let kind = if status.voters.contains(node) {
            "voter"
        } else {
            "learner"
        };
        if node.id == id {
            return Some(format!(
                "node id {id} is already a {kind} of the cluster (at {}); pick an unused id, or \
                 remove it first with `tallyctl cluster remove-node --id {id}`",
                node.addr
            ));
        }
        if normalize(&node.addr) == addr {
            return Some(format!(
                "address {addr} already belongs to node {} ({kind}); a node is added once",
                node.id
            ));
        }
    }
    None
}

async fn add_node(
    context: &Context,
    id: u64,
    addr: &str,
    learner_only: bool,
) -> anyhow::Result<ExitCode> {
    if id == 0 {
        bail!("--id must be a positive node id");
    }
    let addr = NodeAddress::parse(addr)?.to_string();
    let (status, _) = membership(context).await?;
    if let Some(conflict) = join_conflict(&status, id, &addr) {
        bail!("{conflict}; nothing was changed");
    }
    let deadline = Instant::now() + context.timeout;
    // The new node must be running, and be node `id`, before the cluster hears of it.
    let new_node = loop {
        let last = match context.client.status(&addr).await {
            Ok(reply) if reply.id == id => break reply,
            Ok(reply) => bail!(
                "the node at {addr} is node {}, not node {id}; nothing was changed",
                reply.id
            ),
            Err(error) => short_error(&error),
        };
        if Instant::now() + POLL_INTERVAL >= deadline {
            bail!(
                "node {id} at {addr} did not answer within {:?} ({last}); start it first \
                 (`tally-node serve --id {id} ...`); nothing was changed",
                context.timeout
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    if !new_node.voters.is_empty() {
        bail!(
            "node {id} at {addr} already belongs to a cluster (voters {:?}); give the new node \
             an empty data directory; nothing was changed",
            ids(&new_node.voters)
        );
    }
    let learner_index = context
        .client
        .add_learner(v1::Node {
            id,
            addr: addr.clone(),
        })
        .await
        .context("adding the learner failed")?;
    if !context.json {
        eprintln!(
            "node {id} ({addr}) added as learner at log index {learner_index}; catching up..."
        );
    }
    if let Err(error) = wait_caught_up(context, id, learner_index, deadline).await {
        // Leave the cluster as it was: the learner that could not catch up goes again.
        let removed = context
            .client
            .change_membership(ids(&status.voters), vec![id])
            .await;
        let undo = match removed {
            Ok(_) => "the learner was removed again".to_string(),
            Err(e) => format!(
                "removing the learner again failed too ({e}); remove it with `tallyctl cluster \
                 remove-node --id {id}`"
            ),
        };
        bail!("{error:#}; {undo}");
    }
    let mut voter_index = None;
    if !learner_only {
        let (current, _) = membership(context).await?;
        let mut voters = ids(&current.voters);
        if !voters.contains(&id) {
            voters.push(id);
            voters.sort_unstable();
            let index = context
                .client
                .change_membership(voters.clone(), Vec::new())
                .await
                .with_context(|| {
                    format!(
                        "node {id} was added as a learner and caught up, but promoting it \
                         failed; retry with `tallyctl cluster add-node --id {id} --addr {addr}`"
                    )
                })?;
            voter_index = Some(index);
        }
        if !context.json {
            outln!("node {id} caught up and promoted to voter; voters are now {voters:?}");
        }
    } else if !context.json {
        outln!("node {id} caught up as a learner (not promoted: --learner-only)");
    }
    if context.json {
        outln!(
            "{}",
            json!({"id": id, "addr": addr, "learner_log_index": learner_index, "voter_log_index": voter_index})
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits until learner `id` holds the log up to the leader's last index (at least `from`), with a
/// progress bar on a terminal.
async fn wait_caught_up(
    context: &Context,
    id: u64,
    from: u64,
    deadline: Instant,
) -> anyhow::Result<()> {
    let bar = if context.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(from.max(1))
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "  catching up node {msg} [{bar:30}] {pos}/{len} entries",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(id.to_string());
    loop {
        let probes = discover(&context.client, &context.cluster).await;
        let progress = reachable_leader(&probes).and_then(|leader| {
            let follower = leader.followers.iter().find(|f| f.id == id)?;
            Some((follower.matched_index, leader.last_log_index))
        });
        let last = match progress {
            Some((matched, target)) => {
                bar.set_length(target.max(1));
                bar.set_position(matched);
                // Under load the leader's log keeps growing: close enough is caught up.
                if matched >= from && target.saturating_sub(matched) <= CAUGHT_UP_LAG {
                    bar.finish_and_clear();
                    return Ok(());
                }
                format!("it holds {matched} of {target} entries")
            }
            None => "no leader reports its progress".to_string(),
        };
        if Instant::now() + POLL_INTERVAL >= deadline {
            bar.abandon();
            bail!(
                "node {id} did not catch up within {:?} ({last}); raise --timeout for a large \
                 state",
                context.timeout
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Voters that answer the leader now (the leader itself included).
fn live_voters(probes: &[Probe]) -> Option<Vec<u64>> {
    let leader = reachable_leader(probes)?;
    let mut live = vec![leader.id];
    live.extend(
        leader
            .followers
            .iter()
            .filter(|f| f.voter && f.answered && f.ack_age_ms <= UNREACHABLE_AFTER_MS)
            .map(|f| f.id),
    );
    Some(live)
}

/// Refuses a removal that would leave fewer live voters than a majority of `remaining`.
pub fn check_quorum_after(remaining: &[u64], live: &[u64], id: u64) -> anyhow::Result<()> {
    let live_left: Vec<u64> = remaining
        .iter()
        .copied()
        .filter(|voter| live.contains(voter))
        .collect();
    let majority = remaining.len() / 2 + 1;
    if live_left.len() < majority {
        bail!(
            "removing node {id} would leave voters {remaining:?} of which only {live_left:?} \
             answer the leader: fewer than the {majority} a quorum needs; bring the others back \
             (or replace them) first. Nothing was changed"
        );
    }
    Ok(())
}

/// The voter set after removing `id`, or why it cannot be removed.
pub fn voters_without(voters: &[u64], learners: &[u64], id: u64) -> anyhow::Result<Vec<u64>> {
    if !voters.contains(&id) && !learners.contains(&id) {
        bail!(
            "node {id} is not a member of the cluster (voters {voters:?}, learners {learners:?})"
        );
    }
    let remaining: Vec<u64> = voters
        .iter()
        .copied()
        .filter(|voter| *voter != id)
        .collect();
    if remaining.is_empty() {
        bail!("node {id} is the last voter; a cluster cannot remove its last voter");
    }
    Ok(remaining)
}

async fn remove_node(context: &Context, id: u64) -> anyhow::Result<ExitCode> {
    let (status, probes) = membership(context).await?;
    let (voters, learners) = (ids(&status.voters), ids(&status.learners));
    let remaining = voters_without(&voters, &learners, id)?;
    let live = live_voters(&probes).with_context(|| {
        "no reachable leader: a membership change needs a leader with a quorum (see `tallyctl \
         status`)"
    })?;
    check_quorum_after(&remaining, &live, id)?;
    let index = context
        .client
        .change_membership(remaining.clone(), vec![id])
        .await
        .with_context(|| format!("removing node {id} failed"))?;
    if context.json {
        outln!(
            "{}",
            json!({"removed": id, "voters": remaining, "log_index": index})
        );
    } else {
        outln!("node {id} removed at log index {index}; voters are now {remaining:?}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(id: u64, role: &str, term: u64, leader_id: u64) -> Probe {
        Probe {
            addr: format!("10.0.0.{id}:7100"),
            id: Some(id),
            reply: Ok(v1::StatusReply {
                id,
                addr: format!("10.0.0.{id}:7100"),
                role: role.to_string(),
                term,
                leader_id,
                last_log_index: 42,
                last_applied: 41,
                snapshot_index: 0,
                voters: vec![v1::Node {
                    id: 1,
                    addr: "10.0.0.1:7100".into(),
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn status_table_shows_down_nodes_lag_and_health() {
        let mut leader = up(1, "leader", 3, 1);
        if let Ok(status) = &mut leader.reply {
            status.has_quorum = true;
            status.followers = vec![
                v1::FollowerProgress {
                    id: 2,
                    voter: true,
                    matched_index: 0,
                    ack_age_ms: 0,
                    answered: false,
                },
                v1::FollowerProgress {
                    id: 3,
                    voter: true,
                    matched_index: 40,
                    ack_age_ms: 50,
                    answered: true,
                },
            ];
        }
        let probes = vec![
            leader,
            Probe {
                addr: "10.0.0.2:7100".into(),
                id: Some(2),
                reply: Err("connection refused".into()),
            },
            up(3, "follower", 3, 1),
        ];
        let text = status_table(&probes);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            [
                "id",
                "addr",
                "role",
                "term",
                "leader",
                "last_log_index",
                "last_applied",
                "snapshot",
                "lag",
                "health"
            ]
        );
        assert_eq!(
            rows[1],
            [
                "1",
                "10.0.0.1:7100",
                "leader",
                "3",
                "1",
                "42",
                "41",
                "-",
                "0",
                "ok"
            ]
        );
        assert_eq!(
            rows[2],
            [
                "2",
                "10.0.0.2:7100",
                "down",
                "-",
                "-",
                "-",
                "-",
                "-",
                "42",
                "unreachable"
            ]
        );
        assert_eq!(
            rows[3],
            [
                "3",
                "10.0.0.3:7100",
                "follower",
                "3",
                "1",
                "42",
                "41",
                "-",
                "2",
                "ok"
            ]
        );
        assert!(has_quorum(&probes));
        assert_eq!(probe_json(&probes[1])["up"], false);
        assert_eq!(probe_json(&probes[0])["voters"], json!([1]));
        assert_eq!(probe_json(&probes[0])["followers"][1]["lag"], 2);
        assert_eq!(live_voters(&probes), Some(vec![1, 3]));
    }

    #[test]
    fn no_quorum_without_a_leader_or_with_a_cut_off_one() {
        let cut_off = up(1, "leader", 3, 1);
        assert!(!has_quorum(&[cut_off]), "has_quorum is false in the reply");
        assert!(!has_quorum(&[
            up(2, "follower", 3, 0),
            up(3, "candidate", 4, 0)
        ]));
        let (_, flag) = health(
            Some(&v1::StatusReply {
                id: 1,
                ..Default::default()
            }),
            Some(1),
        );
        assert_eq!(flag, "NO QUORUM");
    }

    #[test]
    fn joins_and_removals_are_checked() {
        let status = v1::StatusReply {
            voters: vec![
                v1::Node {
                    id: 1,
                    addr: "10.0.0.1:7100".into(),
                },
                v1::Node {
                    id: 2,
                    addr: "10.0.0.2:7100".into(),
                },
            ],
            learners: vec![v1::Node {
                id: 5,
                addr: "10.0.0.5:7100".into(),
            }],
            ..Default::default()
        };
        assert!(join_conflict(&status, 2, "10.0.0.9:7100")
            .unwrap()
            .contains("already a voter"));
        assert!(join_conflict(&status, 5, "10.0.0.9:7100")
            .unwrap()
            .contains("learner"));
        assert!(join_conflict(&status, 9, "10.0.0.1:7100")
            .unwrap()
            .contains("node 1"));
        assert!(join_conflict(&status, 9, "10.0.0.9:7100").is_none());
        // Three voters, node 3 dead: removing it is fine, removing node 2 is not.
        assert!(check_quorum_after(&[1, 2], &[1, 2], 3).is_ok());
        assert!(check_quorum_after(&[1, 3], &[1, 2], 2).is_err());
    }

    #[test]
    fn authoritative_prefers_the_newest_leader() {
        let probes = vec![
            up(1, "follower", 5, 2),
            up(2, "leader", 5, 2),
            up(3, "leader", 4, 3),
        ];
        assert_eq!(authoritative(&probes).unwrap().id, 2);
        assert!(authoritative(&[]).is_none());
    }

    #[test]
    fn removing_nodes() {
        assert_eq!(voters_without(&[1, 2, 3], &[4], 2).unwrap(), vec![1, 3]);
        assert_eq!(voters_without(&[1, 2, 3], &[4], 4).unwrap(), vec![1, 2, 3]);
        assert!(voters_without(&[1, 2, 3], &[], 9).is_err());
        assert!(voters_without(&[1], &[], 1).is_err());
    }

    #[test]
    fn init_rejects_duplicates() {
        let node = |id, addr: &str| NodeSpec {
            id,
            addr: addr.into(),
        };
        assert!(check_init_nodes(&[node(1, "a:1"), node(2, "b:1")]).is_ok());
        assert!(check_init_nodes(&[node(1, "a:1"), node(1, "b:1")]).is_err());
        assert!(check_init_nodes(&[node(1, "a:1"), node(2, "a:1")]).is_err());
    }
}
