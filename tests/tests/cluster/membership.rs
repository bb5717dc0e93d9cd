//! Safe membership commands and honest status, through `tallyctl` against real nodes:
//! `add-node` refuses an id or address already in the cluster and a node that does not answer
//! (changing nothing), adds a live node as a learner, waits for it to catch up, then promotes it;
//! `remove-node` refuses to leave fewer live voters than a quorum; and when the leader cannot
//! reach a majority, `tallyctl status` says NO QUORUM and exits non-zero, and writes fail saying
//! so instead of hanging.

use std::process::Output;

use tally_client::AccountBuilder;

use crate::harness::{eventually, output_text, TestCluster, CONVERGE_TIMEOUT};

/// Runs `tallyctl ARGS` as the admin, with `--timeout 10` unless ARGS set one.
fn tallyctl(cluster: &TestCluster, args: &[&str]) -> Output {
    let timeout: &[&str] = if args.contains(&"--timeout") {
        &[]
    } else {
        &["--timeout", "10"]
    };
    let args: Vec<&str> = timeout.iter().chain(args).copied().collect();
    cluster.tallyctl(&args)
}

async fn voters(cluster: &TestCluster) -> Vec<u64> {
    let leader = cluster.leader().await;
    let status = cluster.status(leader).await.expect("leader status");
    status.voters.iter().map(|node| node.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_node_refuses_what_it_cannot_do_safely_and_promotes_a_caught_up_node() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let accounts: Vec<_> = (1..=50u128)
        .map(|id| AccountBuilder::new(id, 1, 1).build())
        .collect();
    cluster.client.create_accounts(accounts).await.unwrap();

    // An id already in use, an address already in use: refused, nothing changes.
    let taken_addr = cluster.node(2).addr.clone();
    let used_id = tallyctl(
        &cluster,
        &["cluster", "add-node", "--id", "2", "--addr", "127.0.0.1:1"],
    );
    assert!(!used_id.status.success(), "{}", output_text(&used_id));
    assert!(
        output_text(&used_id).contains("already a voter"),
        "{}",
        output_text(&used_id)
    );
    let used_addr = tallyctl(
        &cluster,
        &["cluster", "add-node", "--id", "7", "--addr", &taken_addr],
    );
    assert!(!used_addr.status.success(), "{}", output_text(&used_addr));
    assert!(
        output_text(&used_addr).contains("already belongs to node 2"),
        "{}",
        output_text(&used_addr)
    );

    // A node that is not running: refused within the deadline, nothing changes.
    let silent = tallyctl(
        &cluster,
        &[
            "--timeout",
            "2",
            "cluster",
            "add-node",
            "--id",
            "4",
            "--addr",
            "127.0.0.1:9",
        ],
    );
    assert!(!silent.status.success(), "{}", output_text(&silent));
    assert!(
        output_text(&silent).contains("did not answer"),
        "{}",
        output_text(&silent)
    );
    assert_eq!(voters(&cluster).await, vec![1, 2, 3]);
    let leader = cluster.leader().await;
    assert!(cluster.status(leader).await.unwrap().learners.is_empty());

    // A running, empty node 4: added, caught up, promoted.
    let certs = &cluster.certs;
    certs
        .authority
        .issue_node(4, &["127.0.0.1".into()], tally_tls::Validity::days(30))
        .unwrap()
        .write(&certs.dir, &tally_tls::node_name(4))
        .unwrap();
    let four = cluster.spawn_node(4, certs);
    let addr = four.addr.clone();
    cluster.nodes.push(four);
    let added = tallyctl(
        &cluster,
        &["cluster", "add-node", "--id", "4", "--addr", &addr],
    );
    assert!(added.status.success(), "{}", output_text(&added));
    assert!(
        output_text(&added).contains("promoted to voter"),
        "{}",
        output_text(&added)
    );
    assert_eq!(voters(&cluster).await, vec![1, 2, 3, 4]);
    let applied = cluster
        .status(4)
        .await
        .expect("node 4 answers")
        .last_applied;
    assert!(applied > 0, "node 4 holds the log");

    // Node 3 dies. Removing a live voter would leave {leader, 3, ...} short of a quorum of live
    // voters only when too few answer: with four voters and one dead, removing a live one
    // leaves three voters of which two answer, a majority, so it is allowed; a second removal
    // of a live voter would leave two voters of which one answers, and is refused.
    cluster.kill(3);
    eventually(
        CONVERGE_TIMEOUT,
        "the leader to see node 3 gone",
        || async {
            let status = tallyctl(&cluster, &["status"]);
            output_text(&status).contains("unreachable").then_some(())
        },
    )
    .await;
    let leader = cluster.leader().await;
    let other_live = [1, 2, 4]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a live follower");
    let removed = tallyctl(
        &cluster,
        &["cluster", "remove-node", "--id", &other_live.to_string()],
    );
    assert!(removed.status.success(), "{}", output_text(&removed));
    let last_live = [1, 2, 4]
        .into_iter()
        .find(|id| *id != leader && *id != other_live)
        .expect("the last live follower");
    let refused = tallyctl(
        &cluster,
        &["cluster", "remove-node", "--id", &last_live.to_string()],
    );
    assert!(!refused.status.success(), "{}", output_text(&refused));
    assert!(
        output_text(&refused).contains("quorum"),
        "{}",
        output_text(&refused)
    );
    let mut left = voters(&cluster).await;
    left.sort_unstable();
    let mut expected: Vec<u64> = [1, 2, 3, 4]
        .into_iter()
        .filter(|id| *id != other_live)
        .collect();
    expected.sort_unstable();
    assert_eq!(left, expected, "the refused removal changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_a_majority_says_no_quorum() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let healthy = tallyctl(&cluster, &["status"]);
    assert!(healthy.status.success(), "{}", output_text(&healthy));
    assert!(!output_text(&healthy).contains("NO QUORUM"));

    let leader = cluster.leader().await;
    for id in [1, 2, 3].into_iter().filter(|id| *id != leader) {
        cluster.kill(id);
    }
    let status = eventually(
        CONVERGE_TIMEOUT,
        "tallyctl status to say NO QUORUM",
        || async {
            let output = tallyctl(&cluster, &["status"]);
            output_text(&output).contains("NO QUORUM").then_some(output)
        },
    )
    .await;
    assert_eq!(status.status.code(), Some(1), "{}", output_text(&status));
    let json = tallyctl(&cluster, &["--json", "status"]);
    assert_eq!(json.status.code(), Some(1), "{}", output_text(&json));
    let nodes: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let me = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == leader)
        .expect("the leader answers");
    assert_eq!(me["role"], "leader");
    assert_eq!(me["has_quorum"], false);

    // A write fails fast and says why.
    let write = tallyctl(
        &cluster,
        &[
            "--timeout",
            "3",
            "account",
            "create",
            "--id",
            "9",
            "--ledger",
            "1",
            "--code",
            "1",
        ],
    );
    assert!(!write.status.success(), "{}", output_text(&write));
    assert!(
        output_text(&write).contains("NO QUORUM"),
        "{}",
        output_text(&write)
    );
}
