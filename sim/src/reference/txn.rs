//! A `Txn`: every condition must hold and every record operation be well formed before
//! anything is tried; then accounts, transfers and record writes run on a copy of the books,
//! which replaces them only if all of it succeeded.

use tally_ledger::{
    CommandResult, Condition, CreateAccountResult, CreateTransferResult, Record, RecordOp, Txn,
    TxnOutcome, TxnResult,
};
use tally_node::limits::{
    EVENTS_PER_REQUEST_MAX, RECORD_KEY_BYTES_MAX, RECORD_NAMESPACE_BYTES_MAX,
    RECORD_VALUE_BYTES_MAX, TXN_OPERATIONS_MAX,
};

use super::accounts::create_account;
use super::books::Books;
use super::transfers::create_transfer;

fn failed(outcome: TxnOutcome) -> CommandResult {
    CommandResult::Txn(TxnResult {
        outcome,
        record_versions: Vec::new(),
    })
}

fn position(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

pub(crate) fn execute_txn(books: &mut Books, txn: &Txn) -> CommandResult {
    if txn.accounts.len().saturating_add(txn.transfers.len()) > EVENTS_PER_REQUEST_MAX {
        return CommandResult::TooManyEvents;
    }
    if txn.conditions.len().saturating_add(txn.record_ops.len()) > TXN_OPERATIONS_MAX {
        return failed(TxnOutcome::TooManyOperations);
    }
    for (index, condition) in txn.conditions.iter().enumerate() {
        let key = match condition {
            Condition::VersionEquals { key, .. } | Condition::Absent { key } => key,
        };
        let actual_version = books.records.get(key).map_or(0, |record| record.version);
        let holds = match condition {
            Condition::VersionEquals { version, .. } => actual_version == *version,
            Condition::Absent { .. } => actual_version == 0,
        };
        if !holds {
            if !txn.transfers.is_empty() {
                books.coverage.txn_condition_failed_with_transfers += 1;
            }
            return failed(TxnOutcome::ConditionFailed {
                index: position(index),
                actual_version,
            });
        }
    }
    for (index, op) in txn.record_ops.iter().enumerate() {
        if let Some(reason) = malformed(op) {
            return failed(TxnOutcome::RecordInvalid {
                index: position(index),
                reason,
            });
        }
    }
    match books.all_or_nothing(|draft| write(draft, txn)) {
        Ok(record_versions) => CommandResult::Txn(TxnResult {
            outcome: TxnOutcome::Committed,
            record_versions,
        }),
        Err(outcome) => failed(outcome),
    }
}

/// Why a record operation is malformed, as a snake_case phrase; `None` if it is well formed.
fn malformed(op: &RecordOp) -> Option<String> {
    let (key, value_len) = match op {
        RecordOp::Put { key, value } => (key, value.len()),
        RecordOp::Delete { key } => (key, 0),
    };
    let reasons = [
        (
            key.namespace.is_empty(),
            "namespace_must_not_be_empty".to_string(),
        ),
        (
            key.namespace.len() > RECORD_NAMESPACE_BYTES_MAX,
            format!("namespace_exceeds_{RECORD_NAMESPACE_BYTES_MAX}_bytes"),
        ),
        (key.key.is_empty(), "key_must_not_be_empty".to_string()),
        (
            key.key.len() > RECORD_KEY_BYTES_MAX,
            format!("key_exceeds_{RECORD_KEY_BYTES_MAX}_bytes"),
        ),
        (
            value_len > RECORD_VALUE_BYTES_MAX,
            format!("value_exceeds_{RECORD_VALUE_BYTES_MAX}_bytes"),
        ),
    ];
    reasons
        .into_iter()
        .find(|(broken, _)| *broken)
        .map(|(_, reason)| reason)
}

/// Accounts, then transfers, then records, on the draft; `exists` counts as success (a retried
/// Txn must not fail on what its first try created). Linked flags mean nothing here.
fn write(draft: &mut Books, txn: &Txn) -> Result<Vec<u64>, TxnOutcome> {
    let mut created = 0usize;
    for (index, account) in txn.accounts.iter().enumerate() {
        let result = create_account(draft, account);
        if !matches!(
            result,
            CreateAccountResult::Ok | CreateAccountResult::Exists
        ) {
            return Err(TxnOutcome::AccountFailed {
                index: position(index),
                result,
            });
        }
        created += usize::from(result == CreateAccountResult::Ok);
    }
    for (index, transfer) in txn.transfers.iter().enumerate() {
        let result = create_transfer(draft, transfer);
        if !matches!(
            result,
            CreateTransferResult::Ok | CreateTransferResult::Exists
        ) {
            if created > 0 {
                draft.coverage.txn_transfer_failed_late += 1;
            }
            return Err(TxnOutcome::TransferFailed {
                index: position(index),
                result,
            });
        }
        created += usize::from(result == CreateTransferResult::Ok);
    }
    let mut versions = Vec::with_capacity(txn.record_ops.len());
    for (index, op) in txn.record_ops.iter().enumerate() {
        let invalid = |reason: &str| TxnOutcome::RecordInvalid {
            index: position(index),
            reason: reason.to_string(),
        };
        match op {
            RecordOp::Delete { key } => {
                draft.records.remove(key);
                draft.journal.records.insert(key.clone());
                versions.push(0);
            }
            RecordOp::Put { key, value } => {
                let before = draft.records.get(key).map_or(0, |record| record.version);
                let version = before
                    .checked_add(1)
                    .ok_or_else(|| invalid("version_exhausted"))?;
                let timestamp = draft
                    .clock
                    .take()
                    .ok_or_else(|| invalid("timestamp_exhausted"))?;
                let record = Record {
                    key: key.clone(),
                    value: value.clone(),
                    version,
                    timestamp,
                };
                draft.records.insert(key.clone(), record);
                draft.journal.records.insert(key.clone());
                versions.push(version);
            }
        }
    }
    Ok(versions)
}
