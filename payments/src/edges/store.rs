//! Payment objects in the ledger cluster: JSON records with versions, and `Txn`s that change
//! records and move money in one commit.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tally_client::{v1, Client, ClientError};

use crate::domain::postings::Posting;

/// A record's value and the version it was read at (for the next write's condition).
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
    /// Cluster timestamp of the last write (nanoseconds).
    pub timestamp: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ledger cluster: {0}")]
    Cluster(#[from] ClientError),
    #[error("record {namespace}/{key} is not valid: {reason}")]
    Corrupt {
        namespace: String,
        key: String,
        reason: String,
    },
    #[error("the ledger refused the transaction: {0}")]
    Refused(String),
}

/// How a `Txn` ended. Anything but `Committed` left no trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    Committed,
    /// Condition number `index` did not hold: someone else changed the record first (or an
    /// earlier attempt of this very Txn committed and the reply was lost).
    ConditionFailed {
        index: u32,
    },
    /// Transfer number `index` failed with ledger result `result` (e.g. exceeds_credits).
    TransferFailed {
        index: u32,
        result: u32,
    },
    AccountFailed {
        index: u32,
        result: u32,
    },
}

/// A transaction under construction.
#[derive(Debug, Default, Clone)]
pub struct Txn {
    request: v1::TxnRequest,
}

fn key_of(namespace: &str, key: &str) -> v1::RecordKey {
    v1::RecordKey {
        namespace: namespace.to_string(),
        key: key.as_bytes().to_vec(),
    }
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    /// Requires the record to be at `version` (0: absent) when the Txn applies.
    pub fn expect(mut self, namespace: &str, key: &str, version: u64) -> Txn {
        let kind = if version == 0 {
            v1::condition::Kind::Absent(key_of(namespace, key))
        } else {
            v1::condition::Kind::VersionEquals(v1::VersionEquals {
                key: Some(key_of(namespace, key)),
                version,
            })
        };
        self.request
            .conditions
            .push(v1::Condition { kind: Some(kind) });
        self
    }

    pub fn put<T: Serialize>(mut self, namespace: &str, key: &str, value: &T) -> Txn {
        let value = serde_json::to_vec(value).expect("payment records serialize");
        self.request.record_ops.push(v1::RecordOp {
            kind: Some(v1::record_op::Kind::Put(v1::Record {
                key: Some(key_of(namespace, key)),
                value,
                version: 0,
                timestamp: 0,
            })),
        });
        self
    }

    pub fn delete(mut self, namespace: &str, key: &str) -> Txn {
        self.request.record_ops.push(v1::RecordOp {
            kind: Some(v1::record_op::Kind::Delete(key_of(namespace, key))),
        });
        self
    }

    pub fn account(mut self, account: v1::Account) -> Txn {
        self.request.accounts.push(account);
        self
    }

    /// Adds an object's postings, in order.
    pub fn postings(mut self, postings: impl IntoIterator<Item = Posting>) -> Txn {
        self.request
            .transfers
            .extend(postings.into_iter().map(|p| p.transfer));
        self
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
}

impl Store {
    pub fn new(client: Client) -> Store {
        Store { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        match self.client.get_record(namespace, key.as_bytes()).await? {
            None => Ok(None),
            Some(record) => decode(namespace, record).map(Some),
        }
    }

    /// One page of records whose key starts with `prefix`, after `start_after`.
    pub async fn scan<T: DeserializeOwned>(
        &self,
        namespace: &str,
        prefix: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Versioned<T>)>, StoreError> {
        let records = self
            .client
            .scan_records(namespace, prefix.as_bytes(), start_after.as_bytes(), limit)
            .await?;
        records
            .into_iter()
            .map(|record| {
                let key = record
                    .key
                    .as_ref()
                    .map(|k| String::from_utf8_lossy(&k.key).into_owned())
                    .unwrap_or_default();
                decode(namespace, record).map(|v| (key, v))
            })
            .collect()
    }

    /// Every record whose key starts with `prefix`, page by page.
    pub async fn scan_all<T: DeserializeOwned>(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Versioned<T>)>, StoreError> {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.scan::<T>(namespace, prefix, &after, 0).await?;
            let Some((last, _)) = page.last() else {
                return Ok(all);
            };
            after = last.clone();
            all.extend(page);
        }
    }

    pub async fn commit(&self, txn: Txn) -> Result<Commit, StoreError> {
        use v1::txn_reply::Outcome;
        let reply = self.client.submit_txn(txn.request).await?;
        let outcome = Outcome::try_from(reply.outcome)
            .map_err(|_| StoreError::Refused(format!("unknown outcome {}", reply.outcome)))?;
        Ok(match outcome {
            Outcome::Committed => Commit::Committed,
            Outcome::ConditionFailed => Commit::ConditionFailed { index: reply.index },
            Outcome::TransferFailed => Commit::TransferFailed {
                index: reply.index,
                result: reply.result,
            },
            Outcome::AccountFailed => Commit::AccountFailed {
                index: reply.index,
                result: reply.result,
            },
            Outcome::RecordInvalid => {
                return Err(StoreError::Refused(format!(
                    "record op {} invalid: {}",
                    reply.index, reply.reason
                )))
            }
            Outcome::TooManyOperations => {
                return Err(StoreError::Refused("too many operations".into()))
            }
        })
    }

    /// Creates accounts that may already exist (`exists` counts as success).
    pub async fn ensure_accounts(&self, accounts: Vec<v1::Account>) -> Result<(), StoreError> {
        use tally_client::codes::{ACCOUNT_RESULT_EXISTS, RESULT_OK};
        let results = self.client.create_accounts(accounts).await?;
        match results
            .iter()
            .find(|r| **r != RESULT_OK && **r != ACCOUNT_RESULT_EXISTS)
        {
            None => Ok(()),
            Some(code) => Err(StoreError::Refused(format!(
                "creating accounts: {}",
                tally_client::codes::describe_account_result(*code)
            ))),
        }
    }
}

fn decode<T: DeserializeOwned>(
    namespace: &str,
    record: v1::Record,
) -> Result<Versioned<T>, StoreError> {
    let value = serde_json::from_slice(&record.value).map_err(|e| StoreError::Corrupt {
        namespace: namespace.to_string(),
        key: record
            .key
            .as_ref()
            .map(|k| String::from_utf8_lossy(&k.key).into_owned())
            .unwrap_or_default(),
        reason: e.to_string(),
    })?;
    Ok(Versioned {
        value,
        version: record.version,
        timestamp: record.timestamp,
    })
}
