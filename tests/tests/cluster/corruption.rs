//! A flipped byte in a stored value is caught by its crc32: the damaged replica refuses to build
//! on it (it stops applying, and says how to rebuild it from its peers) while the other two keep
//! the cluster serving with the right data.

use tally_client::{AccountBuilder, Balances, TransferBuilder};
use tally_node::storage::{KeyRange, ReadView, RocksStorage, Space, Storage, WriteBatch};

use crate::harness::{eventually, TestCluster, CONVERGE_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_stops_the_damaged_replica_and_says_how_to_rebuild_it() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let accounts = vec![
        AccountBuilder::new(1, 1, 1).build(),
        AccountBuilder::new(2, 1, 1).build(),
    ];
    cluster.client.create_accounts(accounts).await.unwrap();
    let transfer = |id: u128| TransferBuilder::new(id, 1, 2, 5, 1, 1).build();
    cluster
        .client
        .create_transfers(vec![transfer(10)])
        .await
        .unwrap();
    cluster.wait_caught_up().await;

    // Flip one byte inside every stored account of a follower, while it is down.
    let leader = cluster.leader().await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    cluster.kill(victim);
    {
        let storage = RocksStorage::open(&cluster.node(victim).data).unwrap();
        let mut damaged = WriteBatch::default();
        storage
            .scan(
                Space::Accounts,
                &KeyRange::all(),
                false,
                &mut |key, value| {
                    let mut value = value.to_vec();
                    let middle = value.len() / 2;
                    value[middle] ^= 0x01;
                    damaged.put(Space::Accounts, key.to_vec(), value);
                    true
                },
            )
            .unwrap();
        assert!(!damaged.ops.is_empty());
        storage.write(damaged).unwrap();
        tally_node::storage::sync_blocking(&storage).unwrap();
    }
    cluster.restart(victim);

    // A transfer on the damaged accounts: the cluster commits it; the victim cannot apply it.
    cluster
        .client
        .create_transfers(vec![transfer(11)])
        .await
        .unwrap();
    let log_path = cluster.node(victim).log.clone();
    let log = eventually(CONVERGE_TIMEOUT, "the damaged replica to report it", || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        async move { log.contains("is corrupt").then_some(log) }
    })
    .await;
    assert!(log.contains("crc32"), "{log}");
    assert!(log.contains("tallyctl cluster remove-node"), "{log}");
    let leader_applied = cluster.status(leader).await.unwrap().last_applied;
    let status = cluster.status(victim).await;
    assert!(
        status
            .as_ref()
            .is_none_or(|status| status.last_applied < leader_applied),
        "the damaged replica applied past the damage: {status:?}"
    );

    // The others serve the right balances and keep taking writes.
    cluster
        .client
        .create_transfers(vec![transfer(12)])
        .await
        .unwrap();
    let accounts = cluster.client.lookup_accounts(&[1, 2]).await.unwrap();
    assert_eq!(Balances::of_account(&accounts[1]).credits_posted, 15);
}
