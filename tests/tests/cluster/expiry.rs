//! A pending transfer's timeout releases its hold on time on an idle cluster: the leader
//! proposes an entry when the first timeout has passed, with no other traffic to carry it. A
//! lookup says where each transfer stands: single, pending, posted, voided or expired.

use std::process::{Command, Stdio};
use std::time::Duration;

use tally_client::{
    AccountBuilder, Balances, CreateAccountResult, CreateTransferResult, PendingStatus,
    TransferBuilder, TransferFlags,
};

use crate::harness::{binary, eventually, TestCluster};

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
        vec![CreateAccountResult::Ok; 2]
    );
    let hold = TransferBuilder::new(10, 1, 2, 50, 9, 1)
        .flags(TransferFlags::PENDING)
        .timeout_seconds(1)
        .build();
    assert_eq!(
        client.create_transfers(vec![hold]).await.unwrap(),
        vec![CreateTransferResult::Ok]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_tells_single_pending_posted_voided_and_expired_apart() {
    let cluster = TestCluster::start(1, &[]).await;
    let client = cluster.client.clone();
    let accounts = vec![
        AccountBuilder::new(1, 9, 1).build(),
        AccountBuilder::new(2, 9, 1).build(),
    ];
    client.create_accounts(accounts).await.unwrap();
    let pending = |id: u128, timeout: u32| {
        TransferBuilder::new(id, 1, 2, 40, 9, 1)
            .flags(TransferFlags::PENDING)
            .timeout_seconds(timeout)
            .build()
    };
    let transfers = vec![
        TransferBuilder::new(1, 1, 2, 5, 9, 1).build(),
        pending(2, 0),
        pending(3, 0),
        pending(4, 0),
        pending(5, 1),
        TransferBuilder::new(6, 1, 2, 40, 9, 1)
            .flags(TransferFlags::POST_PENDING_TRANSFER)
            .pending_id(3)
            .build(),
        TransferBuilder::new(7, 1, 2, 40, 9, 1)
            .flags(TransferFlags::VOID_PENDING_TRANSFER)
            .pending_id(4)
            .build(),
    ];
    assert_eq!(
        client.create_transfers(transfers).await.unwrap(),
        vec![CreateTransferResult::Ok; 7]
    );
    eventually(Duration::from_secs(15), "transfer 5 to expire", || async {
        let found = client.lookup_transfer_states(&[5]).await.ok()?;
        (found.first()?.1 == Some(PendingStatus::Expired)).then_some(())
    })
    .await;

    // `tallyctl transfer get --json` carries the state of each.
    let output = Command::new(binary("tallyctl"))
        .args([
            "--cluster",
            &cluster.cluster_arg(),
            "--json",
            "transfer",
            "get",
        ])
        .args(["1", "2", "3", "4", "5", "6"])
        .envs(cluster.certs.env("admin"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let states: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["id"].as_str().unwrap(), row["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("1", "single"),
            ("2", "pending"),
            ("3", "posted"),
            ("4", "voided"),
            ("5", "expired"),
            ("6", "single"),
        ]
    );
}
