//! Payment objects in the ledger cluster: JSON records with versions, and `Txn`s that change
//! records and move money in one commit.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tally_client::{v1, Client, ClientError};

use crate::domain::postings::{Leg, Posting};

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

/// What a condition, account or transfer of a `Txn` is, so that a failed `Txn` is read by
/// meaning, never by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// The condition on record `namespace/key`.
    Record { namespace: String, key: String },
    /// The transfer of leg `leg` of object `object`.
    Transfer { object: String, leg: Leg },
    /// The creation of a ledger account: its code and owner (`user_data_64`).
    Account { code: u32, owner: u64 },
}

impl Label {
    pub fn record(namespace: &str, key: &str) -> Label {
        Label::Record {
            namespace: namespace.to_string(),
            key: key.to_string(),
        }
    }

    pub fn transfer(object: &str, leg: Leg) -> Label {
        Label::Transfer {
            object: object.to_string(),
            leg,
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Record { namespace, key } => write!(f, "record {namespace}/{key}"),
            Label::Transfer { object, leg } => write!(f, "transfer {} of {object}", leg.as_str()),
            Label::Account { code, owner } => write!(f, "account code {code} owner {owner}"),
        }
    }
}

/// A ledger transfer result as tally-pay acts on it; the number as the node gives it
/// (`node/src/ledger/results.rs`, append-only), so the comparison is of a value, not a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferResult {
    /// `exceeds_credits`: the debit account (a wallet) would be overdrawn.
    ExceedsCredits,
    /// Any other result, by number.
    Other(u32),
}

impl TransferResult {
    const EXCEEDS_CREDITS: u32 = 57;

    pub fn from_code(code: u32) -> TransferResult {
        match code {
            TransferResult::EXCEEDS_CREDITS => TransferResult::ExceedsCredits,
            other => TransferResult::Other(other),
        }
    }

    pub fn code(self) -> u32 {
        match self {
            TransferResult::ExceedsCredits => TransferResult::EXCEEDS_CREDITS,
            TransferResult::Other(code) => code,
        }
    }
}

/// The result's name (`exceeds_credits`, or `unknown_result_<n>`).
impl std::fmt::Display for TransferResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&tally_client::codes::describe_transfer_result(self.code()))
    }
}

/// How a `Txn` ended. Anything but `Committed` left no trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    Committed,
    /// The condition `label` did not hold: someone else changed the record first (or an
    /// earlier attempt of this very Txn committed and the reply was lost).
    ConditionFailed {
        label: Label,
    },
    /// The transfer `label` failed with ledger result `result` (e.g. exceeds_credits).
    TransferFailed {
        label: Label,
        result: TransferResult,
    },
    AccountFailed {
        label: Label,
        result: u32,
    },
}

/// A transaction under construction. Every condition, account and transfer carries a label,
/// and the index the ledger reports for a failure is mapped back to it (`Store::commit`).
#[derive(Debug, Default, Clone)]
pub struct Txn {
    request: v1::TxnRequest,
    labels: Labels,
}

/// The labels of a `Txn`'s conditions, accounts and transfers, in the request's order.
#[derive(Debug, Default, Clone)]
struct Labels {
    conditions: Vec<Label>,
    accounts: Vec<Label>,
    transfers: Vec<Label>,
}

impl Labels {
    /// The ledger's reply, with a failing index turned back into the label it points at.
    fn read(&self, reply: &v1::TxnReply) -> Result<Commit, StoreError> {
        use v1::txn_reply::Outcome;
        let label = |labels: &[Label], what: &str| {
            usize::try_from(reply.index)
                .ok()
                .and_then(|i| labels.get(i))
                .cloned()
                .ok_or_else(|| {
                    StoreError::Refused(format!(
                        "the ledger reported {what} {} of a Txn with {}",
                        reply.index,
                        labels.len()
                    ))
                })
        };
        let outcome = Outcome::try_from(reply.outcome)
            .map_err(|_| StoreError::Refused(format!("unknown outcome {}", reply.outcome)))?;
        Ok(match outcome {
            Outcome::Committed => Commit::Committed,
            Outcome::ConditionFailed => Commit::ConditionFailed {
                label: label(&self.conditions, "condition")?,
            },
            Outcome::TransferFailed => Commit::TransferFailed {
                label: label(&self.transfers, "transfer")?,
                result: TransferResult::from_code(reply.result),
            },
            Outcome::AccountFailed => Commit::AccountFailed {
                label: label(&self.accounts, "account")?,
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
        self.labels.conditions.push(Label::record(namespace, key));
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
        self.labels.accounts.push(Label::Account {
            code: account.code,
            owner: account.user_data_64,
        });
        self.request.accounts.push(account);
        self
    }

    /// Adds an object's postings, in order, each labelled with its object and leg.
    pub fn postings(mut self, postings: impl IntoIterator<Item = Posting>) -> Txn {
        for posting in postings {
            self.labels
                .transfers
                .push(Label::transfer(&posting.object, posting.leg));
            self.request.transfers.push(posting.transfer);
        }
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
        let reply = self.client.submit_txn(txn.request).await?;
        txn.labels.read(&reply)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use crate::domain::postings;
    use v1::txn_reply::Outcome;

    fn reply(outcome: Outcome, index: u32, result: u32) -> v1::TxnReply {
        v1::TxnReply {
            outcome: outcome as i32,
            index,
            result,
            ..Default::default()
        }
    }

    #[test]
    fn a_failed_txn_is_read_by_label() {
        let usd = Currency::by_code("USD").unwrap();
        let txn = Txn::new()
            .expect("pay.order", "ord_1", 3)
            .expect("pay.refund", "re_1", 0)
            .put("pay.refund", "re_1", &1)
            .account(postings::charge_wallet(
                crate::domain::model::ChargeKind::Order,
                usd,
                7,
            ))
            .postings(postings::refund_opened("re_1", usd, 7, 100, 3));
        let read =
            |outcome, index, result| txn.labels.read(&reply(outcome, index, result)).unwrap();
        assert_eq!(
            read(Outcome::ConditionFailed, 1, 0),
            Commit::ConditionFailed {
                label: Label::record("pay.refund", "re_1")
            }
        );
        assert_eq!(
            read(Outcome::TransferFailed, 1, 57),
            Commit::TransferFailed {
                label: Label::transfer("re_1", Leg::Hold),
                result: TransferResult::ExceedsCredits
            }
        );
        assert_eq!(
            read(Outcome::TransferFailed, 0, 32),
            Commit::TransferFailed {
                label: Label::transfer("re_1", Leg::FeeReturn),
                result: TransferResult::Other(32)
            }
        );
        assert_eq!(
            read(Outcome::AccountFailed, 0, 57),
            Commit::AccountFailed {
                label: Label::Account { code: 10, owner: 7 },
                result: 57
            }
        );
        assert_eq!(read(Outcome::Committed, 0, 0), Commit::Committed);
        assert!(txn
            .labels
            .read(&reply(Outcome::ConditionFailed, 2, 0))
            .is_err());
    }

    #[test]
    fn transfer_results_are_the_ledgers_numbers() {
        let name = tally_client::codes::transfer_result_name(TransferResult::ExceedsCredits.code());
        assert_eq!(name, Some("exceeds_credits"));
        assert_eq!(
            TransferResult::ExceedsCredits.to_string(),
            "exceeds_credits"
        );
        assert_eq!(
            TransferResult::from_code(57),
            TransferResult::ExceedsCredits
        );
        assert_eq!(TransferResult::from_code(32), TransferResult::Other(32));
        assert_eq!(TransferResult::Other(32).code(), 32);
    }
}
