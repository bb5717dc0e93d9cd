//! Every node serves Prometheus metrics on its own port: each series the docs list is there, and
//! the counters and indexes move while the cluster works.

use std::time::Duration;

use tally_client::{AccountBuilder, TransferBuilder};

use crate::harness::{eventually, TestCluster};

async fn scrape(addr: &str) -> Option<String> {
    let response = reqwest::get(format!("http://{addr}/metrics")).await.ok()?;
    response.status().is_success().then_some(())?;
    response.text().await.ok()
}

/// The value of the first sample of `series` (a metric name with its labels, as exported).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_export_every_listed_series_and_they_move() {
    let cluster = TestCluster::start_with_metrics(3, &[]).await;
    let leader = cluster.leader().await;
    let leader_metrics = cluster.node(leader).metrics_addr.clone();
    // The state gauges are sampled twice a second: wait for a sample taken as leader.
    let before = eventually(Duration::from_secs(30), "the leader's metrics", || async {
        let text = scrape(&leader_metrics).await?;
        (value(&text, "tally_raft_role{role=\"leader\"}")? == 1.0).then_some(())?;
        value(&text, "tally_raft_applied_index").map(|applied| (text, applied))
    })
    .await;

    let accounts = vec![
        AccountBuilder::new(1, 1, 1).build(),
        AccountBuilder::new(2, 1, 1).build(),
    ];
    cluster.client.create_accounts(accounts).await.unwrap();
    for id in 0..20u128 {
        let transfer = TransferBuilder::new(100 + id, 1, 2, 5, 1, 1).build();
        cluster
            .client
            .create_transfers(vec![transfer])
            .await
            .unwrap();
    }

    // Across the nodes, every series the node defines shows up, and the applied index moved.
    let names: Vec<&str> = tally_node::metrics::ALL
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let texts = eventually(
        Duration::from_secs(30),
        "every series on some node",
        || async {
            let mut texts = Vec::new();
            for node in &cluster.nodes {
                texts.push(scrape(&node.metrics_addr).await?);
            }
            let all = texts.join("\n");
            let missing: Vec<&&str> = names.iter().filter(|name| !all.contains(**name)).collect();
            let leader_text = scrape(&leader_metrics).await?;
            let applied = value(&leader_text, "tally_raft_applied_index")?;
            (missing.is_empty() && applied > before.1).then_some((texts, leader_text))
        },
    )
    .await;
    let (_, leader_text) = texts;
    assert!(value(&leader_text, "tally_entries_applied_total").unwrap_or(0.0) >= 20.0);
    assert!(
        leader_text
            .contains("tally_grpc_requests_total{method=\"Ledger/CreateTransfers\",code=\"Ok\"}"),
        "{leader_text}"
    );
    assert!(
        leader_text.contains("tally_storage_fsync_seconds_bucket"),
        "{leader_text}"
    );
    assert_eq!(value(&leader_text, "tally_raft_has_quorum"), Some(1.0));
    for follower in [1, 2, 3].into_iter().filter(|id| *id != leader) {
        let series = format!("tally_raft_replication_lag_entries{{follower=\"{follower}\"}}");
        assert!(
            value(&leader_text, &series).is_some(),
            "{series}: {leader_text}"
        );
    }
}
