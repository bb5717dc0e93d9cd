//! `tallyctl account ...` and `tallyctl transfer ...`.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use tally_client::codes::{
    describe_account_result, describe_transfer_result, transfer_flags, ACCOUNT_RESULT_EXISTS,
    RESULT_OK, TRANSFER_RESULT_EXISTS,
};
use tally_client::{v1, AccountBuilder, TransferBuilder};

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

fn build_account(args: &AccountCreateArgs) -> v1::Account {
    AccountBuilder::new(args.id, args.ledger, args.code)
        .flags(args.flags)
        .user_data_128(args.user_data.user_data_128)
        .user_data_64(args.user_data.user_data_64)
        .user_data_32(args.user_data.user_data_32)
        .build()
}

/// The transfer `transfer create` sends. Post and void leave unset accounts, ledger and code at
/// zero so the node takes them from the pending transfer; an unset amount means "all of it".
pub fn build_transfer(args: &TransferCreateArgs) -> v1::Transfer {
    let (flags, pending_id, amount_default) = match (args.post, args.void) {
        (Some(pending_id), _) => (transfer_flags::POST_PENDING_TRANSFER, pending_id, u128::MAX),
        (None, Some(pending_id)) => (transfer_flags::VOID_PENDING_TRANSFER, pending_id, 0),
        (None, None) => (0, 0, 0),
    };
    let mut flags = flags;
    for (set, bit) in [
        (args.pending, transfer_flags::PENDING),
        (args.linked, transfer_flags::LINKED),
        (args.balancing_debit, transfer_flags::BALANCING_DEBIT),
        (args.balancing_credit, transfer_flags::BALANCING_CREDIT),
    ] {
        if set {
            flags |= bit;
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
fn report_result(context: &Context, id: u128, code: u32, name: String, exists: u32) -> ExitCode {
    if context.json {
        outln!(
            "{}",
            json!({"id": id.to_string(), "result": name, "code": code})
        );
    } else {
        outln!("{name}");
    }
    if code == RESULT_OK || code == exists {
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
    let code = single_result(&results)?;
    Ok(report_result(
        context,
        args.id,
        code,
        describe_account_result(code),
        ACCOUNT_RESULT_EXISTS,
    ))
}

async fn create_transfer(context: &Context, args: TransferCreateArgs) -> anyhow::Result<ExitCode> {
    let results = context
        .client
        .create_transfers(vec![build_transfer(&args)])
        .await?;
    let code = single_result(&results)?;
    Ok(report_result(
        context,
        args.id,
        code,
        describe_transfer_result(code),
        TRANSFER_RESULT_EXISTS,
    ))
}

fn single_result(results: &[u32]) -> anyhow::Result<u32> {
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
                row["state"] = serde_json::Value::from(state.name());
                row
            })
            .collect();
        outln!("{}", serde_json::Value::Array(rows));
    } else if !found.is_empty() {
        out!("{}", crate::output::transfer_states_table(&found));
    }
    Ok(report_missing("transfer", &missing))
}

fn missing_ids(asked: &[u128], found: impl Iterator<Item = Option<v1::U128>>) -> Vec<u128> {
    let found: std::collections::BTreeSet<u128> = found.map(tally_proto::u128_of).collect();
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

fn filter(account_id: u128, page: &PageArgs) -> v1::AccountFilter {
    v1::AccountFilter {
        account_id: Some(account_id.into()),
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
    use tally_proto::u128_of;

    fn transfer_of(args: &[&str]) -> v1::Transfer {
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
        assert_eq!(u128_of(transfer.id), 9);
        assert_eq!(u128_of(transfer.debit_account_id), 1);
        assert_eq!(u128_of(transfer.credit_account_id), 2);
        assert_eq!(u128_of(transfer.amount), 500);
        assert_eq!(
            (transfer.ledger, transfer.code, transfer.timeout),
            (840, 3, 60)
        );
        assert_eq!(
            transfer.flags,
            transfer_flags::PENDING | transfer_flags::LINKED
        );
        assert_eq!(u128_of(transfer.pending_id), 0);
    }

    #[test]
    fn post_defaults_to_the_full_amount_and_void_to_zero() {
        let post = transfer_of(&["--id", "10", "--post", "9"]);
        assert_eq!(post.flags, transfer_flags::POST_PENDING_TRANSFER);
        assert_eq!(u128_of(post.pending_id), 9);
        assert_eq!(u128_of(post.amount), u128::MAX);
        assert_eq!(u128_of(post.debit_account_id), 0);
        assert_eq!((post.ledger, post.code), (0, 0));

        let partial = transfer_of(&["--id", "11", "--post", "9", "--amount", "200"]);
        assert_eq!(u128_of(partial.amount), 200);

        let void = transfer_of(&["--id", "12", "--void", "9"]);
        assert_eq!(void.flags, transfer_flags::VOID_PENDING_TRANSFER);
        assert_eq!(u128_of(void.amount), 0);
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
            transfer_flags::BALANCING_DEBIT | transfer_flags::BALANCING_CREDIT
        );
    }

    #[test]
    fn reports_missing_ids_in_request_order() {
        let found = [Some(v1::U128::from(2u128)), Some(v1::U128::from(9u128))];
        assert_eq!(missing_ids(&[3, 2, 1], found.into_iter()), vec![3, 1]);
    }
}
