//! A pending transfer's timeout releases its hold on time on an idle cluster: the leader
//! proposes an entry when the first timeout has passed, with no other traffic to carry it.

use std::time::Duration;

use tally_client::codes::{transfer_flags, RESULT_OK};
use tally_client::{AccountBuilder, Balances, TransferBuilder};

use crate::harness::{eventually, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_expires_on_an_idle_cluster() {
    let cluster = TestCluster::start(3, &[]).await;
    let client = cluster.client.clone();
    let accounts = vec![
        AccountBuilder::new(1, 9, 1).build(),
        AccountBuilder::new(2, 9, 1).build(),
    ];
    assert_eq!(
        client.create_accounts(accounts).await.unwrap(),
        vec![RESULT_OK; 2]
    );
    let hold = TransferBuilder::new(10, 1, 2, 50, 9, 1)
        .flags(transfer_flags::PENDING)
        .timeout_seconds(1)
        .build();
    assert_eq!(
        client.create_transfers(vec![hold]).await.unwrap(),
        vec![RESULT_OK]
    );
    let held = client.lookup_accounts(&[1]).await.unwrap();
    assert_eq!(Balances::of_account(&held[0]).debits_pending, 50);

    // Nothing else is sent: only the pulse can expire the hold.
    eventually(Duration::from_secs(15), "the hold to expire", || async {
        let accounts = client.lookup_accounts(&[1, 2]).await.ok()?;
        let debit = Balances::of_account(&accounts[0]);
        let credit = Balances::of_account(&accounts[1]);
        (debit.debits_pending == 0 && credit.credits_pending == 0).then_some(())
    })
    .await;
}
