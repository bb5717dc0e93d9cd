//! Payment objects in the ledger cluster: JSON records with versions, and `Txn`s that change
//! records and move money in one commit.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tally_client::{v1, Client, ClientError};

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

    pub fn transfer(mut self, transfer: v1::Transfer) -> Txn {
        self.request.transfers.push(transfer);
        self
    }

    /// The records this Txn puts: `(namespace, key, JSON value)` (for in-memory test stores).
    #[cfg(test)]
    pub(crate) fn puts(&self) -> impl Iterator<Item = (&str, String, &[u8])> {
        self.request
            .record_ops
            .iter()
            .filter_map(|op| match &op.kind {
                Some(v1::record_op::Kind::Put(record)) => {
                    let key = record.key.as_ref()?;
                    Some((
                        key.namespace.as_str(),
                        String::from_utf8_lossy(&key.key).into_owned(),
                        record.value.as_slice(),
                    ))
                }
                _ => None,
            })
    }
}

/// Records one page of a scan returns at most (the node's `RECORD_SCAN_PAGE_MAX`); a page bound
/// of a flow is at most this.
pub const RECORD_SCAN_PAGE_MAX: u32 = 1000;

/// The store's reads, so that what a flow reads can be counted (reconciliation's tests count
/// them over an in-memory double). `Store` is the implementation over the cluster.
pub trait RecordReads {
    fn get<T: DeserializeOwned + Send>(
        &self,
        namespace: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Versioned<T>>, StoreError>> + Send;

    /// One page of at most `limit` records whose key starts with `prefix`, after `start_after`.
    fn scan<T: DeserializeOwned + Send>(
        &self,
        namespace: &str,
        prefix: &str,
        start_after: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(String, Versioned<T>)>, StoreError>> + Send;
}

impl RecordReads for Store {
    fn get<T: DeserializeOwned + Send>(
        &self,
        namespace: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Versioned<T>>, StoreError>> + Send {
        Store::get(self, namespace, key)
    }

    fn scan<T: DeserializeOwned + Send>(
        &self,
        namespace: &str,
        prefix: &str,
        start_after: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(String, Versioned<T>)>, StoreError>> + Send {
        Store::scan(self, namespace, prefix, start_after, limit)
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

    /// The next page of at most `limit` records whose key starts with `prefix`, after `cursor`
    /// (an empty cursor: from the start), and advances `cursor` past it; an empty page at the end.
    /// For work done page by page, so that one step holds at most `limit` records.
    pub async fn next_page<T: DeserializeOwned>(
        &self,
        namespace: &str,
        prefix: &str,
        cursor: &mut String,
        limit: u32,
    ) -> Result<Vec<(String, Versioned<T>)>, StoreError> {
        debug_assert!(limit > 0 && limit <= RECORD_SCAN_PAGE_MAX);
        let page = self.scan::<T>(namespace, prefix, cursor, limit).await?;
        if let Some((last, _)) = page.last() {
            cursor.clone_from(last);
        }
        Ok(page)
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
