//! `tallyctl cluster add-node | remove-node | transfer-leader`: membership changes that refuse
//! what they cannot do safely, changing nothing: a used id or address, a node that does not
//! answer, a learner that does not catch up, a removal that leaves no live quorum.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use serde_json::json;
use tally_client::NodeAddress;
use tally_proto::v1;
use tokio::time::Instant;

use crate::cluster::{
    authoritative, discover, live_voters, normalize, reachable_leader, short_error, Probe,
    CAUGHT_UP_LAG, POLL_INTERVAL,
};
use crate::Context;

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

pub async fn add_node(
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

pub async fn remove_node(context: &Context, id: u64) -> anyhow::Result<ExitCode> {
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

pub async fn transfer_leader(context: &Context, id: u64) -> anyhow::Result<ExitCode> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn removing_nodes() {
        assert_eq!(voters_without(&[1, 2, 3], &[4], 2).unwrap(), vec![1, 3]);
        assert_eq!(voters_without(&[1, 2, 3], &[4], 4).unwrap(), vec![1, 2, 3]);
        assert!(voters_without(&[1, 2, 3], &[], 9).is_err());
        assert!(voters_without(&[1], &[], 1).is_err());
    }
}
