//! Kill the leader mid-load: nothing acknowledged is lost, nothing is applied twice, and the
//! restarted node catches up to the same state digest.

use std::collections::BTreeMap;

use tally_client::{
    Account, AccountBuilder, Balances, Client, CreateAccountResult, CreateTransferResult, Transfer,
    TransferBuilder,
};

use crate::harness::{eventually, TestCluster, CONVERGE_TIMEOUT};

const ACCOUNTS: u128 = 16;
const WRITERS: u128 = 4;
const BATCHES_PER_WRITER: u128 = 40;
const TRANSFERS_PER_BATCH: u128 = 10;
const LEDGER: u32 = 7;

fn transfer(writer: u128, batch: u128, index: u128) -> Transfer {
    let id = 1_000_000 + (writer * BATCHES_PER_WRITER + batch) * TRANSFERS_PER_BATCH + index;
    let debit = 1 + (id * 7) % ACCOUNTS;
    let credit = 1 + (debit + 1 + id % (ACCOUNTS - 1)) % ACCOUNTS;
    let credit = if credit == debit {
        1 + debit % ACCOUNTS
    } else {
        credit
    };
    TransferBuilder::new(id, debit, credit, 1 + id % 97, LEDGER, 1).build()
}

/// Sends every batch until the cluster acknowledges it; a batch that failed (its outcome
/// unknown) is sent again with the same ids, so each transfer ends `ok` or `exists`.
async fn write_all(client: Client, writer: u128) -> Vec<Transfer> {
    let mut written = Vec::new();
    for batch in 0..BATCHES_PER_WRITER {
        let transfers: Vec<Transfer> = (0..TRANSFERS_PER_BATCH)
            .map(|i| transfer(writer, batch, i))
            .collect();
        let results = loop {
            match client.create_transfers(transfers.clone()).await {
                Ok(results) => break results,
                Err(error) => {
                    eprintln!("writer {writer} batch {batch}: {error}; sending the same ids again")
                }
            }
        };
        for (transfer, result) in transfers.iter().zip(&results) {
            assert!(
                *result == CreateTransferResult::Ok || *result == CreateTransferResult::Exists,
                "transfer {:?} got result {result}",
                transfer.id
            );
        }
        written.extend(transfers);
    }
    written
}

fn expected_balances(transfers: &[Transfer]) -> BTreeMap<u128, (u128, u128)> {
    let mut balances: BTreeMap<u128, (u128, u128)> =
        (1..=ACCOUNTS).map(|id| (id, (0, 0))).collect();
    for transfer in transfers {
        let amount = transfer.amount;
        balances.get_mut(&transfer.debit_account_id).unwrap().0 += amount;
        balances.get_mut(&transfer.credit_account_id).unwrap().1 += amount;
    }
    balances
}

async fn actual_balances(client: &Client) -> BTreeMap<u128, (u128, u128)> {
    let ids: Vec<u128> = (1..=ACCOUNTS).collect();
    let accounts = client.lookup_accounts(&ids).await.expect("lookup accounts");
    accounts
        .iter()
        .map(|account| {
            let balances = Balances::of_account(account);
            (
                account.id,
                (balances.debits_posted, balances.credits_posted),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_leader_mid_load_loses_nothing_and_applies_nothing_twice() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let accounts: Vec<Account> = (1..=ACCOUNTS)
        .map(|id| AccountBuilder::new(id, LEDGER, 10).build())
        .collect();
    let results = cluster
        .client
        .create_accounts(accounts)
        .await
        .expect("create accounts");
    assert!(
        results
            .iter()
            .all(|result| *result == CreateAccountResult::Ok),
        "{results:?}"
    );

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_all(cluster.client.clone(), writer)))
        .collect();
    // Kill the leader once a fair share of the load is in.
    let first_leader = cluster.leader().await;
    let target_index = cluster.status(first_leader).await.unwrap().last_applied + 30;
    eventually(CONVERGE_TIMEOUT, "load to reach the leader", || async {
        let status = cluster.status(first_leader).await?;
        (status.last_applied >= target_index).then_some(())
    })
    .await;
    cluster.kill(first_leader);

    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.expect("writer task"));
    }
    let new_leader = cluster.leader().await;
    assert_ne!(
        new_leader, first_leader,
        "a new leader must have been elected"
    );

    // Every acknowledged transfer is there, once, with its amount.
    let ids: Vec<u128> = written.iter().map(|transfer| transfer.id).collect();
    for chunk in ids.chunks(500) {
        let found = cluster
            .client
            .lookup_transfers(chunk)
            .await
            .expect("lookup transfers");
        assert_eq!(
            found.len(),
            chunk.len(),
            "acknowledged transfers are missing"
        );
    }
    let expected = expected_balances(&written);
    assert_eq!(actual_balances(&cluster.client).await, expected);
    let debits: u128 = expected.values().map(|(debits, _)| debits).sum();
    let credits: u128 = expected.values().map(|(_, credits)| credits).sum();
    assert_eq!(debits, credits, "conservation");

    // Resending everything changes nothing: each id answers `exists`.
    for chunk in written.chunks(200) {
        let results = cluster
            .client
            .create_transfers(chunk.to_vec())
            .await
            .expect("resend");
        assert!(
            results
                .iter()
                .all(|result| *result == CreateTransferResult::Exists),
            "{results:?}"
        );
    }
    assert_eq!(actual_balances(&cluster.client).await, expected);

    // The killed node comes back, catches up, and holds exactly the same state.
    cluster.restart(first_leader);
    cluster.wait_caught_up().await;
    let digests = cluster.digests().await;
    assert_eq!(digests.len(), 3);
    for (id, digest) in &digests {
        assert_eq!(
            digest.digest, digests[0].1.digest,
            "node {id} differs from node {}",
            digests[0].0
        );
        assert_eq!(
            digest.transfers as u128,
            WRITERS * BATCHES_PER_WRITER * TRANSFERS_PER_BATCH
        );
    }
}
