//! The client's copies of result-code and flag names match the node's enums exactly.

use tally_client::codes::{ACCOUNT_RESULTS, TRANSFER_RESULTS};
use tally_ledger::{CreateAccountResult, CreateTransferResult};

#[test]
fn client_result_names_match_the_node() {
    let node_accounts: Vec<&str> = CreateAccountResult::ALL
        .iter()
        .map(|result| result.name())
        .collect();
    assert_eq!(ACCOUNT_RESULTS, node_accounts.as_slice());
    let node_transfers: Vec<&str> = CreateTransferResult::ALL
        .iter()
        .map(|result| result.name())
        .collect();
    assert_eq!(TRANSFER_RESULTS, node_transfers.as_slice());
    for (index, result) in CreateTransferResult::ALL.iter().enumerate() {
        assert_eq!(
            result.as_u32() as usize,
            index,
            "{} is numbered out of order",
            result.name()
        );
    }
}
