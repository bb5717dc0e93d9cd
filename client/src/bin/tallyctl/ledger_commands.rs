//! `tallyctl account ...` and `tallyctl transfer ...`.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use tally_client::{
    Account, AccountBuilder, AccountFilter, CreateAccountResult, CreateTransferResult, Transfer,
    TransferBuilder, TransferFlags,
};

use crate::cli::{
    AccountCommand, AccountCreateArgs, PageArgs, TransferCommand, TransferCreateArgs,
};
use crate::Context;

pub async fn account(context: &Context, command: AccountCommand) -> anyhow::Result<ExitCode> {
    match command {
        AccountCommand::Create(args) => create_account(context, args).await,
        AccountCommand::Get { ids } => get_accounts(context, &ids).await,
        AccountCommand::Transfers(args) => list_transfers(context, args.id, &args.page).await,
        AccountCommand::Balances(args) => {
            let balances = context
                .client
                .account_balances(filter(args.id, &args.page))
                .await?;
            if context.json {
                let rows: Vec<_> = balances.iter().map(crate::output::balance_json).collect();
                outln!("{}", serde_json::Value::Array(rows));
            } else if balances.is_empty() {
                outln!(
                    "no balance history for account {} (was it created with --flags history?)",
                    args.id
                );
            } else {
                out!("{}", crate::output::balances_table(&balances));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn transfer(context: &Context, command: TransferCommand) -> anyhow::Result<ExitCode> {
    match command {
        TransferCommand::Create(args) => create_transfer(context, *args).await,
        TransferCommand::Get { ids } => get_transfers(context, &ids).await,
        TransferCommand::List { account, page } => list_transfers(context, account, &page).await,
    }
}

fn build_account(args: &AccountCreateArgs) -> Account {
    AccountBuilder::new(args.id, args.ledger, args.code)
        .flags(args.flags)
        .user_data_128(args.user_data.user_data_128)
        .user_data_64(args.user_data.user_data_64)
        .user_data_32(args.user_data.user_data_32)
        .build()
}

/// The transfer `transfer create` sends. Post and void leave unset accounts, ledger and code at
/// zero so the node takes them from the pending transfer; an unset amount means "all of it".
pub fn build_transfer(args: &TransferCreateArgs) -> Transfer {
    let (flags, pending_id, amount_default) = match (args.post, args.void) {
        (Some(pending_id), _) => (TransferFlags::POST_PENDING_TRANSFER, pending_id, u128::MAX),
        (None, Some(pending_id)) => (TransferFlags::VOID_PENDING_TRANSFER, pending_id, 0),
        (None, None) => (TransferFlags::empty(), 0, 0),
    };
    let mut flags = flags;
    for (set, bit) in [
        (args.pending, TransferFlags::PENDING),
        (args.linked, TransferFlags::LINKED),
        (args.balancing_debit, TransferFlags::BALANCING_DEBIT),
        (args.balancing_credit, TransferFlags::BALANCING_CREDIT),
    ] {
        if set {
            flags = flags | bit;
        }
    }
    TransferBuilder::new(
        args.id,
        args.debit.unwrap_or(0),
        args.credit.unwrap_or(0),
        args.amount.unwrap_or(amount_default),
        args.ledger.unwrap_or(0),
        args.code.unwrap_or(0),
    )
    .flags(flags)
    .pending_id(pending_id)
    .timeout_seconds(args.timeout.unwrap_or(0))
    .user_data_128(args.user_data.user_data_128)
    .user_data_64(args.user_data.user_data_64)
    .user_data_32(args.user_data.user_data_32)
    .build()
}

/// Prints one create result; `ok` and `exists` (a repeated request) succeed, anything else fails.
fn report_result(context: &Context, id: u128, code: u32, name: &str, succeeded: bool) -> ExitCode {
    if context.json {
        outln!(
            "{}",
            json!({"id": id.to_string(), "result": name, "code": code})
        );
    } else {
        outln!("{name}");
    }
    if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn create_account(context: &Context, args: AccountCreateArgs) -> anyhow::Result<ExitCode> {
    let results = context
        .client
        .create_accounts(vec![build_account(&args)])
        .await?;
    let result = single_result(&results)?;
    let succeeded = matches!(
        result,
        CreateAccountResult::Ok | CreateAccountResult::Exists
    );
    Ok(report_result(
        context,
        args.id,
        result.as_u32(),
        result.name(),
        succeeded,
    ))
}

async fn create_transfer(context: &Context, args: TransferCreateArgs) -> anyhow::Result<ExitCode> {
    let results = context
        .client
        .create_transfers(vec![build_transfer(&args)])
        .await?;
    let result = single_result(&results)?;
    let succeeded = matches!(
        result,
        CreateTransferResult::Ok | CreateTransferResult::Exists
    );
    Ok(report_result(
        context,
        args.id,
        result.as_u32(),
        result.name(),
        succeeded,
    ))
}

fn single_result<R: Copy>(results: &[R]) -> anyhow::Result<R> {
    results
        .first()
        .copied()
        .context("the server returned no result code for the request")
}

async fn get_accounts(context: &Context, ids: &[u128]) -> anyhow::Result<ExitCode> {
    let accounts = context.client.lookup_accounts(ids).await?;
    let missing = missing_ids(ids, accounts.iter().map(|account| account.id));
    if context.json {
        let rows: Vec<_> = accounts.iter().map(crate::output::account_json).collect();
        outln!("{}", serde_json::Value::Array(rows));
    } else if !accounts.is_empty() {
        out!("{}", crate::output::accounts_table(&accounts));
    }
    Ok(report_missing("account", &missing))
}

async fn get_transfers(context: &Context, ids: &[u128]) -> anyhow::Result<ExitCode> {
    let found = context.client.lookup_transfer_states(ids).await?;
    let missing = missing_ids(ids, found.iter().map(|(transfer, _)| transfer.id));
    if context.json {
        let rows: Vec<_> = found
            .iter()
            .map(|(transfer, state)| {
                let mut row = crate::output::transfer_json(transfer);
                row["state"] = serde_json::Value::from(crate::output::state_name(*state));
                row
            })
            .collect();
        outln!("{}", serde_json::Value::Array(rows));
    } else if !found.is_empty() {
        out!("{}", crate::output::transfer_states_table(&found));
    }
    Ok(report_missing("transfer", &missing))
}

fn missing_ids(asked: &[u128], found: impl Iterator<Item = u128>) -> Vec<u128> {
    let found: std::collections::BTreeSet<u128> = found.collect();
    asked
        .iter()
        .copied()
        .filter(|id| !found.contains(id))
        .collect()
}

fn report_missing(kind: &str, missing: &[u128]) -> ExitCode {
    for id in missing {
        eprintln!("{kind} {id} not found");
    }
    if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn filter(account_id: u128, page: &PageArgs) -> AccountFilter {
    AccountFilter {
        account_id,
        limit: page.limit,
        reversed: page.reversed,
        ..Default::default()
    }
}

async fn list_transfers(
    context: &Context,
    account_id: u128,
    page: &PageArgs,
) -> anyhow::Result<ExitCode> {
    let transfers = context
        .client
        .account_transfers(filter(account_id, page))
        .await?;
    if context.json {
        let rows: Vec<_> = transfers.iter().map(crate::output::transfer_json).collect();
        outln!("{}", serde_json::Value::Array(rows));
    } else if transfers.is_empty() {
        outln!("no transfers for account {account_id}");
    } else {
        out!("{}", crate::output::transfers_table(&transfers));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn transfer_of(args: &[&str]) -> Transfer {
        let argv = ["tallyctl", "transfer", "create"].iter().chain(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        let Command::Transfer(TransferCommand::Create(args)) = cli.command else {
            panic!("wrong command")
        };
        build_transfer(&args)
    }

    #[test]
    fn plain_and_pending_transfers() {
        let transfer = transfer_of(&[
            "--id",
            "9",
            "--debit",
            "1",
            "--credit",
            "2",
            "--amount",
            "500",
            "--ledger",
            "840",
            "--code",
            "3",
            "--pending",
            "--timeout",
            "60",
            "--linked",
        ]);
        assert_eq!(transfer.id, 9);
        assert_eq!(transfer.debit_account_id, 1);
        assert_eq!(transfer.credit_account_id, 2);
        assert_eq!(transfer.amount, 500);
        assert_eq!(
            (transfer.ledger, transfer.code, transfer.timeout),
            (840, 3, 60)
        );
        assert_eq!(
            transfer.flags,
            TransferFlags::PENDING | TransferFlags::LINKED
        );
        assert_eq!(transfer.pending_id, 0);
    }

    #[test]
    fn post_defaults_to_the_full_amount_and_void_to_zero() {
        let post = transfer_of(&["--id", "10", "--post", "9"]);
        assert_eq!(post.flags, TransferFlags::POST_PENDING_TRANSFER);
        assert_eq!(post.pending_id, 9);
        assert_eq!(post.amount, u128::MAX);
        assert_eq!(post.debit_account_id, 0);
        assert_eq!((post.ledger, post.code), (0, 0));

        let partial = transfer_of(&["--id", "11", "--post", "9", "--amount", "200"]);
        assert_eq!(partial.amount, 200);

        let void = transfer_of(&["--id", "12", "--void", "9"]);
        assert_eq!(void.flags, TransferFlags::VOID_PENDING_TRANSFER);
        assert_eq!(void.amount, 0);
    }

    #[test]
    fn balancing_flags() {
        let transfer = transfer_of(&[
            "--id",
            "1",
            "--debit",
            "1",
            "--credit",
            "2",
            "--amount",
            "5",
            "--ledger",
            "1",
            "--code",
            "1",
            "--balancing-debit",
            "--balancing-credit",
        ]);
        assert_eq!(
            transfer.flags,
            TransferFlags::BALANCING_DEBIT | TransferFlags::BALANCING_CREDIT
        );
    }

    #[test]
    fn reports_missing_ids_in_request_order() {
        let found = [2u128, 9];
        assert_eq!(missing_ids(&[3, 2, 1], found.into_iter()), vec![3, 1]);
    }
}
