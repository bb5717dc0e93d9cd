//! The client's edge of the protocol: the ledger's types (`tally-ledger`) into request messages,
//! and reply messages back into the ledger's types. Only this module and the gRPC calls in
//! `client.rs` handle protobuf ledger messages.
//!
//! A reply field that does not fit the ledger's type (a code or flag word over 16 bits, a result
//! number this client does not know) is an `InvalidReply`: it comes from a newer protocol, and a
//! guess could misreport money.

use tally_ledger::{
    Account, AccountFlags, Balance, Condition, CreateAccountResult, CreateTransferResult,
    PendingStatus, Record, RecordKey, RecordOp, Transfer, TransferFlags, Txn, TxnOutcome,
    TxnResult,
};
use tally_proto::{u128_of, v1};

use crate::error::ClientError;

fn invalid(message: String) -> ClientError {
    ClientError::InvalidReply(message)
}

fn narrow(value: u32, what: &str) -> Result<u16, ClientError> {
    u16::try_from(value).map_err(|_| invalid(format!("{what} {value} does not fit in 16 bits")))
}

pub(crate) fn account_to_pb(account: &Account) -> v1::Account {
    v1::Account {
        id: Some(account.id.into()),
        debits_pending: Some(account.debits_pending.into()),
        debits_posted: Some(account.debits_posted.into()),
        credits_pending: Some(account.credits_pending.into()),
        credits_posted: Some(account.credits_posted.into()),
        user_data_128: Some(account.user_data_128.into()),
        user_data_64: account.user_data_64,
        user_data_32: account.user_data_32,
        ledger: account.ledger,
        code: u32::from(account.code),
        flags: u32::from(account.flags.bits()),
        timestamp: account.timestamp,
    }
}

pub(crate) fn account_from_pb(account: &v1::Account) -> Result<Account, ClientError> {
    Ok(Account {
        id: u128_of(account.id),
        debits_pending: u128_of(account.debits_pending),
        debits_posted: u128_of(account.debits_posted),
        credits_pending: u128_of(account.credits_pending),
        credits_posted: u128_of(account.credits_posted),
        user_data_128: u128_of(account.user_data_128),
        user_data_64: account.user_data_64,
        user_data_32: account.user_data_32,
        ledger: account.ledger,
        code: narrow(account.code, "account code")?,
        flags: AccountFlags(narrow(account.flags, "account flags")?),
        timestamp: account.timestamp,
    })
}

pub(crate) fn transfer_to_pb(transfer: &Transfer) -> v1::Transfer {
    v1::Transfer {
        id: Some(transfer.id.into()),
        debit_account_id: Some(transfer.debit_account_id.into()),
        credit_account_id: Some(transfer.credit_account_id.into()),
        amount: Some(transfer.amount.into()),
        pending_id: Some(transfer.pending_id.into()),
        user_data_128: Some(transfer.user_data_128.into()),
        user_data_64: transfer.user_data_64,
        user_data_32: transfer.user_data_32,
        timeout: transfer.timeout,
        ledger: transfer.ledger,
        code: u32::from(transfer.code),
        flags: u32::from(transfer.flags.bits()),
        timestamp: transfer.timestamp,
    }
}

pub(crate) fn transfer_from_pb(transfer: &v1::Transfer) -> Result<Transfer, ClientError> {
    Ok(Transfer {
        id: u128_of(transfer.id),
        debit_account_id: u128_of(transfer.debit_account_id),
        credit_account_id: u128_of(transfer.credit_account_id),
        amount: u128_of(transfer.amount),
        pending_id: u128_of(transfer.pending_id),
        user_data_128: u128_of(transfer.user_data_128),
        user_data_64: transfer.user_data_64,
        user_data_32: transfer.user_data_32,
        timeout: transfer.timeout,
        ledger: transfer.ledger,
        code: narrow(transfer.code, "transfer code")?,
        flags: TransferFlags(narrow(transfer.flags, "transfer flags")?),
        timestamp: transfer.timestamp,
    })
}

/// A state of `LookupTransfersReply.states`: 0 is a single-phase transfer (`None`). A state this
/// client does not know (from a newer node) reads as pending: as far as it can tell, the amount
/// is still held.
pub(crate) fn pending_status_of(state: u32) -> Option<PendingStatus> {
    if state == 0 {
        return None;
    }
    let known = u8::try_from(state).ok().and_then(PendingStatus::from_u8);
    Some(known.unwrap_or(PendingStatus::Pending))
}

/// A point of an account's balance history; the reply does not repeat the account's id.
pub(crate) fn balance_from_pb(account_id: u128, balance: &v1::AccountBalance) -> Balance {
    Balance {
        account_id,
        timestamp: balance.timestamp,
        debits_pending: u128_of(balance.debits_pending),
        debits_posted: u128_of(balance.debits_posted),
        credits_pending: u128_of(balance.credits_pending),
        credits_posted: u128_of(balance.credits_posted),
    }
}

pub(crate) fn record_key_to_pb(key: &RecordKey) -> v1::RecordKey {
    v1::RecordKey {
        namespace: key.namespace.clone(),
        key: key.key.clone(),
    }
}

pub(crate) fn record_from_pb(record: v1::Record) -> Result<Record, ClientError> {
    let key = record
        .key
        .ok_or_else(|| invalid("a record without its key".into()))?;
    Ok(Record {
        key: RecordKey {
            namespace: key.namespace,
            key: key.key,
        },
        value: record.value,
        version: record.version,
        timestamp: record.timestamp,
    })
}

fn condition_to_pb(condition: &Condition) -> v1::Condition {
    let kind = match condition {
        Condition::VersionEquals { key, version } => {
            v1::condition::Kind::VersionEquals(v1::VersionEquals {
                key: Some(record_key_to_pb(key)),
                version: *version,
            })
        }
        Condition::Absent { key } => v1::condition::Kind::Absent(record_key_to_pb(key)),
    };
    v1::Condition { kind: Some(kind) }
}

fn record_op_to_pb(op: &RecordOp) -> v1::RecordOp {
    let kind = match op {
        RecordOp::Put { key, value } => v1::record_op::Kind::Put(v1::Record {
            key: Some(record_key_to_pb(key)),
            value: value.clone(),
            version: 0,
            timestamp: 0,
        }),
        RecordOp::Delete { key } => v1::record_op::Kind::Delete(record_key_to_pb(key)),
    };
    v1::RecordOp { kind: Some(kind) }
}

pub(crate) fn account_result_of(code: u32) -> Result<CreateAccountResult, ClientError> {
    CreateAccountResult::from_u32(code)
        .ok_or_else(|| invalid(format!("unknown account result code {code}")))
}

pub(crate) fn transfer_result_of(code: u32) -> Result<CreateTransferResult, ClientError> {
    CreateTransferResult::from_u32(code)
        .ok_or_else(|| invalid(format!("unknown transfer result code {code}")))
}

pub(crate) fn txn_to_pb(txn: &Txn) -> v1::TxnRequest {
    v1::TxnRequest {
        conditions: txn.conditions.iter().map(condition_to_pb).collect(),
        record_ops: txn.record_ops.iter().map(record_op_to_pb).collect(),
        accounts: txn.accounts.iter().map(account_to_pb).collect(),
        transfers: txn.transfers.iter().map(transfer_to_pb).collect(),
    }
}

/// The node's answer to a Txn, as the ledger states it.
pub(crate) fn txn_result_from_pb(reply: v1::TxnReply) -> Result<TxnResult, ClientError> {
    use v1::txn_reply::Outcome;
    let outcome = Outcome::try_from(reply.outcome)
        .map_err(|_| invalid(format!("unknown Txn outcome {}", reply.outcome)))?;
    let index = reply.index;
    let outcome = match outcome {
        Outcome::Committed => TxnOutcome::Committed,
        Outcome::ConditionFailed => TxnOutcome::ConditionFailed {
            index,
            actual_version: reply.actual_version,
        },
        Outcome::RecordInvalid => TxnOutcome::RecordInvalid {
            index,
            reason: reply.reason,
        },
        Outcome::AccountFailed => TxnOutcome::AccountFailed {
            index,
            result: account_result_of(reply.result)?,
        },
        Outcome::TransferFailed => TxnOutcome::TransferFailed {
            index,
            result: transfer_result_of(reply.result)?,
        },
        Outcome::TooManyOperations => TxnOutcome::TooManyOperations,
    };
    Ok(TxnResult {
        outcome,
        record_versions: reply.record_versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_transfers_round_trip() {
        let account = Account {
            id: u128::MAX - 1,
            credits_posted: 1 << 100,
            user_data_128: 7,
            ledger: 840,
            code: u16::MAX,
            flags: AccountFlags::HISTORY,
            ..Account::default()
        };
        assert_eq!(account_from_pb(&account_to_pb(&account)).unwrap(), account);
        let transfer = Transfer {
            id: u128::MAX,
            amount: 1 << 100,
            pending_id: 3,
            code: 7,
            ledger: 2,
            flags: TransferFlags::PENDING | TransferFlags::LINKED,
            timeout: 60,
            ..Transfer::default()
        };
        assert_eq!(
            transfer_from_pb(&transfer_to_pb(&transfer)).unwrap(),
            transfer
        );
    }

    #[test]
    fn reply_fields_out_of_range_are_invalid_not_truncated() {
        let wide = v1::Transfer {
            code: 70_000,
            ..Default::default()
        };
        let error = transfer_from_pb(&wide).unwrap_err();
        assert!(error.to_string().contains("70000"), "{error}");
        let wide = v1::Account {
            flags: 1 << 16,
            ..Default::default()
        };
        assert!(account_from_pb(&wide).is_err());
        assert!(transfer_result_of(999).is_err());
        assert_eq!(account_result_of(20).unwrap(), CreateAccountResult::Exists);
        assert_eq!(
            transfer_result_of(57).unwrap(),
            CreateTransferResult::ExceedsCredits
        );
    }

    #[test]
    fn transfer_states_read_as_the_ledger_numbers_them() {
        assert_eq!(pending_status_of(0), None);
        assert_eq!(pending_status_of(2), Some(PendingStatus::Posted));
        assert_eq!(pending_status_of(4), Some(PendingStatus::Expired));
        assert_eq!(pending_status_of(99), Some(PendingStatus::Pending));
    }

    #[test]
    fn txn_replies_read_back_into_ledger_outcomes() {
        let reply = v1::TxnReply {
            outcome: v1::txn_reply::Outcome::TransferFailed as i32,
            index: 1,
            result: CreateTransferResult::ExceedsCredits.as_u32(),
            ..Default::default()
        };
        assert_eq!(
            txn_result_from_pb(reply).unwrap().outcome,
            TxnOutcome::TransferFailed {
                index: 1,
                result: CreateTransferResult::ExceedsCredits
            }
        );
        let reply = v1::TxnReply {
            outcome: 99,
            ..Default::default()
        };
        assert!(txn_result_from_pb(reply).is_err());
    }
}
