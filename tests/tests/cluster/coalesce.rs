//! Client-side batching against real nodes: 200 tasks of one client, each sending one transfer,
//! cost the cluster far fewer requests; every caller gets its own result; a linked chain of one
//! caller stays whole; one caller's malformed batch fails only that caller.

use tally_client::{
    AccountBuilder, Balances, CreateTransferResult, TransferBuilder, TransferFlags,
};

use crate::harness::{eventually, TestCluster, CONVERGE_TIMEOUT};

fn create_transfers_requests(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("tally_grpc_requests_total{method=\"Ledger/CreateTransfers\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_requests_and_keep_their_own_results() {
    let cluster = TestCluster::start_with_metrics(3, &[]).await;
    let client = cluster.client.clone();
    let accounts = vec![
        AccountBuilder::new(1, 1, 1).build(),
        AccountBuilder::new(2, 1, 1).build(),
    ];
    client.create_accounts(accounts).await.unwrap();
    let leader = cluster.leader().await;
    let metrics_url = format!("http://{}/metrics", cluster.node(leader).metrics_addr);
    let scrape = || async { reqwest::get(&metrics_url).await.ok()?.text().await.ok() };
    let before = eventually(CONVERGE_TIMEOUT, "the leader's metrics", || async {
        scrape().await.map(|text| create_transfers_requests(&text))
    })
    .await;

    let mut callers = tokio::task::JoinSet::new();
    for n in 0..200u128 {
        let client = client.clone();
        callers.spawn(async move {
            let transfer = TransferBuilder::new(1000 + n, 1, 2, 1, 1, 1).build();
            client.create_transfers(vec![transfer]).await
        });
    }
    // A chain whose second transfer fails (account 9 does not exist): both fail, together.
    let chain = {
        let client = client.clone();
        tokio::spawn(async move {
            let first = TransferBuilder::new(5000, 1, 2, 7, 1, 1)
                .flags(TransferFlags::LINKED)
                .build();
            let second = TransferBuilder::new(5001, 1, 9, 7, 1, 1).build();
            client.create_transfers(vec![first, second]).await
        })
    };
    while let Some(result) = callers.join_next().await {
        assert_eq!(result.unwrap().unwrap(), vec![CreateTransferResult::Ok]);
    }
    let chain = chain.await.unwrap().unwrap();
    assert_eq!(chain.len(), 2);
    assert!(
        chain.iter().all(|code| *code != CreateTransferResult::Ok),
        "{chain:?}"
    );

    let accounts = client.lookup_accounts(&[1, 2]).await.unwrap();
    assert_eq!(Balances::of_account(&accounts[1]).credits_posted, 200);
    let after = scrape()
        .await
        .map(|text| create_transfers_requests(&text))
        .unwrap();
    let requests = after - before;
    assert!(
        requests < 100.0,
        "201 concurrent calls took {requests} CreateTransfers requests"
    );
}
