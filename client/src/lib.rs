//! Tally client: an async, cheaply clonable handle to a Tally cluster (leader discovery, retries
//! with backoff until a deadline, typed ledger and admin calls) plus builders of accounts and
//! transfers. Ledger calls take and return the ledger's own types (`tally-ledger`: accounts,
//! transfers, flags, result codes, records, Txns), re-exported here; protobuf stays inside the
//! client, except in the admin calls' arguments and replies (`tally_proto::v1`).
//!
//! ```no_run
//! # async fn example() -> Result<(), tally_client::ClientError> {
//! use tally_client::{AccountBuilder, Client, ClientOptions};
//! // TALLY_CA, TALLY_CERT, TALLY_KEY, TALLY_TOKEN, TALLY_INSECURE (see `tally-node dev`'s tally.env).
//! let mut options = ClientOptions::default();
//! tally_client::Credentials::from_env().apply(&mut options)?;
//! let client = Client::connect(
//!     vec!["127.0.0.1:7100".into(), "127.0.0.1:7101".into()],
//!     options,
//! )
//! .await?;
//! let results = client.create_accounts(vec![AccountBuilder::new(1, 1, 10).build()]).await?;
//! assert_eq!(results, vec![tally_client::CreateAccountResult::Ok]);
//! # Ok(())
//! # }
//! ```

mod address;
mod builders;
mod client;
pub mod coalesce;
mod convert;
pub mod credentials;
mod error;
mod retry;
mod status;

pub use address::{parse_leader_hint, NodeAddress, LEADER_METADATA_KEY};
pub use builders::{AccountBuilder, Balances, TransferBuilder};
pub use client::{AccountFilter, Client, ClientOptions};
pub use credentials::{Credentials, Secret, TlsOptions};
pub use error::ClientError;
pub use retry::{classify, Backoff, Disposition};
pub use status::{FollowerStatus, NodeStatus};
/// The ledger's types, as the node defines them: one definition for the node, the simulator and
/// every client.
pub use tally_ledger::{
    Account, AccountFlags, Balance, Condition, CreateAccountResult, CreateTransferResult,
    PendingStatus, Record, RecordKey, RecordOp, Transfer, TransferFlags, Txn, TxnOutcome,
    TxnResult,
};
