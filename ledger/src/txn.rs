//! Txn commands: record conditions, record writes, accounts and transfers, all or nothing.

use super::apply::LedgerBatch;
use super::results::{
    CommandResult, CreateAccountResult, CreateTransferResult, TxnOutcome, TxnResult,
};
use super::state::LedgerState;
use super::types::{Condition, Record, RecordOp, Txn};
use crate::limits::{
    EVENTS_PER_REQUEST_MAX, RECORD_KEY_BYTES_MAX, RECORD_NAMESPACE_BYTES_MAX,
    RECORD_VALUE_BYTES_MAX, TXN_OPERATIONS_MAX,
};

impl<S: LedgerState> LedgerBatch<'_, S> {
    /// Applies a Txn: conditions, then record validation, then accounts, transfers and record
    /// writes. Any failure leaves no trace. Linked flags inside a Txn are accepted and ignored.
    pub(crate) fn apply_txn(&mut self, txn: &Txn) -> CommandResult {
        let events = txn.accounts.len().saturating_add(txn.transfers.len());
        if events > EVENTS_PER_REQUEST_MAX {
            return CommandResult::TooManyEvents;
        }
        let operations = txn.conditions.len().saturating_add(txn.record_ops.len());
        if operations > TXN_OPERATIONS_MAX {
            return CommandResult::Txn(TxnResult::failed(TxnOutcome::TooManyOperations));
        }
        if let Err(outcome) = self.check_txn(txn) {
            return CommandResult::Txn(TxnResult::failed(outcome));
        }
        let savepoint = self.savepoint();
        let result = match self.write_txn(txn) {
            Ok(record_versions) => {
                self.overlay.release(savepoint);
                debug_assert_eq!(record_versions.len(), txn.record_ops.len());
                TxnResult {
                    outcome: TxnOutcome::Committed,
                    record_versions,
                }
            }
            Err(outcome) => {
                self.rollback(savepoint);
                TxnResult::failed(outcome)
            }
        };
        CommandResult::Txn(result)
    }

    /// Everything that can be decided before writing: conditions and record shapes.
    fn check_txn(&self, txn: &Txn) -> Result<(), TxnOutcome> {
        for (index, condition) in txn.conditions.iter().enumerate() {
            let actual_version = self.record(condition.key()).map_or(0, |r| r.version);
            let holds = match condition {
                Condition::VersionEquals { version, .. } => actual_version == *version,
                Condition::Absent { .. } => actual_version == 0,
            };
            if !holds {
                let index = index_u32(index);
                return Err(TxnOutcome::ConditionFailed {
                    index,
                    actual_version,
                });
            }
        }
        for (index, op) in txn.record_ops.iter().enumerate() {
            if let Err(reason) = validate_record_op(op) {
                let index = index_u32(index);
                return Err(TxnOutcome::RecordInvalid { index, reason });
            }
        }
        Ok(())
    }

    /// Creates accounts and transfers, then writes records; returns the record versions.
    fn write_txn(&mut self, txn: &Txn) -> Result<Vec<u64>, TxnOutcome> {
        for (index, account) in txn.accounts.iter().enumerate() {
            let result = self.create_account(account);
            // `exists` is success: a retried Txn must not fail on what its first try created.
            if !matches!(
                result,
                CreateAccountResult::Ok | CreateAccountResult::Exists
            ) {
                let index = index_u32(index);
                return Err(TxnOutcome::AccountFailed { index, result });
            }
        }
        for (index, transfer) in txn.transfers.iter().enumerate() {
            let result = self.create_transfer(transfer);
            if !matches!(
                result,
                CreateTransferResult::Ok | CreateTransferResult::Exists
            ) {
                let index = index_u32(index);
                return Err(TxnOutcome::TransferFailed { index, result });
            }
        }
        let mut versions = Vec::with_capacity(txn.record_ops.len());
        for (index, op) in txn.record_ops.iter().enumerate() {
            let version = self
                .write_record(op)
                .map_err(|reason| TxnOutcome::RecordInvalid {
                    index: index_u32(index),
                    reason: reason.to_string(),
                })?;
            versions.push(version);
        }
        Ok(versions)
    }

    /// Applies one record write; returns the new version (0 for a delete).
    fn write_record(&mut self, op: &RecordOp) -> Result<u64, &'static str> {
        match op {
            RecordOp::Delete { key } => {
                self.overlay.put_record(key.clone(), None);
                Ok(0)
            }
            RecordOp::Put { key, value } => {
                let previous = self.record(key).map_or(0, |r| r.version);
                let version = previous.checked_add(1).ok_or("version_exhausted")?;
                let timestamp = self.take_timestamp().ok_or("timestamp_exhausted")?;
                let record = Record {
                    key: key.clone(),
                    value: value.clone(),
                    version,
                    timestamp,
                };
                self.overlay.put_record(key.clone(), Some(record));
                Ok(version)
            }
        }
    }
}

/// Shape checks of one record operation; the reason is a short snake_case phrase.
fn validate_record_op(op: &RecordOp) -> Result<(), String> {
    let key = op.key();
    if key.namespace.is_empty() {
        return Err("namespace_must_not_be_empty".to_string());
    }
    if key.namespace.len() > RECORD_NAMESPACE_BYTES_MAX {
        return Err(format!(
            "namespace_exceeds_{RECORD_NAMESPACE_BYTES_MAX}_bytes"
        ));
    }
    if key.key.is_empty() {
        return Err("key_must_not_be_empty".to_string());
    }
    if key.key.len() > RECORD_KEY_BYTES_MAX {
        return Err(format!("key_exceeds_{RECORD_KEY_BYTES_MAX}_bytes"));
    }
    if let RecordOp::Put { value, .. } = op {
        if value.len() > RECORD_VALUE_BYTES_MAX {
            return Err(format!("value_exceeds_{RECORD_VALUE_BYTES_MAX}_bytes"));
        }
    }
    Ok(())
}

/// Indexes are bounded by the request limits, far below u32::MAX.
fn index_u32(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}
