//! Operators' procedures on real processes: a 5-node cluster hands leadership over on request and
//! replaces a dead node with a new, empty one that catches up through a snapshot; a rolling restart
//! of every node under load loses and duplicates nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tally_client::{AccountBuilder, CreateTransferResult, TransferBuilder};

use crate::harness::{eventually, output_text, TestCluster, CONVERGE_TIMEOUT};

/// Small snapshot settings, so a new node catches up through a snapshot.
const SNAPSHOT_OFTEN: [(&str, &str); 2] = [
    ("TALLY__RAFT__SNAPSHOT_EVERY_ENTRIES", "50"),
    ("TALLY__RAFT__ENTRIES_KEPT_BEHIND_SNAPSHOT", "10"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_hand_over_leadership_and_replace_a_dead_node() {
    let mut cluster = TestCluster::start_with_metrics(5, &SNAPSHOT_OFTEN).await;
    let accounts: Vec<_> = (1..=10u128)
        .map(|id| AccountBuilder::new(id, 1, 1).build())
        .collect();
    cluster.client.create_accounts(accounts).await.unwrap();
    for n in 0..150u128 {
        let transfer = TransferBuilder::new(100 + n, 1 + n % 10, 1 + (n + 1) % 10, 2, 1, 1).build();
        cluster
            .client
            .create_transfers(vec![transfer])
            .await
            .unwrap();
    }

    // Leadership moves to the voter named.
    let leader = cluster.leader().await;
    let target = (1..=5).find(|id| *id != leader).unwrap();
    let moved = cluster.tallyctl(&["cluster", "transfer-leader", &target.to_string()]);
    assert!(moved.status.success(), "{}", output_text(&moved));
    assert_eq!(cluster.leader().await, target);

    // A follower dies for good: remove it, add a new empty node 6 in its place.
    let dead = (1..=5).find(|id| *id != target && *id != leader).unwrap();
    cluster.kill(dead);
    let removed = cluster.tallyctl(&["cluster", "remove-node", "--id", &dead.to_string()]);
    assert!(removed.status.success(), "{}", output_text(&removed));
    let certs = &cluster.certs;
    certs
        .authority
        .issue_node(6, &["127.0.0.1".into()], tally_tls::Validity::days(30))
        .unwrap()
        .write(&certs.dir, &tally_tls::node_name(6))
        .unwrap();
    let six = cluster.spawn_node(6, certs);
    let (addr, metrics) = (six.addr.clone(), six.metrics_addr.clone());
    cluster.nodes.push(six);
    let added = cluster.tallyctl(&["cluster", "add-node", "--id", "6", "--addr", &addr]);
    assert!(added.status.success(), "{}", output_text(&added));
    let status = cluster.status(target).await.unwrap();
    let mut voters: Vec<u64> = status.voters.iter().map(|node| node.id).collect();
    voters.sort_unstable();
    let mut expected: Vec<u64> = (1..=5).filter(|id| *id != dead).chain([6]).collect();
    expected.sort_unstable();
    assert_eq!(voters, expected);
    // It caught up through a snapshot (the log before it was purged).
    let installed = eventually(CONVERGE_TIMEOUT, "node 6's metrics", || async {
        let text = reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|line| line.starts_with("tally_snapshots_installed_total"))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
    })
    .await;
    assert!(installed >= 1.0, "node 6 installed {installed} snapshots");
    let verified = cluster.tallyctl(&["verify"]);
    assert!(verified.status.success(), "{}", output_text(&verified));
    assert!(
        output_text(&verified).contains("OK: 5 nodes agree"),
        "{}",
        output_text(&verified)
    );

    // The logs tell the story at info: the hand-over, and the dead peer once, not per heartbeat.
    let log = std::fs::read_to_string(&cluster.node(target).log).unwrap();
    assert!(
        log.contains(&format!("leader changed: node {target} leads")),
        "{log}"
    );
    let lost = log
        .lines()
        .filter(|line| line.contains("peer unreachable") && line.contains(&format!("peer={dead}")))
        .count();
    assert!(
        (1..10).contains(&lost),
        "{lost} lines about node {dead}: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_loses_nothing() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let accounts = vec![
        AccountBuilder::new(1, 1, 1).build(),
        AccountBuilder::new(2, 1, 1).build(),
    ];
    cluster.client.create_accounts(accounts).await.unwrap();

    // One writer: each transfer is retried with its id until acknowledged, one unit each.
    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let (client, running) = (cluster.client.clone(), running.clone());
        tokio::spawn(async move {
            let mut acknowledged = 0u128;
            while running.load(Ordering::Relaxed) {
                let transfer = TransferBuilder::new(1000 + acknowledged, 1, 2, 1, 1, 1).build();
                match client.create_transfers(vec![transfer]).await {
                    Ok(results) => {
                        // 0 ok, or `exists` when a retry found the first attempt committed.
                        assert!(
                            results == vec![CreateTransferResult::Ok]
                                || results == vec![CreateTransferResult::Exists],
                            "{results:?}"
                        );
                        acknowledged += 1;
                    }
                    Err(_) => continue,
                }
            }
            acknowledged
        })
    };
    for id in [1, 2, 3] {
        let before = cluster
            .status(cluster.leader().await)
            .await
            .unwrap()
            .last_applied;
        cluster.kill(id);
        cluster.restart(id);
        // Back and caught up, and the writer made progress meanwhile.
        eventually(
            CONVERGE_TIMEOUT,
            "the restarted node to catch up",
            || async {
                let status = cluster.status(id).await?;
                (status.last_applied > before + 5).then_some(())
            },
        )
        .await;
    }
    running.store(false, Ordering::Relaxed);
    let acknowledged = writer.await.unwrap();
    assert!(
        acknowledged > 20,
        "only {acknowledged} transfers went through"
    );
    let accounts = cluster.client.lookup_accounts(&[1, 2]).await.unwrap();
    let moved = tally_client::Balances::of_account(&accounts[1]).credits_posted;
    assert_eq!(moved, acknowledged, "every acknowledged transfer, once");
    let verified = cluster.tallyctl(&["verify"]);
    assert!(verified.status.success(), "{}", output_text(&verified));
}
