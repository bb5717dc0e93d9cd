//! Protobuf <-> ledger conversions for the `Ledger` service; the only place both sides meet.

use tally_proto::u128_of;
use tally_proto::v1 as pb;
use tonic::Status;

use crate::ledger::{
    Account, AccountFlags, Balance, Condition, Record, RecordKey, RecordOp, Transfer,
    TransferFlags, Txn, TxnOutcome, TxnResult,
};

fn narrow_u16(value: u32, field: &str, index: usize) -> Result<u16, Status> {
    u16::try_from(value).map_err(|_| {
        Status::invalid_argument(format!(
            "item {index}: {field} {value} does not fit in 16 bits (max 65535)"
        ))
    })
}

pub fn account_from_pb(account: &pb::Account, index: usize) -> Result<Account, Status> {
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
        code: narrow_u16(account.code, "code", index)?,
        flags: AccountFlags(narrow_u16(account.flags, "flags", index)?),
        timestamp: account.timestamp,
    })
}

pub fn account_to_pb(account: &Account) -> pb::Account {
    pb::Account {
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
        flags: u32::from(account.flags.0),
        timestamp: account.timestamp,
    }
}

pub fn transfer_from_pb(transfer: &pb::Transfer, index: usize) -> Result<Transfer, Status> {
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
        code: narrow_u16(transfer.code, "code", index)?,
        flags: TransferFlags(narrow_u16(transfer.flags, "flags", index)?),
        timestamp: transfer.timestamp,
    })
}

pub fn transfer_to_pb(transfer: &Transfer) -> pb::Transfer {
    pb::Transfer {
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
        flags: u32::from(transfer.flags.0),
        timestamp: transfer.timestamp,
    }
}

pub fn balance_to_pb(balance: &Balance) -> pb::AccountBalance {
    pb::AccountBalance {
        timestamp: balance.timestamp,
        debits_pending: Some(balance.debits_pending.into()),
        debits_posted: Some(balance.debits_posted.into()),
        credits_pending: Some(balance.credits_pending.into()),
        credits_posted: Some(balance.credits_posted.into()),
    }
}

pub fn record_key_from_pb(key: Option<&pb::RecordKey>, what: &str) -> Result<RecordKey, Status> {
    let key =
        key.ok_or_else(|| Status::invalid_argument(format!("{what}: record key is missing")))?;
    Ok(RecordKey {
        namespace: key.namespace.clone(),
        key: key.key.clone(),
    })
}

pub fn record_to_pb(record: &Record) -> pb::Record {
    pb::Record {
        key: Some(pb::RecordKey {
            namespace: record.key.namespace.clone(),
            key: record.key.key.clone(),
        }),
        value: record.value.clone(),
        version: record.version,
        timestamp: record.timestamp,
    }
}

fn condition_from_pb(condition: &pb::Condition, index: usize) -> Result<Condition, Status> {
    let what = format!("condition {index}");
    match &condition.kind {
        Some(pb::condition::Kind::VersionEquals(equals)) => Ok(Condition::VersionEquals {
            key: record_key_from_pb(equals.key.as_ref(), &what)?,
            version: equals.version,
        }),
        Some(pb::condition::Kind::Absent(key)) => Ok(Condition::Absent {
            key: record_key_from_pb(Some(key), &what)?,
        }),
        None => Err(Status::invalid_argument(format!(
            "{what}: no condition set"
        ))),
    }
}

fn record_op_from_pb(op: &pb::RecordOp, index: usize) -> Result<RecordOp, Status> {
    let what = format!("record op {index}");
    match &op.kind {
        Some(pb::record_op::Kind::Put(record)) => Ok(RecordOp::Put {
            key: record_key_from_pb(record.key.as_ref(), &what)?,
            value: record.value.clone(),
        }),
        Some(pb::record_op::Kind::Delete(key)) => Ok(RecordOp::Delete {
            key: record_key_from_pb(Some(key), &what)?,
        }),
        None => Err(Status::invalid_argument(format!(
            "{what}: no operation set"
        ))),
    }
}

pub fn txn_from_pb(request: &pb::TxnRequest) -> Result<Txn, Status> {
    Ok(Txn {
        conditions: request
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| condition_from_pb(c, i))
            .collect::<Result<_, _>>()?,
        record_ops: request
            .record_ops
            .iter()
            .enumerate()
            .map(|(i, op)| record_op_from_pb(op, i))
            .collect::<Result<_, _>>()?,
        accounts: request
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| account_from_pb(a, i))
            .collect::<Result<_, _>>()?,
        transfers: request
            .transfers
            .iter()
            .enumerate()
            .map(|(i, t)| transfer_from_pb(t, i))
            .collect::<Result<_, _>>()?,
    })
}

pub fn txn_result_to_pb(result: &TxnResult) -> pb::TxnReply {
    use pb::txn_reply::Outcome;
    let mut reply = pb::TxnReply {
        record_versions: result.record_versions.clone(),
        ..Default::default()
    };
    match &result.outcome {
        TxnOutcome::Committed => reply.set_outcome(Outcome::Committed),
        TxnOutcome::ConditionFailed {
            index,
            actual_version,
        } => {
            reply.set_outcome(Outcome::ConditionFailed);
            reply.index = *index;
            reply.actual_version = *actual_version;
        }
        TxnOutcome::RecordInvalid { index, reason } => {
            reply.set_outcome(Outcome::RecordInvalid);
            reply.index = *index;
            reply.reason = reason.clone();
        }
        TxnOutcome::AccountFailed { index, result } => {
            reply.set_outcome(Outcome::AccountFailed);
            reply.index = *index;
            reply.result = result.as_u32();
            reply.reason = result.name().to_string();
        }
        TxnOutcome::TransferFailed { index, result } => {
            reply.set_outcome(Outcome::TransferFailed);
            reply.index = *index;
            reply.result = result.as_u32();
            reply.reason = result.name().to_string();
        }
        TxnOutcome::TooManyOperations => reply.set_outcome(Outcome::TooManyOperations),
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u16_fields_out_of_range_are_rejected_not_truncated() {
        let account = pb::Account {
            code: 70_000,
            ..Default::default()
        };
        let error = account_from_pb(&account, 3).unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error.message().contains("item 3: code 70000"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn transfers_round_trip() {
        let transfer = Transfer {
            id: u128::MAX,
            amount: 1 << 100,
            code: 7,
            ledger: 2,
            ..Default::default()
        };
        assert_eq!(
            transfer_from_pb(&transfer_to_pb(&transfer), 0).unwrap(),
            transfer
        );
    }
}
