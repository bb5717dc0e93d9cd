//! The public `Ledger` service: writes go through group commit on the leader; reads wait for
//! the requested consistency and then read this node's storage.

use std::sync::Arc;

use tally_proto::u128_of;
use tally_proto::v1 as pb;
use tally_proto::v1::ledger_server::Ledger;
use tonic::{Request, Response, Status};

use super::auth::{Caller, Role};
use super::convert::*;
use super::status_of;
use crate::ledger::{Command, CommandResult};
use crate::limits::{ACCOUNT_TRANSFERS_PAGE_MAX, EVENTS_PER_REQUEST_MAX, RECORD_SCAN_PAGE_MAX};
use crate::raft::{RaftNode, ReadConsistency};
use crate::storage::ledger::{self as store, AccountPage};
use crate::storage::StorageError;

pub struct LedgerApi {
    node: Arc<RaftNode>,
}

impl LedgerApi {
    pub fn new(node: Arc<RaftNode>) -> Self {
        LedgerApi { node }
    }

    async fn read_barrier(&self, stale_ok: bool) -> Result<(), Status> {
        let consistency = if stale_ok {
            ReadConsistency::Stale
        } else {
            ReadConsistency::Linearizable
        };
        self.node.read_barrier(consistency).await.map_err(status_of)
    }

    async fn submit(&self, command: Command) -> Result<CommandResult, Status> {
        match self.node.submit(command).await.map_err(status_of)? {
            CommandResult::TooManyEvents => Err(too_many(EVENTS_PER_REQUEST_MAX + 1)),
            result => Ok(result),
        }
    }
}

fn too_many(count: usize) -> Status {
    Status::invalid_argument(format!(
        "batch of {count} events exceeds the limit of {EVENTS_PER_REQUEST_MAX} per request; split it"
    ))
}

fn storage_status(error: StorageError) -> Status {
    Status::internal(format!("storage: {error}"))
}

fn check_batch(count: usize) -> Result<(), Status> {
    if count > EVENTS_PER_REQUEST_MAX {
        return Err(too_many(count));
    }
    Ok(())
}

fn page_limit(requested: u32, max: usize) -> usize {
    if requested == 0 {
        max
    } else {
        (requested as usize).min(max)
    }
}

fn account_page(filter: &pb::AccountFilter) -> Result<AccountPage, Status> {
    let account_id = u128_of(filter.account_id);
    if account_id == 0 {
        return Err(Status::invalid_argument("account_id must not be zero"));
    }
    if filter.timestamp_max != 0 && filter.timestamp_min > filter.timestamp_max {
        return Err(Status::invalid_argument(
            "timestamp_min is after timestamp_max",
        ));
    }
    Ok(AccountPage {
        account_id,
        timestamp_min: filter.timestamp_min,
        timestamp_max: filter.timestamp_max,
        limit: page_limit(filter.limit, ACCOUNT_TRANSFERS_PAGE_MAX),
        reversed: filter.reversed,
    })
}

#[tonic::async_trait]
impl Ledger for LedgerApi {
    async fn create_accounts(
        &self,
        request: Request<pb::CreateAccountsRequest>,
    ) -> Result<Response<pb::CreateAccountsReply>, Status> {
        let request = request.into_inner();
        check_batch(request.accounts.len())?;
        let accounts = request
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| account_from_pb(a, i))
            .collect::<Result<Vec<_>, _>>()?;
        match self.submit(Command::CreateAccounts(accounts)).await? {
            CommandResult::Accounts(results) => Ok(Response::new(pb::CreateAccountsReply {
                results: results.iter().map(|r| r.as_u32()).collect(),
            })),
            other => Err(Status::internal(format!("unexpected result {other:?}"))),
        }
    }

    async fn create_transfers(
        &self,
        request: Request<pb::CreateTransfersRequest>,
    ) -> Result<Response<pb::CreateTransfersReply>, Status> {
        let request = request.into_inner();
        check_batch(request.transfers.len())?;
        let transfers = request
            .transfers
            .iter()
            .enumerate()
            .map(|(i, t)| transfer_from_pb(t, i))
            .collect::<Result<Vec<_>, _>>()?;
        match self.submit(Command::CreateTransfers(transfers)).await? {
            CommandResult::Transfers(results) => Ok(Response::new(pb::CreateTransfersReply {
                results: results.iter().map(|r| r.as_u32()).collect(),
            })),
            other => Err(Status::internal(format!("unexpected result {other:?}"))),
        }
    }

    async fn submit_txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnReply>, Status> {
        // The method needs records.write; moving money inside a txn needs ledger.write as well.
        if !request.get_ref().accounts.is_empty() || !request.get_ref().transfers.is_empty() {
            let caller = request
                .extensions()
                .get::<Caller>()
                .ok_or_else(|| Status::unauthenticated("no caller identity"))?;
            caller.require(Role::LedgerWrite, "create accounts or transfers in a txn")?;
        }
        let request = request.into_inner();
        check_batch(request.accounts.len())?;
        check_batch(request.transfers.len())?;
        let txn = txn_from_pb(&request)?;
        match self.submit(Command::Txn(txn)).await? {
            CommandResult::Txn(result) => Ok(Response::new(txn_result_to_pb(&result))),
            other => Err(Status::internal(format!("unexpected result {other:?}"))),
        }
    }

    async fn lookup_accounts(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupAccountsReply>, Status> {
        let request = request.into_inner();
        check_batch(request.ids.len())?;
        self.read_barrier(request.stale_ok).await?;
        let mut accounts = Vec::new();
        for id in &request.ids {
            if let Some(account) =
                store::read_account(self.node.storage(), (*id).into()).map_err(storage_status)?
            {
                accounts.push(account_to_pb(&account));
            }
        }
        Ok(Response::new(pb::LookupAccountsReply { accounts }))
    }

    async fn lookup_transfers(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupTransfersReply>, Status> {
        let request = request.into_inner();
        check_batch(request.ids.len())?;
        self.read_barrier(request.stale_ok).await?;
        let mut transfers = Vec::new();
        let mut states = Vec::new();
        for id in &request.ids {
            let id = (*id).into();
            if let Some(transfer) =
                store::read_transfer(self.node.storage(), id).map_err(storage_status)?
            {
                let state = store::read_pending_status(self.node.storage(), id)
                    .map_err(storage_status)?
                    .map_or(0, |status| u32::from(status.as_u8()));
                transfers.push(transfer_to_pb(&transfer));
                states.push(state);
            }
        }
        Ok(Response::new(pb::LookupTransfersReply {
            transfers,
            states,
        }))
    }

    async fn get_account_transfers(
        &self,
        request: Request<pb::AccountFilter>,
    ) -> Result<Response<pb::AccountTransfersReply>, Status> {
        let filter = request.into_inner();
        let page = account_page(&filter)?;
        self.read_barrier(filter.stale_ok).await?;
        let transfers =
            store::account_transfers(self.node.storage(), &page).map_err(storage_status)?;
        Ok(Response::new(pb::AccountTransfersReply {
            transfers: transfers.iter().map(transfer_to_pb).collect(),
        }))
    }

    async fn get_account_balances(
        &self,
        request: Request<pb::AccountFilter>,
    ) -> Result<Response<pb::AccountBalancesReply>, Status> {
        let filter = request.into_inner();
        let page = account_page(&filter)?;
        self.read_barrier(filter.stale_ok).await?;
        let balances =
            store::account_balances(self.node.storage(), &page).map_err(storage_status)?;
        Ok(Response::new(pb::AccountBalancesReply {
            balances: balances.iter().map(balance_to_pb).collect(),
        }))
    }

    async fn get_record(
        &self,
        request: Request<pb::GetRecordRequest>,
    ) -> Result<Response<pb::GetRecordReply>, Status> {
        let request = request.into_inner();
        let key = record_key_from_pb(request.key.as_ref(), "get")?;
        self.read_barrier(request.stale_ok).await?;
        let record = store::read_record(self.node.storage(), &key).map_err(storage_status)?;
        Ok(Response::new(pb::GetRecordReply {
            record: record.as_ref().map(record_to_pb),
        }))
    }

    async fn scan_records(
        &self,
        request: Request<pb::ScanRecordsRequest>,
    ) -> Result<Response<pb::ScanRecordsReply>, Status> {
        let request = request.into_inner();
        if request.namespace.is_empty() {
            return Err(Status::invalid_argument("namespace must not be empty"));
        }
        self.read_barrier(request.stale_ok).await?;
        let start_after =
            (!request.start_after.is_empty()).then_some(request.start_after.as_slice());
        let records = store::scan_records(
            self.node.storage(),
            &request.namespace,
            &request.prefix,
            start_after,
            page_limit(request.limit, RECORD_SCAN_PAGE_MAX),
        )
        .map_err(storage_status)?;
        Ok(Response::new(pb::ScanRecordsReply {
            records: records.iter().map(record_to_pb).collect(),
        }))
    }
}
