//! `tallyctl cluster ...`: bootstrap, and a status table built by asking every node we know of
//! (the --cluster list plus the voters and learners they report), with each member's lag and
//! health as the leader sees it. Membership changes are in `membership.rs`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde_json::json;
use tally_client::{Client, ClientError, NodeAddress};
use tally_proto::v1;
use tokio::time::Instant;

use crate::cli::{ClusterCommand, NodeSpec};
use crate::membership;
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
        } => membership::add_node(context, id, &addr, learner_only).await,
        ClusterCommand::RemoveNode { id } => membership::remove_node(context, id).await,
        ClusterCommand::Status => status(context).await,
        ClusterCommand::TransferLeader { id } => membership::transfer_leader(context, id).await,
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

pub fn normalize(addr: &str) -> String {
    NodeAddress::parse(addr)
        .map(|addr| addr.to_string())
        .unwrap_or_else(|_| addr.trim().to_string())
}

pub fn short_error(error: &ClientError) -> String {
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

/// Voters that answer the leader now (the leader itself included).
pub fn live_voters(probes: &[Probe]) -> Option<Vec<u64>> {
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
