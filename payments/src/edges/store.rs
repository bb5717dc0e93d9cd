//! Payment objects in the ledger cluster: JSON records with versions, and `Txn`s that change
//! records and move money in one commit.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tally_client::{
    Account, Client, ClientError, Condition, CreateAccountResult, CreateTransferResult, Record,
    RecordKey, RecordOp, TxnOutcome, TxnResult,
};

use crate::domain::events;
use crate::domain::model::ns;
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
        result: CreateTransferResult,
    },
    AccountFailed {
        label: Label,
        result: CreateAccountResult,
    },
}

/// A transaction under construction. Every condition, account and transfer carries a label,
/// and the index the ledger reports for a failure is mapped back to it (`Store::commit`).
#[derive(Debug, Default, Clone)]
pub struct Txn {
    request: tally_client::Txn,
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
    fn read(&self, reply: &TxnResult) -> Result<Commit, StoreError> {
        let label = |labels: &[Label], index: u32, what: &str| {
            usize::try_from(index)
                .ok()
                .and_then(|i| labels.get(i))
                .cloned()
                .ok_or_else(|| {
                    StoreError::Refused(format!(
                        "the ledger reported {what} {index} of a Txn with {}",
                        labels.len()
                    ))
                })
        };
        Ok(match &reply.outcome {
            TxnOutcome::Committed => Commit::Committed,
            TxnOutcome::ConditionFailed { index, .. } => Commit::ConditionFailed {
                label: label(&self.conditions, *index, "condition")?,
            },
            TxnOutcome::TransferFailed { index, result } => Commit::TransferFailed {
                label: label(&self.transfers, *index, "transfer")?,
                result: *result,
            },
            TxnOutcome::AccountFailed { index, result } => Commit::AccountFailed {
                label: label(&self.accounts, *index, "account")?,
                result: *result,
            },
            TxnOutcome::RecordInvalid { index, reason } => {
                return Err(StoreError::Refused(format!(
                    "record op {index} invalid: {reason}"
                )))
            }
            TxnOutcome::TooManyOperations => {
                return Err(StoreError::Refused("too many operations".into()))
            }
        })
    }
}

fn key_of(namespace: &str, key: &str) -> RecordKey {
    RecordKey::new(namespace, key.as_bytes())
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    /// Requires the record to be at `version` (0: absent) when the Txn applies.
    pub fn require_version(mut self, namespace: &str, key: &str, version: u64) -> Txn {
        self.labels.conditions.push(Label::record(namespace, key));
        let key = key_of(namespace, key);
        let condition = if version == 0 {
            Condition::Absent { key }
        } else {
            Condition::VersionEquals { key, version }
        };
        self.request.conditions.push(condition);
        self
    }

    pub fn put<T: Serialize>(mut self, namespace: &str, key: &str, value: &T) -> Txn {
        let value = serde_json::to_vec(value).expect("payment records serialize");
        let key = key_of(namespace, key);
        self.request.record_ops.push(RecordOp::Put { key, value });
        self
    }

    /// Adds the event of writing `after` over `before` (`None`: a new object) in `namespace`,
    /// with its outbox entry, when that write is a creation or a status change of an object that
    /// has events (`domain::events`): the event commits with the change or not at all.
    pub fn event<T: Serialize>(self, namespace: &str, before: Option<&T>, after: &T) -> Txn {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        match events::changed(namespace, before, after, at_ms) {
            Some(event) => self
                .put(ns::EVENT_OUTBOX, &events::outbox_key(&event), &event.id)
                .put(ns::EVENT, &event.id, &event),
            None => self,
        }
    }

    pub fn delete(mut self, namespace: &str, key: &str) -> Txn {
        let key = key_of(namespace, key);
        self.request.record_ops.push(RecordOp::Delete { key });
        self
    }

    pub fn account(mut self, account: Account) -> Txn {
        self.labels.accounts.push(Label::Account {
            code: u32::from(account.code),
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
        self.request.record_ops.iter().filter_map(|op| match op {
            RecordOp::Put { key, value } => Some((
                key.namespace.as_str(),
                String::from_utf8_lossy(&key.key).into_owned(),
                value.as_slice(),
            )),
            RecordOp::Delete { .. } => None,
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
                let key = String::from_utf8_lossy(&record.key.key).into_owned();
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
        let reply = self.client.submit_txn(&txn.request).await?;
        txn.labels.read(&reply)
    }

    /// Creates accounts that may already exist (`exists` counts as success).
    pub async fn ensure_accounts(&self, accounts: Vec<Account>) -> Result<(), StoreError> {
        let results = self.client.create_accounts(accounts).await?;
        match results
            .iter()
            .find(|r| !matches!(r, CreateAccountResult::Ok | CreateAccountResult::Exists))
        {
            None => Ok(()),
            Some(result) => Err(StoreError::Refused(format!("creating accounts: {result}"))),
        }
    }
}

fn decode<T: DeserializeOwned>(
    namespace: &str,
    record: Record,
) -> Result<Versioned<T>, StoreError> {
    let value = serde_json::from_slice(&record.value).map_err(|e| StoreError::Corrupt {
        namespace: namespace.to_string(),
        key: String::from_utf8_lossy(&record.key.key).into_owned(),
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

    fn failed(outcome: TxnOutcome) -> TxnResult {
        TxnResult {
            outcome,
            record_versions: Vec::new(),
        }
    }

    #[test]
    fn a_failed_txn_is_read_by_label() {
        let usd = Currency::by_code("USD").unwrap();
        let txn = Txn::new()
            .require_version("pay.order", "ord_1", 3)
            .require_version("pay.refund", "re_1", 0)
            .put("pay.refund", "re_1", &1)
            .account(postings::charge_wallet(
                crate::domain::model::ChargeKind::Order,
                crate::domain::model::Escrow::NotHeld,
                usd,
                7,
            ))
            .postings(postings::refund_opened(
                "re_1",
                usd,
                (7, postings::RefundFrom::Wallet),
                100,
                3,
            ));
        let read = |outcome| txn.labels.read(&failed(outcome)).unwrap();
        assert_eq!(
            read(TxnOutcome::ConditionFailed {
                index: 1,
                actual_version: 0
            }),
            Commit::ConditionFailed {
                label: Label::record("pay.refund", "re_1")
            }
        );
        assert_eq!(
            read(TxnOutcome::TransferFailed {
                index: 1,
                result: CreateTransferResult::ExceedsCredits
            }),
            Commit::TransferFailed {
                label: Label::transfer("re_1", Leg::Hold),
                result: CreateTransferResult::ExceedsCredits
            }
        );
        assert_eq!(
            read(TxnOutcome::TransferFailed {
                index: 0,
                result: CreateTransferResult::Exists
            }),
            Commit::TransferFailed {
                label: Label::transfer("re_1", Leg::FeeReturn),
                result: CreateTransferResult::Exists
            }
        );
        assert_eq!(
            read(TxnOutcome::AccountFailed {
                index: 0,
                result: CreateAccountResult::ExistsWithDifferentCode
            }),
            Commit::AccountFailed {
                label: Label::Account { code: 10, owner: 7 },
                result: CreateAccountResult::ExistsWithDifferentCode
            }
        );
        assert_eq!(read(TxnOutcome::Committed), Commit::Committed);
        let past_the_end = TxnOutcome::ConditionFailed {
            index: 2,
            actual_version: 0,
        };
        assert!(txn.labels.read(&failed(past_the_end)).is_err());
    }

    #[test]
    fn the_txn_carries_conditions_and_puts_in_order() {
        let txn = Txn::new()
            .require_version("pay.order", "ord_1", 3)
            .require_version("pay.refund", "re_1", 0)
            .put("pay.refund", "re_1", &1);
        assert_eq!(
            txn.request.conditions,
            vec![
                Condition::VersionEquals {
                    key: RecordKey::new("pay.order", b"ord_1".to_vec()),
                    version: 3
                },
                Condition::Absent {
                    key: RecordKey::new("pay.refund", b"re_1".to_vec())
                },
            ]
        );
        let puts: Vec<_> = txn.puts().collect();
        assert_eq!(puts, vec![("pay.refund", "re_1".to_string(), &b"1"[..])]);
    }

    #[test]
    fn transfer_results_name_as_the_ledger_does() {
        assert_eq!(
            Commit::TransferFailed {
                label: Label::transfer("re_1", Leg::Hold),
                result: CreateTransferResult::ExceedsCredits
            },
            Commit::TransferFailed {
                label: Label::transfer("re_1", Leg::Hold),
                result: CreateTransferResult::from_u32(57).unwrap()
            }
        );
        assert_eq!(
            CreateTransferResult::ExceedsCredits.to_string(),
            "exceeds_credits"
        );
    }
}
