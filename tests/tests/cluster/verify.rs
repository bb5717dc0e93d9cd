//! `tallyctl verify` passes on a healthy cluster and fails, naming the node, after its data
//! was tampered with.

use std::process::Command;

use tally_client::{AccountBuilder, CreateAccountResult, CreateTransferResult, TransferBuilder};
use tally_ledger::Account;
use tally_node::storage::codec::{decode, encode};
use tally_node::storage::keys::u128_key;
use tally_node::storage::{ReadView, RocksStorage, Space, Storage, WriteBatch};

use crate::harness::{binary, TestCluster};

fn verify(cluster: &TestCluster) -> (bool, String) {
    let output = Command::new(binary("tallyctl"))
        .args(["--cluster", &cluster.cluster_arg(), "verify"])
        .envs(cluster.certs.env("admin"))
        .output()
        .expect("run tallyctl verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_when_healthy_and_catches_tampered_data() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let accounts = (1..=3)
        .map(|id| AccountBuilder::new(id, 5, 1).build())
        .collect();
    assert_eq!(
        cluster.client.create_accounts(accounts).await.unwrap(),
        vec![CreateAccountResult::Ok; 3]
    );
    let transfers = (1..=30u128)
        .map(|id| TransferBuilder::new(500 + id, 1 + id % 3, 1 + (id + 1) % 3, id, 5, 1).build())
        .collect();
    assert!(cluster
        .client
        .create_transfers(transfers)
        .await
        .unwrap()
        .iter()
        .all(|r| *r == CreateTransferResult::Ok));
    cluster.wait_caught_up().await;

    let (ok, text) = verify(&cluster);
    assert!(ok, "verify failed on a healthy cluster:\n{text}");

    // Tamper with a follower's copy of account 2 (a well-formed value, so only the digest and
    // the totals can tell).
    let leader = cluster.leader().await;
    let victim = cluster
        .nodes
        .iter()
        .map(|node| node.id)
        .find(|id| *id != leader)
        .unwrap();
    cluster.kill(victim);
    {
        let storage =
            RocksStorage::open(&cluster.node(victim).data).expect("open the victim's data");
        let stored = storage
            .get(Space::Accounts, &u128_key(2))
            .unwrap()
            .expect("account 2 stored");
        let mut account: Account = decode(Space::Accounts, &stored).unwrap();
        account.credits_posted += 1_000;
        let mut batch = WriteBatch::default();
        batch.put(Space::Accounts, u128_key(2).to_vec(), encode(&account));
        storage.write(batch).unwrap();
        tally_node::storage::sync_blocking(&storage).unwrap();
    }
    cluster.restart(victim);
    cluster.wait_caught_up().await;

    let (ok, text) = verify(&cluster);
    assert!(
        !ok,
        "verify passed although node {victim} was tampered with:\n{text}"
    );
    assert!(
        text.contains(&format!("node {victim}")) || text.contains(&format!("{victim}")),
        "{text}"
    );
}
