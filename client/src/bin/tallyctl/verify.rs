//! `tallyctl verify`: a checkpoint through Raft, then every member's digest at that log index,
//! compared across nodes, with every ledger checked for debits == credits.

use std::process::ExitCode;

use serde_json::json;
use tally_client::Client;
use tally_proto::{u128_of, v1};
use tokio::time::Instant;

use crate::cluster::{authoritative, discover, POLL_INTERVAL};
use crate::output::Table;
use crate::Context;

/// A member's digest at the checkpoint.
#[derive(Debug)]
pub struct NodeDigest {
    pub id: u64,
    pub addr: String,
    pub reply: v1::GetDigestReply,
}

pub async fn run(context: &Context) -> anyhow::Result<ExitCode> {
    // The checkpoint first: once it is committed, the members the leader reports are the ones
    // that must reach it (right after `cluster init` they may not be known before).
    let log_index = context.client.checkpoint().await?;
    let probes = discover(&context.client, &context.cluster).await;
    let Some(status) = authoritative(&probes) else {
        eprintln!(
            "could not reach any node of {}; is the cluster running? start one with `tally-node dev`",
            context.cluster.join(",")
        );
        return Ok(ExitCode::from(2));
    };
    let members: Vec<v1::Node> = status
        .voters
        .iter()
        .chain(&status.learners)
        .cloned()
        .collect();
    if members.is_empty() {
        eprintln!(
            "no node reports any member yet; is the cluster initialized? (`tallyctl status`)"
        );
        return Ok(ExitCode::from(2));
    }
    let deadline = Instant::now() + context.timeout;
    let replies = futures::future::join_all(
        members
            .iter()
            .map(|node| wait_for_digest(&context.client, node, log_index, deadline)),
    )
    .await;
    let mut digests = Vec::new();
    let mut unreachable = Vec::new();
    for (node, reply) in members.iter().zip(replies) {
        match reply {
            Ok(reply) => digests.push(NodeDigest {
                id: node.id,
                addr: node.addr.clone(),
                reply,
            }),
            Err(error) => unreachable.push(format!("node {} at {}: {error}", node.id, node.addr)),
        }
    }
    let problems = check(&digests);
    report(context, log_index, &digests, &unreachable, &problems);
    Ok(if !unreachable.is_empty() {
        ExitCode::from(2)
    } else if !problems.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn wait_for_digest(
    client: &Client,
    node: &v1::Node,
    log_index: u64,
    deadline: Instant,
) -> Result<v1::GetDigestReply, String> {
    loop {
        let last = match client.get_digest(&node.addr, log_index).await {
            Ok(reply) if reply.ready => return Ok(reply),
            Ok(_) => format!("has not applied log index {log_index} yet (lagging or stuck)"),
            Err(error) => error.to_string(),
        };
        if Instant::now() + POLL_INTERVAL >= deadline {
            return Err(format!(
                "{last}; gave up at the deadline (raise --timeout?)"
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Everything wrong with a set of digests taken at the same log index: unbalanced ledgers on any
/// node, and any node whose digest, counts or ledger totals differ from the first node's.
pub fn check(digests: &[NodeDigest]) -> Vec<String> {
    let mut problems = Vec::new();
    for node in digests {
        for totals in &node.reply.ledgers {
            let debits_posted = u128_of(totals.debits_posted);
            let credits_posted = u128_of(totals.credits_posted);
            let debits_pending = u128_of(totals.debits_pending);
            let credits_pending = u128_of(totals.credits_pending);
            if debits_posted != credits_posted {
                problems.push(format!(
                    "node {} ledger {}: debits_posted {debits_posted} != credits_posted {credits_posted}",
                    node.id, totals.ledger
                ));
            }
            if debits_pending != credits_pending {
                problems.push(format!(
                    "node {} ledger {}: debits_pending {debits_pending} != credits_pending {credits_pending}",
                    node.id, totals.ledger
                ));
            }
        }
    }
    let Some(reference) = digests.first() else {
        return problems;
    };
    for node in &digests[1..] {
        compare(reference, node, &mut problems);
    }
    problems
}

fn compare(reference: &NodeDigest, node: &NodeDigest, problems: &mut Vec<String>) {
    let (a, b) = (&reference.reply, &node.reply);
    if a.digest != b.digest {
        problems.push(format!(
            "node {} digest {} != node {} digest {}",
            node.id, b.digest, reference.id, a.digest
        ));
    }
    for (what, left, right) in [
        ("accounts", a.accounts, b.accounts),
        ("transfers", a.transfers, b.transfers),
        ("records", a.records, b.records),
    ] {
        if left != right {
            problems.push(format!(
                "node {} has {right} {what}, node {} has {left}",
                node.id, reference.id
            ));
        }
    }
    let ledgers = |reply: &v1::GetDigestReply| {
        reply
            .ledgers
            .iter()
            .map(|totals| (totals.ledger, *totals))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (left, right) = (ledgers(a), ledgers(b));
    for ledger in left
        .keys()
        .chain(right.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (left.get(ledger), right.get(ledger)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => problems.push(format!(
                "node {} ledger {ledger} totals {} != node {} totals {}",
                node.id,
                totals_text(y),
                reference.id,
                totals_text(x)
            )),
            (Some(_), None) => problems.push(format!(
                "node {} lacks ledger {ledger}, which node {} has",
                node.id, reference.id
            )),
            (None, _) => problems.push(format!(
                "node {} has ledger {ledger}, which node {} lacks",
                node.id, reference.id
            )),
        }
    }
}

fn totals_text(totals: &v1::LedgerTotals) -> String {
    format!(
        "(debits_posted {}, credits_posted {}, debits_pending {}, credits_pending {}, accounts {})",
        u128_of(totals.debits_posted),
        u128_of(totals.credits_posted),
        u128_of(totals.debits_pending),
        u128_of(totals.credits_pending),
        totals.accounts
    )
}

fn report(
    context: &Context,
    log_index: u64,
    digests: &[NodeDigest],
    unreachable: &[String],
    problems: &[String],
) {
    if context.json {
        let nodes: Vec<_> = digests
            .iter()
            .map(|node| {
                json!({
                    "id": node.id,
                    "addr": node.addr,
                    "digest": node.reply.digest,
                    "accounts": node.reply.accounts,
                    "transfers": node.reply.transfers,
                    "records": node.reply.records,
                    "ledgers": node.reply.ledgers.len(),
                })
            })
            .collect();
        let ok = unreachable.is_empty() && problems.is_empty();
        outln!(
            "{}",
            json!({"ok": ok, "log_index": log_index, "nodes": nodes, "unreachable": unreachable, "problems": problems})
        );
        return;
    }
    let mut table = Table::new(&[
        "id",
        "addr",
        "digest",
        "accounts",
        "transfers",
        "records",
        "ledgers",
    ]);
    for node in digests {
        let digest: String = node.reply.digest.chars().take(16).collect();
        table.push(vec![
            node.id.to_string(),
            node.addr.clone(),
            digest,
            node.reply.accounts.to_string(),
            node.reply.transfers.to_string(),
            node.reply.records.to_string(),
            node.reply.ledgers.len().to_string(),
        ]);
    }
    out!("{}", table.render());
    for line in unreachable {
        outln!("UNREACHABLE: {line}");
    }
    for line in problems {
        outln!("MISMATCH: {line}");
    }
    if unreachable.is_empty() && problems.is_empty() {
        let digest = digests
            .first()
            .map_or("", |node| node.reply.digest.as_str());
        outln!(
            "OK: {} nodes agree at index {log_index}, digest {digest}",
            digests.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(ledger: u32, debits: u128, credits: u128) -> v1::LedgerTotals {
        v1::LedgerTotals {
            ledger,
            debits_posted: Some(debits.into()),
            credits_posted: Some(credits.into()),
            debits_pending: Some(0u128.into()),
            credits_pending: Some(0u128.into()),
            accounts: 2,
        }
    }

    fn node(id: u64, digest: &str, ledgers: Vec<v1::LedgerTotals>) -> NodeDigest {
        NodeDigest {
            id,
            addr: format!("n{id}:1"),
            reply: v1::GetDigestReply {
                ready: true,
                log_index: 9,
                digest: digest.to_string(),
                ledgers,
                accounts: 2,
                transfers: 5,
                records: 0,
            },
        }
    }

    #[test]
    fn identical_balanced_nodes_pass() {
        let nodes = vec![
            node(1, "aa", vec![totals(840, 10, 10)]),
            node(2, "aa", vec![totals(840, 10, 10)]),
            node(3, "aa", vec![totals(840, 10, 10)]),
        ];
        assert_eq!(check(&nodes), Vec::<String>::new());
        assert!(check(&[]).is_empty());
    }

    #[test]
    fn unbalanced_ledger_is_named() {
        let mut unbalanced = totals(978, 7, 8);
        unbalanced.debits_pending = Some(1u128.into());
        let problems = check(&[node(1, "aa", vec![totals(840, 1, 1), unbalanced])]);
        assert_eq!(
            problems,
            vec![
                "node 1 ledger 978: debits_posted 7 != credits_posted 8",
                "node 1 ledger 978: debits_pending 1 != credits_pending 0",
            ]
        );
    }

    #[test]
    fn diverging_node_is_named() {
        let mut diverged = node(3, "bb", vec![totals(840, 11, 11)]);
        diverged.reply.transfers = 6;
        let nodes = vec![
            node(1, "aa", vec![totals(840, 10, 10)]),
            node(2, "aa", vec![totals(840, 10, 10)]),
            diverged,
        ];
        let problems = check(&nodes);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert_eq!(problems[0], "node 3 digest bb != node 1 digest aa");
        assert_eq!(problems[1], "node 3 has 6 transfers, node 1 has 5");
        assert!(problems[2].starts_with("node 3 ledger 840 totals (debits_posted 11"));
    }

    #[test]
    fn missing_ledger_is_named() {
        let nodes = vec![
            node(1, "aa", vec![totals(840, 10, 10)]),
            node(2, "aa", vec![totals(840, 10, 10), totals(978, 1, 1)]),
        ];
        assert_eq!(
            check(&nodes),
            vec!["node 2 has ledger 978, which node 1 lacks"]
        );
    }
}
