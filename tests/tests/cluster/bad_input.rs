//! Bad input gets its specific result code or a clear error, and the cluster keeps serving.

use tally_client::{
    AccountBuilder, ClientError, CreateAccountResult, CreateTransferResult, Transfer,
    TransferBuilder,
};
use tally_proto::v1;

use crate::harness::TestCluster;

fn names(results: &[CreateTransferResult]) -> Vec<&'static str> {
    results.iter().map(|result| result.name()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transfers_get_their_result_codes_and_the_cluster_keeps_serving() {
    let cluster = TestCluster::start(3, &[]).await;
    let client = &cluster.client;
    let accounts = vec![
        AccountBuilder::new(1, 1, 1).build(),
        AccountBuilder::new(2, 1, 1).build(),
        AccountBuilder::new(3, 2, 1).build(),
    ];
    assert_eq!(
        client.create_accounts(accounts).await.unwrap(),
        vec![CreateAccountResult::Ok; 3]
    );

    let bad = vec![
        TransferBuilder::new(10, 1, 2, 0, 1, 1).build(),
        TransferBuilder::new(11, 1, 99, 5, 1, 1).build(),
        TransferBuilder::new(12, 1, 1, 5, 1, 1).build(),
        TransferBuilder::new(13, 1, 3, 5, 1, 1).build(),
        TransferBuilder::new(14, 1, 2, 5, 2, 1).build(),
        TransferBuilder::new(15, 1, 2, u128::MAX - 1, 1, 1).build(),
        TransferBuilder::new(16, 1, 2, u128::MAX - 1, 1, 1).build(),
    ];
    let results = client.create_transfers(bad).await.unwrap();
    assert_eq!(
        names(&results),
        vec![
            "amount_must_not_be_zero",
            "credit_account_not_found",
            "accounts_must_be_different",
            "accounts_must_have_the_same_ledger",
            "transfer_must_have_the_same_ledger_as_accounts",
            "ok",
            "overflows_debits_posted",
        ]
    );

    // An oversized batch is refused whole, with the limit named.
    let oversized: Vec<Transfer> = (0..8193u128)
        .map(|i| TransferBuilder::new(100_000 + i, 1, 2, 1, 1, 1).build())
        .collect();
    match client.create_transfers(oversized).await {
        Err(ClientError::Rejected { code, message }) => {
            assert_eq!(code, tonic::Code::InvalidArgument);
            assert!(message.contains("8192"), "{message}");
        }
        other => panic!("oversized batch: {other:?}"),
    }

    // A malformed request (a code wider than 16 bits, which the ledger's types cannot hold, so it
    // is sent past tally-client) is refused with the field named.
    let malformed = v1::Transfer {
        id: Some(20u128.into()),
        debit_account_id: Some(1u128.into()),
        credit_account_id: Some(2u128.into()),
        amount: Some(1u128.into()),
        ledger: 1,
        code: 70_000,
        ..v1::Transfer::default()
    };
    let mut ledger = cluster.ledger_grpc(cluster.leader().await);
    let request = v1::CreateTransfersRequest {
        transfers: vec![malformed],
    };
    match ledger.create_transfers(request).await {
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().contains("code"), "{}", status.message());
        }
        other => panic!("malformed transfer: {other:?}"),
    }

    // Still serving, and nothing moved by the rejected requests.
    assert_eq!(
        client
            .create_transfers(vec![TransferBuilder::new(30, 2, 1, 7, 1, 1).build()])
            .await
            .unwrap(),
        vec![CreateTransferResult::Ok]
    );
    let found = client
        .lookup_transfers(&[10, 11, 12, 13, 14, 16, 20, 100_000])
        .await
        .unwrap();
    assert!(
        found.is_empty(),
        "rejected transfers were stored: {found:?}"
    );
}
