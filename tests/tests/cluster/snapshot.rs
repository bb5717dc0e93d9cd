//! A node that was down while the leader compacted its log catches up through a snapshot.

use tally_client::{AccountBuilder, CreateAccountResult, CreateTransferResult, TransferBuilder};

use crate::harness::{eventually, TestCluster, CONVERGE_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_through_a_snapshot() {
    let compact = [
        ("TALLY__RAFT__SNAPSHOT_EVERY_ENTRIES", "20"),
        ("TALLY__RAFT__ENTRIES_KEPT_BEHIND_SNAPSHOT", "5"),
    ];
    let mut cluster = TestCluster::start(3, &compact).await;
    let accounts = (1..=4)
        .map(|id| AccountBuilder::new(id, 3, 1).build())
        .collect();
    assert!(cluster
        .client
        .create_accounts(accounts)
        .await
        .unwrap()
        .iter()
        .all(|r| *r == CreateAccountResult::Ok));
    let leader = cluster.leader().await;
    let lagging = cluster
        .nodes
        .iter()
        .map(|node| node.id)
        .find(|id| *id != leader)
        .unwrap();
    cluster.kill(lagging);
    let behind = 0;

    // Many small requests: many log entries, so the leader snapshots and purges past `behind`.
    for id in 1..=120u128 {
        let transfer =
            TransferBuilder::new(10_000 + id, 1 + id % 4, 1 + (id + 1) % 4, id, 3, 1).build();
        let results = cluster
            .client
            .create_transfers(vec![transfer])
            .await
            .unwrap();
        assert_eq!(results, vec![CreateTransferResult::Ok]);
    }
    let purged = eventually(CONVERGE_TIMEOUT, "the leader to purge its log", || async {
        let status = cluster.status(leader).await?;
        (status.purged_index > behind + 20).then_some(status.purged_index)
    })
    .await;

    cluster.restart(lagging);
    cluster.wait_caught_up().await;
    let status = cluster.status(lagging).await.expect("lagging node status");
    assert!(
        status.snapshot_index > 0,
        "node {lagging} caught up without installing a snapshot (leader purged up to {purged}): {status:?}"
    );
    let digests = cluster.digests().await;
    for (id, digest) in &digests {
        assert_eq!(
            digest.digest, digests[0].1.digest,
            "node {id} differs after the snapshot"
        );
        assert_eq!(digest.transfers, 120);
    }
}
